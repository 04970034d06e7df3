//! Every step that can fail: the right status, nothing kept in either system, and a retry
//! with the same email that then succeeds. Database steps are broken with real triggers.

use std::time::Duration;

use serde_json::{Value, json};
use testkit::doubles::Fault;
use testkit::harness::{TestStack, create_event, seed};

fn request(email: &str) -> Value {
    json!({
        "email": email,
        "permissions": [{"pageId": seed::PAGE_DASHBOARD, "canRead": true}],
        "create_employee": true,
        "employee_data": {"firstName": "Fay", "lastName": "Lure"}
    })
}

/// Fails the flow, checks the answer and that nothing is left, then retries successfully.
async fn fails_cleanly_then_retry_succeeds(
    stack: &TestStack,
    email: &str,
    status: u16,
    code: &str,
) -> Value {
    let failed = stack
        .call(create_event(seed::ACME_ADMIN_SUB, &request(email)))
        .await;
    failed.assert_answer(status, code);
    assert!(
        failed.body["message"]
            .as_str()
            .unwrap()
            .contains("Nothing was created"),
        "{:?}",
        failed.body
    );
    assert!(
        failed.body["requestId"]
            .as_str()
            .is_some_and(|id| !id.is_empty())
    );
    stack.assert_nothing_kept(email).await;
    failed.body
}

async fn retry_succeeds(stack: &TestStack, email: &str) {
    retry_succeeds_after_emails(stack, email, 0).await;
}

/// `earlier_emails`: messages the failed attempt had already sent (an email cannot be unsent).
async fn retry_succeeds_after_emails(stack: &TestStack, email: &str, earlier_emails: usize) {
    let retried = stack
        .call(create_event(seed::ACME_ADMIN_SUB, &request(email)))
        .await;
    assert_eq!(retried.status, 201, "retry: {:?}", retried.body);
    assert_eq!(stack.rows_for(email).await.per_user(), (1, 1, 1, 1));
    assert_eq!(stack.auth0.users_with_email(email).len(), 1);
    assert_eq!(stack.email.emails_to(email).len(), 1 + earlier_emails);
}

#[tokio::test]
async fn each_database_step_that_fails_rolls_back_everything_and_a_retry_works() {
    // (table, trigger timing, what the admin is told)
    let cases = [
        ("users", "BEFORE INSERT", "storing the user"),
        ("employees", "BEFORE INSERT", "storing the employee"),
        (
            "user_page_access",
            "BEFORE INSERT",
            "storing the page permissions",
        ),
        ("users", "BEFORE UPDATE", "storing the Auth0 user id"),
        (
            "password_reset_tokens",
            "BEFORE INSERT",
            "storing the password-setup token",
        ),
        ("users", "COMMIT AFTER INSERT", "committing"),
    ];
    let stack = TestStack::start().await;
    for (i, (table, timing, step)) in cases.into_iter().enumerate() {
        let email = format!("db-step-{i}@example.com");
        stack.sabotage(table, timing).await;
        let body = fails_cleanly_then_retry_succeeds(&stack, &email, 500, "INTERNAL_ERROR").await;
        let message = body["message"].as_str().unwrap();
        assert!(message.contains(step), "{table} {timing}: {message}");
        assert!(
            !message.contains("sabotaged"),
            "database messages stay out of responses: {message}"
        );
        stack.repair().await;
        if timing.starts_with("COMMIT") {
            // The email is the last step before COMMIT, so it had gone out; its link is dead.
            let sent = stack.email.emails_to(&email);
            assert_eq!(sent.len(), 1);
            let dead_token = sent[0]
                .text
                .as_deref()
                .unwrap()
                .split("token=")
                .nth(1)
                .unwrap()[..64]
                .to_string();
            retry_succeeds_after_emails(&stack, &email, 1).await;
            let stored: i64 = stack
                .sql()
                .await
                .query_one(
                    "SELECT count(*) FROM password_reset_tokens WHERE token_hash = sha256(convert_to($1, 'UTF8'))",
                    &[&dead_token],
                )
                .await
                .unwrap()
                .get(0);
            assert_eq!(stored, 0, "the failed attempt's token was rolled back");
        } else {
            retry_succeeds(&stack, &email).await;
        }
    }
    // The Auth0 users created before the later failures were all deleted again.
    assert_eq!(stack.auth0.users().len(), 6);
}

#[tokio::test]
async fn an_auth0_error_on_create_is_a_502_and_nothing_is_kept() {
    let stack = TestStack::start().await;
    stack.auth0.inject(Fault::status("create_user", 500));
    fails_cleanly_then_retry_succeeds(&stack, "auth0-500@example.com", 502, "AUTH0_FAILED").await;
    retry_succeeds(&stack, "auth0-500@example.com").await;
}

#[tokio::test]
async fn a_dropped_auth0_connection_is_a_503_and_nothing_is_kept() {
    let stack = TestStack::start().await;
    stack.auth0.inject(Fault::drop_connection("create_user"));
    fails_cleanly_then_retry_succeeds(&stack, "auth0-drop@example.com", 503, "AUTH0_UNAVAILABLE")
        .await;
    retry_succeeds(&stack, "auth0-drop@example.com").await;
}

#[tokio::test]
async fn an_email_api_failure_is_a_502_and_the_auth0_user_is_deleted() {
    let stack = TestStack::start().await;
    // Two failures: the first try and its one retry.
    stack
        .email
        .inject(Fault::status("send_email", 500).times(2));
    fails_cleanly_then_retry_succeeds(&stack, "email-500@example.com", 502, "EMAIL_FAILED").await;
    assert_eq!(stack.auth0.calls("delete_user"), 1);
    retry_succeeds(&stack, "email-500@example.com").await;
}

/// The email fails and so does the Auth0 user's removal: the answer says the user is left for
/// cleanup and that a retry is still safe, and the retry takes the Auth0 user up.
#[tokio::test]
async fn an_email_failure_whose_undo_fails_too_says_what_is_left_and_a_retry_takes_it_up() {
    let stack = TestStack::start().await;
    let email = "undo-fails@example.com";
    stack
        .email
        .inject(Fault::status("send_email", 500).times(2));
    stack
        .auth0
        .inject(Fault::status("delete_user", 500).times(3));
    let failed = stack
        .call(create_event(seed::ACME_ADMIN_SUB, &request(email)))
        .await;
    failed.assert_answer(502, "EMAIL_FAILED");
    let message = failed.body["message"].as_str().unwrap();
    assert!(
        message.contains("could not be removed yet") && message.contains("safe to try again"),
        "{message}"
    );
    assert_eq!(stack.rows_for(email).await.per_user(), (0, 0, 0, 0));
    assert_eq!(
        stack.auth0.users_with_email(email).len(),
        1,
        "left for cleanup"
    );
    // The retry adopts the Auth0 user (no delete), so no fault left matters.
    retry_succeeds(&stack, email).await;
}

#[tokio::test]
async fn one_email_api_hiccup_is_retried_with_the_same_idempotency_key() {
    let stack = TestStack::start().await;
    stack.email.inject(Fault::status("send_email", 503));
    let response = stack
        .call(create_event(
            seed::ACME_ADMIN_SUB,
            &request("hiccup@example.com"),
        ))
        .await;
    assert_eq!(response.status, 201, "{:?}", response.body);
    assert_eq!(stack.email.calls(), 2);
    assert_eq!(stack.email.emails_to("hiccup@example.com").len(), 1);
}

#[tokio::test]
async fn a_rejected_email_api_key_is_a_502_and_nothing_is_kept() {
    let stack = TestStack::start_with(|vars| {
        vars.insert("EMAIL_API_KEY".into(), "re_wrong".into());
    })
    .await;
    fails_cleanly_then_retry_succeeds(&stack, "wrong-key@example.com", 502, "EMAIL_FAILED").await;
}

#[tokio::test]
async fn an_auth0_that_is_slower_than_the_timeout_leaves_nothing_behind() {
    // HTTP_TIMEOUT_MS is 2000 in tests; the double creates the user, then answers after 3 s.
    let stack = TestStack::start().await;
    stack.auth0.inject(Fault::delay("create_user", 3_000));
    fails_cleanly_then_retry_succeeds(&stack, "slow@example.com", 503, "AUTH0_UNAVAILABLE").await;
    // The user Auth0 made after we gave up was found by its tag and deleted.
    assert_eq!(stack.auth0.calls("delete_user"), 1);
    retry_succeeds(&stack, "slow@example.com").await;
}

#[tokio::test]
async fn an_auth0_429_is_waited_out_and_the_user_is_created() {
    let stack = TestStack::start().await;
    stack.auth0.inject(Fault::status("create_user", 429));
    let response = stack
        .call(create_event(
            seed::ACME_ADMIN_SUB,
            &request("rate@example.com"),
        ))
        .await;
    assert_eq!(response.status, 201, "{:?}", response.body);
    assert_eq!(stack.auth0.calls("create_user"), 2);
    assert_eq!(stack.auth0.users_with_email("rate@example.com").len(), 1);
}

#[tokio::test]
async fn an_auth0_that_keeps_answering_429_is_a_503_and_nothing_is_kept() {
    let stack = TestStack::start().await;
    stack
        .auth0
        .inject(Fault::status("create_user", 429).times(10));
    fails_cleanly_then_retry_succeeds(&stack, "limited@example.com", 503, "AUTH0_UNAVAILABLE")
        .await;
    stack.auth0.reset();
    retry_succeeds(&stack, "limited@example.com").await;
}

#[tokio::test]
async fn an_orphan_auth0_user_of_ours_is_adopted() {
    let stack = TestStack::start().await;
    let orphan_id = stack.auth0.insert_user(
        "orphan@example.com",
        json!({"created_by": "atomic-user-provisioning", "tenant_id": seed::ACME, "role": "USER", "db_user_id": "00000000-0000-4000-8000-00000000dead"}),
    );
    let response = stack
        .call(create_event(
            seed::ACME_ADMIN_SUB,
            &request("orphan@example.com"),
        ))
        .await;
    assert_eq!(response.status, 201, "{:?}", response.body);
    assert_eq!(response.body["user"]["auth0UserId"], orphan_id.as_str());
    let users = stack.auth0.users_with_email("orphan@example.com");
    assert_eq!(users.len(), 1);
    assert_eq!(
        users[0]["app_metadata"]["db_user_id"],
        response.body["user"]["id"]
    );
    let sub: String = stack
        .sql()
        .await
        .query_one(
            "SELECT auth0_sub FROM users WHERE email = 'orphan@example.com'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(sub, orphan_id);
}

#[tokio::test]
async fn an_auth0_user_we_did_not_create_is_a_409_and_is_left_alone() {
    let stack = TestStack::start().await;
    let foreign_id = stack.auth0.insert_user("foreign@example.com", json!({}));
    let response = stack
        .call(create_event(
            seed::ACME_ADMIN_SUB,
            &request("foreign@example.com"),
        ))
        .await;
    response.assert_answer(409, "AUTH0_USER_EXISTS");
    assert!(response.body["userFriendly"].is_string());
    assert_eq!(
        stack.rows_for("foreign@example.com").await,
        Default::default()
    );
    let users = stack.auth0.users_with_email("foreign@example.com");
    assert_eq!(users.len(), 1);
    assert_eq!(users[0]["user_id"], foreign_id.as_str());
    assert_eq!(stack.auth0.calls("delete_user"), 0);
}

#[tokio::test]
async fn auth0_refusing_our_client_credentials_is_a_502_naming_auth0() {
    let stack = TestStack::start_with(|vars| {
        vars.insert("AUTH0_CLIENT_SECRET".into(), "wrong-secret".into());
    })
    .await;
    let body =
        fails_cleanly_then_retry_succeeds(&stack, "creds@example.com", 502, "AUTH0_FAILED").await;
    assert!(
        body["message"].as_str().unwrap().contains("credentials"),
        "{body:?}"
    );
    assert!(!body.to_string().contains("wrong-secret"));
}

#[tokio::test]
async fn a_lambda_deadline_too_close_for_auth0_is_a_503_and_nothing_is_kept() {
    let stack = TestStack::start().await;
    let response = stack
        .call_with_timeout(
            create_event(seed::ACME_ADMIN_SUB, &request("late@example.com")),
            Duration::from_millis(1_200),
        )
        .await;
    response.assert_answer(503, "TIMEOUT");
    stack.assert_nothing_kept("late@example.com").await;
}

/// Makes the next `collisions` reset-token inserts fail as a token-hash collision would.
async fn collide_reset_tokens(stack: &TestStack, collisions: i32) {
    // A sequence, because nextval survives the savepoint rollback that undoes the insert.
    let sql = format!(
        "CREATE SEQUENCE token_inserts;
         CREATE FUNCTION collide() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN
             IF nextval('token_inserts') <= {collisions} THEN
               RAISE unique_violation USING MESSAGE = 'duplicate token hash',
                 CONSTRAINT = 'password_reset_tokens_token_hash_key';
             END IF;
             RETURN NEW;
           END $$;
         CREATE TRIGGER collide BEFORE INSERT ON password_reset_tokens
           FOR EACH ROW EXECUTE FUNCTION collide();"
    );
    stack.execute(&sql).await;
}

#[tokio::test]
async fn a_reset_token_collision_is_retried_once_inside_the_savepoint() {
    let stack = TestStack::start().await;
    collide_reset_tokens(&stack, 1).await;
    let response = stack
        .call(create_event(
            seed::ACME_ADMIN_SUB,
            &request("collide@example.com"),
        ))
        .await;
    assert_eq!(response.status, 201, "{:?}", response.body);
    let rows = stack.rows_for("collide@example.com").await;
    assert_eq!((rows.users, rows.reset_tokens), (1, 1));
    assert_eq!(stack.email.emails_to("collide@example.com").len(), 1);
}

#[tokio::test]
async fn a_second_reset_token_collision_fails_the_request_and_nothing_is_kept() {
    let stack = TestStack::start().await;
    collide_reset_tokens(&stack, 2).await;
    fails_cleanly_then_retry_succeeds(&stack, "collide-twice@example.com", 500, "INTERNAL_ERROR")
        .await;
    assert_eq!(stack.auth0.calls("delete_user"), 1);
    retry_succeeds(&stack, "collide-twice@example.com").await;
}
