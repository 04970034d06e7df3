//! Cleanup beside other work: overlapping runs, locked rows, an in-flight create-user,
//! Auth0 rate limits and failures, the Lambda deadline, and more results than one search holds.

use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::json;
use shared::cleanup::CleanupSummary;
use shared::cleanup::summary::{Counts, Kind, SkipReason};
use shared::db::cleanup::AUTH0_SWEEP_LOCK;
use testkit::doubles::Fault;
use testkit::harness::{TestStack, create_event, seed};
use uuid::Uuid;

use crate::cleanup::{
    HOUR, auth0_user_exists, cleanup, invoke, our_tags, pending_row, removed_without_errors,
    scheduled_event, tagged_auth0_user, user_exists,
};

/// `n` pending rows, each with its tagged Auth0 user, oldest first (so runs take them in order).
async fn pending_with_auth0(stack: &TestStack, prefix: &str, n: u64) -> Vec<(Uuid, String)> {
    let mut made = Vec::new();
    for i in 0..n {
        let email = format!("{prefix}{i}@acme.test");
        let age = HOUR * 2 - Duration::from_secs(60 * i);
        let row = pending_row(stack, &email, age).await;
        made.push((row, tagged_auth0_user(stack, &email, row, age)));
    }
    made
}

fn auth0_orphans(stack: &TestStack, n: u64) -> Vec<String> {
    (0..n)
        .map(|i| {
            tagged_auth0_user(
                stack,
                &format!("crashed{i}@acme.test"),
                Uuid::new_v4(),
                HOUR,
            )
        })
        .collect()
}

fn sum(a: Counts, b: Counts) -> Counts {
    Counts {
        db_orphans: a.db_orphans + b.db_orphans,
        auth0_users_of_db_orphans: a.auth0_users_of_db_orphans + b.auth0_users_of_db_orphans,
        auth0_orphans: a.auth0_orphans + b.auth0_orphans,
        reset_tokens: a.reset_tokens + b.reset_tokens,
        employees_unlinked: a.employees_unlinked + b.employees_unlinked,
        intents: a.intents + b.intents,
    }
}

async fn expire_a_token_long_ago(stack: &TestStack) {
    stack
        .sql()
        .await
        .execute(
            "INSERT INTO password_reset_tokens (user_id, token_hash, expires_at, created_at)
             VALUES ($1, sha256(gen_random_uuid()::text::bytea), now() - interval '30 days',
                     now() - interval '31 days')",
            &[&Uuid::parse_str(seed::ACME_ADMIN_ID).unwrap()],
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn two_overlapping_runs_remove_each_orphan_exactly_once() {
    let stack = TestStack::start_with(|vars| {
        vars.insert("CLEANUP_BATCH_SIZE".into(), "2".into());
        vars.insert("DB_POOL_SIZE".into(), "4".into());
    })
    .await;
    let rows = pending_with_auth0(&stack, "half", 6).await;
    let orphans = auth0_orphans(&stack, 3);
    expire_a_token_long_ago(&stack).await;
    expire_a_token_long_ago(&stack).await;
    // Slow deletes keep both runs busy at the same time.
    stack
        .auth0
        .inject(Fault::delay("delete_user", 40).times(20));

    let (a, b) = tokio::join!(
        cleanup(&stack, scheduled_event()),
        cleanup(&stack, scheduled_event())
    );

    let expected = Counts {
        db_orphans: 6,
        auth0_users_of_db_orphans: 6,
        auth0_orphans: 3,
        reset_tokens: 2,
        employees_unlinked: 0,
        intents: 0,
    };
    assert_eq!(sum(a.found, b.found), expected, "{a:?}\n{b:?}");
    assert_eq!(sum(a.removed, b.removed), expected, "{a:?}\n{b:?}");
    assert!(a.errors.is_empty() && b.errors.is_empty(), "{a:?}\n{b:?}");
    assert!(!a.partial && !b.partial);
    // Not one Auth0 user was deleted twice.
    assert_eq!(stack.auth0.calls("delete_user"), 9);
    for (row, auth0_id) in &rows {
        assert!(!user_exists(&stack, *row).await && !auth0_user_exists(&stack, auth0_id));
    }
    assert!(orphans.iter().all(|id| !auth0_user_exists(&stack, id)));
    // They really overlapped: each took rows the other skipped. A run that found the Auth0
    // sweep busy says so.
    assert!(
        a.removed.db_orphans > 0 && b.removed.db_orphans > 0,
        "{a:?}\n{b:?}"
    );
    for run in [&a, &b] {
        assert!(
            run.skipped.iter().all(
                |s| s.kind == Kind::Auth0Sweep && s.reason == SkipReason::SweepRunningElsewhere
            )
        );
    }
}

#[tokio::test]
async fn a_pending_row_another_transaction_holds_is_skipped_without_waiting() {
    let stack = TestStack::start().await;
    let row = pending_row(&stack, "held@acme.test", HOUR).await;
    let auth0_id = tagged_auth0_user(&stack, "held@acme.test", row, HOUR);
    let mut holder = stack.sql().await;
    let holding = holder.transaction().await.unwrap();
    holding
        .execute("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", &[&row])
        .await
        .unwrap();

    let started = Instant::now();
    let summary = cleanup(&stack, scheduled_event()).await;

    assert!(
        started.elapsed() < Duration::from_millis(1_500),
        "waited for the lock"
    );
    assert_eq!(summary.found, Counts::default(), "{summary:?}");
    assert!(summary.errors.is_empty());
    // Its Auth0 user belongs to a pending row, so the Auth0 sweep leaves it to that row's turn.
    assert!(auth0_user_exists(&stack, &auth0_id));

    holding.rollback().await.unwrap();
    let summary = cleanup(&stack, scheduled_event()).await;
    assert_eq!(
        (
            summary.removed.db_orphans,
            summary.removed.auth0_users_of_db_orphans
        ),
        (1, 1)
    );
    assert!(!user_exists(&stack, row).await && !auth0_user_exists(&stack, &auth0_id));
}

#[tokio::test]
async fn an_in_flight_create_user_beside_a_cleanup_is_untouched_and_completes() {
    // The shortest grace period there is; a create-user never lasts a minute.
    let stack = TestStack::start_with(|vars| {
        vars.insert("CLEANUP_GRACE_PERIOD_MINUTES".into(), "1".into());
    })
    .await;
    let leftover_row = pending_row(&stack, "half.made@acme.test", HOUR).await;
    tagged_auth0_user(&stack, "half.made@acme.test", leftover_row, HOUR);
    auth0_orphans(&stack, 1);
    let email = "in.flight@acme.test";
    stack.email.inject(Fault::delay("send_email", 1_500));

    let create = stack.call(create_event(
        seed::ACME_ADMIN_SUB,
        &json!({
            "email": email,
            "permissions": [{"pageId": seed::PAGE_DASHBOARD, "canRead": true}],
            "create_employee": true,
            "employee_data": {"firstName": "In", "lastName": "Flight"}
        }),
    ));
    let beside = async {
        // Auth0 user made, email on its way, COMMIT not yet done.
        while stack.email.emails_to(email).is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let summary = cleanup(&stack, scheduled_event()).await;
        assert_eq!(
            stack.rows_for(email).await.users,
            0,
            "the cleanup was meant to run before the COMMIT"
        );
        summary
    };
    let (created, summary) = tokio::join!(create, beside);

    assert_eq!(
        summary.removed,
        Counts {
            db_orphans: 1,
            auth0_users_of_db_orphans: 1,
            auth0_orphans: 1,
            ..Counts::default()
        },
        "{summary:?}"
    );
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(stack.rows_for(email).await.per_user(), (1, 1, 1, 1));
    let auth0 = stack.auth0.users_with_email(email);
    assert_eq!(auth0.len(), 1);
    assert_eq!(auth0[0]["user_id"], created.body["user"]["auth0UserId"]);
}

#[tokio::test]
async fn an_auth0_429_is_waited_out_and_the_run_completes() {
    let stack = TestStack::start().await;
    pending_with_auth0(&stack, "half", 2).await;
    auth0_orphans(&stack, 1);
    // Retry-After: 1, as the double answers a 429.
    stack.auth0.inject(Fault::status("delete_user", 429));

    let started = Instant::now();
    let summary = cleanup(&stack, scheduled_event()).await;

    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After ignored"
    );
    removed_without_errors(&summary, (2, 2, 1));
    assert_eq!(stack.auth0.calls("delete_user"), 4);
}

#[tokio::test]
async fn an_auth0_that_keeps_answering_429_stops_the_run_cleanly_and_the_next_run_finishes() {
    let stack = TestStack::start().await;
    let rows = pending_with_auth0(&stack, "half", 3).await;
    let orphans = auth0_orphans(&stack, 1);
    expire_a_token_long_ago(&stack).await;
    // More 429s than the client retries; Retry-After 0 keeps the test fast.
    stack.auth0.inject(
        Fault::status("search_users", 429)
            .with_header("retry-after", "0")
            .times(3),
    );

    let summary = cleanup(&stack, scheduled_event()).await;

    assert!(summary.partial, "{summary:?}");
    assert_eq!(summary.errors.len(), 1, "{summary:?}");
    let error = &summary.errors[0];
    assert_eq!(error.kind, Kind::DbOrphan);
    assert_eq!(error.email.as_deref(), Some("h***@acme.test"));
    assert!(error.error.contains("429"), "{}", error.error);
    // Auth0 work stopped at once (the search and the client's two retries, no sweep); the
    // database-only purge still ran.
    assert_eq!(stack.auth0.calls("search_users"), 3);
    assert_eq!(
        summary.removed,
        Counts {
            reset_tokens: 1,
            ..Counts::default()
        }
    );
    for (row, _) in &rows {
        assert!(user_exists(&stack, *row).await);
    }

    let next = cleanup(&stack, scheduled_event()).await;
    assert!(!next.partial && next.errors.is_empty(), "{next:?}");
    assert_eq!(
        (next.removed.db_orphans, next.removed.auth0_orphans),
        (3, 1)
    );
    for (row, auth0_id) in &rows {
        assert!(!user_exists(&stack, *row).await && !auth0_user_exists(&stack, auth0_id));
    }
    assert!(!auth0_user_exists(&stack, &orphans[0]));
}

#[tokio::test]
async fn a_run_near_its_deadline_stops_before_it_reports_partial_and_the_next_run_finishes() {
    let stack = TestStack::start_with(|vars| {
        vars.insert("CLEANUP_DEADLINE_MARGIN_MS".into(), "500".into());
    })
    .await;
    let rows = pending_with_auth0(&stack, "half", 3).await;
    // Each delete takes 1.2 s; with 2.5 s to the deadline and a 0.5 s margin, one fits.
    stack
        .auth0
        .inject(Fault::delay("delete_user", 1_200).times(3));

    let function_timeout = Duration::from_millis(2_500);
    let started = Instant::now();
    let summary = invoke(&stack, scheduled_event(), function_timeout)
        .await
        .unwrap();

    assert!(
        started.elapsed() < function_timeout - Duration::from_millis(300),
        "ran to {:?}",
        started.elapsed()
    );
    assert!(summary.partial, "{summary:?}");
    assert!(summary.errors.is_empty(), "{summary:?}");
    assert!(summary.removed.db_orphans < 3, "{summary:?}");
    let first = summary.removed.db_orphans;

    let next = cleanup(&stack, scheduled_event()).await;
    assert!(!next.partial && next.errors.is_empty(), "{next:?}");
    assert_eq!(first + next.removed.db_orphans, 3, "{summary:?}\n{next:?}");
    for (row, auth0_id) in &rows {
        assert!(!user_exists(&stack, *row).await && !auth0_user_exists(&stack, auth0_id));
    }
}

#[tokio::test]
async fn a_failure_on_one_user_is_recorded_and_the_run_goes_on() {
    let stack = TestStack::start().await;
    let rows = pending_with_auth0(&stack, "half", 2).await;
    let orphans = auth0_orphans(&stack, 1);
    stack.auth0.inject(Fault::status("delete_user", 500));

    let summary = cleanup(&stack, scheduled_event()).await;

    assert_eq!(summary.errors.len(), 1, "{summary:?}");
    let error = &summary.errors[0];
    assert_eq!(
        (error.kind, error.id.as_deref()),
        (Kind::DbOrphan, Some(rows[0].0.to_string().as_str()))
    );
    assert!(error.error.contains("500"), "{}", error.error);
    assert!(!error.error.contains("half0@acme.test"));
    assert!(!summary.partial);
    assert_eq!(
        (summary.removed.db_orphans, summary.removed.auth0_orphans),
        (1, 1),
        "{summary:?}"
    );
    assert!(user_exists(&stack, rows[0].0).await && !user_exists(&stack, rows[1].0).await);
    assert!(!auth0_user_exists(&stack, &orphans[0]));

    let next = cleanup(&stack, scheduled_event()).await;
    assert_eq!(next.removed.db_orphans, 1, "{next:?}");
    assert!(!user_exists(&stack, rows[0].0).await && !auth0_user_exists(&stack, &rows[0].1));
}

#[tokio::test]
async fn the_auth0_sweep_reaches_orphans_beyond_the_first_1000_search_results() {
    let stack = TestStack::start().await;
    let base = Utc::now() - chrono::Duration::days(2);
    // 1,050 finished users of ours, 150 of them created in the same millisecond.
    let mut emails = Vec::new();
    let mut subs = Vec::new();
    for i in 0..1_050i64 {
        let email = format!("user{i}@acme.test");
        let created_at = base + chrono::Duration::seconds(i.min(900));
        subs.push(
            stack
                .auth0
                .insert_user_at(&email, our_tags(Uuid::new_v4()), created_at),
        );
        emails.push(email);
    }
    stack
        .sql()
        .await
        .execute(
            "INSERT INTO users (tenant_id, email, role, auth0_sub)
             SELECT $1, e, 'USER', s FROM unnest($2::text[], $3::text[]) AS x(e, s)",
            &[&Uuid::parse_str(seed::ACME).unwrap(), &emails, &subs],
        )
        .await
        .unwrap();
    // Orphans: one inside the crowded millisecond, two after everything else.
    let crowded = stack.auth0.insert_user_at(
        "crowded@acme.test",
        our_tags(Uuid::new_v4()),
        base + chrono::Duration::seconds(900),
    );
    let late = auth0_orphans(&stack, 2);

    let summary = cleanup(&stack, scheduled_event()).await;

    assert_eq!(summary.found.auth0_orphans, 3, "{summary:?}");
    assert_eq!(summary.removed.auth0_orphans, 3, "{summary:?}");
    assert!(summary.errors.is_empty() && !summary.partial);
    assert!(!auth0_user_exists(&stack, &crowded));
    assert!(late.iter().all(|id| !auth0_user_exists(&stack, id)));
    assert_eq!(stack.auth0.users().len(), 1_050);
    // About one query per hundred users, never a page past the cap (the double refuses those).
    let searches = stack.auth0.calls("search_users");
    assert!((11..=14).contains(&searches), "{searches} searches");
}

#[tokio::test]
async fn a_run_that_finds_the_auth0_sweep_locked_skips_it_and_says_so() {
    let stack = TestStack::start().await;
    let row = pending_row(&stack, "half.made@acme.test", HOUR).await;
    let orphan = auth0_orphans(&stack, 1).remove(0);
    let mut holder = stack.sql().await;
    let holding = holder.transaction().await.unwrap();
    holding
        .execute("SELECT pg_advisory_xact_lock($1)", &[&AUTH0_SWEEP_LOCK])
        .await
        .unwrap();

    let summary = cleanup(&stack, scheduled_event()).await;

    assert_eq!(summary.removed.db_orphans, 1, "{summary:?}");
    assert!(!user_exists(&stack, row).await);
    assert_eq!(summary.skipped.len(), 1);
    assert_eq!(
        (summary.skipped[0].kind, summary.skipped[0].reason),
        (Kind::Auth0Sweep, SkipReason::SweepRunningElsewhere)
    );
    assert!(auth0_user_exists(&stack, &orphan));
    // The one search was the database pass's (its batch's addresses); the sweep made none.
    assert_eq!(stack.auth0.calls("search_users"), 1);

    holding.rollback().await.unwrap();
    let summary: CleanupSummary = cleanup(&stack, scheduled_event()).await;
    assert_eq!(summary.removed.auth0_orphans, 1);
    assert!(!auth0_user_exists(&stack, &orphan));
}
