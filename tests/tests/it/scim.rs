//! SCIM 2.0 for identity providers: what Okta and Entra ID send, through the real handler,
//! against a real Postgres and the Auth0 and email doubles over HTTP. Every change lands in both
//! systems or in neither, as through the admin API.

use serde_json::{Value, json};
use testkit::doubles::Fault;
use testkit::harness::{Response, SCIM_USERS_PATH, TestStack, scim_event, seed};
use uuid::Uuid;

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
}

fn entra_user(email: &str, object_id: &str) -> Value {
    json!({
        "schemas": [CORE_USER, "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
        "externalId": object_id,
        "userName": email,
        "active": true,
        "displayName": "Ezra Entra",
        "emails": [{"primary": true, "type": "work", "value": email}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": "Ezra Entra", "familyName": "Entra", "givenName": "Ezra"},
        "title": "Engineer",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "701", "department": "R&D"},
    })
}

async fn auth0_id(stack: &TestStack, email: &str) -> String {
    let users = stack.auth0.users_with_email(email);
    assert_eq!(users.len(), 1, "{users:?}");
    users[0]["user_id"].as_str().unwrap().to_string()
}

async fn row(stack: &TestStack, id: &str) -> Option<(bool, String, Option<String>)> {
    stack
        .sql()
        .await
        .query_opt(
            "SELECT is_active, role, external_id FROM users WHERE id = $1",
            &[&Uuid::parse_str(id).unwrap()],
        )
        .await
        .unwrap()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
}

#[tokio::test]
async fn entra_creates_invites_deactivates_renames_reactivates_and_deletes() {
    let stack = TestStack::start().await;
    let idp = Idp::of_acme(&stack).await;
    let email = "ezra.entra@acme.test";
    let object_id = "5f1b2c3d-entra-object";

    let created = idp.create(&entra_user(email, object_id)).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_string();
    // No password from Entra: the person is invited to set one.
    assert_eq!(stack.email.emails_to(email).len(), 1);
    let auth0 = auth0_id(&stack, email).await;
    assert!(!stack.auth0.is_blocked(&auth0));

    for filter in [
        format!("externalId eq \"{object_id}\""),
        format!("emails[type eq \"work\"].value eq \"{email}\""),
        format!("userName eq \"{email}\" and externalId eq \"{object_id}\""),
    ] {
        let found = idp.find(&filter).await;
        assert_eq!(found.body["totalResults"], 1, "{filter}: {}", found.body);
        assert_eq!(found.body["Resources"][0]["id"], id.as_str());
    }

    // Entra's default deactivation: a capitalised op and a string boolean.
    let off = idp
        .patch(
            &id,
            json!([{"op": "Replace", "path": "active", "value": "False"}]),
        )
        .await;
    assert_eq!(off.status, 200, "{}", off.body);
    assert_eq!(off.body["active"], false);
    assert!(stack.auth0.is_blocked(&auth0));
    assert!(!row(&stack, &id).await.unwrap().0);

    // Entra's newer shape: a path-less replace with dotted and URN keys, each applied to its
    // attribute; the enterprise extension is accepted and not kept; a filtered email path.
    let renamed = idp
        .patch(
            &id,
            json!([
                {"op": "replace", "value": {
                    "name.givenName": "Esra",
                    "urn:ietf:params:scim:schemas:core:2.0:User:name.familyName": "Entra-Lund",
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "702",
                    "displayName": "Esra Entra-Lund",
                }},
                {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": email},
            ]),
        )
        .await;
    assert_eq!(renamed.status, 200, "{}", renamed.body);
    assert_eq!(
        renamed.body["name"],
        json!({"givenName": "Esra", "familyName": "Entra-Lund"})
    );
    assert_eq!(renamed.body["displayName"], "Esra Entra-Lund");
    assert!(renamed.body.get("name.givenName").is_none());
    assert_ne!(
        renamed.body["meta"]["lastModified"], created.body["meta"]["lastModified"],
        "a new name is a change of the user"
    );
    let employee: (String, String) = {
        let sql = stack.sql().await;
        let r = sql
            .query_one(
                "SELECT first_name, last_name FROM employees WHERE user_id = $1",
                &[&Uuid::parse_str(&id).unwrap()],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(employee, ("Esra".to_string(), "Entra-Lund".to_string()));

    let on = idp
        .patch(
            &id,
            json!([{"op": "Add", "path": "active", "value": "True"}]),
        )
        .await;
    assert_eq!(on.status, 200, "{}", on.body);
    assert!(!stack.auth0.is_blocked(&auth0));

    let deleted = idp.send("DELETE", &user_path(&id), None, &[]).await;
    assert_eq!(deleted.status, 204);
    assert!(row(&stack, &id).await.is_none());
    assert!(stack.auth0.users_with_email(email).is_empty());
    for (method, body) in [
        ("GET", None),
        ("DELETE", None),
        (
            "PATCH",
            Some(
                json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "active", "value": false}]}),
            ),
        ),
        ("PUT", Some(entra_user(email, object_id))),
    ] {
        let gone = idp.send(method, &user_path(&id), body.as_ref(), &[]).await;
        assert_eq!(gone.status, 404, "{method}: {}", gone.body);
    }
    assert_eq!(
        idp.find(&format!("userName eq \"{email}\"")).await.body["totalResults"],
        0
    );
}

#[tokio::test]
async fn okta_replaces_the_whole_resource_and_keeps_what_it_leaves_out() {
    let stack = TestStack::start().await;
    let idp = Idp::of_acme(&stack).await;
    let email = "pat.put@acme.test";
    let mut user = okta_user(email);
    user[APP_USER] = json!({"role": "ADMIN"});
    let created = idp.create(&user).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body[APP_USER]["role"], "ADMIN");
    let id = created.body["id"].as_str().unwrap();
    let auth0 = auth0_id(&stack, email).await;
    assert_eq!(
        stack.auth0.user(&auth0).unwrap()["app_metadata"]["role"],
        "ADMIN"
    );

    // Okta's PUT: everything it maps, the password again, no role extension.
    let mut put = okta_user(&email.to_uppercase());
    put["id"] = json!(id);
    put["name"]["familyName"] = json!("Putnam");
    put["externalId"] = json!("00u2okta");
    let replaced = idp.send("PUT", &user_path(id), Some(&put), &[]).await;
    assert_eq!(replaced.status, 200, "{}", replaced.body);
    assert_eq!(replaced.body["name"]["familyName"], "Putnam");
    assert_eq!(replaced.body["externalId"], "00u2okta");
    assert_eq!(replaced.body[APP_USER]["role"], "ADMIN", "left out: kept");
    assert_eq!(
        row(&stack, id).await.unwrap(),
        (true, "ADMIN".to_string(), Some("00u2okta".to_string()))
    );
    // The password sent again is not a password change.
    let (status, _) = stack.auth0.log_in(email, PASSWORD, "openid").await;
    assert_eq!(status, 200);

    // A role change goes to both systems.
    let demoted = idp
        .patch(
            id,
            json!([{"op": "replace", "path": format!("{APP_USER}:role"), "value": "USER"}]),
        )
        .await;
    assert_eq!(demoted.status, 200, "{}", demoted.body);
    assert_eq!(
        stack.auth0.user(&auth0).unwrap()["app_metadata"]["role"],
        "USER"
    );

    // A PUT that moves the address is refused, and nothing changes.
    let mut moved = put.clone();
    moved["userName"] = json!("someone.else@acme.test");
    let refused = idp.send("PUT", &user_path(id), Some(&moved), &[]).await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert_eq!(refused.body["scimType"], "mutability");
    assert_eq!(row(&stack, id).await.unwrap().1, "USER");
}

#[tokio::test]
async fn a_user_created_inactive_has_a_blocked_login_and_no_invitation() {
    let stack = TestStack::start().await;
    let idp = Idp::of_acme(&stack).await;
    let email = "ina.active@acme.test";
    let mut user = okta_user(email);
    user["active"] = json!(false);
    user.as_object_mut().unwrap().remove("password");
    let created = idp.create(&user).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["active"], false);
    let id = created.body["id"].as_str().unwrap();
    assert!(stack.auth0.is_blocked(&auth0_id(&stack, email).await));
    assert!(stack.email.emails_to(email).is_empty());
    assert!(!row(&stack, id).await.unwrap().0);
}

#[tokio::test]
async fn a_taken_address_is_a_409_that_says_nothing_more_and_keeps_nothing() {
    let stack = TestStack::start().await;
    let idp = Idp::of_acme(&stack).await;
    let email = "dup.licate@acme.test";
    assert_eq!(idp.create(&okta_user(email)).await.status, 201);

    let again = idp.create(&okta_user(email)).await;
    assert_eq!(again.status, 409, "{}", again.body);
    assert_eq!(again.body["scimType"], "uniqueness");
    // An address of another tenant: the same answer, word for word.
    let elsewhere = idp.create(&okta_user("admin@globex.test")).await;
    assert_eq!(elsewhere.status, 409, "{}", elsewhere.body);
    assert_eq!(elsewhere.body, again.body);
    assert_eq!(stack.rows_for(email).await.users, 1);
    assert_eq!(stack.auth0.users_with_email(email).len(), 1);
}

#[tokio::test]
async fn another_tenant_s_users_do_not_exist_for_a_token() {
    let stack = TestStack::start().await;
    let acme = Idp::of_acme(&stack).await;
    let globex = Idp {
        stack: &stack,
        token: stack.scim_token(seed::GLOBEX_ADMIN_SUB).await,
    };
    let created = acme.create(&okta_user("only.acme@acme.test")).await;
    let id = created.body["id"].as_str().unwrap();

    for (method, body) in [
        ("GET", None),
        (
            "PATCH",
            Some(
                json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "active", "value": false}]}),
            ),
        ),
        ("DELETE", None),
    ] {
        let refused = globex
            .send(method, &user_path(id), body.as_ref(), &[])
            .await;
        assert_eq!(refused.status, 404, "{method}: {}", refused.body);
    }
    let none = globex.find("userName eq \"only.acme@acme.test\"").await;
    assert_eq!(none.body["totalResults"], 0);
    let all = globex.send("GET", SCIM_USERS_PATH, None, &[]).await;
    let names: Vec<&str> = all.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["userName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admin@globex.test"]);
    assert!(row(&stack, id).await.unwrap().0);
    assert!(
        !stack
            .auth0
            .is_blocked(&auth0_id(&stack, "only.acme@acme.test").await)
    );
}

#[tokio::test]
async fn owners_are_managed_in_the_admin_panel_only() {
    let stack = TestStack::start().await;
    let idp = Idp::of_acme(&stack).await;
    let mut owner = okta_user("new.owner@acme.test");
    owner[APP_USER] = json!({"role": "OWNER"});
    let refused = idp.create(&owner).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    stack.assert_nothing_kept("new.owner@acme.test").await;

    let seeded_owner = "a0000000-0000-4000-8000-000000000001";
    let touch = idp
        .patch(
            seeded_owner,
            json!([{"op": "replace", "path": "active", "value": false}]),
        )
        .await;
    assert_eq!(touch.status, 403, "{}", touch.body);
    assert!(row(&stack, seeded_owner).await.unwrap().0);
}

#[tokio::test]
async fn bad_requests_get_their_scim_type_and_change_nothing() {
    let stack = TestStack::start().await;
    let idp = Idp::of_acme(&stack).await;
    let created = idp.create(&okta_user("kept.same@acme.test")).await;
    let id = created.body["id"].as_str().unwrap();
    let before = idp.send("GET", &user_path(id), None, &[]).await.body;

    let patch = |ops: Value| json!({"schemas": [PATCH_OP], "Operations": ops});
    let cases: Vec<(&str, Value, u16, &str)> = vec![
        (
            "remove without a path",
            patch(json!([{"op": "remove"}])),
            400,
            "noTarget",
        ),
        (
            "a new userName",
            patch(json!([{"op": "replace", "path": "userName", "value": "x@acme.test"}])),
            400,
            "mutability",
        ),
        (
            "an attribute nobody defines",
            patch(json!([{"op": "replace", "path": "shoeSize", "value": 42}])),
            400,
            "invalidPath",
        ),
        (
            "a boolean that is none",
            patch(json!([{"op": "replace", "path": "active", "value": "yes"}])),
            400,
            "invalidValue",
        ),
        (
            "an op that is none",
            patch(json!([{"op": "move", "path": "active", "value": false}])),
            400,
            "invalidSyntax",
        ),
        (
            "half a name",
            patch(json!([{"op": "remove", "path": "name.familyName"}])),
            400,
            "invalidValue",
        ),
        (
            "a NUL byte",
            patch(json!([{"op": "replace", "path": "name.givenName", "value": "A\u{0}B"}])),
            400,
            "invalidValue",
        ),
        (
            "a later bad operation undoes the earlier good one",
            patch(json!([
                {"op": "replace", "path": "active", "value": false},
                {"op": "replace", "path": "userName", "value": "x@acme.test"},
            ])),
            400,
            "mutability",
        ),
        (
            "no PatchOp schema",
            json!({"Operations": []}),
            400,
            "invalidSyntax",
        ),
        (
            "no operation at all",
            patch(json!([])),
            400,
            "invalidSyntax",
        ),
        // A deactivation under a mistyped URN must not be a 200 that changed nothing.
        (
            "a mistyped core schema URN",
            patch(
                json!([{"op": "replace", "path": "urn:ietf:params:scim:schemas:core:2.0:Users:active", "value": false}]),
            ),
            400,
            "invalidPath",
        ),
        (
            "the core schema URN and a dot",
            patch(
                json!([{"op": "replace", "path": "urn:ietf:params:scim:schemas:core:2.0:User.active", "value": false}]),
            ),
            400,
            "invalidPath",
        ),
        (
            "a mistyped app extension URN",
            patch(
                json!([{"op": "replace", "path": "urn:atomic-user-provisioning:scim:schemas:extension:app:2.1:User:role", "value": "ADMIN"}]),
            ),
            400,
            "invalidPath",
        ),
        (
            "the core schema's URN as a key of a path-less value",
            patch(json!([{"op": "replace", "value": {CORE_USER: {"active": false}}}])),
            400,
            "invalidPath",
        ),
        (
            "one attribute twice, in two cases",
            patch(json!([{"op": "replace", "value": {"active": false, "Active": true}}])),
            400,
            "invalidSyntax",
        ),
        (
            "the id",
            patch(
                json!([{"op": "replace", "path": "id", "value": "00000000-0000-0000-0000-000000000000"}]),
            ),
            400,
            "mutability",
        ),
        (
            "a filter in a path that is none",
            patch(
                json!([{"op": "replace", "path": "emails[(((garbage].value", "value": "x@evil.test"}]),
            ),
            400,
            "invalidFilter",
        ),
    ];
    for (what, body, status, scim_type) in cases {
        let refused = idp.send("PATCH", &user_path(id), Some(&body), &[]).await;
        assert_eq!(refused.status, status, "{what}: {}", refused.body);
        assert_eq!(
            refused.body["scimType"], scim_type,
            "{what}: {}",
            refused.body
        );
    }
    assert_eq!(
        idp.send("GET", &user_path(id), None, &[]).await.body,
        before
    );
    assert!(
        !stack
            .auth0
            .is_blocked(&auth0_id(&stack, "kept.same@acme.test").await)
    );

    // Bodies that are not what SCIM takes.
    let mut event = scim_event("POST", SCIM_USERS_PATH, Some(&idp.token), None, &[]);
    event["body"] = json!("{\"schemas\": [");
    let broken = stack.call_scim(event.clone()).await;
    assert_eq!(
        (broken.status, broken.body["scimType"].as_str()),
        (400, Some("invalidSyntax"))
    );
    event["body"] = json!(format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000)));
    let deep = stack.call_scim(event.clone()).await;
    assert_eq!(deep.status, 400, "{}", deep.body);
    let mut big = okta_user("big.body@acme.test");
    big["title"] = json!("x".repeat(70 * 1024));
    event["body"] = json!(big.to_string());
    assert_eq!(stack.call_scim(event.clone()).await.status, 413);
    event["headers"]["content-type"] = json!("text/plain");
    event["body"] = json!(okta_user("plain.text@acme.test").to_string());
    assert_eq!(stack.call_scim(event).await.status, 415);
    let nul = idp
        .create(&json!({"schemas": [CORE_USER], "userName": "nul.name@acme.test", "name": {"givenName": "A\u{0}", "familyName": "B"}}))
        .await;
    assert_eq!(
        (nul.status, nul.body["scimType"].as_str()),
        (400, Some("invalidValue"))
    );
    // Which of the two would it be? Neither: one attribute given twice.
    let twins = idp
        .create(&json!({"schemas": [CORE_USER], "userName": "first.twin@acme.test", "USERNAME": "second.twin@acme.test"}))
        .await;
    assert_eq!(
        (twins.status, twins.body["scimType"].as_str()),
        (400, Some("invalidSyntax")),
        "{}",
        twins.body
    );
    let mistyped = idp
        .create(&json!({"schemas": [CORE_USER], "userName": "mistyped.urn@acme.test", "urn:ietf:params:scim:schemas:core:2.0:Users:active": false}))
        .await;
    assert_eq!(
        (mistyped.status, mistyped.body["scimType"].as_str()),
        (400, Some("invalidPath")),
        "{}",
        mistyped.body
    );
    for email in [
        "big.body@acme.test",
        "plain.text@acme.test",
        "nul.name@acme.test",
        "first.twin@acme.test",
        "second.twin@acme.test",
        "mistyped.urn@acme.test",
    ] {
        stack.assert_nothing_kept(email).await;
    }
}

#[tokio::test]
async fn filters_outside_the_grammar_are_invalid_filter_and_odd_paging_is_brought_into_range() {
    let stack = TestStack::start().await;
    let idp = Idp::of_acme(&stack).await;
    for filter in [
        "userName sw \"a\"",
        "userName eq \"a@acme.test\" or userName eq \"b@acme.test\"",
        "title eq \"x\"",
        "userName eq",
        "userName eq \"a\\u0000b\"",
        &format!(
            "{}userName eq \"a@acme.test\"{}",
            "(".repeat(100),
            ")".repeat(100)
        ),
    ] {
        let refused = idp.find(filter).await;
        assert_eq!(refused.status, 400, "{filter}: {}", refused.body);
        assert_eq!(refused.body["scimType"], "invalidFilter");
    }
    // A filter no user can meet is an empty list, not an error.
    let nobody = idp.find("id eq \"not-a-uuid\"").await;
    assert_eq!(
        (nobody.status, nobody.body["totalResults"].as_u64()),
        (200, Some(0))
    );

    let huge = idp
        .send(
            "GET",
            SCIM_USERS_PATH,
            None,
            &[("count", "99999999999999999999999"), ("startIndex", "-3")],
        )
        .await;
    assert_eq!(huge.status, 200, "{}", huge.body);
    assert_eq!(huge.body["startIndex"], 1);
    let negative = idp
        .send("GET", SCIM_USERS_PATH, None, &[("count", "-1")])
        .await;
    assert_eq!(negative.body["itemsPerPage"], 0);
    let words = idp
        .send("GET", SCIM_USERS_PATH, None, &[("count", "ten")])
        .await;
    assert_eq!(
        (words.status, words.body["scimType"].as_str()),
        (400, Some("invalidValue"))
    );
}

#[tokio::test]
async fn pages_are_stable_and_counted_and_count_zero_gives_the_total() {
    let stack = TestStack::start().await;
    let idp = Idp::of_acme(&stack).await;
    let mut made = Vec::new();
    for n in 0..5 {
        let mut user = okta_user(&format!("page.{n}@acme.test"));
        user["externalId"] = json!(format!("00u{n}"));
        let created = idp.create(&user).await;
        assert_eq!(created.status, 201, "{}", created.body);
        made.push(created.body["id"].as_str().unwrap().to_string());
    }
    let totals = idp
        .send("GET", SCIM_USERS_PATH, None, &[("count", "0")])
        .await;
    assert_eq!(totals.body["itemsPerPage"], 0, "{}", totals.body);
    assert_eq!(totals.body["Resources"], json!([]));
    let total = totals.body["totalResults"].as_u64().unwrap();
    assert!(total >= 5, "{}", totals.body);

    let mut seen = Vec::new();
    let mut start = 1;
    while start <= total {
        let start_text = start.to_string();
        let page = idp
            .send(
                "GET",
                SCIM_USERS_PATH,
                None,
                &[("startIndex", &start_text), ("count", "2")],
            )
            .await;
        assert_eq!(page.body["totalResults"], total);
        assert_eq!(page.body["startIndex"], start);
        let resources = page.body["Resources"].as_array().unwrap();
        assert_eq!(page.body["itemsPerPage"], resources.len());
        assert!(resources.len() <= 2);
        seen.extend(
            resources
                .iter()
                .map(|u| u["id"].as_str().unwrap().to_string()),
        );
        start += 2;
    }
    assert_eq!(seen.len() as u64, total);
    let unique: std::collections::HashSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no user on two pages");
    // Oldest first: the five made here come last, in the order they were made.
    assert_eq!(&seen[seen.len() - 5..], made.as_slice());
    let past = idp
        .send("GET", SCIM_USERS_PATH, None, &[("startIndex", "1000")])
        .await;
    assert_eq!(
        (
            past.body["itemsPerPage"].as_u64(),
            past.body["totalResults"].as_u64()
        ),
        (Some(0), Some(total))
    );
}

#[tokio::test]
async fn attributes_and_excluded_attributes_cut_the_answer() {
    let stack = TestStack::start().await;
    let idp = Idp::of_acme(&stack).await;
    let created = idp.create(&okta_user("cut.down@acme.test")).await;
    let id = created.body["id"].as_str().unwrap();

    let only = idp
        .send(
            "GET",
            &user_path(id),
            None,
            &[("attributes", "userName,name.familyName")],
        )
        .await;
    assert_eq!(
        only.body,
        json!({"schemas": [CORE_USER, APP_USER], "id": id, "userName": "cut.down@acme.test", "name": {"familyName": "Okta"}})
    );
    let without = idp
        .send(
            "GET",
            SCIM_USERS_PATH,
            None,
            &[
                ("filter", "userName eq \"cut.down@acme.test\""),
                ("excludedAttributes", "emails,meta,name"),
            ],
        )
        .await;
    let user = &without.body["Resources"][0];
    assert_eq!(user["id"], id);
    assert!(
        user.get("emails").is_none() && user.get("meta").is_none() && user.get("name").is_none()
    );
    assert_eq!(user["active"], true);
}

#[tokio::test]
async fn a_filter_value_with_commas_arrives_whole() {
    let stack = TestStack::start().await;
    let idp = Idp::of_acme(&stack).await;
    let mut user = okta_user("comma.ext@acme.test");
    user["externalId"] = json!("CN=Comma,OU=Staff,DC=acme");
    assert_eq!(idp.create(&user).await.status, 201);
    let found = idp
        .find("externalId eq \"CN=Comma,OU=Staff,DC=acme\"")
        .await;
    assert_eq!(found.body["totalResults"], 1, "{}", found.body);
}

#[tokio::test]
async fn discovery_describes_exactly_what_is_served() {
    let stack = TestStack::start().await;
    // No token needed: it is the same for every tenant.
    let get = |path: &'static str| {
        let stack = &stack;
        async move {
            stack
                .call_scim(scim_event("GET", path, None, None, &[]))
                .await
        }
    };
    let config = get("/scim/v2/ServiceProviderConfig").await;
    assert_scim_shaped(&config);
    assert_eq!(config.body["patch"]["supported"], true);
    assert_eq!(config.body["bulk"]["supported"], false);
    assert_eq!(
        config.body["filter"],
        json!({"supported": true, "maxResults": 200})
    );
    assert_eq!(config.body["changePassword"]["supported"], false);
    assert_eq!(config.body["sort"]["supported"], false);
    assert_eq!(config.body["etag"]["supported"], false);
    assert_eq!(
        config.body["authenticationSchemes"][0]["type"],
        "oauthbearertoken"
    );

    let types = get("/scim/v2/ResourceTypes").await;
    assert_eq!(types.body["totalResults"], 1);
    assert_eq!(types.body["Resources"][0]["endpoint"], "/Users");
    assert_eq!(
        types.body["Resources"][0]["schemaExtensions"][0]["schema"],
        APP_USER
    );
    assert_eq!(get("/scim/v2/ResourceTypes/User").await.body["id"], "User");
    assert_eq!(get("/scim/v2/ResourceTypes/Group").await.status, 404);

    let schemas = get("/scim/v2/Schemas").await;
    let ids: Vec<&str> = schemas.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [CORE_USER, APP_USER]);
    let core = &schemas.body["Resources"][0]["attributes"];
    let served: Vec<&str> = core
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        served,
        [
            "userName",
            "name",
            "displayName",
            "emails",
            "active",
            "password"
        ]
    );
    assert_eq!(core[0]["mutability"], "immutable");
    assert_eq!(core[0]["uniqueness"], "server");
    assert_eq!(get("/scim/v2/Groups").await.status, 404);
    for path in ["/scim/v2/Bulk", "/scim/v2/Users/.search"] {
        let unsupported = stack
            .call_scim(scim_event("POST", path, None, Some(&json!({})), &[]))
            .await;
        assert_scim_shaped(&unsupported);
        assert_eq!(unsupported.status, 501, "{path}: {}", unsupported.body);
    }
}

#[tokio::test]
async fn without_a_valid_token_every_user_route_is_the_same_401() {
    let stack = TestStack::start().await;
    let idp = Idp::of_acme(&stack).await;
    let created = idp.create(&okta_user("guard.ed@acme.test")).await;
    let id = created.body["id"].as_str().unwrap();
    let unknown = format!("aup_scim_{}", "ab".repeat(32));
    let mut answers = Vec::new();
    for token in [None, Some("garbage"), Some(unknown.as_str())] {
        for (method, path) in [
            ("GET", SCIM_USERS_PATH.to_string()),
            ("DELETE", user_path(id)),
        ] {
            let response = stack
                .call_scim(scim_event(method, &path, token, None, &[]))
                .await;
            assert_scim_shaped(&response);
            assert_eq!(response.status, 401, "{}", response.body);
            assert_eq!(response.headers["www-authenticate"], "Bearer");
            answers.push(response.body);
        }
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:?}");
    assert!(row(&stack, id).await.unwrap().0);
}

#[tokio::test]
async fn a_spent_auth0_rate_limit_is_a_429_to_retry_and_leaves_nothing_half_done() {
    let stack = TestStack::start().await;
    let idp = Idp::of_acme(&stack).await;
    let email = "rate.limited@acme.test";
    stack
        .auth0
        .inject(Fault::status("create_user", 429).times(10));

    let limited = idp.create(&okta_user(email)).await;
    assert_eq!(limited.status, 429, "{}", limited.body);
    assert_eq!(limited.headers["retry-after"], "1");
    stack.assert_nothing_kept(email).await;

    stack.auth0.reset();
    let retried = idp.create(&okta_user(email)).await;
    assert_eq!(retried.status, 201, "{}", retried.body);
}

#[tokio::test]
async fn a_scim_deactivation_beside_an_admin_s_delete_ends_with_the_user_gone_from_both() {
    let stack = TestStack::start().await;
    let idp = Idp::of_acme(&stack).await;
    let email = "race.d@acme.test";
    let created = idp.create(&okta_user(email)).await;
    let id = created.body["id"].as_str().unwrap().to_string();
    let delete = testkit::harness::api_event(
        "DELETE",
        &format!("/api/direct-users/{id}"),
        Some(seed::ACME_ADMIN_SUB),
        None,
    );
    let (scim, admin) = tokio::join!(
        idp.patch(
            &id,
            json!([{"op": "Replace", "path": "active", "value": "False"}])
        ),
        stack.call(delete.clone())
    );
    assert!(matches!(scim.status, 200 | 404 | 409), "{}", scim.body);
    assert!(matches!(admin.status, 200 | 409), "{}", admin.body);
    if admin.status == 409 {
        // The deactivation held the user: the delete is answered "retry", and then works.
        let again = stack.call(delete).await;
        assert_eq!(again.status, 200, "{}", again.body);
    }
    assert!(row(&stack, &id).await.is_none());
    assert!(stack.auth0.users_with_email(email).is_empty());
    let intents: i64 = stack
        .sql()
        .await
        .query_one("SELECT count(*) FROM lifecycle_intents", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(intents, 0);
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
async fn name_and_active_are_optional_on_create_and_half_a_name_is_refused() {
    let stack = TestStack::start().await;
    let idp = Idp::of_acme(&stack).await;
    let schemas = idp.send("GET", "/scim/v2/Schemas", None, &[]).await;
    let core = &schemas.body["Resources"][0];
    let required = |name: &str| {
        core["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|attribute| attribute["name"] == name)
            .unwrap()["required"]
            .clone()
    };
    assert_eq!(required("userName"), true);
    assert_eq!(required("name"), false);
    assert_eq!(required("active"), false);

    // Entra leaves out what its user lacks: no name, no employee record; active by default.
    let email = "nameless@acme.test";
    let bare = json!({"schemas": [CORE_USER], "userName": email});
    let created = idp.create(&bare).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["active"], true);
    assert!(created.body.get("name").is_none(), "{}", created.body);
    let employees: i64 = stack
        .sql()
        .await
        .query_one(
            "SELECT count(*) FROM employees e JOIN users u ON u.id = e.user_id WHERE u.email = $1",
            &[&email],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(employees, 0);

    let half = "half.name@acme.test";
    let mut half_name = okta_user(half);
    half_name["name"] = json!({"givenName": "Olga"});
    let refused = idp.create(&half_name).await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert_eq!(refused.body["scimType"], "invalidValue", "{}", refused.body);
    stack.assert_nothing_kept(half).await;
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
