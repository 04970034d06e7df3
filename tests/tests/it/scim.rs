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

/// Found by `make chaos`, two PUTs on one user: a PUT read the user as ADMIN, asked for ADMIN
/// and a new name, and another change made the user a USER before the PUT locked it. The PUT
/// asked only for what differed from its read (the name), so it answered 200 with the role
/// USER: neither request won whole. Now it asks for every attribute it names, and the later
/// change wins whole, in both systems.
#[tokio::test]
async fn a_put_that_read_the_user_before_another_change_committed_lands_whole() {
    let stack = TestStack::start().await;
    let idp = Idp::of_acme(&stack).await;
    let email = "raced.put@acme.test";
    let mut body = okta_user(email);
    body[APP_USER] = json!({"role": "ADMIN"});
    let created = idp.create(&body).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_string();
    let auth0_id = stack.auth0.users_with_email(email)[0]["user_id"]
        .as_str()
        .unwrap()
        .to_string();

    // Another change holds the user: the PUT reads it (ADMIN, unlocked) and waits for the lock;
    // the other change commits the role USER meanwhile (its own Auth0 side does not matter:
    // the PUT sets the role tag to what it asks).
    let other = stack.sql().await;
    other.batch_execute("BEGIN").await.unwrap();
    other
        .execute(
            "SELECT 1 FROM users WHERE id = $1::text::uuid FOR UPDATE",
            &[&id],
        )
        .await
        .unwrap();
    let mut put = body.clone();
    put.as_object_mut().unwrap().remove("password");
    put["name"] = json!({"givenName": "Olga", "familyName": "Renamed"});
    let path = user_path(&id);
    let commit_once_waiting = async {
        let watcher = stack.sql().await;
        loop {
            let waiting: i64 = watcher
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity
                      WHERE datname = current_database() AND wait_event_type = 'Lock'",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            if waiting > 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        other
            .execute(
                "UPDATE users SET role = 'USER' WHERE id = $1::text::uuid",
                &[&id],
            )
            .await
            .unwrap();
        other.batch_execute("COMMIT").await.unwrap();
    };

    let (replaced, ()) = tokio::join!(idp.send("PUT", &path, Some(&put), &[]), commit_once_waiting);

    assert_eq!(replaced.status, 200, "{}", replaced.body);
    assert_eq!(replaced.body["name"]["familyName"], "Renamed");
    assert_eq!(
        replaced.body[APP_USER]["role"], "ADMIN",
        "{}",
        replaced.body
    );
    let row: String = stack
        .sql()
        .await
        .query_one("SELECT role FROM users WHERE id = $1::text::uuid", &[&id])
        .await
        .unwrap()
        .get(0);
    assert_eq!(row, "ADMIN");
    let tags = &stack.auth0.user(&auth0_id).unwrap()["app_metadata"];
    assert_eq!(tags["role"], "ADMIN");
}
