//! `Idempotency-Key` on create-user: a repeat gets the first answer, never a second user or a
//! second email; the same key with another request is refused; a repeat during the first is
//! told to wait; a 5xx leaves the key free.

use std::time::Duration;

use serde_json::{Value, json};
use testkit::doubles::Fault;
use testkit::harness::{CREATE_PATH, Response, TestStack, create_event, seed};
use testkit::lambda_process::LambdaProcess;
use uuid::Uuid;

use crate::openapi::assert_documented;

fn keyed(caller: &str, body: &Value, key: &str) -> Value {
    let mut event = create_event(caller, body);
    event["headers"]["idempotency-key"] = json!(key);
    event
}

async fn create(stack: &TestStack, caller: &str, body: &Value, key: &str) -> Response {
    let response = stack.call(keyed(caller, body, key)).await;
    assert_documented(
        CREATE_PATH,
        &response,
        &format!("keyed create {}", response.code()),
    );
    response
}

fn replayed(response: &Response) -> bool {
    response.headers["idempotent-replayed"] == "true"
}

async fn users_with(stack: &TestStack, email: &str) -> i64 {
    stack.rows_for(email).await.users
}

#[tokio::test]
async fn a_repeat_after_success_gets_the_first_answer_and_creates_nothing() {
    let stack = TestStack::start().await;
    let key = Uuid::new_v4().to_string();
    let body = json!({"email": "once@acme.test", "permissions": [{"pageId": seed::PAGE_DASHBOARD, "canRead": true}]});
    let first = create(&stack, seed::ACME_ADMIN_SUB, &body, &key).await;
    assert_eq!(first.status, 201, "{}", first.body);
    assert!(!replayed(&first));

    let repeat = create(&stack, seed::ACME_ADMIN_SUB, &body, &key).await;
    assert_eq!((repeat.status, &repeat.body), (201, &first.body));
    assert!(replayed(&repeat));
    assert_eq!(users_with(&stack, "once@acme.test").await, 1);
    assert_eq!(stack.email.emails_to("once@acme.test").len(), 1);
    assert_eq!(stack.auth0.calls("create_user"), 1);

    // Without the header nothing changes: the same request is an ordinary duplicate.
    let unkeyed = stack.call(create_event(seed::ACME_ADMIN_SUB, &body)).await;
    assert_eq!(unkeyed.code(), "USER_ALREADY_EXISTS");
}

#[tokio::test]
async fn a_refusal_is_replayed_even_after_its_cause_went_away() {
    let stack = TestStack::start().await;
    let key = Uuid::new_v4().to_string();
    let body = json!({"email": "linker@acme.test", "link_employee": true, "employee_id": seed::EMPLOYEE_LINKED});
    let first = create(&stack, seed::ACME_ADMIN_SUB, &body, &key).await;
    first.assert_answer(409, "EMPLOYEE_ALREADY_LINKED");

    stack
        .sql()
        .await
        .execute(
            "UPDATE employees SET user_id = NULL WHERE id = $1",
            &[&Uuid::parse_str(seed::EMPLOYEE_LINKED).unwrap()],
        )
        .await
        .unwrap();
    let repeat = create(&stack, seed::ACME_ADMIN_SUB, &body, &key).await;
    assert_eq!(
        (repeat.status, &repeat.body),
        (409, &first.body),
        "the same answer, request id and all"
    );
    assert!(replayed(&repeat));
    assert_eq!(users_with(&stack, "linker@acme.test").await, 0);

    // A new key is a new request, and it now succeeds.
    let fresh = create(
        &stack,
        seed::ACME_ADMIN_SUB,
        &body,
        &Uuid::new_v4().to_string(),
    )
    .await;
    assert_eq!(fresh.status, 201, "{}", fresh.body);
}

#[tokio::test]
async fn a_server_error_leaves_the_key_free_for_the_retry() {
    let stack = TestStack::start().await;
    let key = Uuid::new_v4().to_string();
    let body = json!({"email": "retried@acme.test"});
    stack
        .email
        .inject(Fault::status("send_email", 500).times(2));
    let first = create(&stack, seed::ACME_ADMIN_SUB, &body, &key).await;
    first.assert_answer(502, "EMAIL_FAILED");
    stack.assert_nothing_kept("retried@acme.test").await;

    let retry = create(&stack, seed::ACME_ADMIN_SUB, &body, &key).await;
    assert_eq!(retry.status, 201, "{}", retry.body);
    assert!(!replayed(&retry));
    let repeat = create(&stack, seed::ACME_ADMIN_SUB, &body, &key).await;
    assert_eq!((repeat.status, &repeat.body), (201, &retry.body));
}

#[tokio::test]
async fn the_same_key_with_another_body_or_from_another_admin_is_422_and_changes_nothing() {
    let stack = TestStack::start().await;
    let key = Uuid::new_v4().to_string();
    let first = create(
        &stack,
        seed::ACME_ADMIN_SUB,
        &json!({"email": "first@acme.test"}),
        &key,
    )
    .await;
    assert_eq!(first.status, 201);
    for (caller, body) in [
        (seed::ACME_ADMIN_SUB, json!({"email": "second@acme.test"})),
        (seed::ACME_OWNER_SUB, json!({"email": "first@acme.test"})),
    ] {
        let reused = create(&stack, caller, &body, &key).await;
        assert_eq!(
            (reused.status, reused.code(), reused.body["field"].as_str()),
            (422, "IDEMPOTENCY_KEY_REUSED", Some("Idempotency-Key")),
            "{body}"
        );
    }
    assert_eq!(users_with(&stack, "second@acme.test").await, 0);
    assert_eq!(stack.auth0.calls("create_user"), 1);
}

#[tokio::test]
async fn keys_are_scoped_to_the_callers_tenant() {
    let stack = TestStack::start().await;
    let key = "shared-key-0001";
    let acme = create(
        &stack,
        seed::ACME_ADMIN_SUB,
        &json!({"email": "a@acme.test"}),
        key,
    )
    .await;
    let globex = create(
        &stack,
        seed::GLOBEX_ADMIN_SUB,
        &json!({"email": "g@globex.test"}),
        key,
    )
    .await;
    assert_eq!((acme.status, globex.status), (201, 201), "{}", globex.body);
    assert!(!replayed(&globex));
    assert_eq!(globex.body["user"]["tenantId"], seed::GLOBEX);
    let again = create(
        &stack,
        seed::ACME_ADMIN_SUB,
        &json!({"email": "a@acme.test"}),
        key,
    )
    .await;
    assert_eq!(again.body, acme.body);
}

#[tokio::test]
async fn a_repeat_while_the_first_runs_is_409_with_retry_after_then_gets_the_answer() {
    let stack = TestStack::start().await;
    let key = Uuid::new_v4().to_string();
    let body = json!({"email": "double.click@acme.test"});
    // The first request holds the key while Auth0 takes its time; the repeat is sent only
    // once the first has reached Auth0, so the order does not depend on the machine's speed.
    stack.auth0.inject(Fault::delay("create_user", 1_500));
    let (a, b) = tokio::join!(create(&stack, seed::ACME_ADMIN_SUB, &body, &key), async {
        while stack.auth0.calls("create_user") == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        create(&stack, seed::ACME_ADMIN_SUB, &body, &key).await
    });
    assert_eq!(a.status, 201, "{}", a.body);
    b.assert_answer(409, "REQUEST_IN_PROGRESS");
    assert_eq!(b.headers["retry-after"], "1");
    let after = create(&stack, seed::ACME_ADMIN_SUB, &body, &key).await;
    assert_eq!((after.status, &after.body), (201, &a.body));
    assert_eq!(users_with(&stack, "double.click@acme.test").await, 1);
    assert_eq!(stack.email.emails_to("double.click@acme.test").len(), 1);
}

#[tokio::test]
async fn a_repeat_after_the_first_committed_and_its_process_died_gets_the_first_answer() {
    let stack = TestStack::start().await;
    let key = Uuid::new_v4().to_string();
    let body = json!({"email": "given.up@acme.test"});
    let function = LambdaProcess::start("create-user", &stack.vars)
        .await
        .expect("`cargo build --bins` ran before the tests");
    let invocation = function.invoke(keyed(seed::ACME_ADMIN_SUB, &body, &key));
    // The caller gives up as soon as the row is committed, and the process is killed.
    let committed = async {
        while users_with(&stack, "given.up@acme.test").await == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::select! {
        _ = invocation => {}
        () = committed => {}
    }
    function.kill().await;
    let user_id: Uuid = stack
        .sql()
        .await
        .query_one(
            "SELECT id FROM users WHERE email = 'given.up@acme.test'",
            &[],
        )
        .await
        .unwrap()
        .get(0);

    let repeat = create(&stack, seed::ACME_ADMIN_SUB, &body, &key).await;
    assert_eq!(repeat.status, 201, "{}", repeat.body);
    assert!(replayed(&repeat));
    assert_eq!(repeat.body["user"]["id"], user_id.to_string());
    assert_eq!(stack.email.emails_to("given.up@acme.test").len(), 1);
}

#[tokio::test]
async fn a_malformed_key_is_refused_and_an_expired_one_runs_anew() {
    let stack = TestStack::start().await;
    let body = json!({"email": "keyed@acme.test"});
    for bad in ["", "has space", &"k".repeat(256)] {
        let response = create(&stack, seed::ACME_ADMIN_SUB, &body, bad).await;
        assert_eq!(
            (
                response.status,
                response.code(),
                response.body["field"].as_str()
            ),
            (400, "VALIDATION_ERROR", Some("Idempotency-Key")),
            "{bad:?}"
        );
    }
    assert_eq!(users_with(&stack, "keyed@acme.test").await, 0);

    let key = "expiring-key";
    let first = create(&stack, seed::ACME_ADMIN_SUB, &body, key).await;
    assert_eq!(first.status, 201);
    stack
        .execute(
            "UPDATE idempotency_keys SET created_at = now() - interval '2 days',
                    expires_at = now() - interval '1 day'",
        )
        .await;
    let later = create(&stack, seed::ACME_ADMIN_SUB, &body, key).await;
    later.assert_answer(409, "USER_ALREADY_EXISTS");
    assert!(!replayed(&later));
}

#[tokio::test]
async fn cleanup_purges_expired_keys_and_keeps_live_ones() {
    let stack = TestStack::start().await;
    for (email, key) in [("old@acme.test", "old-key"), ("new@acme.test", "new-key")] {
        let created = create(&stack, seed::ACME_ADMIN_SUB, &json!({"email": email}), key).await;
        assert_eq!(created.status, 201);
    }
    stack
        .execute(
            "UPDATE idempotency_keys SET created_at = now() - interval '2 days',
                    expires_at = now() - interval '1 day' WHERE key = 'old-key'",
        )
        .await;
    let keys = || async {
        let rows = stack
            .sql()
            .await
            .query("SELECT key FROM idempotency_keys ORDER BY key", &[])
            .await
            .unwrap();
        rows.iter().map(|r| r.get(0)).collect::<Vec<String>>()
    };

    let dry = crate::cleanup::cleanup(&stack, json!({"dryRun": true})).await;
    assert_eq!(dry.expired_idempotency_keys, 1, "{dry:?}");
    assert_eq!(keys().await, ["new-key", "old-key"]);

    let summary = crate::cleanup::cleanup(&stack, crate::cleanup::scheduled_event()).await;
    assert_eq!(summary.expired_idempotency_keys, 1, "{summary:?}");
    assert_eq!(keys().await, ["new-key"]);
}

/// The key is the core's, not create's: resend-invitation takes it the same way.
#[tokio::test]
async fn a_repeated_resend_with_its_key_sends_one_email_and_another_body_is_refused() {
    use testkit::harness::{RESEND_PATH, resend_event};
    let stack = TestStack::start().await;
    let invited = json!({"email": "twice@acme.test"});
    assert_eq!(
        stack
            .call(create_event(seed::ACME_ADMIN_SUB, &invited))
            .await
            .status,
        201
    );
    let key = Uuid::new_v4().to_string();
    let resend = |email: &str| {
        let mut event = resend_event(seed::ACME_ADMIN_SUB, email);
        event["headers"]["idempotency-key"] = json!(key);
        event
    };

    let first = stack.call(resend("twice@acme.test")).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_documented(RESEND_PATH, &first, "keyed resend");
    let repeat = stack.call(resend("twice@acme.test")).await;
    assert_eq!((repeat.status, &repeat.body), (200, &first.body));
    assert!(replayed(&repeat));
    assert_documented(RESEND_PATH, &repeat, "replayed resend");
    // The invitation and one resend: the repeat sent nothing.
    assert_eq!(stack.email.emails_to("twice@acme.test").len(), 2);

    let other = stack.call(resend("staff@acme.test")).await;
    other.assert_answer(422, "IDEMPOTENCY_KEY_REUSED");
    assert_documented(RESEND_PATH, &other, "reused key on resend");
}
