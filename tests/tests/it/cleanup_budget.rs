//! Cleanup's Auth0 budget: a ceiling on its Management API calls per second, and a pause
//! whenever Auth0 reports the rate-limit window nearly used up, so create-user keeps its
//! headroom. Checked against the double's rate limit: a call it refuses with 429 is counted
//! by the double but not by the caller, which retries it.

use std::time::Duration;

use serde_json::json;
use testkit::harness::{TestStack, create_event, seed};
use uuid::Uuid;

use crate::cleanup::{
    HOUR, cleanup, pending_row, removed_without_errors, scheduled_event, tagged_auth0_user,
};

/// Two pending rows with their Auth0 users and one Auth0 orphan: seven Management API calls
/// (two lookups and two deletes; a search, a re-read and a delete).
async fn leftovers(stack: &TestStack) {
    for i in 0..2 {
        let email = format!("half{i}@acme.test");
        let row = pending_row(stack, &email, HOUR).await;
        tagged_auth0_user(stack, &email, row, HOUR);
    }
    tagged_auth0_user(stack, "crashed@acme.test", Uuid::new_v4(), HOUR);
}

/// Calls the double saw for cleanup's operations, 429s included.
fn cleanup_calls_seen(stack: &TestStack) -> u64 {
    ["users_by_email", "delete_user", "search_users", "get_user"]
        .iter()
        .map(|op| stack.auth0.calls(op) as u64)
        .sum()
}

/// `n` creates, one every half second or so; their statuses.
async fn create_a_stream(stack: &TestStack, n: usize) -> Vec<u16> {
    let mut statuses = Vec::new();
    for i in 0..n {
        let body = json!({"email": format!("new{i}@acme.test")});
        statuses.push(
            stack
                .call(create_event(seed::ACME_ADMIN_SUB, &body))
                .await
                .status,
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    statuses
}

#[tokio::test]
async fn a_sweep_stays_under_its_ceiling_and_creates_beside_it_see_no_429() {
    let stack = TestStack::start_with(|vars| {
        vars.insert("CLEANUP_AUTH0_MAX_RPS".into(), "2".into());
    })
    .await;
    leftovers(&stack).await;
    // Six calls a second for the whole tenant: cleanup's two plus the creates' at most two.
    stack.auth0.set_rate_limit(Some(6));

    let creates = create_a_stream(&stack, 6);
    let (summary, statuses) = tokio::join!(cleanup(&stack, scheduled_event()), creates);

    removed_without_errors(&summary, (2, 2, 1));
    assert_eq!(statuses, [201; 6]);
    // Not one 429: each create took one call, and the double saw no call cleanup did not make.
    assert_eq!(stack.auth0.calls("create_user"), 6);
    assert_eq!(summary.auth0_calls, 8, "{summary:?}");
    assert_eq!(cleanup_calls_seen(&stack), 8);
    // Eight calls at two a second: the last starts at least three seconds after the first.
    assert!(summary.auth0_wait_ms > 0, "{summary:?}");
    assert!(summary.duration_ms >= 3_000, "{summary:?}");
}

#[tokio::test]
async fn cleanup_pauses_while_auth0_reports_the_window_nearly_used_up() {
    let stack = TestStack::start_with(|vars| {
        vars.insert("CLEANUP_AUTH0_MAX_RPS".into(), "0".into());
        vars.insert("CLEANUP_AUTH0_RESERVE".into(), "3".into());
    })
    .await;
    leftovers(&stack).await;
    // Five a second: cleanup takes two, then leaves three to create-user until the reset.
    stack.auth0.set_rate_limit(Some(5));

    let (summary, statuses) = tokio::join!(
        cleanup(&stack, scheduled_event()),
        create_a_stream(&stack, 3)
    );

    removed_without_errors(&summary, (2, 2, 1));
    assert_eq!(statuses, [201; 3]);
    assert_eq!(
        stack.auth0.calls("create_user"),
        3,
        "a create was answered 429"
    );
    assert_eq!(summary.auth0_calls, 8, "{summary:?}");
    assert_eq!(cleanup_calls_seen(&stack), 8, "cleanup was answered 429");
    assert!(summary.auth0_wait_ms > 0, "{summary:?}");
}
