//! The answer to each database and dependency failure says what really happened: transient
//! lock waits are 503s, bad text is refused at the edge, a token failure does not claim an
//! Auth0 user was left behind, and no address leaks through an HTTP error.

use serde_json::json;
use shared::cleanup::CleanupSummary;
use testkit::doubles::Fault;
use testkit::harness::{Response, TestStack, create_event, seed};
use testkit::lambda_process::LambdaProcess;
use testkit::runtime_api::Outcome;

use crate::cleanup::{HOUR, pending_row, scheduled_event};

async fn create(stack: &TestStack, email: &str) -> Response {
    stack
        .call(create_event(seed::ACME_ADMIN_SUB, &json!({"email": email})))
        .await
}

/// Another session that holds whatever `sql` takes until it is dropped (which rolls back).
async fn hold(stack: &TestStack, sql: &str) -> tokio_postgres::Client {
    let other = stack.sql().await;
    other.batch_execute(&format!("BEGIN; {sql}")).await.unwrap();
    other
}

#[tokio::test]
async fn a_table_lock_while_the_caller_is_checked_answers_503_database_busy_and_keeps_nothing() {
    let stack = TestStack::start().await;
    let email = "locked.out@acme.test";
    let other = hold(&stack, "LOCK TABLE users IN ACCESS EXCLUSIVE MODE").await;

    let refused = create(&stack, email).await;

    refused.assert_answer(503, "DATABASE_BUSY");
    let message = refused.body["message"].as_str().unwrap();
    assert!(message.contains("checking the caller"), "{message}");
    assert!(message.contains("safe to try again"), "{message}");
    other.batch_execute("ROLLBACK").await.unwrap();
    stack.assert_nothing_kept(email).await;
    assert_eq!(create(&stack, email).await.status, 201);
}

#[tokio::test]
async fn a_lock_timeout_on_the_user_insert_answers_503_database_busy_whatever_held_the_lock() {
    let stack = TestStack::start().await;
    // Inserts wait, reads do not: the caller is checked, then the insert times out.
    let table_lock = "LOCK TABLE users IN SHARE MODE";
    // The same address, inserted by a transaction that has not committed yet.
    let in_flight = format!(
        "INSERT INTO users (id, tenant_id, business_id, email, role, auth0_sub)
         SELECT id, tenant_id, business_id, 'held.{{}}@acme.test', 'USER', 'pending_' || id
           FROM (SELECT gen_random_uuid() AS id, tenant_id, business_id
                   FROM users WHERE id = '{}') AS caller",
        seed::ACME_ADMIN_ID
    );
    for (case, holder) in [("table", table_lock.to_string()), ("insert", in_flight)] {
        let email = format!("held.{case}@acme.test");
        let other = hold(&stack, &holder.replace("{}", case)).await;

        let refused = create(&stack, &email).await;

        assert_eq!(
            (refused.status, refused.code()),
            (503, "DATABASE_BUSY"),
            "{case}: {}",
            refused.body
        );
        assert!(stack.auth0.users_with_email(&email).is_empty(), "{case}");
        other.batch_execute("ROLLBACK").await.unwrap();
        stack.assert_nothing_kept(&email).await;
        let retried = create(&stack, &email).await;
        assert_eq!(retried.status, 201, "{case}: {}", retried.body);
    }
}

#[tokio::test]
async fn a_nul_character_in_a_text_field_is_refused_with_400_naming_the_field() {
    let stack = TestStack::start().await;
    let email = "nul.byte@acme.test";
    for field in ["firstName", "lastName", "department", "jobTitle"] {
        let mut data = json!({"firstName": "Ada", "lastName": "Lovelace"});
        data[field] = json!("Ada\u{0}Byron");
        let refused = stack
            .call(create_event(
                seed::ACME_ADMIN_SUB,
                &json!({"email": email, "create_employee": true, "employee_data": data}),
            ))
            .await;
        assert_eq!(
            (refused.status, refused.code()),
            (400, "VALIDATION_ERROR"),
            "{field}: {}",
            refused.body
        );
        assert_eq!(refused.body["field"], format!("employee_data.{field}"));
    }
    stack.assert_nothing_kept(email).await;
    assert_eq!(stack.auth0.calls("create_user"), 0);
}

#[tokio::test]
async fn a_failed_token_fetch_does_not_claim_an_auth0_user_was_left_behind() {
    let cases = [
        (
            Fault::drop_connection("token").times(10),
            503,
            "AUTH0_UNAVAILABLE",
        ),
        (Fault::status("token", 500).times(10), 502, "AUTH0_FAILED"),
    ];
    for (fault, status, code) in cases {
        // A fresh instance: no token cached yet.
        let stack = TestStack::start().await;
        let email = "no.token@acme.test";
        stack.auth0.inject(fault);

        let refused = create(&stack, email).await;

        refused.assert_answer(status, code);
        let message = refused.body["message"].as_str().unwrap();
        assert!(
            !message.contains("could not be removed"),
            "{code}: {message}"
        );
        assert!(message.contains("Nothing was created"), "{code}: {message}");
        // Nothing was sent, so nothing was searched for either.
        assert_eq!(stack.auth0.calls("create_user"), 0, "{code}");
        assert_eq!(stack.auth0.calls("users_by_email"), 0, "{code}");
        stack.assert_nothing_kept(email).await;
    }
}

async fn start_binary(stack: &TestStack, name: &str) -> LambdaProcess {
    let mut vars = stack.vars.clone();
    vars.insert("RUST_LOG".into(), "info".into());
    LambdaProcess::start(name, &vars)
        .await
        .expect("`cargo build --bins` ran before the tests")
}

/// `users-by-email` carries the address in its query string; a dropped call must not bring
/// the request URL into a log line or an answer, plainly or percent-encoded.
#[tokio::test]
async fn no_address_reaches_a_log_or_an_answer_when_auth0_drops_a_users_by_email_call() {
    let stack = TestStack::start().await;

    // create-user: Auth0 says the address exists, then drops the lookup of the orphan.
    let function = start_binary(&stack, "create-user").await;
    stack.auth0.inject(Fault::status("create_user", 409));
    stack.auth0.inject(Fault::drop_connection("users_by_email"));
    let invocation = function
        .invoke(create_event(
            seed::ACME_ADMIN_SUB,
            &json!({"email": "adopt.lost@example.com"}),
        ))
        .await
        .unwrap();
    let response = Response::of(&invocation);
    response.assert_answer(503, "AUTH0_UNAVAILABLE");
    let create_logs = function.kill().await.text;
    assert!(
        create_logs.contains("users_by_email"),
        "the failure is logged:\n{create_logs}"
    );

    // cleanup: the search for the pending rows' addresses (all in its query string) is dropped.
    pending_row(&stack, "half.gone@acme.test", HOUR).await;
    let function = start_binary(&stack, "cleanup").await;
    stack.auth0.inject(Fault::drop_connection("search_users"));
    let invocation = function.invoke(scheduled_event()).await.unwrap();
    let Outcome::Response(answer) = invocation.outcome else {
        panic!("{:?}", invocation.outcome)
    };
    let summary: CleanupSummary = serde_json::from_value(answer.clone()).unwrap();
    assert!(
        summary
            .errors
            .iter()
            .any(|e| e.error.contains("search_users")),
        "{summary:?}"
    );
    let cleanup_logs = function.kill().await.text;

    for (what, text) in [
        ("create-user's log", create_logs),
        ("cleanup's answer", answer.to_string()),
        ("cleanup's log", cleanup_logs),
    ] {
        for secret in ["adopt.lost", "half.gone"] {
            assert!(
                !text.contains(secret),
                "{what} contains {secret:?}:\n{text}"
            );
        }
        assert!(!text.contains("%40"), "{what} holds a URL:\n{text}");
    }
}

/// The caller's row is read and locked (FOR SHARE) with BEGIN: a deactivation of the caller
/// that is under way when the create starts is waited for, and the create is refused for what
/// the caller is now, with nothing kept.
#[tokio::test]
async fn a_caller_deactivated_while_its_create_waits_is_refused_and_nothing_is_kept() {
    let stack = TestStack::start().await;
    let email = "late.refusal@acme.test";
    // A first create prepares the statements on the (one) pooled connection: preparing the
    // insert would otherwise wait for the lock below before the caller is read.
    assert_eq!(create(&stack, "first@acme.test").await.status, 201);
    // Reads pass a SHARE lock, inserts wait for it: the create reads an active caller, then
    // its insert waits while the same session deactivates the caller.
    let other = hold(&stack, "LOCK TABLE users IN SHARE MODE").await;
    other
        .execute(
            "UPDATE users SET is_active = false WHERE auth0_sub = $1",
            &[&seed::ACME_ADMIN_SUB],
        )
        .await
        .unwrap();
    let deactivate_once_waiting = async {
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
        other.batch_execute("COMMIT").await.unwrap();
    };

    let (refused, ()) = tokio::join!(create(&stack, email), deactivate_once_waiting);

    refused.assert_answer(403, "CALLER_INACTIVE");
    stack.assert_nothing_kept(email).await;
    assert!(stack.email.emails_to(email).is_empty());
}
