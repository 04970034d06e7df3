//! `make bench`'s Auth0 sweep (not part of `make test`). At each size, tagged Auth0 users in
//! the double and their rows (`testkit::bulk_tenant`), cleanup run in this process at the
//! default settings, unpaced (`CLEANUP_AUTH0_MAX_RPS=0`: calls are what is measured; at the
//! default ceiling of one a second a run lasts about as many seconds as it makes calls):
//! 1. the first round, from a fresh state, as after a deploy on an existing tenant: runs until
//!    the full pass has completed it;
//! 2. a day of the schedule: 96 runs, one every 15 minutes (after each, the sweep's clock is
//!    set back 15 minutes, as if that much time had passed), from the start of a round; ten old
//!    orphans (rows deleted) spread over the tenant at the start, and before every fourth run a
//!    new orphan whose grace period has just expired. Per run its calls; per orphan the run
//!    that removed it;
//! 3. one run at the default ceiling (one call a second) with a new orphan just past its
//!    grace period: seconds from the run's start to its delete.
//!
//! Needs TEST_DATABASE_URL (scripts/bench.sh starts a cluster). Prints a line per phase and a
//! markdown table, one row per size.
//!
//!   cargo run --release -p testkit --bin sweep_bench -- [10000,100000,1000000]

use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::json;
use shared::auth0::CREATED_BY_MARKER;
use shared::cleanup::CleanupSummary;
use testkit::bulk_tenant::BulkTenant;
use testkit::harness::{epoch_millis, seed};
use uuid::Uuid;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The schedule of template.yaml: a run every 15 minutes.
const INTERVAL: Duration = Duration::from_secs(15 * 60);
const RUNS_A_DAY: usize = 96;
/// The default grace period.
const GRACE: Duration = Duration::from_secs(15 * 60);
/// The Management API's limit on the free plan, calls a second.
const FREE_PLAN_RPS: f64 = 2.0;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let sizes: Vec<u64> = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "10000,100000,1000000".into())
        .split(',')
        .map(|n| n.trim().parse())
        .collect::<Result<_, _>>()?;
    let mut rows = Vec::new();
    for users in sizes {
        rows.push(size(users).await?);
    }
    println!();
    println!(
        "| tagged users | first round: runs, calls a run (max) | a day: calls a run (mean / max), a day, share of the free plan's 2/s | a new orphan: removed by the next run; after its grace expired | old orphans: removed after (max) | round of the day done after |"
    );
    println!("|---:|---|---|---|---|---|");
    for row in rows {
        println!("{row}");
    }
    Ok(())
}

/// The three phases at one size; the table row.
async fn size(users: u64) -> Result<String, BoxError> {
    let started = Instant::now();
    let big = BulkTenant::start(users, |vars| {
        vars.insert("CLEANUP_AUTH0_MAX_RPS".into(), "0".into());
    })
    .await;
    // The bench measures the sweep, not a tenant's limit: no 429 from the double.
    big.stack.auth0.set_rate_limit(Some(1_000_000));
    println!(
        "{users} tagged users: ready in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // 1. The first round, from a fresh state.
    let timer = Instant::now();
    let mut first_runs = 0;
    let mut first_max = 0;
    loop {
        let summary = run(&big).await?;
        first_runs += 1;
        first_max = first_max.max(summary.auth0_calls);
        let sweep = summary.auth0_sweep.as_ref().ok_or("no sweep")?;
        if sweep.full_pass.completed || first_runs >= 1_000 {
            break;
        }
    }
    println!(
        "  first round: {first_runs} runs, at most {first_max} calls a run ({:.1} s)",
        timer.elapsed().as_secs_f64()
    );

    // 2. A day of the schedule, from the start of a round.
    let sql = big.stack.sql().await;
    sql.batch_execute(
        "UPDATE auth0_sweep SET watermark = now() - interval '30 minutes',
                round_started_at = NULL, round_cursor = NULL, round_visited = 0,
                last_round_started_at = now() - interval '1 day',
                last_round_ended_at = now() - interval '2 hours',
                last_run_at = now() - interval '15 minutes'",
    )
    .await?;
    let old: Vec<u64> = (0..10).map(|i| users / 20 + i * (users / 10)).collect();
    for n in &old {
        big.delete_row(*n).await;
    }
    let mut removed_after: Vec<Option<usize>> = vec![None; old.len()];
    let (mut new_orphans, mut new_removed) = (0, 0);
    let mut calls = Vec::new();
    let mut round_done_at = None;
    let timer = Instant::now();
    for run_index in 0..RUNS_A_DAY {
        let new = (run_index % 4 == 0).then(|| new_orphan(&big, run_index));
        let summary = run(&big).await?;
        calls.push(summary.auth0_calls);
        if let Some(id) = new {
            new_orphans += 1;
            if big.stack.auth0.user(&id).is_none() {
                new_removed += 1;
            }
        }
        for (i, n) in old.iter().enumerate() {
            if removed_after[i].is_none() && !big.exists(*n) {
                removed_after[i] = Some(run_index + 1);
            }
        }
        let sweep = summary.auth0_sweep.as_ref().ok_or("no sweep")?;
        if sweep.full_pass.completed && round_done_at.is_none() {
            round_done_at = Some(run_index + 1);
        }
        sql.batch_execute(
            "UPDATE auth0_sweep SET round_started_at = round_started_at - interval '15 minutes',
                    last_run_at = last_run_at - interval '15 minutes',
                    last_round_started_at = last_round_started_at - interval '15 minutes',
                    last_round_ended_at = last_round_ended_at - interval '15 minutes'",
        )
        .await?;
    }
    let day: u64 = calls.iter().sum();
    let mean = day as f64 / calls.len() as f64;
    let max = calls.iter().copied().max().unwrap_or(0);
    let share = day as f64 / (FREE_PLAN_RPS * 86_400.0);
    let hours = |runs: usize| runs as f64 * INTERVAL.as_secs_f64() / 3_600.0;
    let old_max = removed_after
        .iter()
        .map(|r| r.map(hours))
        .collect::<Option<Vec<f64>>>();
    println!(
        "  a day: {mean:.1} calls a run on average, at most {max}; {day} calls ({:.2} % of the free plan's 2/s); new orphans removed by the next run: {new_removed} of {new_orphans}; old orphans removed after (h): {old_max:?}; round done after {:?} runs ({:.1} s)",
        share * 100.0,
        round_done_at,
        timer.elapsed().as_secs_f64()
    );

    // 3. One run at one call a second: how long after its grace expired a new orphan goes.
    let mut stack = big.stack;
    stack.state.config.cleanup.auth0_interval = Duration::from_secs(1);
    let big = BulkTenant {
        stack,
        bulk: big.bulk,
    };
    let id = new_orphan(&big, RUNS_A_DAY);
    let timer = Instant::now();
    let run = run(&big);
    tokio::pin!(run);
    let gone = async {
        while big.stack.auth0.user(&id).is_some() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let within = tokio::select! {
        summary = &mut run => {
            summary?;
            if big.stack.auth0.user(&id).is_some() {
                return Err("the paced run did not remove the new orphan".into());
            }
            timer.elapsed()
        }
        () = gone => timer.elapsed(),
    };
    println!(
        "  at one call a second, a new orphan was deleted {:.1} s into the run",
        within.as_secs_f64()
    );

    let old_max = old_max.map_or_else(
        || "not all".to_string(),
        |h| format!("{:.1} h", h.iter().copied().fold(0.0, f64::max)),
    );
    Ok(format!(
        "| {users} | {first_runs}, {first_max} | {mean:.1} / {max}, {day}, {:.2} % | {new_removed} of {new_orphans}; at most {} min + {:.1} s | {old_max} | {} |",
        share * 100.0,
        INTERVAL.as_secs() / 60,
        within.as_secs_f64(),
        round_done_at.map_or_else(|| "not in the day".into(), |r| format!("{:.1} h", hours(r))),
    ))
}

/// A scheduled run of everything, with the Lambda's 300 s.
async fn run(big: &BulkTenant) -> Result<CleanupSummary, BoxError> {
    let mut context = lambda_runtime::Context::default();
    context.request_id = Uuid::new_v4().to_string();
    context.deadline = epoch_millis() + 300_000;
    let event = json!({"version": "0", "id": "bench", "detail-type": "Scheduled Event",
        "source": "aws.events", "account": "123456789012", "time": "2026-01-01T00:00:00Z",
        "region": "eu-west-1", "resources": [], "detail": {}});
    let summary = shared::cleanup::handle(
        &big.stack.state,
        lambda_runtime::LambdaEvent::new(event, context),
    )
    .await
    .map_err(|e| e.to_string())?;
    if !summary.errors.is_empty() {
        return Err(format!("the run failed: {:?}", summary.errors).into());
    }
    Ok(summary)
}

/// A tagged Auth0 user without a row whose grace period expired a second ago: a create-user
/// killed between Auth0 and its COMMIT.
fn new_orphan(big: &BulkTenant, i: usize) -> String {
    let created_at = Utc::now()
        - chrono::Duration::from_std(GRACE).unwrap_or_default()
        - chrono::Duration::seconds(1);
    big.stack.auth0.insert_user_at(
        &format!("killed{i}@big.test"),
        json!({
            "created_by": CREATED_BY_MARKER,
            "tenant_id": seed::ACME,
            "role": "USER",
            "db_user_id": Uuid::new_v4().to_string(),
        }),
        created_at,
    )
}
