//! SCIM 2.0 for identity providers: what Okta and Entra ID send, through the real handler,
//! against a real Postgres and the Auth0 and email doubles over HTTP. Every change lands in both
//! systems or in neither, as through the admin API.

use serde_json::{Value, json};
use testkit::harness::{Response, SCIM_USERS_PATH, TestStack, scim_event, seed};

const CORE_USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
const LIST: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
const APP_USER: &str = "urn:atomic-user-provisioning:scim:schemas:extension:app:2.0:User";
const PASSWORD: &str = "Corr3ct-Horse-Battery";

/// An identity provider with a token of Acme.
struct Idp<'a> {
    stack: &'a TestStack,
    token: String,
}

impl<'a> Idp<'a> {
    async fn of_acme(stack: &'a TestStack) -> Idp<'a> {
        let token = stack.scim_token(seed::ACME_ADMIN_SUB).await;
        Idp { stack, token }
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        query: &[(&str, &str)],
    ) -> Response {
        let response = self
            .stack
            .call_scim(scim_event(method, path, Some(&self.token), body, query))
            .await;
        assert_scim_shaped(&response);
        response
    }

    async fn find(&self, filter: &str) -> Response {
        self.send(
            "GET",
            SCIM_USERS_PATH,
            None,
            &[("filter", filter), ("startIndex", "1"), ("count", "100")],
        )
        .await
    }

    async fn create(&self, body: &Value) -> Response {
        self.send("POST", SCIM_USERS_PATH, Some(body), &[]).await
    }

    async fn patch(&self, id: &str, operations: Value) -> Response {
        let body = json!({"schemas": [PATCH_OP], "Operations": operations});
        self.send("PATCH", &user_path(id), Some(&body), &[]).await
    }
}

fn user_path(id: &str) -> String {
    format!("{SCIM_USERS_PATH}/{id}")
}

/// Every SCIM answer with a body is `application/scim+json`; every error is in SCIM's error
/// schema with the status as a string.
fn assert_scim_shaped(response: &Response) {
    if response.status == 204 {
        assert_eq!(response.body, Value::Null);
        assert!(response.headers.get("content-type").is_none());
        return;
    }
    assert_eq!(
        response.headers["content-type"], "application/scim+json",
        "{}",
        response.body
    );
    if response.status >= 400 {
        assert_eq!(
            response.body["schemas"],
            json!([ERROR]),
            "{}",
            response.body
        );
        assert_eq!(
            response.body["status"],
            json!(response.status.to_string()),
            "{}",
            response.body
        );
        assert!(response.body["detail"].is_string(), "{}", response.body);
    }
}

fn okta_user(email: &str) -> Value {
    json!({
        "schemas": [CORE_USER],
        "userName": email,
        "name": {"givenName": "Olga", "familyName": "Okta"},
        "emails": [{"primary": true, "value": email, "type": "work"}],
        "displayName": "Olga Okta",
        "locale": "en-US",
        "externalId": "00u1okta",
        "groups": [],
        "password": PASSWORD,
        "active": true,
    })
}

#[tokio::test]
async fn okta_finds_nobody_then_creates_a_user_with_its_password() {
    let stack = TestStack::start().await;
    let idp = Idp::of_acme(&stack).await;
    let email = "olga.okta@acme.test";

    let none = idp.find(&format!("userName eq \"{email}\"")).await;
    assert_eq!(none.status, 200, "{}", none.body);
    assert_eq!(
        none.body,
        json!({"schemas": [LIST], "totalResults": 0, "startIndex": 1, "itemsPerPage": 0, "Resources": []})
    );

    let created = idp.create(&okta_user(email)).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let user = &created.body;
    let id = user["id"].as_str().unwrap();
    let location = format!("https://scim.acme.test/scim/v2/Users/{id}");
    assert_eq!(created.headers["location"], location.as_str());
    assert_eq!(user["meta"]["location"], location.as_str());
    assert_eq!(user["meta"]["resourceType"], "User");
    assert_eq!(user["userName"], email);
    assert_eq!(
        user["name"],
        json!({"givenName": "Olga", "familyName": "Okta"})
    );
    assert_eq!(user["active"], true);
    assert_eq!(user["externalId"], "00u1okta");
    assert_eq!(user[APP_USER]["role"], "USER");
    assert!(user.get("password").is_none());

    // The password is the login's; no invitation.
    assert!(stack.email.emails_to(email).is_empty());
    let (status, _) = stack.auth0.log_in(email, PASSWORD, "openid").await;
    assert_eq!(status, 200);

    let found = idp
        .find(&format!("userName eq \"{}\"", email.to_uppercase()))
        .await;
    assert_eq!(found.body["totalResults"], 1, "{}", found.body);
    assert_eq!(found.body["Resources"][0]["id"], id);
}

#[tokio::test]
async fn okta_deactivates_with_a_pathless_replace_and_finds_the_user_still() {
    let stack = TestStack::start().await;
    let idp = Idp::of_acme(&stack).await;
    let email = "olga.gone@acme.test";
    let created = idp.create(&okta_user(email)).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["id"].as_str().unwrap();
    let auth0_id = stack.auth0.users_with_email(email)[0]["user_id"]
        .as_str()
        .unwrap()
        .to_string();

    let off = idp
        .patch(id, json!([{"op": "replace", "value": {"active": false}}]))
        .await;
    assert_eq!(off.status, 200, "{}", off.body);
    assert_eq!(off.body["active"], false);
    assert!(stack.auth0.is_blocked(&auth0_id));
    let (status, _) = stack.auth0.log_in(email, PASSWORD, "openid").await;
    assert_ne!(status, 200, "a deactivated person cannot log in");
    // Okta looks the person up again before re-assigning: still there, inactive.
    let found = idp.find(&format!("userName eq \"{email}\"")).await;
    assert_eq!(found.body["totalResults"], 1, "{}", found.body);
    assert_eq!(found.body["Resources"][0]["active"], false);

    let on = idp
        .patch(id, json!([{"op": "replace", "value": {"active": true}}]))
        .await;
    assert_eq!(on.status, 200, "{}", on.body);
    assert!(!stack.auth0.is_blocked(&auth0_id));
    let (status, _) = stack.auth0.log_in(email, PASSWORD, "openid").await;
    assert_eq!(status, 200);
    let _ = user_path(id);
}

#[tokio::test]
async fn searching_with_post_is_not_implemented_and_says_so_in_scim_s_shape() {
    let stack = TestStack::start().await;
    let idp = Idp::of_acme(&stack).await;
    let search = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": "userName eq \"admin@acme.test\"",
    });
    // RFC 7644 §3.12: an operation the service does not support is a 501, not a 404.
    for path in ["/scim/v2/.search", "/scim/v2/Users/.search"] {
        let answer = idp.send("POST", path, Some(&search), &[]).await;
        assert_eq!(answer.status, 501, "{path}: {}", answer.body);
        assert!(
            answer.body["detail"]
                .as_str()
                .unwrap()
                .contains("GET /Users?filter"),
            "{}",
            answer.body
        );
    }
}

#[tokio::test]
async fn name_and_active_are_required_to_create_as_the_schema_declares() {
    let stack = TestStack::start().await;
    let idp = Idp::of_acme(&stack).await;
    let schemas = idp.send("GET", "/scim/v2/Schemas", None, &[]).await;
    let core = schemas.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|schema| schema["id"] == CORE_USER)
        .unwrap()
        .clone();
    let attribute = |name: &str| {
        core["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|attribute| attribute["name"] == name)
            .unwrap()
            .clone()
    };
    for name in ["userName", "name", "active"] {
        assert_eq!(attribute(name)["required"], true, "{name}");
    }
    for sub in attribute("name")["subAttributes"].as_array().unwrap() {
        assert_eq!(sub["required"], true, "{sub}");
    }

    let email = "nameless@acme.test";
    let mut nameless = okta_user(email);
    nameless.as_object_mut().unwrap().remove("name");
    let mut no_activity = okta_user(email);
    no_activity.as_object_mut().unwrap().remove("active");
    let mut half_name = okta_user(email);
    half_name["name"] = json!({"givenName": "Olga"});
    for body in [nameless, no_activity, half_name] {
        let refused = idp.create(&body).await;
        assert_eq!(refused.status, 400, "{}", refused.body);
        assert_eq!(refused.body["scimType"], "invalidValue", "{}", refused.body);
    }
    // Nothing was made in either system.
    let found = idp.find(&format!("userName eq \"{email}\"")).await;
    assert_eq!(found.body["totalResults"], 0, "{}", found.body);
    assert!(stack.auth0.users_with_email(email).is_empty());
}

#[tokio::test]
async fn a_put_s_name_is_the_whole_name_and_the_app_extension_may_name_its_schema() {
    let stack = TestStack::start().await;
    let idp = Idp::of_acme(&stack).await;
    let email = "olga.put@acme.test";
    let created = idp.create(&okta_user(email)).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["id"].as_str().unwrap();

    // A PUT whose name lacks familyName replaces the name with half of one: refused, and the
    // name stays whole.
    let mut put = okta_user(email);
    put["name"] = json!({"givenName": "Olivia"});
    let refused = idp.send("PUT", &user_path(id), Some(&put), &[]).await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert_eq!(refused.body["scimType"], "invalidValue");
    let read = idp.send("GET", &user_path(id), None, &[]).await;
    assert_eq!(
        read.body["name"],
        json!({"givenName": "Olga", "familyName": "Okta"})
    );

    // The extension's object as scim2-models writes it, with its own `schemas`.
    let promoted = idp
        .patch(
            id,
            json!([{"op": "add", "path": APP_USER, "value": {"schemas": [APP_USER], "role": "ADMIN"}}]),
        )
        .await;
    assert_eq!(promoted.status, 200, "{}", promoted.body);
    assert_eq!(promoted.body[APP_USER]["role"], "ADMIN");
    let role: String = stack
        .sql()
        .await
        .query_one("SELECT role FROM users WHERE id = $1::text::uuid", &[&id])
        .await
        .unwrap()
        .get(0);
    assert_eq!(role, "ADMIN");
}
