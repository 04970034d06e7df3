//! The Auth0 sweep at a real tenant's size: a million tagged users in the Auth0 double
//! (seeded in bulk) and their rows (one `generate_series`, in a template database built once
//! per server and copied for each test). A new orphan costs a few searches, a run never makes
//! more calls than its cap, an old orphan is found by the full pass within its period, a run
//! killed mid-slice loses at most a page, and a user a run could not settle is looked at again
//! by the next one. The sweep's state is set up as a sweep running for a while leaves it.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use shared::cleanup::CleanupSummary;
use shared::cleanup::summary::{Kind, SkipReason, SweepReport};
use testkit::bulk_tenant::BulkTenant;
use testkit::doubles::Fault;
use testkit::harness::{TestStack, seed};
use testkit::lambda_process::LambdaProcess;
use testkit::runtime_api::Outcome;
use uuid::Uuid;

use crate::cleanup::{HOUR, cleanup, scheduled_event, tagged_auth0_user};

const MILLION: u64 = 1_000_000;
const MINUTE: Duration = Duration::from_secs(60);

/// A tenant of `users` bulk users (`testkit::bulk_tenant`), cleanup's Auth0 calls unpaced:
/// what is measured here is calls, the budget has its own tests (cleanup_budget.rs).
async fn tenant(users: u64, adjust: impl FnOnce(&mut HashMap<String, String>)) -> BulkTenant {
    BulkTenant::start(users, |vars| {
        vars.insert("CLEANUP_AUTH0_MAX_RPS".into(), "0".into());
        adjust(vars);
    })
    .await
}

/// Sets the sweep's state as runs before would have left it.
async fn sweep_was(big: &BulkTenant, state: State) {
    big.stack
        .sql()
        .await
        .execute(
            "UPDATE auth0_sweep SET watermark = $1, round_started_at = $2, round_cursor = $3,
                    round_visited = $4, rounds_completed = $5, last_run_at = $6",
            &[
                &state.watermark,
                &state.round_started_at,
                &state.round_cursor,
                &state.round_visited,
                &state.rounds_completed,
                &state.last_run_at,
            ],
        )
        .await
        .unwrap();
}

#[derive(Debug, Clone, PartialEq)]
struct State {
    watermark: Option<DateTime<Utc>>,
    round_started_at: Option<DateTime<Utc>>,
    round_cursor: Option<DateTime<Utc>>,
    round_visited: i64,
    rounds_completed: i64,
    last_run_at: Option<DateTime<Utc>>,
}

async fn sweep_state(stack: &TestStack) -> State {
    let row = stack
        .sql()
        .await
        .query_one(
            "SELECT watermark, round_started_at, round_cursor, round_visited, rounds_completed,
                    last_run_at FROM auth0_sweep",
            &[],
        )
        .await
        .unwrap();
    State {
        watermark: row.get(0),
        round_started_at: row.get(1),
        round_cursor: row.get(2),
        round_visited: row.get(3),
        rounds_completed: row.get(4),
        last_run_at: row.get(5),
    }
}

fn ago(d: Duration) -> DateTime<Utc> {
    Utc::now() - chrono::Duration::from_std(d).unwrap()
}

fn report(summary: &CleanupSummary) -> &SweepReport {
    summary.auth0_sweep.as_ref().expect("the run swept")
}

/// The sweep of a tenant whose last run was 15 minutes ago, its full pass `done` of the way
/// through a round begun `round_age` ago.
fn running(big: &BulkTenant, done: u64, round_age: Duration) -> State {
    State {
        watermark: Some(ago(30 * MINUTE)),
        round_started_at: Some(ago(round_age)),
        round_cursor: Some(big.at(done)),
        round_visited: done as i64,
        rounds_completed: 3,
        last_run_at: Some(ago(15 * MINUTE)),
    }
}

#[tokio::test]
async fn a_new_orphan_among_a_million_tagged_users_is_removed_by_the_next_run_in_a_few_searches() {
    let big = tenant(MILLION, |vars| {
        vars.insert("CLEANUP_AUTH0_FULL_PASS_HOURS".into(), "168".into());
    })
    .await;
    let stack = &big.stack;
    sweep_was(&big, running(&big, 250_000, 24 * 60 * MINUTE)).await;
    // A create-user killed after Auth0 answered, 20 minutes ago: past the 15-minute grace.
    let orphan = tagged_auth0_user(stack, "killed@big.test", Uuid::new_v4(), 20 * MINUTE);
    // Another, too young to touch yet.
    let young = tagged_auth0_user(stack, "in.flight@big.test", Uuid::new_v4(), 5 * MINUTE);

    let summary = cleanup(stack, scheduled_event()).await;

    assert!(stack.auth0.user(&orphan).is_none(), "{summary:?}");
    assert!(stack.auth0.user(&young).is_some());
    assert_eq!(stack.auth0.user_count() as u64, MILLION + 1);
    assert_eq!(summary.removed.auth0_orphans, 1, "{summary:?}");
    assert!(summary.errors.is_empty() && !summary.partial, "{summary:?}");
    let sweep = report(&summary);
    // The users created since the last run, less than a page, and the margin before it.
    assert!(sweep.new_searches <= 2, "{sweep:?}");
    // The full pass did its slice of a week's round, as paced: a few dozen searches, not
    // the ten thousand a walk over everyone takes.
    let full = &sweep.full_pass;
    assert!(
        !full.completed && full.searches == full.due_searches,
        "{full:?}"
    );
    assert!((5..=30).contains(&full.searches), "{full:?}");
    assert_eq!(full.from, Some(big.at(250_000)));
    // Every call was a search, or the orphan's re-read and delete.
    assert_eq!(
        summary.auth0_calls,
        sweep.new_searches + full.searches + 2,
        "{summary:?}"
    );
    assert_eq!(big.calls(), summary.auth0_calls);
    // The watermark is now the grace period's cutoff; the cursor moved by the slice.
    let state = sweep_state(&big.stack).await;
    let watermark = state.watermark.unwrap();
    assert!(
        watermark > ago(16 * MINUTE) && watermark < ago(14 * MINUTE),
        "{state:?}"
    );
    assert_eq!(sweep.watermark, Some(watermark));
    assert!(sweep.watermark_lag_seconds >= 15 * 60 && sweep.watermark_lag_seconds < 16 * 60);
    let cursor = state.round_cursor.unwrap();
    assert!(
        cursor >= big.at(250_000 + 99 * (full.searches - 1)),
        "{state:?}"
    );
    assert!(cursor <= big.at(250_000 + 100 * full.searches), "{state:?}");
    assert_eq!(full.cursor, Some(cursor));
    assert_eq!(full.lag_seconds / 60, 24 * 60, "{full:?}");
    assert_eq!(full.percent_done, Some(25), "{full:?}");

    // The young one goes once it is past the grace period: here, with the period shortened.
    let mut stack = big.stack;
    stack.state.config.cleanup.grace_period = 4 * MINUTE;
    let next = cleanup(&stack, scheduled_event()).await;
    assert!(stack.auth0.user(&young).is_none(), "{next:?}");
    assert!(report(&next).new_searches <= 2, "{next:?}");
}

#[tokio::test]
async fn a_run_never_makes_more_management_api_calls_than_its_cap() {
    let big = tenant(MILLION, |vars| {
        vars.insert("CLEANUP_AUTH0_MAX_CALLS_PER_RUN".into(), "60".into());
    })
    .await;
    let stack = &big.stack;
    // A round far behind its pace: it wants far more than the cap allows.
    sweep_was(&big, running(&big, 100_000, 23 * 60 * MINUTE)).await;
    // Old orphans in the way, and pending rows for the database-orphan pass (its searches
    // count against the cap too).
    // The first in the first run's reach (about 54 searches, 99 new users each), the second
    // past it.
    for n in [100_150, 107_000] {
        big.delete_row(n).await;
    }
    let pending: Vec<Uuid> = (0..120).map(|_| Uuid::new_v4()).collect();
    stack
        .sql()
        .await
        .execute(
            "INSERT INTO users (id, tenant_id, email, role, auth0_sub, created_at)
             SELECT id, $2, 'pending' || n || '@big.test', 'USER', 'pending_' || id,
                    now() - interval '1 hour'
               FROM unnest($1::uuid[]) WITH ORDINALITY AS p(id, n)",
            &[&pending, &Uuid::parse_str(seed::ACME).unwrap()],
        )
        .await
        .unwrap();

    let first = cleanup(stack, scheduled_event()).await;

    assert!(first.auth0_calls <= 60, "{first:?}");
    assert_eq!(big.calls(), first.auth0_calls, "the double saw other calls");
    assert!(first.partial, "{first:?}");
    assert_eq!(first.removed.db_orphans, 120, "{first:?}");
    assert!(!big.exists(100_150), "{first:?}");
    let sweep = report(&first);
    assert!(sweep.full_pass.due_searches > 60, "{sweep:?}");
    let after_first = sweep_state(&big.stack).await.round_cursor.unwrap();
    assert!(after_first > big.at(100_150), "{first:?}");

    // The next run goes on where this one stopped, under the same cap.
    let before = big.calls();
    let second = cleanup(stack, scheduled_event()).await;
    assert!(second.auth0_calls <= 60, "{second:?}");
    assert_eq!(big.calls() - before, second.auth0_calls);
    assert_eq!(
        report(&second).full_pass.from,
        Some(after_first),
        "{second:?}"
    );
    assert!(!big.exists(107_000), "{second:?}");
    assert_eq!(
        first.removed.auth0_orphans + second.removed.auth0_orphans,
        2,
        "{first:?}\n{second:?}"
    );
    assert!(sweep_state(&big.stack).await.round_cursor.unwrap() > after_first);
}

/// `runs` runs of the schedule, one every 15 minutes: after each, the sweep's clock is set
/// back 15 minutes, as if that much time had passed. Returns each run's summary.
async fn a_schedule(
    big: &BulkTenant,
    runs: usize,
    until: impl Fn(&CleanupSummary) -> bool,
) -> Vec<CleanupSummary> {
    let mut summaries = Vec::new();
    for _ in 0..runs {
        let summary = cleanup(&big.stack, scheduled_event()).await;
        let done = until(&summary);
        summaries.push(summary);
        if done {
            break;
        }
        big.stack
            .sql()
            .await
            .batch_execute(
                "UPDATE auth0_sweep SET round_started_at = round_started_at - interval '15 minutes',
                        last_run_at = last_run_at - interval '15 minutes',
                        last_round_started_at = last_round_started_at - interval '15 minutes',
                        last_round_ended_at = last_round_ended_at - interval '15 minutes'",
            )
            .await
            .unwrap();
    }
    summaries
}

/// The full pass's whole round, on a smaller tenant so that `make test` stays fast (the
/// million-user round is `make bench`'s: `sweep_bench`).
#[tokio::test]
async fn an_old_orphan_is_removed_by_the_full_pass_within_its_period() {
    let big = tenant(20_000, |vars| {
        vars.insert("CLEANUP_AUTH0_FULL_PASS_HOURS".into(), "6".into());
    })
    .await;
    // A round just begun, the last one ended an hour ago.
    sweep_was(&big, running(&big, 0, MINUTE)).await;
    big.stack
        .sql()
        .await
        .batch_execute("UPDATE auth0_sweep SET round_cursor = NULL, round_visited = 0")
        .await
        .unwrap();
    // Orphans among old users: near the end of the round, and at its very start.
    for n in [0, 19_000] {
        big.delete_row(n).await;
    }

    let summaries = a_schedule(&big, 30, |s| report(s).full_pass.completed).await;

    let runs = summaries.len();
    let last = summaries.last().unwrap();
    assert!(report(last).full_pass.completed, "{last:?}");
    // Six hours are 24 runs: the round finished within them, spread over most of them (the
    // pace aims at nine tenths of the period).
    assert!((12..=24).contains(&runs), "{runs} runs");
    assert!(!big.exists(0) && !big.exists(19_000));
    let removed: u64 = summaries.iter().map(|s| s.removed.auth0_orphans).sum();
    assert_eq!(removed, 2);
    for summary in &summaries {
        let full = &report(summary).full_pass;
        assert!(!summary.partial && summary.errors.is_empty(), "{summary:?}");
        // Spread evenly: about 201 searches over 21 runs.
        assert!((1..=15).contains(&full.searches), "{full:?}");
        assert!(full.lag_seconds <= 6 * 3_600, "{full:?}");
    }
    let state = sweep_state(&big.stack).await;
    assert_eq!(state.rounds_completed, 4);
    assert_eq!(state.round_started_at, None);
    // The next run begins the next round.
    let next = cleanup(&big.stack, scheduled_event()).await;
    assert_eq!(report(&next).full_pass.round, 5);
    assert_eq!(report(&next).full_pass.from, None);
}

#[tokio::test]
async fn a_cleanup_killed_mid_slice_resumes_where_it_stopped() {
    let big = tenant(MILLION, |_| {}).await;
    let stack = &big.stack;
    // Behind its pace: the slice is all the cap allows.
    sweep_was(&big, running(&big, 100_000, 22 * 60 * MINUTE)).await;
    let orphan = 100_000 + 150 * 99;
    big.delete_row(orphan).await;
    // Slow searches, so the kill lands while the slice is under way.
    stack
        .auth0
        .inject(Fault::delay("search_users", 20).times(80));

    let function = LambdaProcess::start("cleanup", &stack.vars)
        .await
        .expect("`cargo build --bins` ran before the tests");
    let invocation = function.invoke(scheduled_event());
    let under_way = async {
        while stack.auth0.calls("search_users") < 40 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    };
    tokio::select! {
        outcome = invocation => panic!("the run was meant to be killed: {outcome:?}"),
        () = under_way => {}
    }
    function.kill().await;
    let searched = stack.auth0.calls("search_users") as u64;

    // Every page dealt with before the kill was recorded: at most the one in flight is lost
    // (and the incremental pass's search came first).
    let state = sweep_state(&big.stack).await;
    let cursor = state.round_cursor.unwrap();
    assert!(
        cursor >= big.at(100_000 + 99 * (searched - 3)),
        "{searched} searches, {state:?}"
    );
    assert!(cursor < big.at(orphan), "{state:?}");
    assert!(big.exists(orphan));

    let function = LambdaProcess::start("cleanup", &stack.vars).await.unwrap();
    // A Lambda's 300 s, as deployed, so a loaded test machine does not cut the run short.
    let run = function.invoke_within(scheduled_event(), Duration::from_secs(300));
    let next = match run.await.unwrap().outcome {
        Outcome::Response(body) => serde_json::from_value::<CleanupSummary>(body).unwrap(),
        other => panic!("{other:?}"),
    };
    let logs = function.kill().await;
    let full = &report(&next).full_pass;
    assert_eq!(full.from, Some(cursor), "{next:?}");
    assert!(!big.exists(orphan), "{next:?}");
    assert_eq!(next.removed.auth0_orphans, 1);
    assert!(next.auth0_calls <= 225, "{next:?}");
    // The metrics the template's alarms watch.
    for (metric, unit) in [
        ("SweepWatermarkLag", "Seconds"),
        ("FullPassLag", "Seconds"),
        ("FullPassDone", "Percent"),
        ("CleanupAuth0Calls", "Count"),
    ] {
        let lines = logs.metric(metric);
        assert_eq!(lines.len(), 1, "{metric}: {}", logs.text);
        assert_eq!(
            lines[0]["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"],
            unit
        );
    }
    assert_eq!(
        logs.metric("FullPassLag")[0]["FullPassLag"]
            .as_u64()
            .unwrap()
            / 3_600,
        22
    );
    assert_eq!(
        logs.metric("CleanupAuth0Calls")[0]["CleanupAuth0Calls"],
        next.auth0_calls
    );
}

#[tokio::test]
async fn an_orphan_left_alone_because_its_address_was_busy_is_looked_at_again_by_the_next_run() {
    let big = tenant(20_000, |vars| {
        vars.insert("CLEANUP_AUTH0_FULL_PASS_HOURS".into(), "168".into());
    })
    .await;
    let stack = &big.stack;
    // The slice of the next run (one search, a week's pace) covers user 5,050, no further.
    sweep_was(&big, running(&big, 5_000, MINUTE)).await;
    big.delete_row(5_050).await;
    let mut holder = stack.sql().await;
    let holding = holder.transaction().await.unwrap();
    shared::db::locks::lock_address(&holding, &big.bulk.email(5_050))
        .await
        .unwrap();

    let first = cleanup(stack, scheduled_event()).await;

    assert_eq!(report(&first).full_pass.searches, 1, "{first:?}");
    assert!(big.exists(5_050));
    assert!(
        first
            .skipped
            .iter()
            .any(|s| s.kind == Kind::Auth0Orphan && s.reason == SkipReason::AddressBusy),
        "{first:?}"
    );
    assert_eq!(report(&first).retries_added, 1, "{first:?}");
    assert!(sweep_state(&big.stack).await.round_cursor.unwrap() > big.at(5_050));

    holding.rollback().await.unwrap();
    let second = cleanup(stack, scheduled_event()).await;
    assert!(!big.exists(5_050), "{second:?}");
    assert_eq!(second.removed.auth0_orphans, 1);
    assert_eq!(report(&second).rechecked, 1, "{second:?}");
    // Looked at again by id: its search was the first run's.
    assert!(report(&second).full_pass.from > Some(big.at(5_050)));
    let third = cleanup(stack, scheduled_event()).await;
    assert_eq!(report(&third).rechecked, 0, "{third:?}");
}

#[tokio::test]
async fn a_dry_run_reports_what_the_next_run_removes_and_moves_nothing() {
    let big = tenant(MILLION, |_| {}).await;
    let stack = &big.stack;
    sweep_was(&big, running(&big, 400_000, 12 * 60 * MINUTE)).await;
    let new = tagged_auth0_user(stack, "killed@big.test", Uuid::new_v4(), HOUR / 3);
    big.delete_row(400_100).await;
    let before = sweep_state(&big.stack).await;

    let dry = cleanup(stack, serde_json::json!({"dryRun": true})).await;

    assert_eq!(dry.found.auth0_orphans, 2, "{dry:?}");
    assert_eq!(dry.removed.auth0_orphans, 0);
    assert_eq!(stack.auth0.calls("delete_user"), 0);
    assert_eq!(
        sweep_state(&big.stack).await,
        before,
        "a dry run moved the sweep"
    );
    assert!(stack.auth0.user(&new).is_some() && big.exists(400_100));

    let real = cleanup(stack, scheduled_event()).await;
    assert_eq!(real.found.auth0_orphans, 2, "{real:?}");
    assert_eq!(real.removed.auth0_orphans, 2, "{real:?}");
    let (dry, real) = (report(&dry), report(&real));
    assert_eq!(
        (dry.new_searches, dry.full_pass.searches, dry.full_pass.from),
        (
            real.new_searches,
            real.full_pass.searches,
            real.full_pass.from
        )
    );
}

#[tokio::test]
async fn two_runs_at_once_on_a_million_users_sweep_once() {
    let big = tenant(MILLION, |_| {}).await;
    let stack = &big.stack;
    sweep_was(&big, running(&big, 600_000, 6 * 60 * MINUTE)).await;
    let orphan = tagged_auth0_user(stack, "killed@big.test", Uuid::new_v4(), HOUR / 3);
    stack
        .auth0
        .inject(Fault::delay("search_users", 30).times(4));

    let (a, b) = tokio::join!(
        cleanup(stack, scheduled_event()),
        cleanup(stack, scheduled_event())
    );

    let (swept, other) = match (&a.auth0_sweep, &b.auth0_sweep) {
        (Some(_), None) => (&a, &b),
        (None, Some(_)) => (&b, &a),
        _ => panic!("exactly one run sweeps:\n{a:?}\n{b:?}"),
    };
    assert!(
        other
            .skipped
            .iter()
            .any(|s| s.kind == Kind::Auth0Sweep && s.reason == SkipReason::SweepRunningElsewhere),
        "{other:?}"
    );
    let sweep = report(swept);
    assert_eq!(
        stack.auth0.calls("search_users") as u64,
        sweep.new_searches + sweep.full_pass.searches
    );
    assert_eq!(stack.auth0.calls("delete_user"), 1);
    assert!(stack.auth0.user(&orphan).is_none());
}

#[tokio::test]
async fn a_watermark_left_by_a_shorter_grace_period_never_lets_a_younger_user_be_touched() {
    let mut stack = TestStack::start_with(|vars| {
        vars.insert("CLEANUP_AUTH0_INDEX_LAG_MINUTES".into(), "0".into());
    })
    .await;
    // A run with almost no grace period moves the watermark to now.
    stack.state.config.cleanup.grace_period = Duration::from_millis(1);
    let first = cleanup(&stack, scheduled_event()).await;
    let watermark = report(&first).watermark.unwrap();
    assert!(watermark > ago(MINUTE), "{first:?}");
    // A tagged user without a row, younger than the usual grace period but older than that
    // watermark's run: a create-user may still commit its row.
    let young = tagged_auth0_user(&stack, "in.flight@acme.test", Uuid::new_v4(), 2 * MINUTE);

    stack.state.config.cleanup.grace_period = 15 * MINUTE;
    let second = cleanup(&stack, scheduled_event()).await;

    assert!(stack.auth0.user(&young).is_some(), "{second:?}");
    assert_eq!(second.found.auth0_orphans, 0, "{second:?}");
    assert_eq!(stack.auth0.calls("get_user"), 0);
    // Once it is past the grace period it goes, like any orphan.
    stack.state.config.cleanup.grace_period = MINUTE;
    let third = cleanup(&stack, scheduled_event()).await;
    assert_eq!(third.removed.auth0_orphans, 1, "{third:?}");
    assert!(stack.auth0.user(&young).is_none());
}
