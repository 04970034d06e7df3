//! Cleanup at scale: seeds N pending orphans (rows past the grace period whose address has no
//! Auth0 user) among M rows in `users`, runs the real cleanup binary once through the Runtime
//! API emulator with the doubles at zero latency, and prints orphans/s and the binary's peak
//! RSS. Not part of `make test`; needs TEST_DATABASE_URL like the tests and the binaries
//! built (`cargo build --workspace --bins`). BENCH_WITHOUT_CREATED_BY_INDEX=1 drops the V3
//! index first, to see what it is for; BENCH_LOG sets the binary's log level (info).
//!
//!   cargo run -p testkit --bin cleanup_bench -- ORPHANS [USERS_IN_TABLE] [BATCH_SIZE] [LOOKUPS_IN_FLIGHT]

use std::time::{Duration, Instant};

use serde_json::json;
use shared::cleanup::CleanupSummary;
use testkit::harness::{TestStack, seed};
use testkit::runtime_api::{Outcome, RuntimeApi, workspace_binary};
use tokio::process::Command;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let orphans: i64 = args.next().as_deref().unwrap_or("10000").parse()?;
    let users: i64 = args.next().as_deref().unwrap_or("0").parse()?;
    let batch: usize = args.next().as_deref().unwrap_or("1000").parse()?;
    let filler = (users - orphans).max(0);

    let stack = TestStack::prepare().await;
    // Without a limit the double reports a nominal 1,000 calls a second, which the budget's
    // reserve would honour; the bench measures the reconciler, not a tenant's limit.
    stack.auth0.set_rate_limit(Some(1_000_000));
    let sql = testkit::harness::connect(&stack.db.url).await;
    let seeding = Instant::now();
    // Finished users created by the seed admin, so every DELETE has `created_by` to check.
    sql.execute(
        "INSERT INTO users (tenant_id, email, role, auth0_sub, created_by, created_at)
         SELECT $1, 'filler' || g || '@bench.test', 'USER', 'auth0|filler' || g, $2,
                now() - interval '1 day'
           FROM generate_series(1, $3::bigint) g",
        &[
            &uuid::Uuid::parse_str(seed::ACME)?,
            &uuid::Uuid::parse_str(seed::ACME_ADMIN_ID)?,
            &filler,
        ],
    )
    .await?;
    sql.execute(
        "INSERT INTO users (tenant_id, email, role, auth0_sub, created_by, created_at)
         SELECT $1, 'orphan' || g || '@bench.test', 'USER', 'pending_' || gen_random_uuid(), $2,
                now() - interval '1 hour' - make_interval(secs => g)
           FROM generate_series(1, $3::bigint) g",
        &[
            &uuid::Uuid::parse_str(seed::ACME)?,
            &uuid::Uuid::parse_str(seed::ACME_ADMIN_ID)?,
            &orphans,
        ],
    )
    .await?;
    if std::env::var_os("BENCH_WITHOUT_CREATED_BY_INDEX").is_some() {
        // What V3 fixed: every deleted row then scans `users` for rows it created.
        sql.batch_execute("DROP INDEX users_created_by_idx").await?;
        println!("without users_created_by_idx");
    }
    sql.batch_execute("VACUUM ANALYZE users").await?;
    let in_table: i64 = sql
        .query_one("SELECT count(*) FROM users", &[])
        .await?
        .get(0);
    println!(
        "seeded {orphans} pending orphans, {in_table} rows in users, in {:.1} s; batches of \
         {batch}",
        seeding.elapsed().as_secs_f64()
    );

    let runtime = RuntimeApi::start().await?;
    let mut vars = stack.vars.clone();
    vars.insert("CLEANUP_BATCH_SIZE".into(), batch.to_string());
    // The doubles at zero latency and no Auth0 budget: what the reconciler itself costs.
    vars.insert("CLEANUP_AUTH0_MAX_RPS".into(), "0".into());
    vars.insert("CLEANUP_AUTH0_MAX_CALLS_PER_RUN".into(), "0".into());
    vars.insert("DB_POOL_SIZE".into(), "1".into());
    vars.insert("DB_STATEMENT_TIMEOUT_MS".into(), "30000".into());
    vars.insert(
        "RUST_LOG".into(),
        std::env::var("BENCH_LOG").unwrap_or_else(|_| "info".into()),
    );
    let mut child = Command::new(workspace_binary("cleanup")?)
        .env_clear()
        .envs(&vars)
        .envs(runtime.lambda_env("cleanup"))
        // Logged as in production (one line per row), but not kept.
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let pid = child.id().ok_or("cleanup exited at once")?;
    runtime.wait_ready(Duration::from_secs(30)).await?;

    let started = Instant::now();
    let event = json!({"version": "0", "id": "bench", "detail-type": "Scheduled Event",
        "source": "aws.events", "account": "123456789012", "time": "2026-01-01T00:00:00Z",
        "region": "eu-west-1", "resources": [], "detail": {}});
    let invocation = runtime
        .invoke(event, Duration::from_secs(900), Duration::from_secs(910))
        .await?;
    let elapsed = started.elapsed();
    let peak_rss = peak_rss_kib(pid);
    let cpu = cpu_seconds(pid);
    let _ = child.kill().await;

    let summary: CleanupSummary = match invocation.outcome {
        Outcome::Response(body) => serde_json::from_value(body)?,
        other => return Err(format!("the run failed: {other:?}").into()),
    };
    let left: i64 = sql
        .query_one(
            "SELECT count(*) FROM users WHERE auth0_sub LIKE 'pending\\_%'",
            &[],
        )
        .await?
        .get(0);
    let removed = summary.removed.db_orphans;
    println!(
        "removed {removed} of {orphans} orphans ({left} left, partial: {}, errors: {}) in {:.1} s: \
         {:.0} orphans/s, {:.3} ms per orphan; Management API calls: {} ({:.4} per orphan); \
         the cleanup process: {:.1} s of CPU, peak RSS {:.1} MiB",
        summary.partial,
        summary.errors.len(),
        elapsed.as_secs_f64(),
        removed as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e3 / removed.max(1) as f64,
        management_calls(&stack),
        management_calls(&stack) as f64 / removed.max(1) as f64,
        cpu.unwrap_or(0.0),
        peak_rss.unwrap_or(0) as f64 / 1024.0,
    );
    Ok(())
}

/// Every Management API call the run made (the token endpoint is not one).
fn management_calls(stack: &testkit::harness::PreparedStack) -> usize {
    testkit::doubles::AUTH0_OPS
        .iter()
        .filter(|op| **op != "token")
        .map(|op| stack.auth0.calls(op))
        .sum()
}

/// User and system CPU time the process has used (clock ticks of 1/100 s on Linux).
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

/// VmHWM: the most resident memory the process ever had.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
