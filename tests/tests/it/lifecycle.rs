//! The rest of a user's life through the admin API: read, list, update, deactivate,
//! reactivate, delete. Both systems change or neither does; a crash between them is converged
//! by cleanup; a deactivated or deleted person cannot log in. Real Postgres, the doubles over
//! HTTP, every answer held to openapi.yaml.

use serde_json::{Value, json};
use testkit::doubles::Fault;
use testkit::harness::{
    CREATE_PATH, Response, SET_PASSWORD_PATH, TestStack, VERIFY_PATH, api_event, create_event,
    public_event, seed,
};
use uuid::Uuid;

use crate::cleanup::{cleanup, scheduled_event};
use crate::openapi::assert_documented_at;

const PASSWORD: &str = "Corr3ct-Horse-Battery";
const USERS_PATH: &str = "/api/direct-users";

fn user_path(id: &str) -> String {
    format!("{USERS_PATH}/{id}")
}

/// A call of the admin API by `sub`; its answer must be what openapi.yaml documents for the
/// operation (`template` names it, e.g. `/api/direct-users/{id}`) and its status.
async fn call(
    stack: &TestStack,
    sub: &str,
    method: &str,
    path: &str,
    template: &str,
    body: Option<Value>,
) -> Response {
    let body = body.map(|b| b.to_string());
    let response = stack
        .call(api_event(method, path, Some(sub), body.as_deref()))
        .await;
    assert_documented_at(
        method,
        template,
        &response,
        &format!("{method} {template} {}", response.code()),
    );
    response
}

async fn get(stack: &TestStack, sub: &str, id: &str) -> Response {
    call(
        stack,
        sub,
        "GET",
        &user_path(id),
        "/api/direct-users/{id}",
        None,
    )
    .await
}

async fn deactivate(stack: &TestStack, sub: &str, id: &str) -> Response {
    let path = format!("{}/deactivate", user_path(id));
    let template = "/api/direct-users/{id}/deactivate";
    call(stack, sub, "POST", &path, template, None).await
}

async fn reactivate(stack: &TestStack, sub: &str, id: &str) -> Response {
    let path = format!("{}/reactivate", user_path(id));
    let template = "/api/direct-users/{id}/reactivate";
    call(stack, sub, "POST", &path, template, None).await
}

async fn update(stack: &TestStack, sub: &str, id: &str, body: Value) -> Response {
    let template = "/api/direct-users/{id}";
    call(stack, sub, "PATCH", &user_path(id), template, Some(body)).await
}

async fn delete(stack: &TestStack, sub: &str, id: &str) -> Response {
    let template = "/api/direct-users/{id}";
    call(stack, sub, "DELETE", &user_path(id), template, None).await
}

async fn list(stack: &TestStack, sub: &str, query: &[(&str, &str)]) -> Response {
    let mut event = api_event("GET", USERS_PATH, Some(sub), None);
    let raw: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
    event["rawQueryString"] = json!(raw.join("&"));
    event["queryStringParameters"] = query
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect::<serde_json::Map<_, _>>()
        .into();
    let response = stack.call(event).await;
    assert_documented_at("GET", USERS_PATH, &response, "list");
    response
}

/// A user invited by Acme's admin (with an employee and a page), who set `PASSWORD`. Returns
/// the user's id and Auth0 id.
async fn active_user(stack: &TestStack, email: &str) -> (String, String) {
    let (id, auth0_id) = invited_user(stack, email).await;
    let (token, address) = newest_link(stack, email);
    let set = stack
        .call_public(public_event(
            SET_PASSWORD_PATH,
            &json!({"token": token, "email": address, "password": PASSWORD}),
        ))
        .await;
    assert_eq!(set.status, 200, "{}", set.body);
    (id, auth0_id)
}

async fn invited_user(stack: &TestStack, email: &str) -> (String, String) {
    let created = stack
        .call(create_event(
            seed::ACME_ADMIN_SUB,
            &json!({
                "email": email,
                "permissions": [{"pageId": seed::PAGE_DASHBOARD, "canRead": true}],
                "create_employee": true,
                "employee_data": {"firstName": "Lee", "lastName": "Cycle"},
            }),
        ))
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let user = &created.body["user"];
    (
        user["id"].as_str().unwrap().to_string(),
        user["auth0UserId"].as_str().unwrap().to_string(),
    )
}

fn newest_link(stack: &TestStack, email: &str) -> (String, String) {
    stack
        .email
        .emails_to(email)
        .last()
        .and_then(|e| e.setup_token_and_email())
        .unwrap_or_else(|| panic!("no link was emailed to {email}"))
}

/// The password-realm grant a login form sends: its status and body.
async fn log_in(stack: &TestStack, email: &str, password: &str) -> (u16, Value) {
    stack.auth0.log_in(email, password, "openid").await
}

fn auth0_profile(stack: &TestStack, email: &str) -> Option<Value> {
    stack.auth0.users_with_email(email).into_iter().next()
}

fn is_blocked(stack: &TestStack, email: &str) -> bool {
    auth0_profile(stack, email).expect("an Auth0 user")["blocked"] == json!(true)
}

async fn row_state(stack: &TestStack, id: &str) -> Option<(String, bool)> {
    stack
        .sql()
        .await
        .query_opt(
            "SELECT role, is_active FROM users WHERE id = $1",
            &[&Uuid::parse_str(id).unwrap()],
        )
        .await
        .unwrap()
        .map(|r| (r.get(0), r.get(1)))
}

async fn intents(stack: &TestStack) -> i64 {
    stack
        .sql()
        .await
        .query_one("SELECT count(*) FROM lifecycle_intents", &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn a_user_is_read_with_its_status_creator_employee_and_permissions() {
    let stack = TestStack::start().await;
    let (id, auth0_id) = invited_user(&stack, "read.me@acme.test").await;

    let read = get(&stack, seed::ACME_OWNER_SUB, &id).await;

    assert_eq!(read.status, 200, "{}", read.body);
    let user = &read.body;
    assert_eq!(user["email"], "read.me@acme.test");
    assert_eq!(user["status"], "invited");
    assert_eq!(user["role"], "USER");
    assert_eq!(user["auth0UserId"], auth0_id);
    assert_eq!(user["createdBy"]["id"], seed::ACME_ADMIN_ID);
    assert_eq!(user["createdBy"]["email"], "admin@acme.test");
    assert_eq!(user["employee"]["firstName"], "Lee");
    assert_eq!(user["permissions"][0]["pageId"], seed::PAGE_DASHBOARD);
    assert_eq!(user["permissions"][0]["canRead"], true);
    assert_eq!(user["setupCompletedAt"], Value::Null);

    let (token, address) = newest_link(&stack, "read.me@acme.test");
    let set = stack
        .call_public(public_event(
            SET_PASSWORD_PATH,
            &json!({"token": token, "email": address, "password": PASSWORD}),
        ))
        .await;
    assert_eq!(set.status, 200);
    let read = get(&stack, seed::ACME_ADMIN_SUB, &id).await;
    assert_eq!(read.body["status"], "active");
    assert!(read.body["setupCompletedAt"].is_string());
}

#[tokio::test]
async fn another_tenants_user_and_ids_that_name_nobody_are_not_found_and_a_user_is_refused() {
    let stack = TestStack::start().await;
    let (id, _) = invited_user(&stack, "mine@acme.test").await;
    for (caller, target) in [
        (seed::GLOBEX_ADMIN_SUB, id.as_str()),
        (seed::ACME_ADMIN_SUB, "00000000-0000-4000-8000-000000000000"),
        (seed::ACME_ADMIN_SUB, "not-a-uuid"),
    ] {
        get(&stack, caller, target)
            .await
            .assert_answer(404, "USER_NOT_FOUND");
        deactivate(&stack, caller, target)
            .await
            .assert_answer(404, "USER_NOT_FOUND");
        delete(&stack, caller, target)
            .await
            .assert_answer(404, "USER_NOT_FOUND");
    }
    // The caller is checked before the id is looked at, whatever the id.
    for target in [id.as_str(), "not-a-uuid"] {
        get(&stack, seed::ACME_USER_SUB, target)
            .await
            .assert_answer(403, "NOT_AN_ADMIN");
        delete(&stack, seed::ACME_USER_SUB, target)
            .await
            .assert_answer(403, "NOT_AN_ADMIN");
    }
    // Globex's admin changed nothing.
    assert_eq!(row_state(&stack, &id).await, Some(("USER".into(), true)));
    assert!(!is_blocked(&stack, "mine@acme.test"));
}

#[tokio::test]
async fn the_list_is_the_tenants_users_newest_first_paged_by_cursor_and_filtered() {
    let stack = TestStack::start().await;
    let mut made = Vec::new();
    for n in 0..5 {
        made.push(invited_user(&stack, &format!("page{n}@acme.test")).await.0);
    }
    invited_user(&stack, "other@acme.test").await;
    deactivate(&stack, seed::ACME_ADMIN_SUB, &made[1])
        .await
        .assert_answer(200, "");

    // The address prefix, two to a page, newest first.
    let first = list(
        &stack,
        seed::ACME_ADMIN_SUB,
        &[("email", "PAGE"), ("limit", "2")],
    )
    .await;
    assert_eq!(first.status, 200, "{}", first.body);
    let ids = |page: &Response| -> Vec<String> {
        page.body["users"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(&first), [made[4].clone(), made[3].clone()]);
    let cursor = first.body["nextCursor"].as_str().unwrap().to_string();
    let second = list(
        &stack,
        seed::ACME_ADMIN_SUB,
        &[("email", "page"), ("limit", "2"), ("cursor", &cursor)],
    )
    .await;
    assert_eq!(ids(&second), [made[2].clone(), made[1].clone()]);
    let cursor = second.body["nextCursor"].as_str().unwrap().to_string();
    let last = list(
        &stack,
        seed::ACME_ADMIN_SUB,
        &[("email", "page"), ("limit", "2"), ("cursor", &cursor)],
    )
    .await;
    assert_eq!(ids(&last), [made[0].clone()]);
    assert_eq!(last.body["nextCursor"], Value::Null);

    let deactivated = list(&stack, seed::ACME_ADMIN_SUB, &[("status", "deactivated")]).await;
    let deactivated_ids = ids(&deactivated);
    assert!(deactivated_ids.contains(&made[1]), "{}", deactivated.body);
    assert!(
        deactivated.body["users"]
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u["status"] == "deactivated")
    );

    // Globex sees none of Acme's.
    let globex = list(&stack, seed::GLOBEX_ADMIN_SUB, &[("email", "page")]).await;
    assert_eq!(globex.body["users"], json!([]));

    for (query, field) in [
        (vec![("limit", "0")], "limit"),
        (vec![("limit", "201")], "limit"),
        (vec![("status", "gone")], "status"),
        (vec![("cursor", "bm90IGEgY3Vyc29y")], "cursor"),
        // A forged cursor from before what Postgres holds (it was a 500).
        (
            vec![(
                "cursor",
                "LTgwMDAwMDAwMDAwMDAwMDAwMDAuYTAwMDAwMDAtMDAwMC00MDAwLTgwMDAtMDAwMDAwMDAwMDAx",
            )],
            "cursor",
        ),
        // `limit=1&limit=2` and `status=active&status=invited`, as API Gateway joins them.
        (vec![("limit", "1,2")], "limit"),
        (vec![("status", "active,invited")], "status"),
    ] {
        let refused = list(&stack, seed::ACME_ADMIN_SUB, &query).await;
        refused.assert_answer(400, "VALIDATION_ERROR");
        assert_eq!(refused.body["field"], field);
    }
}

#[tokio::test]
async fn deactivate_ends_every_way_in_and_reactivate_restores_the_same_password() {
    let stack = TestStack::start().await;
    let email = "leaver@acme.test";
    let (id, _) = active_user(&stack, email).await;
    assert_eq!(log_in(&stack, email, PASSWORD).await.0, 200);
    // A link sent after the password was set: deactivation must end it too.
    stack
        .execute(&format!(
            "INSERT INTO password_reset_tokens (user_id, token_hash, expires_at)
             VALUES ('{id}', sha256('spare'::bytea), now() + interval '1 hour')"
        ))
        .await;

    let deactivated = deactivate(&stack, seed::ACME_ADMIN_SUB, &id).await;

    assert_eq!(deactivated.status, 200, "{}", deactivated.body);
    assert_eq!(deactivated.body["status"], "deactivated");
    assert_eq!(row_state(&stack, &id).await, Some(("USER".into(), false)));
    assert!(is_blocked(&stack, email));
    let (status, body) = log_in(&stack, email, PASSWORD).await;
    assert_ne!(status, 200, "{body}");
    assert_eq!(body["error_description"], "user is blocked");
    assert_eq!(stack.auth0.calls("revoke_sessions"), 1);
    assert_eq!(stack.auth0.calls("revoke_refresh_tokens"), 1);
    let open: i64 = stack
        .sql()
        .await
        .query_one(
            "SELECT count(*) FROM password_reset_tokens
              WHERE user_id = $1 AND used_at IS NULL",
            &[&Uuid::parse_str(&id).unwrap()],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(open, 0, "every open link ended");
    assert_eq!(intents(&stack).await, 0);

    // Again: nothing to do, the same answer, no Auth0 call.
    let calls = stack.auth0.calls("update_user");
    let again = deactivate(&stack, seed::ACME_ADMIN_SUB, &id).await;
    assert_eq!(
        (again.status, &again.body["status"]),
        (200, &json!("deactivated"))
    );
    assert_eq!(stack.auth0.calls("update_user"), calls);

    let reactivated = reactivate(&stack, seed::ACME_ADMIN_SUB, &id).await;
    assert_eq!(reactivated.status, 200, "{}", reactivated.body);
    assert_eq!(reactivated.body["status"], "active");
    assert!(!is_blocked(&stack, email));
    assert_eq!(log_in(&stack, email, PASSWORD).await.0, 200);
}

#[tokio::test]
async fn an_invited_user_deactivated_has_a_dead_link_even_after_reactivation() {
    let stack = TestStack::start().await;
    let email = "never.started@acme.test";
    let (id, _) = invited_user(&stack, email).await;
    let (token, address) = newest_link(&stack, email);
    let link = json!({"token": token, "email": address});

    deactivate(&stack, seed::ACME_ADMIN_SUB, &id)
        .await
        .assert_answer(200, "");
    let verify = stack.call_public(public_event(VERIFY_PATH, &link)).await;
    verify.assert_answer(400, "INVALID_LINK");

    reactivate(&stack, seed::ACME_ADMIN_SUB, &id)
        .await
        .assert_answer(200, "");
    let verify = stack.call_public(public_event(VERIFY_PATH, &link)).await;
    verify.assert_answer(400, "INVALID_LINK");
}

#[tokio::test]
async fn an_update_replaces_the_permissions_and_carries_a_new_role_into_the_auth0_tag() {
    let stack = TestStack::start().await;
    let email = "promoted@acme.test";
    let (id, _) = active_user(&stack, email).await;

    let updated = update(
        &stack,
        seed::ACME_ADMIN_SUB,
        &id,
        json!({"role": "ADMIN", "permissions": [
            {"pageId": seed::PAGE_REPORTS, "canRead": true, "canWrite": true}
        ]}),
    )
    .await;

    assert_eq!(updated.status, 200, "{}", updated.body);
    assert_eq!(updated.body["role"], "ADMIN");
    assert_eq!(
        updated.body["permissions"],
        json!([{"pageId": seed::PAGE_REPORTS, "canRead": true, "canWrite": true, "canEdit": false, "canDelete": false}])
    );
    assert_eq!(row_state(&stack, &id).await, Some(("ADMIN".into(), true)));
    let profile = auth0_profile(&stack, email).unwrap();
    assert_eq!(profile["app_metadata"]["role"], "ADMIN");
    // A first-level merge: the other tags stay.
    assert_eq!(profile["app_metadata"]["db_user_id"], id);
    assert_eq!(
        profile["app_metadata"]["created_by"],
        "atomic-user-provisioning"
    );

    // Permissions alone touch nothing in Auth0.
    let patches = stack.auth0.calls("update_user");
    let only_pages = update(
        &stack,
        seed::ACME_ADMIN_SUB,
        &id,
        json!({"permissions": []}),
    )
    .await;
    assert_eq!(only_pages.status, 200, "{}", only_pages.body);
    assert_eq!(only_pages.body["permissions"], json!([]));
    assert_eq!(stack.auth0.calls("update_user"), patches);

    for (body, field) in [
        (json!({}), "body"),
        (json!({"role": "KING"}), "role"),
        (json!({"email": "new@acme.test"}), "email"),
        (
            json!({"permissions": [{"pageId": "nope"}]}),
            "permissions[0].pageId",
        ),
    ] {
        let refused = update(&stack, seed::ACME_ADMIN_SUB, &id, body).await;
        refused.assert_answer(400, "VALIDATION_ERROR");
        assert_eq!(refused.body["field"], field);
    }
    let unknown_page = update(
        &stack,
        seed::ACME_ADMIN_SUB,
        &id,
        json!({"role": "USER", "permissions": [{"pageId": "c0000000-0000-4000-8000-00000000dead", "canRead": true}]}),
    )
    .await;
    unknown_page.assert_answer(400, "UNKNOWN_PAGE");
    assert_eq!(row_state(&stack, &id).await, Some(("ADMIN".into(), true)));
    assert_eq!(
        auth0_profile(&stack, email).unwrap()["app_metadata"]["role"],
        "ADMIN"
    );
}

#[tokio::test]
async fn delete_removes_both_sides_keeps_the_employee_and_the_address_can_be_created_again() {
    let stack = TestStack::start().await;
    let email = "gone@acme.test";
    let (id, auth0_id) = active_user(&stack, email).await;

    let deleted = delete(&stack, seed::ACME_ADMIN_SUB, &id).await;

    assert_eq!(deleted.status, 200, "{}", deleted.body);
    assert_eq!(deleted.body["deleted"], true);
    let rows = stack.rows_for(email).await;
    assert_eq!((rows.users, rows.permissions, rows.reset_tokens), (0, 0, 0));
    assert_eq!(rows.employees_with_email, 1, "the employee stays");
    assert_eq!(rows.linked_employees, 0, "unlinked");
    assert!(stack.auth0.users_with_email(email).is_empty());
    assert_ne!(log_in(&stack, email, PASSWORD).await.0, 200);
    assert_eq!(intents(&stack).await, 0);
    get(&stack, seed::ACME_ADMIN_SUB, &id)
        .await
        .assert_answer(404, "USER_NOT_FOUND");

    let again = stack
        .call(create_event(seed::ACME_ADMIN_SUB, &json!({"email": email})))
        .await;
    assert_eq!(again.status, 201, "{}", again.body);
    assert_ne!(again.body["user"]["auth0UserId"], auth0_id);
}

#[tokio::test]
async fn every_guard_answers_its_own_code_and_changes_nothing() {
    let stack = TestStack::start().await;
    let owner_id = "a0000000-0000-4000-8000-000000000001";
    let (id, _) = active_user(&stack, "climber@acme.test").await;
    // Setting the password was one.
    let patches = stack.auth0.calls("update_user");
    // An ADMIN cannot touch an OWNER, nor make anyone one.
    deactivate(&stack, seed::ACME_ADMIN_SUB, owner_id)
        .await
        .assert_answer(403, "OWNER_PROTECTED");
    delete(&stack, seed::ACME_ADMIN_SUB, owner_id)
        .await
        .assert_answer(403, "OWNER_PROTECTED");
    update(
        &stack,
        seed::ACME_ADMIN_SUB,
        owner_id,
        json!({"role": "USER"}),
    )
    .await
    .assert_answer(403, "OWNER_PROTECTED");
    update(&stack, seed::ACME_ADMIN_SUB, &id, json!({"role": "OWNER"}))
        .await
        .assert_answer(403, "ROLE_NOT_ALLOWED");
    // A misspelt flag is refused, not read as false (which would take the page away).
    let misspelt = update(
        &stack,
        seed::ACME_ADMIN_SUB,
        &id,
        json!({"permissions": [{"pageId": seed::PAGE_DASHBOARD, "canRead": true, "CanWrite": true}]}),
    )
    .await;
    misspelt.assert_answer(400, "VALIDATION_ERROR");
    assert_eq!(misspelt.body["field"], "permissions[0].CanWrite");
    // Nobody changes their own account.
    deactivate(&stack, seed::ACME_ADMIN_SUB, seed::ACME_ADMIN_ID)
        .await
        .assert_answer(403, "CANNOT_ACT_ON_SELF");
    delete(&stack, seed::ACME_OWNER_SUB, owner_id)
        .await
        .assert_answer(403, "CANNOT_ACT_ON_SELF");
    // A row still pending (the old implementation's leftover).
    let pending = Uuid::new_v4();
    stack
        .execute(&format!(
            "INSERT INTO users (id, tenant_id, email, role, auth0_sub)
             VALUES ('{pending}', '{}', 'half@acme.test', 'USER', 'pending_{pending}')",
            seed::ACME
        ))
        .await;
    deactivate(&stack, seed::ACME_ADMIN_SUB, &pending.to_string())
        .await
        .assert_answer(409, "USER_CREATION_IN_PROGRESS");
    // Another operation on the user has not finished.
    stack
        .execute(&format!(
            "INSERT INTO lifecycle_intents (user_id, tenant_id, auth0_user_id, operation, attempt)
             SELECT id, tenant_id, auth0_sub, 'update', gen_random_uuid() FROM users WHERE id = '{id}'"
        ))
        .await;
    let busy = deactivate(&stack, seed::ACME_ADMIN_SUB, &id).await;
    busy.assert_answer(409, "USER_CHANGE_IN_PROGRESS");
    assert!(busy.headers["retry-after"].is_string(), "{}", busy.headers);

    assert_eq!(
        row_state(&stack, owner_id).await,
        Some(("OWNER".into(), true))
    );
    assert_eq!(row_state(&stack, &id).await, Some(("USER".into(), true)));
    assert_eq!(
        stack.auth0.calls("update_user"),
        patches,
        "no Auth0 change was made"
    );
}

#[tokio::test]
async fn an_auth0_failure_at_any_step_of_deactivate_leaves_both_systems_as_they_were() {
    // `unanswered`: the block got no usable answer (a 5xx, a dropped connection, no answer in
    // time), so it might still land after its undo.
    for (fault, status, code, unanswered) in [
        (Fault::status("update_user", 500), 502, "AUTH0_FAILED", true),
        (
            Fault::status("update_user", 429).times(5),
            503,
            "AUTH0_UNAVAILABLE",
            false,
        ),
        (
            Fault::drop_connection("update_user"),
            503,
            "AUTH0_UNAVAILABLE",
            true,
        ),
        // The double does the work, then answers after HTTP_TIMEOUT_MS (5 s).
        (
            Fault::delay("update_user", 6_000),
            503,
            "AUTH0_UNAVAILABLE",
            true,
        ),
        (
            Fault::status("revoke_sessions", 503),
            502,
            "AUTH0_FAILED",
            false,
        ),
        (
            Fault::drop_connection("revoke_refresh_tokens"),
            503,
            "AUTH0_UNAVAILABLE",
            false,
        ),
        (
            Fault::status("revoke_refresh_tokens", 500),
            502,
            "AUTH0_FAILED",
            false,
        ),
    ] {
        let stack = TestStack::start().await;
        let email = "stays@acme.test";
        let (id, _) = active_user(&stack, email).await;
        stack.auth0.inject(fault);

        let failed = deactivate(&stack, seed::ACME_ADMIN_SUB, &id).await;

        assert_eq!(
            (failed.status, failed.code()),
            (status, code),
            "{}",
            failed.body
        );
        assert_eq!(
            row_state(&stack, &id).await,
            Some(("USER".into(), true)),
            "{code}"
        );
        assert!(!is_blocked(&stack, email), "{code}: the block was undone");
        assert_eq!(log_in(&stack, email, PASSWORD).await.0, 200, "{code}");
        if unanswered {
            // The intent stays (the user answers USER_CHANGE_IN_PROGRESS) until cleanup has
            // looked again, once the block surely landed or not.
            assert_eq!(intents(&stack).await, 1, "{code}");
            deactivate(&stack, seed::ACME_ADMIN_SUB, &id)
                .await
                .assert_answer(409, "USER_CHANGE_IN_PROGRESS");
            stack
                .execute("UPDATE lifecycle_intents SET created_at = now() - interval '1 hour'")
                .await;
            let summary = cleanup(&stack, scheduled_event()).await;
            assert_eq!(summary.removed.intents, 1, "{code}: {summary:?}");
            assert!(!is_blocked(&stack, email), "{code}: the row is active");
        }
        assert_eq!(intents(&stack).await, 0, "{code}");
        // And it works once Auth0 does.
        let again = deactivate(&stack, seed::ACME_ADMIN_SUB, &id).await;
        assert_eq!(again.status, 200, "{code} then: {}", again.body);
        assert!(is_blocked(&stack, email));
    }
}

#[tokio::test]
async fn a_failed_commit_undoes_the_auth0_change_of_every_operation() {
    let stack = TestStack::start().await;
    let email = "committed.not@acme.test";
    let (id, _) = active_user(&stack, email).await;
    // A deferred trigger refuses every change to the row at COMMIT, after Auth0 was called.
    stack
        .execute(
            "CREATE FUNCTION refuse_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
               BEGIN RAISE EXCEPTION 'refused at commit'; END $$;
             CREATE CONSTRAINT TRIGGER refuse_at_commit AFTER UPDATE OR DELETE ON users
               DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_at_commit();",
        )
        .await;

    deactivate(&stack, seed::ACME_ADMIN_SUB, &id)
        .await
        .assert_answer(500, "INTERNAL_ERROR");
    assert!(!is_blocked(&stack, email));
    update(&stack, seed::ACME_ADMIN_SUB, &id, json!({"role": "ADMIN"}))
        .await
        .assert_answer(500, "INTERNAL_ERROR");
    assert_eq!(
        auth0_profile(&stack, email).unwrap()["app_metadata"]["role"],
        "USER"
    );
    delete(&stack, seed::ACME_ADMIN_SUB, &id)
        .await
        .assert_answer(500, "INTERNAL_ERROR");
    assert!(!is_blocked(&stack, email));
    assert_eq!(stack.auth0.users_with_email(email).len(), 1);

    assert_eq!(row_state(&stack, &id).await, Some(("USER".into(), true)));
    assert_eq!(log_in(&stack, email, PASSWORD).await.0, 200);
    assert_eq!(intents(&stack).await, 0);
}

/// What a process killed between the two transactions leaves: its intent, committed, and
/// Auth0 changed or not. Cleanup makes Auth0 match the row.
#[tokio::test]
async fn cleanup_makes_the_auth0_user_of_an_unfinished_operation_match_its_row() {
    let stack = TestStack::start().await;
    let (kept, _) = active_user(&stack, "kept@acme.test").await;
    let (gone, gone_auth0) = active_user(&stack, "gone.half@acme.test").await;
    let (quiet, _) = active_user(&stack, "quiet@acme.test").await;
    // kept: its deactivate died after blocking Auth0, before its row changed.
    let record = |id: &str, operation: &str| {
        format!(
            "INSERT INTO lifecycle_intents (user_id, tenant_id, auth0_user_id, operation, attempt, created_at)
             SELECT id, tenant_id, auth0_sub, '{operation}', gen_random_uuid(), now() - interval '1 hour'
               FROM users WHERE id = '{id}'"
        )
    };
    stack.execute(&record(&kept, "deactivate")).await;
    let kept_auth0 = auth0_profile(&stack, "kept@acme.test").unwrap()["user_id"]
        .as_str()
        .unwrap()
        .to_string();
    block_in_auth0(&stack, &kept_auth0).await;
    // gone: its delete committed the row's removal and died before deleting the Auth0 user.
    stack.execute(&record(&gone, "delete")).await;
    stack
        .execute(&format!("DELETE FROM users WHERE id = '{gone}'"))
        .await;
    // quiet: a role change died before it reached Auth0; both still agree.
    stack.execute(&record(&quiet, "update")).await;
    // A fresh intent belongs to an operation that may still run: left alone.
    let (fresh, _) = active_user(&stack, "fresh@acme.test").await;
    stack
        .execute(&format!(
            "INSERT INTO lifecycle_intents (user_id, tenant_id, auth0_user_id, operation, attempt)
             SELECT id, tenant_id, auth0_sub, 'deactivate', gen_random_uuid() FROM users WHERE id = '{fresh}'"
        ))
        .await;

    let summary = cleanup(&stack, scheduled_event()).await;

    assert_eq!(
        (summary.found.intents, summary.removed.intents),
        (3, 3),
        "{summary:?}"
    );
    assert!(!is_blocked(&stack, "kept@acme.test"), "the row is active");
    assert_eq!(log_in(&stack, "kept@acme.test", PASSWORD).await.0, 200);
    assert!(
        stack
            .auth0
            .users_with_email("gone.half@acme.test")
            .is_empty()
    );
    assert!(!is_blocked(&stack, "quiet@acme.test"));
    assert_eq!(intents(&stack).await, 1, "the fresh one stays");
    let _ = (gone_auth0, quiet);
}

async fn block_in_auth0(stack: &TestStack, auth0_id: &str) {
    let token = management_token(stack).await;
    let answer = reqwest::Client::new()
        .patch(format!(
            "{}/api/v2/users/{}",
            stack.auth0.base_url(),
            auth0_id.replace('|', "%7C")
        ))
        .bearer_auth(token)
        .json(&json!({"blocked": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
}

async fn management_token(stack: &TestStack) -> String {
    let answer: Value = reqwest::Client::new()
        .post(format!("{}/oauth/token", stack.auth0.base_url()))
        .json(&json!({
            "grant_type": "client_credentials",
            "client_id": stack.vars["AUTH0_CLIENT_ID"],
            "client_secret": stack.vars["AUTH0_CLIENT_SECRET"],
            "audience": format!("{}/api/v2/", stack.auth0.base_url()),
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["access_token"].as_str().unwrap().to_string()
}

/// Reproduced before this was fixed: a row deleted by the old backend left its Auth0 user,
/// creating the address again adopted it, and the previous holder's password logged in to the
/// new account.
#[tokio::test]
async fn adopting_an_old_login_of_ours_leaves_no_way_in_but_the_new_invitation() {
    let stack = TestStack::start().await;
    let email = "reused@acme.test";
    let (id, auth0_id) = active_user(&stack, email).await;
    // The old backend deletes the row alone.
    stack
        .execute(&format!("DELETE FROM users WHERE id = '{id}'"))
        .await;
    block_in_auth0(&stack, &auth0_id).await;

    let again = stack
        .call(create_event(
            seed::GLOBEX_ADMIN_SUB,
            &json!({"email": email, "role": "ADMIN"}),
        ))
        .await;

    assert_eq!(again.status, 201, "{}", again.body);
    assert_eq!(again.body["user"]["auth0UserId"], auth0_id, "adopted");
    assert!(!stack.auth0.password_matches(&auth0_id, PASSWORD));
    assert_ne!(log_in(&stack, email, PASSWORD).await.0, 200);
    assert!(
        !is_blocked(&stack, email),
        "the new account's login is open"
    );
    // Only the new invitation leads in.
    let (token, address) = newest_link(&stack, email);
    let set = stack
        .call_public(public_event(
            SET_PASSWORD_PATH,
            &json!({"token": token, "email": address, "password": "An0ther-Secret-Phrase"}),
        ))
        .await;
    assert_eq!(set.status, 200, "{}", set.body);
    assert_eq!(log_in(&stack, email, "An0ther-Secret-Phrase").await.0, 200);
}

#[tokio::test]
async fn a_repeated_deactivate_with_its_key_is_replayed() {
    let stack = TestStack::start().await;
    let (id, _) = active_user(&stack, "keyed@acme.test").await;
    let key = Uuid::new_v4().to_string();
    let keyed = || {
        let mut event = api_event(
            "POST",
            &format!("{}/deactivate", user_path(&id)),
            Some(seed::ACME_ADMIN_SUB),
            None,
        );
        event["headers"]["idempotency-key"] = json!(key);
        event
    };
    let first = stack.call(keyed()).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let updates = stack.auth0.calls("update_user");
    let repeat = stack.call(keyed()).await;
    assert_eq!((repeat.status, &repeat.body), (200, &first.body));
    assert_eq!(repeat.headers["idempotent-replayed"], "true");
    assert_eq!(stack.auth0.calls("update_user"), updates);
    let _ = CREATE_PATH;
}

/// A process killed at each Auth0 call of each operation (the call hangs, the process dies
/// there, as in a Lambda timeout), then a cleanup run: both systems say what the row says.
#[tokio::test]
async fn a_kill_at_any_auth0_step_of_any_operation_is_converged_by_cleanup() {
    use std::time::Duration;
    use testkit::lambda_process::LambdaProcess;

    let cases: &[(&str, &str, Option<Value>, &str)] = &[
        ("deactivate", "POST", None, "update_user"),
        ("deactivate", "POST", None, "revoke_sessions"),
        ("deactivate", "POST", None, "revoke_refresh_tokens"),
        ("reactivate", "POST", None, "update_user"),
        (
            "update",
            "PATCH",
            Some(json!({"role": "ADMIN"})),
            "update_user",
        ),
        ("delete", "DELETE", None, "update_user"),
        ("delete", "DELETE", None, "delete_user"),
    ];
    for (operation, method, body, hung) in cases {
        let label = format!("{operation} killed in {hung}");
        let stack = TestStack::start().await;
        let email = "killed.midway@acme.test";
        let (id, _) = active_user(&stack, email).await;
        if *operation == "reactivate" {
            deactivate(&stack, seed::ACME_ADMIN_SUB, &id)
                .await
                .assert_answer(200, "");
        }
        let path = match *operation {
            "deactivate" | "reactivate" => format!("{}/{operation}", user_path(&id)),
            _ => user_path(&id),
        };
        let body = body.as_ref().map(Value::to_string);
        let event = api_event(method, &path, Some(seed::ACME_ADMIN_SUB), body.as_deref());
        let mut vars = stack.vars.clone();
        vars.insert("HTTP_TIMEOUT_MS".into(), "15000".into());
        vars.insert("DB_IDLE_IN_TRANSACTION_TIMEOUT_MS".into(), "30000".into());
        let function = LambdaProcess::start("create-user", &vars)
            .await
            .expect("`cargo build --bins` ran before the tests");
        let calls = stack.auth0.calls(hung);
        stack.auth0.inject(Fault::delay(hung, 20_000));
        let invocation = function.invoke(event);
        let hanging = async {
            while stack.auth0.calls(hung) == calls {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        tokio::select! {
            outcome = invocation => panic!("{label}: meant to hang: {outcome:?}"),
            () = hanging => {}
        }
        function.kill().await;
        wait_for_rollbacks(&stack).await;
        assert_eq!(
            intents(&stack).await,
            1,
            "{label}: the intent outlived the process"
        );

        stack
            .execute("UPDATE lifecycle_intents SET created_at = now() - interval '1 hour'")
            .await;
        let summary = cleanup(&stack, scheduled_event()).await;

        assert_eq!(summary.removed.intents, 1, "{label}: {summary:?}");
        assert_eq!(intents(&stack).await, 0, "{label}");
        match row_state(&stack, &id).await {
            None => assert!(
                stack.auth0.users_with_email(email).is_empty(),
                "{label}: no row, no login"
            ),
            Some((role, active)) => {
                let profile = auth0_profile(&stack, email).expect("the login of a row");
                assert_eq!(profile["blocked"] == json!(true), !active, "{label}");
                assert_eq!(profile["app_metadata"]["role"], role, "{label}");
                let login = log_in(&stack, email, PASSWORD).await.0;
                assert_eq!(login == 200, active, "{label}: login {login}");
            }
        }
    }
}

/// Postgres noticed the killed process's connection and rolled its transaction back.
async fn wait_for_rollbacks(stack: &TestStack) {
    let sql = stack.sql().await;
    for _ in 0..500 {
        let open: i64 = sql
            .query_one(
                "SELECT count(*) FROM pg_stat_activity
                  WHERE datname = $1 AND state LIKE 'idle in transaction%'",
                &[&stack.db.name],
            )
            .await
            .unwrap()
            .get(0);
        if open == 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("a killed process's transaction is still open");
}

/// Two admins, or two operations, on one user at once: one wins, the other gets a clear
/// answer, and the two systems agree after both.
#[tokio::test]
async fn concurrent_operations_on_one_user_serialize_and_the_systems_agree() {
    let pairs: &[(&str, &str)] = &[
        ("deactivate", "deactivate"),
        ("deactivate", "delete"),
        ("update", "deactivate"),
        ("update", "resend"),
        ("delete", "delete"),
    ];
    for (first, second) in pairs {
        let label = format!("{first} beside {second}");
        let stack = TestStack::start().await;
        let email = "contested@acme.test";
        let (id, _) = if *second == "resend" {
            invited_user(&stack, email).await
        } else {
            active_user(&stack, email).await
        };
        // Auth0 slow enough that the two overlap.
        stack
            .auth0
            .inject(Fault::delay("update_user", 300).times(4));
        let run = async |operation: &str, sub: &str| -> Response {
            match operation {
                "deactivate" => deactivate(&stack, sub, &id).await,
                "delete" => delete(&stack, sub, &id).await,
                "update" => update(&stack, sub, &id, json!({"role": "ADMIN"})).await,
                _ => stack.call(testkit::harness::resend_event(sub, email)).await,
            }
        };
        let (a, b) = tokio::join!(
            run(first, seed::ACME_ADMIN_SUB),
            run(second, seed::ACME_OWNER_SUB)
        );
        for answer in [&a, &b] {
            let ok = matches!(answer.status, 200);
            let clear = matches!(
                answer.code(),
                "USER_CHANGE_IN_PROGRESS" | "USER_NOT_FOUND" | "DATABASE_BUSY"
            );
            assert!(ok || clear, "{label}: {} {}", answer.status, answer.body);
        }
        assert!(
            a.status == 200 || b.status == 200,
            "{label}: one of them wins"
        );
        // The two systems agree.
        match row_state(&stack, &id).await {
            None => assert!(stack.auth0.users_with_email(email).is_empty(), "{label}"),
            Some((role, active)) => {
                let profile = auth0_profile(&stack, email).unwrap();
                assert_eq!(profile["blocked"] == json!(true), !active, "{label}");
                assert_eq!(profile["app_metadata"]["role"], role, "{label}");
            }
        }
        assert_eq!(intents(&stack).await, 0, "{label}");
    }
}

/// "In progress" says "not now": it is not stored for the key, so the key's retry runs.
#[tokio::test]
async fn a_keyed_request_refused_as_in_progress_runs_when_retried_with_its_key() {
    let stack = TestStack::start().await;
    let (id, _) = active_user(&stack, "waits@acme.test").await;
    stack
        .execute(&format!(
            "INSERT INTO lifecycle_intents (user_id, tenant_id, auth0_user_id, operation, attempt)
             SELECT id, tenant_id, auth0_sub, 'update', gen_random_uuid() FROM users WHERE id = '{id}'"
        ))
        .await;
    let key = Uuid::new_v4().to_string();
    let keyed = || {
        let mut event = api_event(
            "POST",
            &format!("{}/deactivate", user_path(&id)),
            Some(seed::ACME_ADMIN_SUB),
            None,
        );
        event["headers"]["idempotency-key"] = json!(key);
        event
    };
    stack
        .call(keyed())
        .await
        .assert_answer(409, "USER_CHANGE_IN_PROGRESS");
    stack.execute("DELETE FROM lifecycle_intents").await;

    let retried = stack.call(keyed()).await;
    assert_eq!(retried.status, 200, "{}", retried.body);
    assert!(retried.headers["idempotent-replayed"].is_null());
    assert_eq!(retried.body["status"], "deactivated");
}

/// The invitation token of a first create is derived from its Auth0 user (so a retry that
/// adopts a crashed attempt's user makes the link already sent work). The login of a deleted
/// user is blocked; taken over again, it gets a fresh token, and the deleted user's link stays
/// dead.
#[tokio::test]
async fn a_deleted_users_unused_link_does_not_open_the_account_that_adopts_its_login() {
    let stack = TestStack::start().await;
    let email = "second.life@acme.test";
    let (id, auth0_id) = invited_user(&stack, email).await;
    let (old_token, address) = newest_link(&stack, email);
    // A delete that blocked the login and removed the row, and whose Auth0 delete failed.
    block_in_auth0(&stack, &auth0_id).await;
    stack
        .execute(&format!("DELETE FROM users WHERE id = '{id}'"))
        .await;

    let again = stack
        .call(create_event(seed::ACME_ADMIN_SUB, &json!({"email": email})))
        .await;

    assert_eq!(again.status, 201, "{}", again.body);
    assert_eq!(again.body["user"]["auth0UserId"], auth0_id, "adopted");
    let old = json!({"token": old_token, "email": address});
    stack
        .call_public(public_event(VERIFY_PATH, &old))
        .await
        .assert_answer(400, "INVALID_LINK");
    let (new_token, address) = newest_link(&stack, email);
    assert_ne!(new_token, old_token);
    let new = json!({"token": new_token, "email": address});
    let verified = stack.call_public(public_event(VERIFY_PATH, &new)).await;
    assert_eq!(verified.status, 200, "{}", verified.body);
}
