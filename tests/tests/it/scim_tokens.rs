//! SCIM tokens through the admin API (`POST`, `GET /api/scim-tokens`, `DELETE
//! /api/scim-tokens/{id}`) and what they open: a token is made and shown once, only its SHA-256
//! and a hint are stored, a SCIM call with it works and is recorded, a revoked token gets the
//! very answer a token that never existed gets, and neither a token nor its users cross to
//! another tenant. Real Postgres, the doubles over HTTP, every admin API answer held to
//! openapi.yaml.

use lambda_runtime::Context;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use testkit::harness::{
    Response, SCIM_TOKENS_PATH, SCIM_USERS_PATH, TestStack, api_event, epoch_millis, handler_event,
    scim_event, seed,
};
use uuid::Uuid;

use crate::openapi::assert_documented_at;

const TOKEN_PATH: &str = "/api/scim-tokens/{id}";
const CORE_USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const PREFIX: &str = "aup_scim_";

fn token_path(id: &str) -> String {
    format!("{SCIM_TOKENS_PATH}/{id}")
}

/// A call of the admin API (`sub` `None`: no JWT claims); its answer must be what openapi.yaml
/// documents for `method` on `template` with its status.
async fn admin(
    stack: &TestStack,
    sub: Option<&str>,
    method: &str,
    path: &str,
    template: (&str, &str),
    body: Option<&str>,
) -> Response {
    let response = stack.call(api_event(method, path, sub, body)).await;
    let (documented_method, template) = template;
    assert_documented_at(
        documented_method,
        template,
        &response,
        &format!("{method} {path} {} {}", response.status, response.code()),
    );
    response
}

async fn make(stack: &TestStack, sub: &str, name: &str) -> Response {
    let body = json!({ "name": name }).to_string();
    let post = ("POST", SCIM_TOKENS_PATH);
    admin(
        stack,
        Some(sub),
        "POST",
        SCIM_TOKENS_PATH,
        post,
        Some(&body),
    )
    .await
}

async fn list(stack: &TestStack, sub: &str) -> Response {
    let get = ("GET", SCIM_TOKENS_PATH);
    admin(stack, Some(sub), "GET", SCIM_TOKENS_PATH, get, None).await
}

async fn revoke(stack: &TestStack, sub: &str, id: &str) -> Response {
    let delete = ("DELETE", TOKEN_PATH);
    admin(stack, Some(sub), "DELETE", &token_path(id), delete, None).await
}

/// A token made by `sub` through the admin API: (its id, the token).
async fn token_of(stack: &TestStack, sub: &str, name: &str) -> (String, String) {
    let made = make(stack, sub, name).await;
    assert_eq!(made.status, 201, "{}", made.body);
    (
        made.body["id"].as_str().unwrap().to_string(),
        made.body["token"].as_str().unwrap().to_string(),
    )
}

/// The tokens of a list answer, by id.
fn listed<'a>(list: &'a Response, id: &str) -> Option<&'a Value> {
    list.body["tokens"]
        .as_array()
        .expect("a list of tokens")
        .iter()
        .find(|t| t["id"] == id)
}

async fn scim(
    stack: &TestStack,
    token: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
    query: &[(&str, &str)],
) -> Response {
    stack
        .call_scim(scim_event(method, path, Some(token), body, query))
        .await
}

/// The scim function's whole answer (status, headers, body text, as API Gateway gets it) to a
/// `method` on `path` with this `Authorization` header.
async fn scim_raw(
    stack: &TestStack,
    method: &str,
    path: &str,
    authorization: Option<&str>,
) -> Value {
    let mut event = scim_event(method, path, None, None, &[]);
    if let Some(authorization) = authorization {
        event["headers"]["authorization"] = json!(authorization);
    }
    let mut context = Context::default();
    context.request_id = Uuid::new_v4().to_string();
    context.deadline = epoch_millis() + 25_000;
    let response = shared::scim::handle(&stack.state, handler_event(&event, context))
        .await
        .expect("the event is an API Gateway proxy event");
    serde_json::to_value(response).expect("the answer serialises")
}

fn scim_user(email: &str) -> Value {
    json!({
        "schemas": [CORE_USER],
        "userName": email,
        "name": {"givenName": "Tok", "familyName": "En"},
        "emails": [{"value": email, "type": "work", "primary": true}],
        "active": true,
    })
}

#[tokio::test]
async fn a_token_is_shown_once_stored_as_its_hash_used_and_revoked_for_good() {
    let stack = TestStack::start().await;

    // Made: 201, the token in this answer and nowhere else.
    let made = make(&stack, seed::ACME_ADMIN_SUB, "  Okta production ").await;
    assert_eq!(made.status, 201, "{}", made.body);
    let id = made.body["id"].as_str().unwrap().to_string();
    let token = made.body["token"].as_str().unwrap().to_string();
    assert!(
        token.starts_with(PREFIX) && token.len() == PREFIX.len() + 64,
        "{token}"
    );
    assert_eq!(made.body["name"], "Okta production");
    assert_eq!(
        made.body["hint"],
        format!("{}…", &token[..PREFIX.len() + 4])
    );
    assert_eq!(made.body["createdBy"], seed::ACME_ADMIN_ID);
    assert_eq!(
        (&made.body["lastUsedAt"], &made.body["revokedAt"]),
        (&Value::Null, &Value::Null)
    );
    // Two tokens are never alike.
    let (_, other) = token_of(&stack, seed::ACME_OWNER_SUB, "Entra").await;
    assert_ne!(token, other);

    // The database holds its SHA-256 and its hint, never the token.
    let sql = stack.sql().await;
    let row = sql
        .query_one(
            "SELECT token_hash, token_hint, row_to_json(t)::text FROM scim_tokens t WHERE id = $1",
            &[&Uuid::parse_str(&id).unwrap()],
        )
        .await
        .unwrap();
    let stored_hash: Vec<u8> = row.get(0);
    assert_eq!(stored_hash, Sha256::digest(token.as_bytes()).to_vec());
    assert_eq!(row.get::<_, String>(1), made.body["hint"].as_str().unwrap());
    let secret = &token[PREFIX.len()..];
    assert!(
        !row.get::<_, String>(2).contains(secret),
        "the row holds the token"
    );

    // Shown once: the list never shows a token, only hints.
    let before = list(&stack, seed::ACME_ADMIN_SUB).await;
    assert_eq!(before.status, 200, "{}", before.body);
    assert_eq!(before.body["tokens"].as_array().unwrap().len(), 2);
    let text = before.body.to_string();
    assert!(!text.contains(secret) && !text.contains(&other[PREFIX.len()..]));
    let listed_before = listed(&before, &id).expect("the token is listed");
    assert_eq!(listed_before["lastUsedAt"], Value::Null);
    for key in ["name", "hint", "createdBy", "createdAt"] {
        assert_eq!(listed_before[key], made.body[key], "{key}");
    }

    // Used: a SCIM call succeeds and is recorded.
    let users = scim(&stack, &token, "GET", SCIM_USERS_PATH, None, &[]).await;
    assert_eq!(users.status, 200, "{}", users.body);
    assert!(
        users.body["totalResults"].as_u64().unwrap() >= 4,
        "{}",
        users.body
    );
    let after = list(&stack, seed::ACME_ADMIN_SUB).await;
    let used = listed(&after, &id).unwrap();
    assert!(used["lastUsedAt"].is_string(), "{used}");
    assert_eq!(used["revokedAt"], Value::Null);

    // A user the token creates was created by the token, by no user.
    let email = "made.by.token@acme.test";
    let created = scim(
        &stack,
        &token,
        "POST",
        SCIM_USERS_PATH,
        Some(&scim_user(email)),
        &[],
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let user_id = created.body["id"].as_str().unwrap().to_string();
    let row = sql
        .query_one(
            "SELECT created_by, created_by_token FROM users WHERE email = $1",
            &[&email],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, Option<Uuid>>(0), None);
    assert_eq!(
        row.get::<_, Option<Uuid>>(1),
        Some(Uuid::parse_str(&id).unwrap())
    );
    let get = ("GET", "/api/direct-users/{id}");
    let path = format!("/api/direct-users/{user_id}");
    let view = admin(&stack, Some(seed::ACME_ADMIN_SUB), "GET", &path, get, None).await;
    assert_eq!(view.status, 200, "{}", view.body);
    assert_eq!(view.body["createdBy"], Value::Null);

    // Revoked: 200 with revokedAt; revoking again answers it as it is.
    let revoked = revoke(&stack, seed::ACME_ADMIN_SUB, &id).await;
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    assert!(revoked.body["revokedAt"].is_string(), "{}", revoked.body);
    assert!(revoked.body.get("token").is_none());
    let again = revoke(&stack, seed::ACME_OWNER_SUB, &id).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body["revokedAt"], revoked.body["revokedAt"]);
    let listed_after = list(&stack, seed::ACME_ADMIN_SUB).await;
    assert_eq!(
        listed(&listed_after, &id).unwrap()["revokedAt"],
        revoked.body["revokedAt"]
    );

    // Afterwards the token gets SCIM's 401, byte for byte the answer to no token, a malformed
    // one, another scheme, or one that never existed.
    let unknown = format!(
        "Bearer {PREFIX}{}",
        hex::encode(Sha256::digest(b"never made"))
    );
    for path in [
        SCIM_USERS_PATH.to_string(),
        format!("{SCIM_USERS_PATH}/{user_id}"),
    ] {
        let refused = scim_raw(&stack, "GET", &path, Some(&format!("Bearer {token}"))).await;
        assert_eq!(refused["statusCode"], 401, "{refused}");
        let body: Value = serde_json::from_str(refused["body"].as_str().unwrap()).unwrap();
        assert_eq!(
            body["schemas"],
            json!(["urn:ietf:params:scim:api:messages:2.0:Error"])
        );
        assert_eq!(body["status"], "401");
        assert_eq!(refused["headers"]["content-type"], "application/scim+json");
        for authorization in [
            None,
            Some("Bearer aup_scim_short"),
            Some("Basic dXNlcjpwYXNz"),
            Some(unknown.as_str()),
        ] {
            let other = scim_raw(&stack, "GET", &path, authorization).await;
            assert_eq!(other, refused, "{authorization:?}");
        }
    }
    // The other token still works, and the user the revoked one made stays.
    let still = scim(
        &stack,
        &other,
        "GET",
        &format!("{SCIM_USERS_PATH}/{user_id}"),
        None,
        &[],
    )
    .await;
    assert_eq!(still.status, 200, "{}", still.body);
    assert_eq!(still.body["userName"], email);
}

#[tokio::test]
async fn another_tenant_neither_sees_nor_revokes_a_token_nor_reaches_its_users() {
    let stack = TestStack::start().await;
    let (acme_id, acme_token) = token_of(&stack, seed::ACME_ADMIN_SUB, "Okta").await;
    let email = "only.acme@acme.test";
    let created = scim(
        &stack,
        &acme_token,
        "POST",
        SCIM_USERS_PATH,
        Some(&scim_user(email)),
        &[],
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let acme_user = created.body["id"].as_str().unwrap().to_string();

    // Globex's admin does not see Acme's token, and cannot revoke it.
    let (globex_id, globex_token) = token_of(&stack, seed::GLOBEX_ADMIN_SUB, "Entra").await;
    let globex_list = list(&stack, seed::GLOBEX_ADMIN_SUB).await;
    assert_eq!(globex_list.status, 200, "{}", globex_list.body);
    assert!(
        listed(&globex_list, &acme_id).is_none(),
        "{}",
        globex_list.body
    );
    assert!(listed(&globex_list, &globex_id).is_some());
    let acme_list = list(&stack, seed::ACME_ADMIN_SUB).await;
    assert!(
        listed(&acme_list, &globex_id).is_none(),
        "{}",
        acme_list.body
    );
    let refused = revoke(&stack, seed::GLOBEX_ADMIN_SUB, &acme_id).await;
    refused.assert_answer(404, "SCIM_TOKEN_NOT_FOUND");
    let revoked_at: Option<chrono::DateTime<chrono::Utc>> = stack
        .sql()
        .await
        .query_one(
            "SELECT revoked_at FROM scim_tokens WHERE id = $1",
            &[&Uuid::parse_str(&acme_id).unwrap()],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(revoked_at, None);
    // And Acme's token keeps working.
    let works = scim(
        &stack,
        &acme_token,
        "GET",
        &format!("{SCIM_USERS_PATH}/{acme_user}"),
        None,
        &[],
    )
    .await;
    assert_eq!(works.status, 200, "{}", works.body);

    // Globex's token never reaches an Acme user: not by id, not in a list, not by filter.
    for id in [acme_user.as_str(), seed::ACME_ADMIN_ID] {
        let path = format!("{SCIM_USERS_PATH}/{id}");
        let read = scim(&stack, &globex_token, "GET", &path, None, &[]).await;
        assert_eq!(read.status, 404, "{}", read.body);
        let patch = json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "value": {"active": false}}]});
        let changed = scim(&stack, &globex_token, "PATCH", &path, Some(&patch), &[]).await;
        assert_eq!(changed.status, 404, "{}", changed.body);
        let deleted = scim(&stack, &globex_token, "DELETE", &path, None, &[]).await;
        assert_eq!(deleted.status, 404, "{}", deleted.body);
    }
    let all = scim(&stack, &globex_token, "GET", SCIM_USERS_PATH, None, &[]).await;
    assert_eq!(all.status, 200, "{}", all.body);
    let names: Vec<&str> = all.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["userName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admin@globex.test"], "{}", all.body);
    assert_eq!(all.body["totalResults"], 1);
    let filter = format!("userName eq \"{email}\"");
    let found = scim(
        &stack,
        &globex_token,
        "GET",
        SCIM_USERS_PATH,
        None,
        &[("filter", &filter)],
    )
    .await;
    assert_eq!(found.body["totalResults"], 0, "{}", found.body);
    // Acme's user is as it was, in both systems.
    let view = scim(
        &stack,
        &acme_token,
        "GET",
        &format!("{SCIM_USERS_PATH}/{acme_user}"),
        None,
        &[],
    )
    .await;
    assert_eq!(view.body["active"], true, "{}", view.body);
    let auth0_id = stack.auth0.users_with_email(email)[0]["user_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!stack.auth0.is_blocked(&auth0_id));
}

#[tokio::test]
async fn only_an_active_owner_or_admin_manages_tokens_and_a_name_is_checked() {
    let stack = TestStack::start().await;
    let (id, _) = token_of(&stack, seed::ACME_OWNER_SUB, "Okta").await;
    let post = ("POST", SCIM_TOKENS_PATH);
    let get = ("GET", SCIM_TOKENS_PATH);
    let delete = ("DELETE", TOKEN_PATH);
    let name = Some(r#"{"name": "Mine"}"#);

    for (sub, status, code) in [
        (Some(seed::ACME_USER_SUB), 403, "NOT_AN_ADMIN"),
        (Some(seed::ACME_INACTIVE_ADMIN_SUB), 403, "CALLER_INACTIVE"),
        (Some("auth0|nobody"), 403, "CALLER_NOT_FOUND"),
        (None, 401, "UNAUTHENTICATED"),
    ] {
        admin(&stack, sub, "POST", SCIM_TOKENS_PATH, post, name)
            .await
            .assert_answer(status, code);
        admin(&stack, sub, "GET", SCIM_TOKENS_PATH, get, None)
            .await
            .assert_answer(status, code);
        admin(&stack, sub, "DELETE", &token_path(&id), delete, None)
            .await
            .assert_answer(status, code);
    }

    // A bad name is a 400 naming the field.
    for body in [
        json!({}),
        json!({"name": null}),
        json!({"name": ""}),
        json!({"name": "   "}),
        json!({"name": "x".repeat(101)}),
        json!({"name": "two\nlines"}),
        json!({"name": 5}),
        json!({"name": "\u{200b}\u{200b}"}),
    ] {
        let text = body.to_string();
        let refused = admin(
            &stack,
            Some(seed::ACME_ADMIN_SUB),
            "POST",
            SCIM_TOKENS_PATH,
            post,
            Some(&text),
        )
        .await;
        refused.assert_answer(400, "VALIDATION_ERROR");
        assert_eq!(refused.body["field"], "name", "{text}");
        let said = if body["name"].is_number() {
            "name: must be a string"
        } else if body["name"].is_string() {
            "name: must"
        } else {
            "name: is required"
        };
        assert!(
            refused.body["message"].as_str().unwrap().starts_with(said),
            "{text}: {}",
            refused.body
        );
    }
    // A body that is no object, and a field a token does not have, are named as such.
    for (body, field) in [
        (json!(["name"]), "body"),
        (
            json!({"name": "Okta", "expiresAt": "2030-01-01"}),
            "expiresAt",
        ),
    ] {
        let text = body.to_string();
        let refused = admin(
            &stack,
            Some(seed::ACME_ADMIN_SUB),
            "POST",
            SCIM_TOKENS_PATH,
            post,
            Some(&text),
        )
        .await;
        refused.assert_answer(400, "VALIDATION_ERROR");
        assert_eq!(refused.body["field"], field, "{text}");
    }
    let fine = make(&stack, seed::ACME_ADMIN_SUB, &"x".repeat(100)).await;
    assert_eq!(fine.status, 201, "{}", fine.body);

    // What is no JSON body, and what no route takes.
    admin(
        &stack,
        Some(seed::ACME_ADMIN_SUB),
        "POST",
        SCIM_TOKENS_PATH,
        post,
        Some("{\"name\":"),
    )
    .await
    .assert_answer(400, "INVALID_JSON");
    let big = json!({"name": "x", "pad": "x".repeat(70_000)}).to_string();
    admin(
        &stack,
        Some(seed::ACME_ADMIN_SUB),
        "POST",
        SCIM_TOKENS_PATH,
        post,
        Some(&big),
    )
    .await
    .assert_answer(413, "PAYLOAD_TOO_LARGE");
    let mut form = api_event(
        "POST",
        SCIM_TOKENS_PATH,
        Some(seed::ACME_ADMIN_SUB),
        Some("name=x"),
    );
    form["headers"]["content-type"] = json!("application/x-www-form-urlencoded");
    let response = stack.call(form).await;
    response.assert_answer(415, "UNSUPPORTED_MEDIA_TYPE");
    assert_documented_at("POST", SCIM_TOKENS_PATH, &response, "a form");
    let put = admin(
        &stack,
        Some(seed::ACME_ADMIN_SUB),
        "PUT",
        SCIM_TOKENS_PATH,
        post,
        None,
    )
    .await;
    put.assert_answer(405, "METHOD_NOT_ALLOWED");
    assert_eq!(put.headers["allow"], "POST, GET");
    let patch = admin(
        &stack,
        Some(seed::ACME_ADMIN_SUB),
        "PATCH",
        &token_path(&id),
        delete,
        Some("{}"),
    )
    .await;
    patch.assert_answer(405, "METHOD_NOT_ALLOWED");

    // No token by that id: not a UUID, or none of the tenant's.
    for missing in ["not-a-uuid", &Uuid::new_v4().to_string()] {
        revoke(&stack, seed::ACME_ADMIN_SUB, missing)
            .await
            .assert_answer(404, "SCIM_TOKEN_NOT_FOUND");
    }

    // Only the two tokens asked for by admins were made; the first is not revoked.
    let rows = stack
        .sql()
        .await
        .query_one("SELECT count(*), count(revoked_at) FROM scim_tokens", &[])
        .await
        .unwrap();
    assert_eq!((rows.get::<_, i64>(0), rows.get::<_, i64>(1)), (2, 0));
}

#[tokio::test]
async fn a_database_failure_is_answered_as_documented() {
    let stack = TestStack::start().await;
    let (id, _) = token_of(&stack, seed::ACME_ADMIN_SUB, "Okta").await;
    let post = ("POST", SCIM_TOKENS_PATH);
    let body = Some(r#"{"name": "Another"}"#);

    stack.sabotage("scim_tokens", "BEFORE INSERT").await;
    admin(
        &stack,
        Some(seed::ACME_ADMIN_SUB),
        "POST",
        SCIM_TOKENS_PATH,
        post,
        body,
    )
    .await
    .assert_answer(500, "INTERNAL_ERROR");
    stack.repair().await;
    stack.sabotage("scim_tokens", "BEFORE UPDATE").await;
    revoke(&stack, seed::ACME_ADMIN_SUB, &id)
        .await
        .assert_answer(500, "INTERNAL_ERROR");
    stack.repair().await;

    // A lock held past the lock timeout.
    let mut locker = stack.sql().await;
    let held = locker.transaction().await.unwrap();
    held.batch_execute("LOCK TABLE scim_tokens IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    list(&stack, seed::ACME_ADMIN_SUB)
        .await
        .assert_answer(503, "DATABASE_BUSY");
    held.rollback().await.unwrap();

    let tokens = list(&stack, seed::ACME_ADMIN_SUB).await;
    assert_eq!(tokens.body["tokens"].as_array().unwrap().len(), 1);
    assert_eq!(tokens.body["tokens"][0]["revokedAt"], Value::Null);
}

/// The first request of a minute records the token's use in its own transaction; a create
/// keeps that transaction open across its Auth0 call. Another request with the same token
/// meanwhile (an identity provider's sync runs several at once) must not queue behind it on
/// the token's row, nor fail when the wait passes the lock timeout.
#[tokio::test]
async fn a_create_holding_the_token_s_row_does_not_hold_up_the_next_request() {
    let stack = TestStack::start_with(|vars| {
        vars.insert("DB_LOCK_TIMEOUT_MS".into(), "500".into());
    })
    .await;
    let (_, token) = token_of(&stack, seed::ACME_ADMIN_SUB, "Okta").await;
    stack
        .auth0
        .inject(testkit::doubles::Fault::delay("create_user", 1_200));
    let user = scim_user("slow.create@acme.test");
    let (created, listed) = tokio::join!(
        scim(&stack, &token, "POST", SCIM_USERS_PATH, Some(&user), &[]),
        async {
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            scim(&stack, &token, "GET", SCIM_USERS_PATH, None, &[]).await
        }
    );
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(listed.status, 200, "{}", listed.body);
}
