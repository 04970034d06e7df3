//! Cleanup against a create-user adopting an old tagged Auth0 user of the same address. Both
//! take the per-address lock, so whichever comes second either waits or leaves the address
//! alone: a committed user row always has its Auth0 login. The interleavings are forced with
//! fault delays on the Auth0 double, not hoped for.

use std::time::Duration;

use serde_json::json;
use shared::cleanup::summary::{Counts, Kind, SkipReason};
use testkit::doubles::Fault;
use testkit::harness::{TestStack, create_event, seed};
use uuid::Uuid;

use crate::cleanup::{
    HOUR, auth0_user_exists, cleanup, pending_row, scheduled_event, tagged_auth0_user, user_exists,
};

/// Every committed row with `email` holds the id of an Auth0 user that exists.
async fn every_row_has_its_login(stack: &TestStack, email: &str) {
    let rows = stack
        .sql()
        .await
        .query(
            "SELECT auth0_sub FROM users WHERE lower(email) = lower($1)",
            &[&email],
        )
        .await
        .unwrap();
    for row in rows {
        let sub: String = row.get(0);
        assert!(
            auth0_user_exists(stack, &sub),
            "a user row holds {sub}, which is not in Auth0: {:?}",
            stack.auth0.users_with_email(email)
        );
    }
}

async fn wait_for_calls(stack: &TestStack, op: &str, n: usize) {
    for _ in 0..1_000 {
        if stack.auth0.calls(op) >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("{op} was never called");
}

#[tokio::test]
async fn create_user_adopting_while_cleanup_rereads_the_orphan_waits_and_never_commits_a_user_without_login()
 {
    let stack = TestStack::start().await;
    let email = "adopted.late@acme.test";
    let orphan = tagged_auth0_user(&stack, email, Uuid::new_v4(), HOUR);
    // Cleanup's re-read answers at once inside the double but reaches cleanup 800 ms later:
    // the create-user below adopts in that window.
    stack.auth0.inject(Fault::delay("get_user", 800));

    let sweep = cleanup(&stack, json!({"email": email}));
    let adopt = async {
        wait_for_calls(&stack, "get_user", 1).await;
        stack
            .call(create_event(seed::ACME_ADMIN_SUB, &json!({"email": email})))
            .await
    };
    let (summary, created) = tokio::join!(sweep, adopt);

    every_row_has_its_login(&stack, email).await;
    // Cleanup held the address from its re-read to its delete; create-user waited for it,
    // found the orphan gone and made a new login instead of adopting a dying one.
    assert_eq!(summary.removed.auth0_orphans, 1, "{summary:?}");
    assert!(!auth0_user_exists(&stack, &orphan));
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_ne!(created.body["user"]["auth0UserId"], orphan.as_str());
    assert_eq!(stack.auth0.users_with_email(email).len(), 1);
    assert_eq!(stack.rows_for(email).await.users, 1);
}

#[tokio::test]
async fn cleanup_never_deletes_a_login_create_user_is_adopting() {
    // No grace period to speak of: only the lock keeps the adopted user alive.
    let mut stack = TestStack::start().await;
    stack.state.config.cleanup.grace_period = Duration::from_millis(1);
    let email = "being.adopted@acme.test";
    let orphan = tagged_auth0_user(&stack, email, Uuid::new_v4(), HOUR);
    // The adopter holds its transaction (and the address) open while the email is sent.
    stack.email.inject(Fault::delay("send_email", 1_500));

    let create = stack.call(create_event(seed::ACME_ADMIN_SUB, &json!({"email": email})));
    let beside = async {
        while stack.email.emails_to(email).is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let summary = cleanup(&stack, json!({"email": email})).await;
        assert_eq!(
            stack.rows_for(email).await.users,
            0,
            "the cleanup was meant to run before the COMMIT"
        );
        summary
    };
    let (created, summary) = tokio::join!(create, beside);

    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(created.body["user"]["auth0UserId"], orphan.as_str());
    assert!(auth0_user_exists(&stack, &orphan), "{summary:?}");
    every_row_has_its_login(&stack, email).await;
    assert_eq!(summary.removed.auth0_orphans, 0, "{summary:?}");
    assert!(
        summary
            .skipped
            .iter()
            .any(|s| s.kind == Kind::Auth0Orphan && s.reason == SkipReason::AddressBusy),
        "{summary:?}"
    );
}

#[tokio::test]
async fn a_pending_row_whose_address_is_held_elsewhere_is_left_for_the_next_run() {
    let stack = TestStack::start().await;
    let email = "held.address@acme.test";
    let row = pending_row(&stack, email, HOUR).await;
    let auth0_id = tagged_auth0_user(&stack, email, row, HOUR);
    let mut holder = stack.sql().await;
    let holding = holder.transaction().await.unwrap();
    shared::db::locks::lock_address(&holding, "Held.Address@ACME.test")
        .await
        .unwrap();

    let summary = cleanup(&stack, scheduled_event()).await;

    assert_eq!(summary.removed, Counts::default(), "{summary:?}");
    assert!(summary.errors.is_empty(), "{summary:?}");
    assert!(
        summary
            .skipped
            .iter()
            .any(|s| s.kind == Kind::DbOrphan && s.reason == SkipReason::AddressBusy),
        "{summary:?}"
    );
    assert!(user_exists(&stack, row).await && auth0_user_exists(&stack, &auth0_id));

    holding.rollback().await.unwrap();
    let next = cleanup(&stack, scheduled_event()).await;
    assert_eq!(
        (
            next.removed.db_orphans,
            next.removed.auth0_users_of_db_orphans
        ),
        (1, 1),
        "{next:?}"
    );
    assert!(!user_exists(&stack, row).await && !auth0_user_exists(&stack, &auth0_id));
}

#[tokio::test]
async fn an_adoption_that_waits_past_the_lock_timeout_is_a_503_and_keeps_nothing() {
    let stack = TestStack::start_with(|vars| {
        vars.insert("DB_LOCK_TIMEOUT_MS".into(), "300".into());
    })
    .await;
    let email = "long.held@acme.test";
    let tagged_for = Uuid::new_v4();
    let orphan = tagged_auth0_user(&stack, email, tagged_for, HOUR);
    // Cleanup (or anyone) holds the address for longer than create-user may wait.
    let mut holder = stack.sql().await;
    let holding = holder.transaction().await.unwrap();
    shared::db::locks::lock_address(&holding, email)
        .await
        .unwrap();

    let refused = stack
        .call(create_event(seed::ACME_ADMIN_SUB, &json!({"email": email})))
        .await;

    // A lock held past the lock timeout is a busy database, whoever held it.
    assert_eq!(refused.status, 503, "{:?}", refused.body);
    assert_eq!(refused.code(), "DATABASE_BUSY", "{:?}", refused.body);
    assert_eq!(stack.rows_for(email).await, Default::default());
    let auth0 = stack.auth0.users_with_email(email);
    assert_eq!(auth0.len(), 1);
    assert_eq!(auth0[0]["user_id"], orphan.as_str());
    assert_eq!(
        auth0[0]["app_metadata"],
        crate::cleanup::our_tags(tagged_for),
        "the orphan was re-tagged"
    );
    assert!(stack.email.emails_to(email).is_empty());
    holding.rollback().await.unwrap();
}
