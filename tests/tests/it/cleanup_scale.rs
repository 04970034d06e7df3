//! The database-orphan pass in its scaled form: several addresses looked up in Auth0 at once,
//! rows deleted per batch in one statement, and row by row when that statement fails. Every
//! safety rule of the reconciler holds as it does one row at a time.

use serde_json::Value;
use shared::cleanup::summary::{Kind, SkipReason};
use testkit::harness::{TestStack, seed};
use uuid::Uuid;

use crate::cleanup::{
    HOUR, auth0_user_exists, cleanup, pending_row, scheduled_event, tagged_auth0_user, user_exists,
    user_row,
};

#[tokio::test]
async fn addresses_looked_up_together_keep_every_safety_rule() {
    let stack = TestStack::start_with(|vars| {
        vars.insert("CLEANUP_BATCH_SIZE".into(), "3".into());
    })
    .await;
    let mut gone = Vec::new();
    for i in 0..5 {
        let email = format!("orphan{i}@acme.test");
        let row = pending_row(&stack, &email, HOUR).await;
        gone.push((row, tagged_auth0_user(&stack, &email, row, HOUR)));
    }
    // A login made elsewhere: the row is a person's decision.
    let foreign_row = pending_row(&stack, "alone@acme.test", HOUR).await;
    let foreign = stack.auth0.insert_user("alone@acme.test", Value::Null);
    // A tagged user with this address that a finished row holds (its address changed since).
    let claimed_row = pending_row(&stack, "moved@acme.test", HOUR).await;
    let claimed = tagged_auth0_user(&stack, "moved@acme.test", Uuid::new_v4(), HOUR);
    user_row(&stack, "moved.on@acme.test", &claimed).await;
    // An address someone holds.
    let busy_row = pending_row(&stack, "busy@acme.test", HOUR).await;
    let busy = tagged_auth0_user(&stack, "busy@acme.test", busy_row, HOUR);
    let mut holder = stack.sql().await;
    let holding = holder.transaction().await.unwrap();
    shared::db::locks::lock_address(&holding, "busy@acme.test")
        .await
        .unwrap();

    let summary = cleanup(&stack, scheduled_event()).await;

    assert!(summary.errors.is_empty() && !summary.partial, "{summary:?}");
    assert_eq!(summary.found.db_orphans, 8, "{summary:?}");
    assert_eq!(
        (
            summary.removed.db_orphans,
            summary.removed.auth0_users_of_db_orphans
        ),
        (6, 5),
        "{summary:?}"
    );
    let mut reasons: Vec<_> = summary.skipped.iter().map(|s| (s.kind, s.reason)).collect();
    reasons.sort_by_key(|r| format!("{r:?}"));
    assert_eq!(
        reasons,
        [
            (Kind::DbOrphan, SkipReason::AddressBusy),
            (Kind::DbOrphan, SkipReason::Auth0UserNotOurs)
        ]
    );
    for (row, auth0_id) in &gone {
        assert!(!user_exists(&stack, *row).await && !auth0_user_exists(&stack, auth0_id));
    }
    assert!(!user_exists(&stack, claimed_row).await);
    for kept in [&foreign, &claimed, &busy] {
        assert!(auth0_user_exists(&stack, kept), "{kept} was deleted");
    }
    assert!(user_exists(&stack, foreign_row).await && user_exists(&stack, busy_row).await);
    holding.rollback().await.unwrap();
}

#[tokio::test]
async fn a_row_that_cannot_be_deleted_does_not_keep_the_rest_of_its_batch() {
    let stack = TestStack::start_with(|vars| {
        vars.insert("DB_LOCK_TIMEOUT_MS".into(), "300".into());
    })
    .await;
    let stuck = pending_row(&stack, "stuck@acme.test", HOUR).await;
    let others = [
        pending_row(&stack, "other1@acme.test", HOUR).await,
        pending_row(&stack, "other2@acme.test", HOUR).await,
    ];
    let employee = Uuid::parse_str(seed::EMPLOYEE_FREE).unwrap();
    let sql = stack.sql().await;
    sql.execute(
        "UPDATE employees SET user_id = $1 WHERE id = $2",
        &[&stuck, &employee],
    )
    .await
    .unwrap();
    // Unlinking the employee needs its row, which another transaction holds.
    let mut holder = stack.sql().await;
    let holding = holder.transaction().await.unwrap();
    holding
        .execute(
            "SELECT 1 FROM employees WHERE id = $1 FOR UPDATE",
            &[&employee],
        )
        .await
        .unwrap();

    let summary = cleanup(&stack, scheduled_event()).await;

    assert_eq!(summary.removed.db_orphans, 2, "{summary:?}");
    assert_eq!(summary.errors.len(), 1, "{summary:?}");
    assert_eq!(
        (summary.errors[0].kind, summary.errors[0].id.as_deref()),
        (Kind::DbOrphan, Some(stuck.to_string().as_str()))
    );
    assert!(user_exists(&stack, stuck).await);
    for row in others {
        assert!(!user_exists(&stack, row).await);
    }

    holding.rollback().await.unwrap();
    let next = cleanup(&stack, scheduled_event()).await;
    assert_eq!(
        (next.removed.db_orphans, next.removed.employees_unlinked),
        (1, 1),
        "{next:?}"
    );
    assert!(!user_exists(&stack, stuck).await);
}

#[tokio::test]
async fn database_orphans_without_auth0_users_cost_under_a_twentieth_of_a_call_each() {
    let stack = TestStack::start_with(|vars| {
        vars.insert("CLEANUP_AUTH0_MAX_RPS".into(), "0".into());
    })
    .await;
    stack
        .sql()
        .await
        .execute(
            "INSERT INTO users (id, tenant_id, email, role, auth0_sub, created_at)
             SELECT id, $1::text::uuid, 'orphan' || n || '@acme.test', 'USER', 'pending_' || id,
                    now() - interval '1 hour'
               FROM (SELECT gen_random_uuid() AS id, n FROM generate_series(1, 200) n) s",
            &[&seed::ACME],
        )
        .await
        .unwrap();
    let before: usize = management_calls(&stack);

    let summary = cleanup(&stack, scheduled_event()).await;

    assert_eq!(summary.removed.db_orphans, 200, "{summary:?}");
    let calls = management_calls(&stack) - before;
    assert!(
        (calls as f64) / 200.0 < 0.05,
        "{calls} Management API calls for 200 orphans"
    );
}

fn management_calls(stack: &TestStack) -> usize {
    testkit::doubles::AUTH0_OPS
        .iter()
        .filter(|op| **op != "token")
        .map(|op| stack.auth0.calls(op))
        .sum()
}
