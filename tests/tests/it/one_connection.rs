//! Every way a create-user or resend transaction can end, one after another on a single
//! pooled connection (`DB_POOL_SIZE=1`). BEGIN goes out with the first reads and a transaction
//! that ends in an error is rolled back without waiting for the answer, so each request here
//! would see the last one's leftovers if a rollback were missing: its rows, an aborted
//! transaction, or a "transaction already in progress".

use std::time::Duration;

use serde_json::{Value, json};
use shared::db::{self, Bound, Tx};
use shared::deadline::Deadline;
use testkit::doubles::Fault;
use testkit::harness::{TestStack, create_event, resend_event, seed};

fn request(email: &str, employee: Value) -> Value {
    let mut body = json!({
        "email": email,
        "permissions": [
            {"pageId": seed::PAGE_DASHBOARD, "canRead": true},
            {"pageId": seed::PAGE_REPORTS, "canRead": true, "canWrite": true}
        ],
    });
    body.as_object_mut()
        .unwrap()
        .extend(employee.as_object().unwrap().clone());
    body
}

fn new_employee() -> Value {
    json!({"create_employee": true, "employee_data": {"firstName": "Una", "lastName": "Pool"}})
}

/// The pid and state of the app's one backend.
async fn app_backends(stack: &TestStack) -> Vec<(i32, String)> {
    stack
        .sql()
        .await
        .query(
            "SELECT pid, state FROM pg_stat_activity
              WHERE application_name = 'atomic-user-provisioning' AND datname = current_database()",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

#[tokio::test]
async fn every_ending_of_a_transaction_leaves_the_one_connection_clean_for_the_next() {
    let stack = TestStack::start_with(|vars| {
        vars.insert("DB_POOL_SIZE".into(), "1".into());
    })
    .await;
    let admin = seed::ACME_ADMIN_SUB;

    let first = stack
        .call(create_event(
            admin,
            &request("first@acme.test", new_employee()),
        ))
        .await;
    assert_eq!(first.status, 201, "{}", first.body);
    let backends = app_backends(&stack).await;
    assert_eq!(backends.len(), 1, "{backends:?}");
    let pid = backends[0].0;

    // Refused after the pipelined insert of the user failed: the rest of the burst ran in an
    // aborted transaction.
    let taken = stack
        .call(create_event(
            admin,
            &request("first@acme.test", new_employee()),
        ))
        .await;
    taken.assert_answer(409, "USER_ALREADY_EXISTS");

    // Refused after the user row was written, by the employee link in the same burst.
    let linked = stack
        .call(create_event(
            admin,
            &request(
                "linked@acme.test",
                json!({"link_employee": true, "employee_id": seed::EMPLOYEE_LINKED}),
            ),
        ))
        .await;
    linked.assert_answer(409, "EMPLOYEE_ALREADY_LINKED");
    stack.assert_nothing_kept("linked@acme.test").await;

    // Refused after everything but COMMIT was done: the email failed (its try and its retry).
    stack
        .email
        .inject(Fault::status("send_email", 500).times(2));
    let unsent = stack
        .call(create_event(
            admin,
            &request("unsent@acme.test", new_employee()),
        ))
        .await;
    unsent.assert_answer(502, "EMAIL_FAILED");

    // A resend whose email fails rolls back its token savepoint and its transaction.
    stack
        .email
        .inject(Fault::status("send_email", 500).times(2));
    let resent = stack.call(resend_event(admin, "first@acme.test")).await;
    resent.assert_answer(502, "EMAIL_FAILED");

    // Each of them left nothing behind on the connection: the same requests now succeed on it.
    for (email, employee) in [
        (
            "linked@acme.test",
            json!({"link_employee": true, "employee_id": seed::EMPLOYEE_FREE}),
        ),
        ("unsent@acme.test", new_employee()),
    ] {
        let retried = stack
            .call(create_event(admin, &request(email, employee)))
            .await;
        assert_eq!(retried.status, 201, "{email}: {}", retried.body);
        assert_eq!(
            stack.rows_for(email).await.per_user(),
            (1, 1, 2, 1),
            "{email}"
        );
        assert_eq!(stack.email.emails_to(email).len(), 1, "{email}");
    }
    let resent = stack.call(resend_event(admin, "first@acme.test")).await;
    assert_eq!(resent.status, 200, "{}", resent.body);
    let open_tokens: i64 = stack
        .sql()
        .await
        .query_one(
            "SELECT count(*) FROM password_reset_tokens t JOIN users u ON u.id = t.user_id
              WHERE u.email = 'first@acme.test' AND t.used_at IS NULL",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(open_tokens, 1, "the resend replaced the first link");

    // Still the one connection, and no transaction left open on it.
    assert_eq!(app_backends(&stack).await, vec![(pid, "idle".to_string())]);
}

/// Why create-user prepares a burst's statements first: one the connection has not prepared
/// yet goes out behind one polled after it that was prepared already.
#[tokio::test]
async fn pipelined_statements_run_in_the_order_polled_once_prepared() {
    const WRITE: &str = "INSERT INTO burst_order VALUES (1)";
    const READ: &str = "SELECT count(*) FROM burst_order";
    let stack = TestStack::start().await;
    let db = Bound::work(
        Deadline::after(Duration::from_secs(20)),
        &stack.state.config.timeouts,
    );
    let mut client = stack.state.pool.get().await.unwrap();
    client
        .batch_execute("CREATE TEMPORARY TABLE burst_order (n int)")
        .await
        .unwrap();
    client.prepare_cached(READ).await.unwrap();

    // The write polled first still reaches the server second: its Parse goes out alone.
    let seen = pipelined_write_then_read(&mut client, db, WRITE, READ).await;
    assert_eq!(seen, 0, "the read ran before the write");

    db::ensure_prepared(db, &client, &[WRITE, READ])
        .await
        .unwrap();
    let seen = pipelined_write_then_read(&mut client, db, WRITE, READ).await;
    assert_eq!(seen, 1, "prepared first, the read comes after the write");
}

/// Writes and reads in one burst with BEGIN; rolls back (the Tx is dropped).
async fn pipelined_write_then_read(
    client: &mut deadpool_postgres::Object,
    db: Bound,
    write: &str,
    read: &str,
) -> i64 {
    let (_tx, (written, row)) = Tx::begin_with(client, db, |client, _db| async move {
        tokio::join!(
            biased;
            async { client.execute(&client.prepare_cached(write).await?, &[]).await },
            async { client.query_one(&client.prepare_cached(read).await?, &[]).await }
        )
    })
    .await
    .unwrap();
    assert_eq!(written.unwrap(), 1);
    row.unwrap().get(0)
}
