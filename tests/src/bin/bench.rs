//! `make bench`: the real release create-user binary against its floor, in one run on one
//! throwaway cluster, the rest of its admin API against theirs, the 100k cleanup and the Auth0
//! sweep at 10k, 100k and 1M tagged users; writes the measured part of docs/PERFORMANCE.md.
//!
//! * create-user: N processes (1, 8, 32), each behind its own Lambda Runtime API emulator, each
//!   given the next event as soon as it answered the last (Lambda sends an instance one event at
//!   a time), for BENCH_SECONDS; the Auth0 and email doubles in this process.
//! * the floor: `pgbench -M prepared` with create-user's own statements
//!   (tests/bench/create_user_floor.sql) with as many clients, on the same cluster.
//! * round trips: a TCP relay between the binary (or pgbench) and Postgres counts client write
//!   bursts that follow an answer, and the Execute/Query messages (statements) in them.
//! * the doubles' own time: the same two calls (Auth0 create, email send) made with the
//!   project's clients from this process, after each run, against the doubles as they are then.
//! * the rest of the admin API (list, get, update, deactivate, reactivate, delete) at one
//!   instance, each against its floor (tests/bench/*_floor.sql, one pgbench client), over a
//!   tenant of 100,000 users for the list and a pool of users in another for the rest, with
//!   the same counts (round trips, statements, Auth0 calls per request, peak RSS).
//! * SCIM (bench/scim.rs): the scim function's filter lookup in a tenant of 100,000 users, a
//!   full paged read of 10,000, its creates beside the admin API's, each against its floor;
//!   and an identity provider's first sync against the Auth0 double's rate limit.
//! * at its start, every floor is checked to hold the statements of shared's it stands for.
//!
//! Needs TEST_DATABASE_URL (scripts/bench.sh starts a cluster) and release binaries
//! (`cargo build --release --bin create-user --bin scim --bin cleanup --bin cleanup_bench
//! --bin sweep_bench --bin coldstart --bin bench`).
//! Env: BENCH_SECONDS (10), BENCH_CLEANUP_ORPHANS (100000, 0 skips), BENCH_SWEEP_USERS
//! (10000,100000,1000000; 0 skips), BENCH_OUT (docs/PERFORMANCE.md), BENCH_LOG (the binary's
//! RUST_LOG, info), BENCH_INSTANCES (1,8,32; 0 skips), BENCH_BINARY (another create-user binary
//! to measure), BENCH_LIFECYCLE (1; 0 skips the rest of the admin API), BENCH_LIST_USERS
//! (100000), BENCH_SCIM (1; 0 skips SCIM's filter, paged read and creates), BENCH_SCIM_USERS
//! (100000), BENCH_SCIM_PAGED (10000), BENCH_SCIM_SYNC_USERS (1000; 0 skips the first sync),
//! BENCH_SCIM_SYNC_RATE (10), BENCH_SCIM_SYNC_WORKERS (4), PGBENCH (pgbench).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use shared::auth0::{NewAuth0User, OwnershipTags};
use shared::deadline::Deadline;
use shared::domain::{Email, Role};
use shared::email::PasswordSetupEmail;
use testkit::harness::{TestDb, TestStack, api_event, create_event, seed};
use testkit::runtime_api::{Outcome, RuntimeApi, workspace_binary};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};

// In bench/ (a file in bin/ would be a binary of its own).
#[path = "bench/scim.rs"]
mod scim;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Creates per instance before anything is measured: connections open, statements prepared,
/// the Auth0 token fetched.
const WARM_UP: usize = 20;
/// Creates counted through the relay.
const WIRE_CREATES: u64 = 200;
/// Calls to the doubles timed after each run.
const DOUBLE_CALLS: usize = 200;
const FLOOR_SQL: &str = include_str!("../../bench/create_user_floor.sql");
/// /proc/<pid>/stat counts CPU time in clock ticks of 1/100 s on Linux.
const TICKS_PER_SEC: f64 = 100.0;
const START_MARK: &str = "<!-- bench:start -->";
const END_MARK: &str = "<!-- bench:end -->";

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let seconds: u64 = env_or("BENCH_SECONDS", "10").parse()?;
    let orphans: u64 = env_or("BENCH_CLEANUP_ORPHANS", "100000").parse()?;
    let out = PathBuf::from(env_or("BENCH_OUT", "docs/PERFORMANCE.md"));
    let log_level = env_or("BENCH_LOG", "info");
    let pgbench = env_or("PGBENCH", "pgbench");
    // BENCH_BINARY measures another build (an older commit's) against the same floor.
    let binary = match std::env::var_os("BENCH_BINARY") {
        Some(path) => PathBuf::from(path),
        None => workspace_binary("create-user")?,
    };
    let machine = machine().await;
    println!("{machine}");
    // Before anything runs: a floor that no longer holds shared's statements measures
    // something else (said in the report too).
    let drift = floor_drift();
    let emails = Arc::new(Emails::new());
    let work = work_dir();
    std::fs::create_dir_all(&work)?;

    // BENCH_INSTANCES=0 skips create-user's rows (and its count on the wire).
    let counts: Vec<usize> = env_or("BENCH_INSTANCES", "1,8,32")
        .split(',')
        .map(|n| n.trim().parse::<usize>())
        .filter(|n| n.as_ref().map_or(true, |n| *n > 0))
        .collect::<Result<_, _>>()?;
    let postmaster = postmaster_pid().await?;
    let mut rows = Vec::new();
    for n in counts {
        // On a worker thread, like the emulators and doubles it waits on: driven from `main`'s
        // own future, every answer had to wake the main thread as well.
        let run = tokio::spawn({
            let (binary, log_level, emails) = (binary.clone(), log_level.clone(), emails.clone());
            async move { binary_run(postmaster, n, seconds, &binary, &log_level, &emails).await }
        })
        .await??;
        println!("{run}");
        let floor = floor_run(postmaster, n, seconds, &pgbench, &work).await?;
        println!("{floor}");
        rows.push((run, floor));
    }
    let wires = if rows.is_empty() {
        None
    } else {
        let wire = binary_wire(&binary, &log_level, &emails).await?;
        println!("create-user on the wire: {wire}");
        let floor_wire = floor_wire(&pgbench, &work).await?;
        println!("floor on the wire: {floor_wire}");
        Some((wire, floor_wire))
    };
    let lifecycle = if env_or("BENCH_LIFECYCLE", "1") == "0" {
        None
    } else {
        let list_users: i64 = env_or("BENCH_LIST_USERS", LIST_USERS).parse()?;
        let settings = LifecycleSettings {
            postmaster,
            seconds,
            list_users,
            binary: binary.clone(),
            log_level: log_level.clone(),
            pgbench: pgbench.clone(),
            work: work.clone(),
        };
        // On a worker thread, as the create-user runs are.
        Some(tokio::spawn(lifecycle_run(settings)).await??)
    };
    let scim = if env_or("BENCH_SCIM", "1") == "0" {
        None
    } else {
        let settings = scim::ScimSettings {
            postmaster,
            seconds,
            filter_users: env_or("BENCH_SCIM_USERS", scim::FILTER_USERS).parse()?,
            paged_users: env_or("BENCH_SCIM_PAGED", scim::PAGED_USERS).parse()?,
            create_user: binary.clone(),
            scim: workspace_binary("scim")?,
            log_level: log_level.clone(),
            pgbench: pgbench.clone(),
            work: work.clone(),
            emails: emails.clone(),
        };
        // On a worker thread, as the create-user runs are.
        Some(tokio::spawn(scim::scim_run(settings)).await??)
    };
    let sync_users: u64 = env_or("BENCH_SCIM_SYNC_USERS", scim::SYNC_USERS).parse()?;
    let sync = if sync_users == 0 {
        None
    } else {
        let settings = scim::SyncSettings {
            users: sync_users,
            rate: env_or("BENCH_SCIM_SYNC_RATE", scim::SYNC_RATE).parse()?,
            workers: env_or("BENCH_SCIM_SYNC_WORKERS", scim::SYNC_WORKERS).parse()?,
            scim: workspace_binary("scim")?,
            log_level: log_level.clone(),
        };
        Some(tokio::spawn(scim::sync_run(settings)).await??)
    };
    let cleanup = if orphans > 0 {
        Some(cleanup_run(orphans).await?)
    } else {
        None
    };
    let sweep_sizes = env_or("BENCH_SWEEP_USERS", "10000,100000,1000000");
    let sweep = if sweep_sizes.trim() == "0" {
        Vec::new()
    } else {
        sweep_run(&sweep_sizes).await?
    };
    let coldstart = coldstart_run().await?;
    let _ = std::fs::remove_dir_all(&work);

    let report = render(
        &machine,
        seconds,
        &log_level,
        &rows,
        wires.as_ref(),
        lifecycle.as_ref(),
        Scim {
            reads: scim.as_ref(),
            sync: sync.as_ref(),
        },
        &drift,
        &cleanup,
        &sweep,
        &coldstart,
    );
    write_between_marks(&out, &report)?;
    println!("wrote {}", out.display());
    Ok(())
}

/// This run's scratch files (pgbench's script and logs, the instances' output).
fn work_dir() -> PathBuf {
    std::env::temp_dir().join(format!("bench-{}", std::process::id()))
}

/// A new file for an instance's output.
fn instance_log() -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    work_dir().join(format!("instance-{n}.log"))
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

/// A fresh address for every create, across all runs.
struct Emails {
    next: AtomicU64,
    run: String,
}

impl Emails {
    fn new() -> Self {
        let run = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
        Emails {
            next: AtomicU64::new(0),
            run,
        }
    }

    fn next(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        format!("bench-{}-{n}@bench.test", self.run)
    }
}

/// The example request (events/create-user.json) with another address.
fn create_body(email: &str) -> Value {
    json!({
        "email": email,
        "role": "USER",
        "permissions": [
            {"pageId": seed::PAGE_DASHBOARD, "canRead": true, "canWrite": false, "canEdit": false, "canDelete": false},
            {"pageId": seed::PAGE_REPORTS, "canRead": true, "canWrite": true, "canEdit": false, "canDelete": false}
        ],
        "create_employee": true,
        "employee_data": {"firstName": "Nia", "lastName": "Hire", "department": "Sales",
                          "jobTitle": "Account Executive", "employmentType": "FULL_TIME"}
    })
}

/// One Lambda instance: its emulator, its process, and the file its output goes to.
struct Instance {
    runtime: RuntimeApi,
    child: Child,
    pid: u32,
    log: PathBuf,
}

impl Instance {
    /// Starts the binary and returns it with the time until it asked for its first event.
    /// Its stdout and stderr go to a file, not to a pipe this process reads: in Lambda the
    /// platform ships the lines, on no core of the function's, so here the writes are the
    /// binary's and the reading is nobody's (a pipe cost this process a wake-up per line).
    async fn start(
        binary: &Path,
        vars: &HashMap<String, String>,
    ) -> Result<(Instance, Duration), BoxError> {
        Self::start_as(binary, vars, "create-user").await
    }

    /// As [`Instance::start`], for the function `function` (its name in the Lambda
    /// environment and in what it says when it fails to start).
    async fn start_as(
        binary: &Path,
        vars: &HashMap<String, String>,
        function: &str,
    ) -> Result<(Instance, Duration), BoxError> {
        let runtime = RuntimeApi::start().await?;
        let log = instance_log();
        let output = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&log)?;
        let started = Instant::now();
        let mut child = Command::new(binary)
            .env_clear()
            .envs(vars)
            .envs(runtime.lambda_env(function))
            .stdout(output.try_clone()?)
            .stderr(output)
            .kill_on_drop(true)
            .spawn()?;
        let pid = child.id().ok_or(format!("{function} exited at once"))?;
        if let Err(err) = runtime.wait_ready(Duration::from_secs(30)).await {
            let _ = child.kill().await;
            let output = std::fs::read_to_string(&log).unwrap_or_default();
            return Err(format!("{err}; {function} wrote:\n{output}").into());
        }
        let ready = started.elapsed();
        Ok((
            Instance {
                runtime,
                child,
                pid,
                log,
            },
            ready,
        ))
    }

    /// Bytes and lines written so far.
    fn written(&self) -> (u64, u64) {
        let text = std::fs::read(&self.log).unwrap_or_default();
        let lines = text.iter().filter(|b| **b == b'\n').count();
        (text.len() as u64, lines as u64)
    }

    /// Stops the process and deletes its output.
    async fn stop(mut self) {
        let _ = self.child.kill().await;
        drop(self.runtime);
        let _ = std::fs::remove_file(&self.log);
    }

    /// One create, as API Gateway would send it; the time until the function answered.
    async fn create(&self, email: &str) -> Result<Duration, String> {
        let event = create_event(seed::ACME_ADMIN_SUB, &create_body(email));
        self.call(event, 201).await.map(|(took, _)| took)
    }

    /// One API Gateway event; the time until the function answered, and its answer (the
    /// Lambda response: `statusCode`, `body` as text), which must have the status `status`.
    async fn call(&self, event: Value, status: u16) -> Result<(Duration, Value), String> {
        match self.answer(event).await? {
            (took, Outcome::Response(raw)) if raw["statusCode"] == status => Ok((took, raw)),
            (_, other) => Err(format!("the function did not answer {status}: {other:?}")),
        }
    }

    /// One API Gateway event; the time until the function answered, and how it did.
    async fn answer(&self, event: Value) -> Result<(Duration, Outcome), String> {
        let started = Instant::now();
        let invocation = self
            .runtime
            .invoke(event, Duration::from_secs(20), Duration::from_secs(30))
            .await?;
        Ok((started.elapsed(), invocation.outcome))
    }
}

/// User plus system CPU time of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    field(11).unwrap_or(0) + field(12).unwrap_or(0)
}

/// CPU used by the Postgres cluster: the postmaster and its live children, plus what its
/// exited children (closed connections) left in its cutime and cstime.
fn cluster_cpu_ticks(postmaster: u32) -> u64 {
    let stat_fields = |pid: &str| -> Option<Vec<u64>> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let rest = stat.rsplit_once(')')?.1;
        // state ppid ... utime(11) stime(12) cutime(13) cstime(14); the state is not a number.
        Some(
            rest.split_whitespace()
                .skip(1)
                .map(|f| f.parse().unwrap_or(0))
                .collect(),
        )
    };
    let mut ticks = 0;
    if let Some(own) = stat_fields(&postmaster.to_string()) {
        ticks += own.get(10..14).map_or(0, |t| t.iter().sum());
    }
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return ticks;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        if let Some(fields) = stat_fields(pid)
            && fields.first() == Some(&u64::from(postmaster))
        {
            ticks += fields.get(10).unwrap_or(&0) + fields.get(11).unwrap_or(&0);
        }
    }
    ticks
}

/// The postmaster's pid: the parent of a backend.
async fn postmaster_pid() -> Result<u32, BoxError> {
    let url = std::env::var("TEST_DATABASE_URL")?;
    let sql = testkit::harness::connect(&url).await;
    let backend: i32 = sql.query_one("SELECT pg_backend_pid()", &[]).await?.get(0);
    let stat = std::fs::read_to_string(format!("/proc/{backend}/stat"))?;
    let ppid = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(1))
        .ok_or("no parent in /proc/<backend>/stat")?;
    Ok(ppid.parse()?)
}

/// VmHWM: the most resident memory the process ever had, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

struct BinaryRun {
    instances: usize,
    creates: usize,
    errors: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
    cpu_ticks: u64,
    /// This process (emulators, doubles, the driving loops) during the run.
    driver_ticks: u64,
    /// The Postgres cluster during the run.
    db_ticks: u64,
    log_bytes: u64,
    log_lines: u64,
    token_requests: usize,
    peak_rss_kib: u64,
    /// Process start to its first GET /next, one per instance (started one after another).
    cold_starts: Vec<Duration>,
    /// Each instance's first create, right after its start (connection, token, statements).
    first_creates: Vec<Duration>,
    /// Auth0 create + email send made from this process after the run.
    doubles: Vec<Duration>,
}

impl BinaryRun {
    fn per_sec(&self) -> f64 {
        self.creates as f64 / self.elapsed.as_secs_f64()
    }

    fn cpu_ms_per_create(&self) -> f64 {
        ticks_per(self.cpu_ticks, self.creates as u64)
    }
}

/// Milliseconds of CPU per create.
fn ticks_per(ticks: u64, creates: u64) -> f64 {
    ticks as f64 / TICKS_PER_SEC * 1e3 / creates.max(1) as f64
}

impl std::fmt::Display for BinaryRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let l = Stats::of(&self.latencies);
        write!(
            f,
            "create-user x{}: {} creates ({} errors) in {:.1} s = {:.0}/s; p50 {:.2} p95 {:.2} \
             p99 {:.2} ms; CPU {:.3} ms/create; {:.1} log lines, {:.0} log bytes per create; \
             {} token requests; peak RSS {:.1} MiB; doubles p50 {:.2} ms; driver CPU {:.3} \
             ms/create; Postgres CPU {:.3} ms/create",
            self.instances,
            self.creates,
            self.errors,
            self.elapsed.as_secs_f64(),
            self.per_sec(),
            l.p50,
            l.p95,
            l.p99,
            self.cpu_ms_per_create(),
            self.log_lines as f64 / self.creates.max(1) as f64,
            self.log_bytes as f64 / self.creates.max(1) as f64,
            self.token_requests,
            self.peak_rss_kib as f64 / 1024.0,
            Stats::of(&self.doubles).p50,
            ticks_per(self.driver_ticks, self.creates as u64),
            ticks_per(self.db_ticks, self.creates as u64),
        )
    }
}

/// Percentiles in milliseconds.
#[derive(Default, Clone, Copy)]
struct Stats {
    p50: f64,
    p95: f64,
    p99: f64,
}

impl Stats {
    fn of(samples: &[Duration]) -> Stats {
        if samples.is_empty() {
            return Stats::default();
        }
        let mut sorted = samples.to_vec();
        sorted.sort();
        let at = |q: f64| {
            let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
            sorted[i].as_secs_f64() * 1e3
        };
        Stats {
            p50: at(0.50),
            p95: at(0.95),
            p99: at(0.99),
        }
    }
}

fn app_vars(stack: &TestStack, log_level: &str) -> HashMap<String, String> {
    let mut vars = stack.vars.clone();
    vars.insert("RUST_LOG".into(), log_level.into());
    // As deployed (template.yaml): one connection per instance.
    vars.insert("DB_POOL_SIZE".into(), "1".into());
    vars
}

/// A fresh database and fresh doubles for one run.
async fn fresh_stack() -> Result<TestStack, BoxError> {
    let prepared = TestStack::prepare().await;
    // The double's nominal limit is not what is measured here (see the scale section).
    prepared.auth0.set_rate_limit(Some(1_000_000));
    Ok(prepared.start(None).await?)
}

async fn binary_run(
    postmaster: u32,
    n: usize,
    seconds: u64,
    binary: &Path,
    log_level: &str,
    emails: &Arc<Emails>,
) -> Result<BinaryRun, BoxError> {
    let stack = fresh_stack().await?;
    let vars = app_vars(&stack, log_level);
    let mut instances = Vec::with_capacity(n);
    let (mut cold_starts, mut first_creates) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let (instance, ready) = Instance::start(binary, &vars).await?;
        cold_starts.push(ready);
        first_creates.push(instance.create(&emails.next()).await?);
        instances.push(instance);
    }
    let warm_ups = instances.iter().map(|instance| async move {
        for _ in 0..WARM_UP {
            instance.create(&emails.next()).await?;
        }
        Ok::<_, String>(())
    });
    for warmed in futures::future::join_all(warm_ups).await {
        warmed?;
    }

    let cpu = |instances: &[Instance]| instances.iter().map(|i| cpu_ticks(i.pid)).sum::<u64>();
    let written = |instances: &[Instance]| {
        instances.iter().fold((0, 0), |(bytes, lines), i| {
            let (b, l) = i.written();
            (bytes + b, lines + l)
        })
    };
    let tokens_before = stack.auth0.token_requests();
    let written_before = written(&instances);
    let cpu_before = cpu(&instances);
    let (driver_before, db_before) = (cpu_ticks(std::process::id()), cluster_cpu_ticks(postmaster));
    let started = Instant::now();
    let stop = started + Duration::from_secs(seconds);
    let loops = instances.iter().map(|instance| async move {
        let (mut latencies, mut errors) = (Vec::new(), 0usize);
        while Instant::now() < stop {
            match instance.create(&emails.next()).await {
                Ok(took) => latencies.push(took),
                Err(err) => {
                    if errors == 0 {
                        eprintln!("create-user x{n}: {err}");
                    }
                    errors += 1;
                }
            }
        }
        (latencies, errors)
    });
    let results = futures::future::join_all(loops).await;
    let elapsed = started.elapsed();
    let (driver_after, db_after) = (cpu_ticks(std::process::id()), cluster_cpu_ticks(postmaster));
    let cpu_after = cpu(&instances);
    // An instance writes its last line before it answers: the files are complete.
    let written_after = written(&instances);
    let token_requests = stack.auth0.token_requests() - tokens_before;
    let peak_rss_kib = instances.iter().map(|i| peak_rss_kib(i.pid)).max();
    for instance in instances {
        instance.stop().await;
    }
    let doubles = doubles_time(&stack, emails).await?;

    let mut latencies = Vec::new();
    let mut errors = 0;
    for (l, e) in results {
        latencies.extend(l);
        errors += e;
    }
    Ok(BinaryRun {
        instances: n,
        creates: latencies.len(),
        errors,
        elapsed,
        latencies,
        cpu_ticks: cpu_after - cpu_before,
        driver_ticks: driver_after.saturating_sub(driver_before),
        db_ticks: db_after.saturating_sub(db_before),
        log_bytes: written_after.0 - written_before.0,
        log_lines: written_after.1 - written_before.1,
        token_requests,
        peak_rss_kib: peak_rss_kib.unwrap_or(0),
        cold_starts,
        first_creates,
        doubles,
    })
}

/// What create-user's two outside calls cost against the doubles, measured from outside the
/// binary with the project's own clients: the part of its latency no database work explains.
async fn doubles_time(stack: &TestStack, emails: &Emails) -> Result<Vec<Duration>, BoxError> {
    let state = &stack.state;
    let link = url::Url::parse("https://app.acme.test/auth/set-password?token=x")?;
    let mut samples = Vec::with_capacity(DOUBLE_CALLS);
    for _ in 0..DOUBLE_CALLS {
        let email = Email::parse(&emails.next())?;
        let password = shared::reset_token::temporary_password();
        let tags = OwnershipTags {
            tenant_id: shared::domain::TenantId::parse(seed::ACME)?,
            role: shared::domain::Role::User,
            db_user_id: shared::domain::UserId::new(uuid::Uuid::new_v4()),
        };
        let deadline = Deadline::after(Duration::from_secs(20));
        let started = Instant::now();
        state
            .auth0
            .create_user(
                &NewAuth0User {
                    email: &email,
                    password: &password,
                    tags: &tags,
                    blocked: false,
                },
                &deadline,
            )
            .await?;
        let message = PasswordSetupEmail {
            to: &email,
            tenant_name: "Acme",
            role: Role::User,
            link: &link,
            valid_for: Duration::from_secs(86_400),
        };
        state.email.send_password_setup(&message, &deadline).await?;
        samples.push(started.elapsed());
    }
    Ok(samples)
}

struct FloorRun {
    clients: usize,
    transactions: u64,
    tps: f64,
    latencies: Vec<Duration>,
    /// Each transaction's number (per client, from 0) and latency, by client and number: in
    /// the order one client ran them.
    numbered: Vec<(u32, u64, Duration)>,
    cpu_seconds: f64,
    /// The Postgres cluster during the run.
    db_ticks: u64,
}

impl FloorRun {
    fn cpu_ms_per_create(&self) -> f64 {
        self.cpu_seconds * 1e3 / self.transactions.max(1) as f64
    }
}

impl std::fmt::Display for FloorRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let l = Stats::of(&self.latencies);
        write!(
            f,
            "floor (pgbench -M prepared) x{}: {} transactions = {:.0}/s; p50 {:.2} p95 {:.2} p99 \
             {:.2} ms; pgbench CPU {:.3} ms/transaction; Postgres CPU {:.3} ms/transaction",
            self.clients,
            self.transactions,
            self.tps,
            l.p50,
            l.p95,
            l.p99,
            self.cpu_ms_per_create(),
            ticks_per(self.db_ticks, self.transactions),
        )
    }
}

/// pgbench's connection string for a database: the cluster's URL without TLS, as the binary
/// talks to it here (DB_SSLMODE=disable).
fn libpq_url(db_url: &str, port: Option<u16>) -> Result<String, BoxError> {
    let mut url = url::Url::parse(db_url)?;
    if let Some(port) = port {
        url.set_port(Some(port))
            .map_err(|_| "cannot set the port")?;
    }
    url.query_pairs_mut().append_pair("sslmode", "disable");
    Ok(url.into())
}

/// A pgbench script and the variables it runs with (`-D name=value`).
struct Script {
    /// Its file name in the run's scratch directory.
    file: &'static str,
    sql: &'static str,
    vars: Vec<(&'static str, String)>,
}

impl Script {
    /// create-user's statements for the example request.
    fn create_floor() -> Script {
        Script {
            file: "create_user_floor.sql",
            sql: FLOOR_SQL,
            vars: vec![
                ("sub", seed::ACME_ADMIN_SUB.to_string()),
                (
                    "pages",
                    format!("{{{},{}}}", seed::PAGE_DASHBOARD, seed::PAGE_REPORTS),
                ),
            ],
        }
    }
}

/// Runs pgbench with `script`; `limit` is `-T seconds` or `-t transactions`.
/// Returns pgbench's stdout and the CPU time it used (bash's `times` for its children).
async fn pgbench(
    pgbench: &str,
    work: &Path,
    url: &str,
    script: &Script,
    clients: usize,
    limit: &[String],
    log_prefix: Option<&Path>,
) -> Result<(String, f64), BoxError> {
    let file = work.join(script.file);
    std::fs::write(&file, script.sql)?;
    let mut args: Vec<String> = vec![
        "-n".into(),
        "-M".into(),
        "prepared".into(),
        "-f".into(),
        file.display().to_string(),
        "-c".into(),
        clients.to_string(),
        "-j".into(),
        clients.min(2).to_string(),
    ];
    for (name, value) in &script.vars {
        args.extend(["-D".into(), format!("{name}={value}")]);
    }
    args.extend(limit.iter().cloned());
    if let Some(prefix) = log_prefix {
        args.extend(["-l".into(), format!("--log-prefix={}", prefix.display())]);
    }
    args.push(url.to_string());
    let out = Command::new("bash")
        .arg("-c")
        .arg(r#""$0" "$@"; status=$?; times >&2; exit $status"#)
        .arg(pgbench)
        .args(&args)
        .output()
        .await?;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    if !out.status.success() {
        return Err(format!("pgbench failed:\n{stdout}\n{stderr}").into());
    }
    // `times` prints the shell's and then its children's user and system time.
    let children = stderr.lines().last().unwrap_or_default();
    let cpu_seconds = children.split_whitespace().map(bash_time).sum();
    Ok((stdout, cpu_seconds))
}

/// `0m0.123s` → 0.123
fn bash_time(text: &str) -> f64 {
    let Some((minutes, seconds)) = text.trim_end_matches('s').split_once('m') else {
        return 0.0;
    };
    minutes.parse::<f64>().unwrap_or(0.0) * 60.0 + seconds.parse::<f64>().unwrap_or(0.0)
}

/// The number after `prefix` in pgbench's output (of `1046/1046`, with `-t`, the first).
fn pgbench_number(stdout: &str, prefix: &str) -> Option<f64> {
    stdout.lines().find_map(|l| {
        l.trim()
            .strip_prefix(prefix)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.split('/').next())
            .and_then(|v| v.parse().ok())
    })
}

/// create-user's floor with `clients` clients for `seconds`, on a fresh database.
async fn floor_run(
    postmaster: u32,
    clients: usize,
    seconds: u64,
    pgbench_bin: &str,
    work: &Path,
) -> Result<FloorRun, BoxError> {
    let db = TestDb::create().await;
    let limit = ["-T".into(), seconds.to_string()];
    let floor = Floor {
        postmaster,
        pgbench: pgbench_bin,
        work,
        url: &db.url,
    };
    floor
        .run(
            &Script::create_floor(),
            clients,
            &limit,
            &format!("floor-{clients}"),
        )
        .await
}

/// Where floors run: pgbench, the scratch directory, the database.
struct Floor<'a> {
    postmaster: u32,
    pgbench: &'a str,
    work: &'a Path,
    url: &'a str,
}

impl Floor<'_> {
    /// `script` with `clients` clients until `limit`; `tag` names its log directory.
    async fn run(
        &self,
        script: &Script,
        clients: usize,
        limit: &[String],
        tag: &str,
    ) -> Result<FloorRun, BoxError> {
        let (postmaster, work) = (self.postmaster, self.work);
        let url = libpq_url(self.url, None)?;
        let logs = work.join(tag);
        std::fs::create_dir_all(&logs)?;
        let db_before = cluster_cpu_ticks(postmaster);
        let (stdout, cpu_seconds) = pgbench(
            self.pgbench,
            work,
            &url,
            script,
            clients,
            limit,
            Some(&logs.join("tx")),
        )
        .await?;
        // pgbench's backends exit after it does; their CPU reaches the postmaster's cutime once
        // it has reaped them.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let db_ticks = cluster_cpu_ticks(postmaster).saturating_sub(db_before);
        let transactions = pgbench_number(&stdout, "number of transactions actually processed:")
            .ok_or_else(|| format!("no transaction count in pgbench's output:\n{stdout}"))?
            as u64;
        let tps = pgbench_number(&stdout, "tps =")
            .ok_or_else(|| format!("no tps in pgbench's output:\n{stdout}"))?;
        // Per-transaction log: client_id transaction_no time_us script_no epoch epoch_us.
        let mut numbered = Vec::new();
        for file in std::fs::read_dir(&logs)? {
            let text = std::fs::read_to_string(file?.path())?;
            for line in text.lines() {
                let mut fields = line.split_whitespace().map(str::parse::<u64>);
                if let (Some(Ok(client)), Some(Ok(n)), Some(Ok(us))) =
                    (fields.next(), fields.next(), fields.next())
                {
                    numbered.push((client as u32, n, Duration::from_micros(us)));
                }
            }
        }
        numbered.sort_by_key(|(client, n, _)| (*client, *n));
        let latencies = numbered.iter().map(|(_, _, took)| *took).collect();
        Ok(FloorRun {
            clients,
            transactions,
            tps,
            latencies,
            numbered,
            cpu_seconds,
            db_ticks,
        })
    }
}

/// What a relay saw on the database connections, per create.
#[derive(Default)]
struct WireCounts {
    round_trips: AtomicU64,
    statements: AtomicU64,
}

struct Wire {
    /// Requests (creates, or requests of one operation) counted.
    requests: u64,
    round_trips: u64,
    statements: u64,
}

impl std::fmt::Display for Wire {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.2} round trips and {:.2} statements per request over {} requests",
            self.per_request(self.round_trips),
            self.per_request(self.statements),
            self.requests
        )
    }
}

impl Wire {
    fn per_request(&self, count: u64) -> f64 {
        count as f64 / self.requests.max(1) as f64
    }
}

impl WireCounts {
    fn read(&self) -> (u64, u64) {
        (
            self.round_trips.load(Ordering::Relaxed),
            self.statements.load(Ordering::Relaxed),
        )
    }
}

/// A TCP relay to Postgres that counts, per connection, the client's write bursts that follow
/// an answer from the server (round trips) and the Execute and Query messages it sends
/// (statements). Needs the connection in clear text (sslmode disable).
async fn start_relay(upstream: SocketAddr, counts: Arc<WireCounts>) -> std::io::Result<u16> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let counts = counts.clone();
            tokio::spawn(async move {
                if let Ok(server) = TcpStream::connect(upstream).await {
                    relay(client, server, counts).await;
                }
            });
        }
    });
    Ok(port)
}

async fn relay(client: TcpStream, server: TcpStream, counts: Arc<WireCounts>) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut client_rx, mut client_tx) = client.into_split();
    let (mut server_rx, mut server_tx) = server.into_split();
    let answered = AtomicBool::new(true);
    let up = async {
        let mut messages = FrontendMessages::default();
        let mut chunk = vec![0u8; 64 * 1024];
        while let Ok(n) = client_rx.read(&mut chunk).await {
            if n == 0 {
                break;
            }
            if answered.swap(false, Ordering::AcqRel) {
                counts.round_trips.fetch_add(1, Ordering::Relaxed);
            }
            let statements = messages.feed(&chunk[..n]);
            counts.statements.fetch_add(statements, Ordering::Relaxed);
            if server_tx.write_all(&chunk[..n]).await.is_err() {
                break;
            }
        }
        let _ = server_tx.shutdown().await;
    };
    let down = async {
        let mut chunk = vec![0u8; 64 * 1024];
        while let Ok(n) = server_rx.read(&mut chunk).await {
            if n == 0 {
                break;
            }
            answered.store(true, Ordering::Release);
            if client_tx.write_all(&chunk[..n]).await.is_err() {
                break;
            }
        }
        let _ = client_tx.shutdown().await;
    };
    tokio::join!(up, down);
}

/// Splits the client's side of the Postgres protocol into messages: the start-up packet (no
/// type byte), then a type byte and a length each.
#[derive(Default)]
struct FrontendMessages {
    buffer: Vec<u8>,
    started: bool,
}

impl FrontendMessages {
    /// Returns how many statements (Execute `E`, simple Query `Q`) the bytes completed.
    fn feed(&mut self, bytes: &[u8]) -> u64 {
        self.buffer.extend_from_slice(bytes);
        let mut statements = 0;
        let mut at = 0;
        loop {
            let rest = &self.buffer[at..];
            let (header, kind) = if self.started {
                (5, rest.first().copied())
            } else {
                (4, None)
            };
            if rest.len() < header {
                break;
            }
            let len_at = header - 4;
            let len =
                u32::from_be_bytes(rest[len_at..len_at + 4].try_into().expect("4 bytes")) as usize;
            let total = len_at + len;
            if rest.len() < total {
                break;
            }
            if matches!(kind, Some(b'E' | b'Q')) {
                statements += 1;
            }
            self.started = true;
            at += total;
        }
        self.buffer.drain(..at);
        statements
    }
}

fn upstream_of(db_url: &str) -> Result<SocketAddr, BoxError> {
    let url = url::Url::parse(db_url)?;
    let host = url.host_str().ok_or("no host in the database URL")?;
    let port = url.port().unwrap_or(5432);
    Ok(format!("{host}:{port}").parse()?)
}

/// One instance, its database connection through the relay.
async fn binary_wire(
    binary: &Path,
    log_level: &str,
    emails: &Arc<Emails>,
) -> Result<Wire, BoxError> {
    let stack = fresh_stack().await?;
    let counts = Arc::new(WireCounts::default());
    let port = start_relay(upstream_of(&stack.db.url)?, counts.clone()).await?;
    let mut vars = app_vars(&stack, log_level);
    let mut url = url::Url::parse(&stack.db.url)?;
    url.set_port(Some(port))
        .map_err(|_| "cannot set the port")?;
    vars.insert("DATABASE_URL".into(), url.into());
    let (instance, _) = Instance::start(binary, &vars).await?;
    for _ in 0..WARM_UP {
        instance.create(&emails.next()).await?;
    }
    let before = counts.read();
    for _ in 0..WIRE_CREATES {
        instance.create(&emails.next()).await?;
    }
    let after = counts.read();
    instance.stop().await;
    Ok(Wire {
        requests: WIRE_CREATES,
        round_trips: after.0 - before.0,
        statements: after.1 - before.1,
    })
}

/// pgbench through the relay; its connection set-up and first Parse messages are included.
async fn floor_wire(pgbench_bin: &str, work: &Path) -> Result<Wire, BoxError> {
    let db = TestDb::create().await;
    let counts = Arc::new(WireCounts::default());
    let port = start_relay(upstream_of(&db.url)?, counts.clone()).await?;
    let url = libpq_url(&db.url, Some(port))?;
    pgbench(
        pgbench_bin,
        work,
        &url,
        &Script::create_floor(),
        1,
        &["-t".into(), WIRE_CREATES.to_string()],
        None,
    )
    .await?;
    let (round_trips, statements) = counts.read();
    Ok(Wire {
        requests: WIRE_CREATES,
        round_trips,
        statements,
    })
}

/// The 100k cleanup (tests/src/bin/cleanup_bench.rs), its summary line as printed.
async fn cleanup_run(orphans: u64) -> Result<String, BoxError> {
    let out = Command::new(workspace_binary("cleanup_bench")?)
        .arg(orphans.to_string())
        .output()
        .await?;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    if !out.status.success() {
        return Err(format!(
            "cleanup_bench failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    let line = stdout
        .lines()
        .find(|l| l.starts_with("removed"))
        .unwrap_or_default()
        .to_string();
    println!("cleanup: {line}");
    Ok(line)
}

/// The Auth0 sweep at each size (tests/src/bin/sweep_bench.rs): its table, header included.
async fn sweep_run(sizes: &str) -> Result<Vec<String>, BoxError> {
    let out = Command::new(workspace_binary("sweep_bench")?)
        .arg(sizes)
        .output()
        .await?;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    if !out.status.success() {
        return Err(format!(
            "sweep_bench failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    let table: Vec<String> = stdout
        .lines()
        .filter(|l| l.starts_with('|'))
        .map(str::to_string)
        .collect();
    for line in &table {
        println!("sweep: {line}");
    }
    Ok(table)
}

/// tests/src/bin/coldstart.rs: start to first `GET /next` with local secrets and, when
/// TEST_MOTO_URL is set, with secrets from Secrets Manager (moto); its result lines.
async fn coldstart_run() -> Result<Vec<String>, BoxError> {
    let out = Command::new(workspace_binary("coldstart")?)
        .output()
        .await?;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    if !out.status.success() {
        return Err(format!(
            "coldstart failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    let lines: Vec<String> = stdout
        .lines()
        .filter(|l| l.contains("median"))
        .map(str::to_string)
        .collect();
    for line in &lines {
        println!("cold start: {line}");
    }
    Ok(lines)
}

// --- The rest of the admin API: read, list, update, deactivate, reactivate, delete ---------

/// Users in the list's tenant (Acme) besides the seed's, unless BENCH_LIST_USERS says.
const LIST_USERS: &str = "100000";
/// The page the admin panel asks for; the binary reads one row more.
const LIST_LIMIT: usize = 50;
/// The deep page starts after this many users (after half the tenant, if it has fewer).
const LIST_DEEP: i64 = 50_000;
/// Requests of each operation counted through the relay.
const WIRE_REQUESTS: usize = 200;
/// Users in the pool per second of a run: more than either side deactivates or deletes in it
/// (the delete floor has done 3,000 a second).
const POOL_PER_SECOND: u64 = 5_000;
/// The list's user g's id is this followed by g in 12 digits.
const LIST_ID_PREFIX: &str = "d0000000-0000-4000-8000-";
/// Pool user k's id is this followed by k in 12 digits; the floors build it so.
const POOL_ID_PREFIX: &str = "f0000000-0000-4000-8000-";
/// How the floors write pool user k's id (`:k` is their pgbench variable).
const FLOOR_USER_ID: &str = "('f0000000-0000-4000-8000-' || lpad(:k::text, 12, '0'))::uuid";
/// The intent's Auth0 id in the floors.
const FLOOR_AUTH0_ID: &str = "auth0|bench";
const USERS_PATH: &str = "/api/direct-users";
/// From tests/fixtures/seed.sql: Globex's admin (who acts on the pool) and the businesses.
const GLOBEX_ADMIN_ID: &str = "a0000000-0000-4000-8000-000000000005";
const ACME_BUSINESS: &str = "b0000000-0000-4000-8000-00000000000a";
const GLOBEX_BUSINESS: &str = "b0000000-0000-4000-8000-00000000000b";

/// The operations measured, in the order they run (each leaves the users the next one needs).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Op {
    ListFirst,
    ListDeep,
    Get,
    Update,
    Deactivate,
    Reactivate,
    Delete,
}

impl Op {
    const ALL: [Op; 7] = [
        Op::ListFirst,
        Op::ListDeep,
        Op::Get,
        Op::Update,
        Op::Deactivate,
        Op::Reactivate,
        Op::Delete,
    ];

    fn name(self) -> &'static str {
        match self {
            Op::ListFirst => "list, first page",
            Op::ListDeep => "list, a page deep in the cursor",
            Op::Get => "get",
            Op::Update => "update (role)",
            Op::Deactivate => "deactivate",
            Op::Reactivate => "reactivate",
            Op::Delete => "delete",
        }
    }

    fn is_list(self) -> bool {
        matches!(self, Op::ListFirst | Op::ListDeep)
    }

    /// The most Auth0 calls the operation may make (issue #24).
    fn auth0_at_most(self) -> f64 {
        match self {
            Op::ListFirst | Op::ListDeep | Op::Get => 0.0,
            Op::Update | Op::Reactivate => 1.0,
            Op::Deactivate => 3.0,
            Op::Delete => 2.0,
        }
    }

    /// The factor on the floor (plus the doubles' time) the p50 is to stay within.
    fn target_factor(self) -> f64 {
        if self.is_list() { 1.5 } else { 1.3 }
    }

    /// Its floor's script file (tests/bench/) and text.
    fn floor_sql(self) -> (&'static str, &'static str) {
        match self {
            Op::ListFirst => (
                "list_users_floor.sql",
                include_str!("../../bench/list_users_floor.sql"),
            ),
            Op::ListDeep => (
                "list_users_cursor_floor.sql",
                include_str!("../../bench/list_users_cursor_floor.sql"),
            ),
            Op::Get => (
                "get_user_floor.sql",
                include_str!("../../bench/get_user_floor.sql"),
            ),
            Op::Update => (
                "update_user_floor.sql",
                include_str!("../../bench/update_user_floor.sql"),
            ),
            Op::Deactivate => (
                "deactivate_user_floor.sql",
                include_str!("../../bench/deactivate_user_floor.sql"),
            ),
            Op::Reactivate => (
                "reactivate_user_floor.sql",
                include_str!("../../bench/reactivate_user_floor.sql"),
            ),
            Op::Delete => (
                "delete_user_floor.sql",
                include_str!("../../bench/delete_user_floor.sql"),
            ),
        }
    }

    /// The statements create-user sends for the operation (shared's SQL), each with its
    /// parameters `$1, $2, …` as the floor writes them: what the floor must contain.
    fn statements(self) -> Vec<(&'static str, String, Vec<String>)> {
        use shared::db::{intents, user_views, users};
        let id = || FLOOR_USER_ID.to_string();
        let caller = (
            "users::FIND_CALLER",
            users::FIND_CALLER.to_string(),
            vec![":sub".into()],
        );
        let lock = (
            "users::LOCK_BY_ID",
            users::LOCK_BY_ID.to_string(),
            vec![id()],
        );
        let view = ("user_views::by_id_sql", user_views::by_id_sql(), vec![id()]);
        let unintent = ("intents::DELETE", intents::DELETE.to_string(), vec![id()]);
        let intent = |name: &str| {
            let params = vec![
                id(),
                ":tenant".into(),
                ":auth0_id".into(),
                format!("'{name}'"),
                "gen_random_uuid()".into(),
            ];
            ("intents::INSERT", intents::INSERT.to_string(), params)
        };
        let list = |after: bool| {
            let query = user_views::ListQuery {
                status: None,
                email_prefix: None,
                after: after.then(|| {
                    (
                        chrono::Utc::now(),
                        shared::domain::UserId::new(uuid::Uuid::nil()),
                    )
                }),
                limit: LIST_LIMIT + 1,
            };
            let params: Vec<String> = if after {
                vec![
                    ":tenant".into(),
                    ":at".into(),
                    ":after".into(),
                    ":limit".into(),
                ]
            } else {
                vec![":tenant".into(), ":limit".into()]
            };
            ("user_views::list_sql", user_views::list_sql(&query), params)
        };
        match self {
            Op::ListFirst => vec![list(false)],
            Op::ListDeep => vec![list(true)],
            Op::Get => vec![caller, view],
            Op::Update => vec![
                caller,
                lock,
                intent("update"),
                (
                    "users::SET_ROLE",
                    users::SET_ROLE.to_string(),
                    vec![id(), ":role".into()],
                ),
                view,
                unintent,
            ],
            Op::Deactivate => vec![
                caller,
                lock,
                intent("deactivate"),
                (
                    "users::DEACTIVATE",
                    users::DEACTIVATE.to_string(),
                    vec![id()],
                ),
                view,
                unintent,
            ],
            Op::Reactivate => vec![
                caller,
                lock,
                intent("reactivate"),
                (
                    "users::REACTIVATE",
                    users::REACTIVATE.to_string(),
                    vec![id()],
                ),
                view,
                unintent,
            ],
            Op::Delete => vec![
                caller,
                lock,
                intent("delete"),
                ("users::DELETE", users::DELETE.to_string(), vec![id()]),
                unintent,
            ],
        }
    }

    /// Its floor's file, with the statements of shared's it must hold.
    fn floor_file(self) -> FloorFile {
        let (file, sql) = self.floor_sql();
        FloorFile {
            file,
            sql,
            statements: self.statements(),
        }
    }

    /// How many statements the floor sends for one request (one round trip each).
    fn floor_statements(self) -> usize {
        floor_statements(self.floor_sql().1)
    }
}

/// A statement of shared's that a floor must hold: its name, its SQL, and its parameters
/// `$1, $2, …` as the floor writes them.
type Statement = (&'static str, String, Vec<String>);

/// A floor (`tests/bench/<file>`) and the statements of shared's it must send as the binary
/// does.
struct FloorFile {
    file: &'static str,
    sql: &'static str,
    statements: Vec<Statement>,
}

impl FloorFile {
    /// The statements of shared's the floor no longer sends as the binary does (whitespace
    /// aside): a floor to bring up to date.
    fn drift(&self) -> Vec<&'static str> {
        let squeeze = |text: &str| text.split_whitespace().collect::<Vec<_>>().join(" ");
        let floor = squeeze(self.sql);
        self.statements
            .iter()
            .filter(|(_, sql, params)| {
                let mut sql = sql.clone();
                // From the highest: `$1` would also match the start of `$10`.
                for (i, param) in params.iter().enumerate().rev() {
                    sql = sql.replace(&format!("${}", i + 1), param);
                }
                !floor.contains(&squeeze(&sql))
            })
            .map(|(name, _, _)| *name)
            .collect()
    }
}

/// How many statements a floor sends for one transaction, one round trip each: every line
/// that ends one (`;`, or a `\gset` that keeps its result).
fn floor_statements(sql: &str) -> usize {
    sql.lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .filter(|l| l.trim_end().ends_with(';') || l.contains("\\gset"))
        .count()
}

/// Every floor of the bench with the statements it must hold, for the check at its start.
fn floor_files() -> Vec<FloorFile> {
    let mut files = vec![FloorFile {
        file: "create_user_floor.sql",
        sql: FLOOR_SQL,
        statements: create_floor_statements(),
    }];
    files.extend(Op::ALL.iter().map(|op| op.floor_file()));
    files.extend(scim::floor_files());
    files
}

/// The floors that no longer hold shared's statements, with the ones they miss; each said on
/// stderr.
fn floor_drift() -> Vec<(&'static str, Vec<&'static str>)> {
    let drift: Vec<_> = floor_files()
        .iter()
        .map(|floor| (floor.file, floor.drift()))
        .filter(|(_, missing)| !missing.is_empty())
        .collect();
    for (file, missing) in &drift {
        eprintln!(
            "warning: the floor tests/bench/{file} does not send shared's {} as the binary does",
            missing.join(", ")
        );
    }
    drift
}

/// How the create floors write the new user's id: made by the server from the number `n`
/// (the binary makes it in Rust).
const FLOOR_NEW_USER_ID: &str = "md5('floor' || :n)::uuid";
/// How the create floors write the new user's address.
const FLOOR_NEW_EMAIL: &str = "'floor' || :n || '@floor.test'";

/// The statements of shared's a create sends after its principal's (the caller's or the SCIM
/// token's), the user row's `created_by` and `created_by_token` and its employee's
/// department, job title and employment type being what the request makes them: the row
/// with the principal's tenant and business (`:<prefix>tenant_id`, …), the employee, the
/// Auth0 id, the invitation's token.
fn create_statements(
    prefix: &str,
    created_by: &str,
    created_by_token: &str,
    external_id: &str,
    employee: [&str; 3],
) -> Vec<Statement> {
    use shared::db::{employees, reset_tokens, users};
    let id = || FLOOR_NEW_USER_ID.to_string();
    let email = || FLOOR_NEW_EMAIL.to_string();
    let [department, job_title, employment_type] = employee.map(str::to_string);
    vec![
        (
            "users::INSERT_PENDING",
            users::INSERT_PENDING.to_string(),
            vec![
                id(),
                format!(":{prefix}tenant_id::uuid"),
                format!(":{prefix}business_id::uuid"),
                email(),
                "'USER'".into(),
                "'pending_' || :n".into(),
                created_by.into(),
                created_by_token.into(),
                external_id.into(),
                "true".into(),
            ],
        ),
        (
            "employees::INSERT",
            employees::INSERT.to_string(),
            vec![
                id(),
                "'Nia'".into(),
                "'Hire'".into(),
                email(),
                department,
                job_title,
                employment_type,
            ],
        ),
        (
            "users::SET_AUTH0_SUB",
            users::SET_AUTH0_SUB.to_string(),
            vec![id(), "'auth0|floor' || :n".into()],
        ),
        (
            "reset_tokens::INSERT",
            reset_tokens::INSERT.to_string(),
            vec![
                id(),
                "sha256(('floor' || :n)::bytea)".into(),
                "now() + interval '24 hours'".into(),
            ],
        ),
    ]
}

/// The statements of shared's create-user sends for the example request (an employee, two page
/// permissions), as its floor writes them.
fn create_floor_statements() -> Vec<Statement> {
    use shared::db::{pages, users};
    let mut statements = vec![
        (
            "users::FIND_CALLER",
            users::FIND_CALLER.to_string(),
            vec![":sub".to_string()],
        ),
        (
            "pages::MISSING",
            pages::MISSING.to_string(),
            vec![":pages".to_string()],
        ),
    ];
    statements.extend(create_statements(
        "caller_",
        ":caller_id::uuid",
        "NULL",
        "NULL",
        ["'Sales'", "'Account Executive'", "'FULL_TIME'"],
    ));
    let grant = (
        "pages::GRANT",
        pages::GRANT.to_string(),
        [
            FLOOR_NEW_USER_ID,
            ":pages",
            "'{t,t}'",
            "'{f,t}'",
            "'{f,f}'",
            "'{f,f}'",
        ]
        .map(str::to_string)
        .to_vec(),
    );
    statements.push(grant);
    statements
}

/// Pool user k's id.
fn pool_id(k: u64) -> String {
    format!("{POOL_ID_PREFIX}{k:012}")
}

/// The next number from `counter` (1, 2, 3, …) while it stays within `limit`.
fn take(counter: &AtomicU64, limit: u64) -> Option<u64> {
    counter
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
            (n < limit).then_some(n + 1)
        })
        .ok()
        .map(|n| n + 1)
}

/// Which users the requests act on, across the instances that send them (the relay's, then
/// the measured one): each deactivate, reactivate and delete on a user in the state it
/// changes, each update a new role.
struct Pool {
    size: u64,
    reads: AtomicU64,
    updates: AtomicU64,
    /// Users 1, 2, 3, … deactivated so far, then reactivated.
    deactivated: AtomicU64,
    reactivated: AtomicU64,
    /// Users deleted so far, from the top of the pool down.
    deleted: AtomicU64,
}

/// One request of an operation, and what its answer must say.
struct Request {
    event: Value,
    expect: Expect,
}

/// What an answer must say besides its status: the user's id and role.
struct Expect {
    user: Option<String>,
    role: Option<&'static str>,
}

/// What the requests need: the pool and the deep page's cursor.
struct Requests {
    pool: Pool,
    deep_cursor: String,
}

impl Requests {
    /// The next request of `op`, or `None` when the pool has no user left for it.
    fn next(&self, op: Op) -> Option<Request> {
        let pool = &self.pool;
        let size = pool.size;
        let mut role = None;
        let k = match op {
            Op::ListFirst | Op::ListDeep => {
                let mut query = vec![("limit", LIST_LIMIT.to_string())];
                if op == Op::ListDeep {
                    query.push(("cursor", self.deep_cursor.clone()));
                }
                let mut event = api_event("GET", USERS_PATH, Some(seed::ACME_ADMIN_SUB), None);
                let raw: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
                event["rawQueryString"] = json!(raw.join("&"));
                event["queryStringParameters"] = query
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), json!(v)))
                    .collect::<serde_json::Map<_, _>>()
                    .into();
                let expect = Expect {
                    user: None,
                    role: None,
                };
                return Some(Request { event, expect });
            }
            Op::Get => pool.reads.fetch_add(1, Ordering::Relaxed) % size + 1,
            Op::Update => {
                // Seeded USER: every pass over the pool flips each user's role.
                let i = pool.updates.fetch_add(1, Ordering::Relaxed);
                role = Some(if (i / size).is_multiple_of(2) {
                    "ADMIN"
                } else {
                    "USER"
                });
                i % size + 1
            }
            Op::Deactivate => take(&pool.deactivated, size)?,
            Op::Reactivate => take(&pool.reactivated, pool.deactivated.load(Ordering::Relaxed))?,
            Op::Delete => size + 1 - take(&pool.deleted, size)?,
        };
        let id = pool_id(k);
        let path = format!("{USERS_PATH}/{id}");
        let (method, path, body) = match op {
            Op::Get => ("GET", path, None),
            Op::Update => ("PATCH", path, Some(json!({ "role": role }).to_string())),
            Op::Deactivate => ("POST", format!("{path}/deactivate"), None),
            Op::Reactivate => ("POST", format!("{path}/reactivate"), None),
            _ => ("DELETE", path, None),
        };
        let event = api_event(method, &path, Some(seed::GLOBEX_ADMIN_SUB), body.as_deref());
        let expect = Expect {
            user: Some(id),
            role,
        };
        Some(Request { event, expect })
    }
}

/// Whether an answer to a request of `op` says what it should.
fn check_answer(op: Op, expect: &Expect, raw: &Value) -> Result<(), String> {
    let body: Value = raw["body"]
        .as_str()
        .and_then(|b| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null);
    let ok = match op {
        Op::ListFirst | Op::ListDeep => {
            body["users"].as_array().map(Vec::len) == Some(LIST_LIMIT)
                && body["nextCursor"].is_string()
        }
        Op::Delete => body["deleted"] == json!(true),
        _ => {
            let user = body["id"].as_str() == expect.user.as_deref();
            user && match op {
                Op::Update => body["role"].as_str() == expect.role,
                Op::Deactivate => body["isActive"] == json!(false),
                Op::Reactivate => body["isActive"] == json!(true),
                _ => true,
            }
        }
    };
    if ok {
        Ok(())
    } else {
        Err(format!("{}: unexpected answer {body}", op.name()))
    }
}

/// Requests of `op` on `instance`, one after another, until `count` were made or `until`
/// passed (whichever is given) or the pool has no user left for it.
async fn send(
    instance: &Instance,
    requests: &Requests,
    op: Op,
    count: Option<usize>,
    until: Option<Instant>,
    check: bool,
) -> (Vec<Duration>, usize) {
    let (mut latencies, mut errors) = (Vec::new(), 0usize);
    while count.is_none_or(|n| latencies.len() + errors < n)
        && until.is_none_or(|until| Instant::now() < until)
    {
        let Some(Request { event, expect }) = requests.next(op) else {
            break;
        };
        let answer = instance.call(event, 200).await;
        let answer = answer.and_then(|(took, raw)| {
            if check {
                check_answer(op, &expect, &raw)?;
            }
            Ok(took)
        });
        match answer {
            Ok(took) => latencies.push(took),
            Err(err) => {
                if errors == 0 {
                    eprintln!("{}: {err}", op.name());
                }
                errors += 1;
            }
        }
    }
    (latencies, errors)
}

/// Every Management API call the double answered so far (the token endpoint is not one).
fn management_calls(auth0: &testkit::doubles::Auth0Double) -> usize {
    testkit::doubles::AUTH0_OPS
        .iter()
        .filter(|op| **op != "token")
        .map(|op| auth0.calls(op))
        .sum()
}

/// Invocations that need neither Postgres nor Auth0.
struct IdleRun {
    requests: usize,
    latencies: Vec<Duration>,
    cpu_ticks: u64,
}

/// What an invocation costs when it needs neither Postgres nor Auth0: a GET of a user whose
/// id is no id, answered 404 before any I/O, for `seconds` after a warm-up. No floor holds it.
async fn idle_run(
    binary: &Path,
    vars: &HashMap<String, String>,
    seconds: u64,
) -> Result<IdleRun, BoxError> {
    let (instance, _) = Instance::start(binary, vars).await?;
    let event = || {
        let path = format!("{USERS_PATH}/no-such-id");
        api_event("GET", &path, Some(seed::GLOBEX_ADMIN_SUB), None)
    };
    for _ in 0..WARM_UP {
        instance.call(event(), 404).await?;
    }
    let cpu_before = cpu_ticks(instance.pid);
    let until = Instant::now() + Duration::from_secs(seconds);
    let mut latencies = Vec::new();
    while Instant::now() < until {
        latencies.push(instance.call(event(), 404).await?.0);
    }
    let cpu_ticks = cpu_ticks(instance.pid) - cpu_before;
    instance.stop().await;
    Ok(IdleRun {
        requests: latencies.len(),
        latencies,
        cpu_ticks,
    })
}

/// What the lifecycle part runs with.
struct LifecycleSettings {
    postmaster: u32,
    seconds: u64,
    list_users: i64,
    binary: PathBuf,
    log_level: String,
    pgbench: String,
    work: PathBuf,
}

/// One operation: the binary's run, what it sent, and its floor.
struct OpRun {
    op: Op,
    requests: usize,
    errors: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
    /// Management API calls the double counted during the run.
    auth0_calls: usize,
    cpu_ticks: u64,
    peak_rss_kib: u64,
    wire: Wire,
    /// The operation's Auth0 calls made from this process after the run.
    doubles: Vec<Duration>,
    floor: FloorRun,
}

impl OpRun {
    fn per_sec(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    fn auth0_per_request(&self) -> f64 {
        self.auth0_calls as f64 / self.requests.max(1) as f64
    }

    fn target_ms(&self) -> f64 {
        let doubles = Stats::of(&self.doubles).p50;
        self.op.target_factor() * (Stats::of(&self.floor.latencies).p50 + doubles)
    }

    fn met(&self) -> bool {
        Stats::of(&self.latencies).p50 <= self.target_ms()
    }
}

impl std::fmt::Display for OpRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (l, floor) = (Stats::of(&self.latencies), Stats::of(&self.floor.latencies));
        write!(
            f,
            "{}: {} requests ({} errors) in {:.1} s = {:.0}/s; p50 {:.2} p99 {:.2} ms; floor p50 \
             {:.2} ms ({:.0}/s); doubles p50 {:.2} ms; target {:.2} ms; {} round trips, {} \
             statements, {:.2} Auth0 calls per request; CPU {:.3} ms/request; peak RSS {:.1} MiB",
            self.op.name(),
            self.requests,
            self.errors,
            self.elapsed.as_secs_f64(),
            self.per_sec(),
            l.p50,
            l.p99,
            floor.p50,
            self.floor.tps,
            Stats::of(&self.doubles).p50,
            self.target_ms(),
            self.wire.per_request(self.wire.round_trips),
            self.wire.per_request(self.wire.statements),
            self.auth0_per_request(),
            ticks_per(self.cpu_ticks, self.requests as u64),
            self.peak_rss_kib as f64 / 1024.0,
        )
    }
}

/// The lifecycle part of a run.
struct LifecycleRun {
    seconds: u64,
    list_users: i64,
    /// The list's tenant's users: the seed's and the bench's.
    tenant_users: i64,
    idle: IdleRun,
    deep_after: i64,
    pool: u64,
    load: String,
    rows: Vec<OpRun>,
    /// Floors that went past the end of the pool.
    warnings: Vec<String>,
}

/// The INSERT of the users `source` selects (columns `id`, `email`, `sub`, `at`) into tenant
/// `$1` and business `$2`, created by `$3` at `at`, each with an employee and the page
/// permissions `$4` (the first to read, the second to read and write), as create-user makes
/// them, and set up; `source` may use `$5`.
fn users_insert_sql(source: &str) -> String {
    format!(
        "WITH u AS (
           INSERT INTO users (id, tenant_id, business_id, email, role, auth0_sub, created_by,
                              created_at, updated_at, setup_completed_at)
           SELECT s.id, $1, $2, s.email, 'USER', s.sub, $3, s.at, s.at, s.at FROM ({source}) s
           RETURNING id, tenant_id, business_id, email),
         e AS (
           INSERT INTO employees (tenant_id, business_id, user_id, first_name, last_name, email,
                                  department, job_title, employment_type)
           SELECT tenant_id, business_id, id, 'Lee', 'Bench', email, 'Sales',
                  'Account Executive', 'FULL_TIME' FROM u)
         INSERT INTO user_page_access (user_id, page_id, can_read, can_write)
         SELECT u.id, p.id, true, p.n = 2 FROM u, unnest($4::uuid[]) WITH ORDINALITY AS p(id, n)"
    )
}

/// Who owns a series of seeded users: the tenant, its business and the admin who made them.
struct Owner {
    tenant: &'static str,
    business: &'static str,
    admin: &'static str,
}

const ACME_OWNER: Owner = Owner {
    tenant: seed::ACME,
    business: ACME_BUSINESS,
    admin: seed::ACME_ADMIN_ID,
};
const GLOBEX_OWNER: Owner = Owner {
    tenant: seed::GLOBEX,
    business: GLOBEX_BUSINESS,
    admin: GLOBEX_ADMIN_ID,
};

/// `count` users of `owner` in one statement: user g's id is `prefix` and g in 12 digits, its
/// address `<name>g@bench.test`, its Auth0 id `auth0|<name>g`, made g seconds before `newest`.
async fn seed_series(
    sql: &tokio_postgres::Client,
    owner: &Owner,
    prefix: &str,
    name: &str,
    count: i64,
    newest: &str,
) -> Result<(), BoxError> {
    let uuid = |text: &str| uuid::Uuid::parse_str(text);
    let pages = vec![uuid(seed::PAGE_DASHBOARD)?, uuid(seed::PAGE_REPORTS)?];
    let source = format!(
        "SELECT ('{prefix}' || lpad(g::text, 12, '0'))::uuid AS id,
                '{name}' || g || '@bench.test' AS email, 'auth0|{name}' || g AS sub,
                timestamptz '{newest}' - make_interval(secs => g) AS at
           FROM generate_series(1, $5::bigint) g"
    );
    sql.execute(
        &users_insert_sql(&source),
        &[
            &uuid(owner.tenant)?,
            &uuid(owner.business)?,
            &uuid(owner.admin)?,
            &pages,
            &count,
        ],
    )
    .await?;
    Ok(())
}

/// The users the operations act on, in one database: `list_users` in Acme for the list,
/// created a second apart, and the pool in Globex, `subs[k - 1]` being user k's Auth0 id;
/// each user with an employee and two page permissions, as create-user makes them, and set up.
async fn seed_users(url: &str, list_users: i64, subs: &[String]) -> Result<(), BoxError> {
    let sql = testkit::harness::connect(url).await;
    let uuid = |text: &str| uuid::Uuid::parse_str(text);
    let pages = vec![uuid(seed::PAGE_DASHBOARD)?, uuid(seed::PAGE_REPORTS)?];
    seed_series(
        &sql,
        &ACME_OWNER,
        LIST_ID_PREFIX,
        "list",
        list_users,
        "2026-01-01 00:00:00+00",
    )
    .await?;
    sql.execute(
        &users_insert_sql(&format!(
            "SELECT ('{POOL_ID_PREFIX}' || lpad(a.k::text, 12, '0'))::uuid AS id,
                    'pool' || a.k || '@bench.test' AS email, a.sub,
                    timestamptz '2025-06-01 00:00:00+00' - make_interval(secs => a.k) AS at
               FROM unnest($5::text[]) WITH ORDINALITY AS a(sub, k)"
        )),
        &[
            &uuid(GLOBEX_OWNER.tenant)?,
            &uuid(GLOBEX_OWNER.business)?,
            &uuid(GLOBEX_OWNER.admin)?,
            &pages,
            &subs,
        ],
    )
    .await?;
    sql.batch_execute("VACUUM ANALYZE").await?;
    Ok(())
}

/// The user the deep page starts after: the `after`-th of Acme's list, newest first.
async fn deep_cursor_row(
    url: &str,
    after: i64,
) -> Result<(chrono::DateTime<chrono::Utc>, uuid::Uuid), BoxError> {
    let sql = testkit::harness::connect(url).await;
    let row = sql
        .query_one(
            "SELECT created_at, id FROM users
              WHERE tenant_id = $1 AND auth0_sub NOT LIKE 'pending\\_%'
              ORDER BY created_at DESC, id DESC OFFSET $2 LIMIT 1",
            &[&uuid::Uuid::parse_str(seed::ACME)?, &(after - 1)],
        )
        .await?;
    Ok((row.try_get(0)?, row.try_get(1)?))
}

/// The Auth0 calls an operation makes, made from this process with the project's client
/// against the double as the run left it, on users of their own.
async fn lifecycle_doubles_time(stack: &TestStack, op: Op) -> Result<Vec<Duration>, BoxError> {
    use shared::auth0::{Budget, UserPatch};
    if op.auth0_at_most() == 0.0 {
        return Ok(Vec::new());
    }
    let auth0 = &stack.state.auth0;
    let mut samples = Vec::with_capacity(DOUBLE_CALLS);
    for i in 0..DOUBLE_CALLS {
        let tags = OwnershipTags {
            tenant_id: shared::domain::TenantId::parse(seed::GLOBEX)?,
            role: Role::User,
            db_user_id: shared::domain::UserId::new(uuid::Uuid::new_v4()),
        };
        let email = format!("spare-{op:?}-{i}@bench.test").to_lowercase();
        let id = stack
            .auth0
            .insert_user(&email, serde_json::to_value(&tags)?);
        let id = shared::domain::Auth0UserId::parse(&id)?;
        let deadline = Deadline::after(Duration::from_secs(20));
        let (id, deadline) = (&id, &deadline);
        let patch = |patch: UserPatch| async move {
            auth0
                .update_user(id, &patch, Budget::Work, deadline)
                .await
                .map(drop)
        };
        let started = Instant::now();
        match op {
            Op::Update => patch(UserPatch::role(Role::Admin)).await?,
            Op::Deactivate => {
                patch(UserPatch::blocked(true)).await?;
                auth0.revoke_sessions(id, Budget::Work, deadline).await?;
                auth0
                    .revoke_refresh_tokens(id, Budget::Work, deadline)
                    .await?;
            }
            Op::Reactivate => patch(UserPatch::blocked(false)).await?,
            Op::Delete => {
                patch(UserPatch::blocked(true)).await?;
                auth0.delete_user(id, deadline).await?;
            }
            Op::ListFirst | Op::ListDeep | Op::Get => {}
        }
        samples.push(started.elapsed());
    }
    Ok(samples)
}

/// Every operation of the admin API but create, at one instance, against its floor (one
/// pgbench client), in one run: the binary on one database, the floors on another seeded alike.
async fn lifecycle_run(settings: LifecycleSettings) -> Result<LifecycleRun, BoxError> {
    let LifecycleSettings {
        postmaster,
        seconds,
        list_users,
        ref binary,
        ref log_level,
        ref pgbench,
        ref work,
    } = settings;
    let load = load_average();
    let pool = (POOL_PER_SECOND * seconds).max(2_000);
    let deep_after = LIST_DEEP.min(list_users / 2).max(1);

    let seeding = Instant::now();
    let stack = fresh_stack().await?;
    let floor_db = TestDb::create().await;
    // The pool's Auth0 users, tagged as create-user tags them.
    let globex = shared::domain::TenantId::parse(seed::GLOBEX)?;
    let mut subs = Vec::with_capacity(pool as usize);
    for k in 1..=pool {
        let tags = OwnershipTags {
            tenant_id: globex,
            role: Role::User,
            db_user_id: shared::domain::UserId::parse(&pool_id(k))?,
        };
        let email = format!("pool{k}@bench.test");
        subs.push(
            stack
                .auth0
                .insert_user(&email, serde_json::to_value(&tags)?),
        );
    }
    let floor_subs: Vec<String> = (1..=pool).map(|k| format!("auth0|pool{k}")).collect();
    let (seeded, floor_seeded) = tokio::join!(
        seed_users(&stack.db.url, list_users, &subs),
        seed_users(&floor_db.url, list_users, &floor_subs)
    );
    seeded?;
    floor_seeded?;
    println!(
        "lifecycle: seeded {list_users} users in Acme and a pool of {pool} in Globex, in each of \
         two databases, in {:.1} s",
        seeding.elapsed().as_secs_f64()
    );
    let tenant_users: i64 = testkit::harness::connect(&stack.db.url)
        .await
        .query_one(
            "SELECT count(*) FROM users WHERE tenant_id = $1 AND auth0_sub NOT LIKE 'pending\\_%'",
            &[&uuid::Uuid::parse_str(seed::ACME)?],
        )
        .await?
        .get(0);
    let (at, after) = deep_cursor_row(&stack.db.url, deep_after).await?;
    let requests = Requests {
        pool: Pool {
            size: pool,
            reads: AtomicU64::new(0),
            updates: AtomicU64::new(0),
            deactivated: AtomicU64::new(0),
            reactivated: AtomicU64::new(0),
            deleted: AtomicU64::new(0),
        },
        deep_cursor: shared::admin_api::request::encode_cursor(
            at,
            shared::domain::UserId::new(after),
        ),
    };
    let (floor_at, floor_after) = deep_cursor_row(&floor_db.url, deep_after).await?;
    let floor = Floor {
        postmaster,
        pgbench,
        work,
        url: &floor_db.url,
    };

    let vars = app_vars(&stack, log_level);
    let mut relayed = vars.clone();
    let counts = Arc::new(WireCounts::default());
    let port = start_relay(upstream_of(&stack.db.url)?, counts.clone()).await?;
    let mut url = url::Url::parse(&stack.db.url)?;
    url.set_port(Some(port))
        .map_err(|_| "cannot set the port")?;
    relayed.insert("DATABASE_URL".into(), url.into());

    let idle = idle_run(binary, &vars, seconds).await?;
    println!(
        "an answer without I/O: {} requests; p50 {:.2} p99 {:.2} ms; CPU {:.3} ms/request",
        idle.requests,
        Stats::of(&idle.latencies).p50,
        Stats::of(&idle.latencies).p99,
        ticks_per(idle.cpu_ticks, idle.requests as u64)
    );
    let mut rows = Vec::new();
    let mut warnings = Vec::new();
    let mut floor_deactivated = 0;
    for op in Op::ALL {
        // What it sends: through the relay, after a warm-up.
        let (instance, _) = Instance::start(binary, &relayed).await?;
        send(&instance, &requests, op, Some(WARM_UP), None, true).await;
        let before = counts.read();
        let (counted, _) = send(&instance, &requests, op, Some(WIRE_REQUESTS), None, false).await;
        let after = counts.read();
        instance.stop().await;
        let wire = Wire {
            requests: counted.len() as u64,
            round_trips: after.0 - before.0,
            statements: after.1 - before.1,
        };

        // Its run: a fresh instance, warmed up, for `seconds` (or until no user is left).
        let (instance, _) = Instance::start(binary, &vars).await?;
        let (_, warm_up_errors) = send(&instance, &requests, op, Some(WARM_UP), None, true).await;
        if warm_up_errors > 0 {
            return Err(format!("{}: the warm-up failed", op.name()).into());
        }
        let calls_before = management_calls(&stack.auth0);
        let cpu_before = cpu_ticks(instance.pid);
        let started = Instant::now();
        let until = started + Duration::from_secs(seconds);
        let (latencies, errors) = send(&instance, &requests, op, None, Some(until), false).await;
        let elapsed = started.elapsed();
        let cpu = cpu_ticks(instance.pid) - cpu_before;
        let auth0_calls = management_calls(&stack.auth0) - calls_before;
        let peak_rss_kib = peak_rss_kib(instance.pid);
        instance.stop().await;
        let doubles = lifecycle_doubles_time(&stack, op).await?;

        // Its floor, on the other database: as long, or (reactivate) once for every user the
        // deactivate floor deactivated.
        let (file, sql) = op.floor_sql();
        let vars: Vec<(&'static str, String)> = if op.is_list() {
            vec![
                ("tenant", seed::ACME.to_string()),
                ("limit", (LIST_LIMIT + 1).to_string()),
                (
                    "at",
                    floor_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                ),
                ("after", floor_after.to_string()),
            ]
        } else {
            vec![
                ("sub", seed::GLOBEX_ADMIN_SUB.to_string()),
                ("tenant", seed::GLOBEX.to_string()),
                ("auth0_id", FLOOR_AUTH0_ID.to_string()),
                ("pool", pool.to_string()),
                ("n", "0".to_string()),
                ("role", "ADMIN".to_string()),
            ]
        };
        let script = Script { file, sql, vars };
        let limit = match op {
            Op::Reactivate => ["-t".into(), floor_deactivated.max(1).to_string()],
            _ => ["-T".into(), seconds.to_string()],
        };
        let floor_run = floor
            .run(&script, 1, &limit, &format!("floor-{op:?}"))
            .await?;
        if op == Op::Deactivate {
            floor_deactivated = floor_run.transactions;
        }
        if matches!(op, Op::Deactivate | Op::Delete) && floor_run.transactions > pool {
            warnings.push(format!(
                "the {} floor went through the pool ({} transactions, {pool} users): its last \
                 ones found no user",
                op.name(),
                floor_run.transactions
            ));
        }
        let row = OpRun {
            op,
            requests: latencies.len(),
            errors,
            elapsed,
            latencies,
            auth0_calls,
            cpu_ticks: cpu,
            peak_rss_kib,
            wire,
            doubles,
            floor: floor_run,
        };
        println!("{row}");
        rows.push(row);
    }
    Ok(LifecycleRun {
        seconds,
        list_users,
        tenant_users,
        idle,
        deep_after,
        pool,
        load,
        rows,
        warnings,
    })
}

/// The machine's load average over 1, 5 and 15 minutes, as /proc/loadavg says it.
fn load_average() -> String {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    load.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

async fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or_else(String::new, |kib| {
            format!(", {:.1} GiB RAM", kib / 1024.0 / 1024.0)
        });
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load = load
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ");
    let postgres = match std::env::var("TEST_DATABASE_URL") {
        Ok(url) => {
            let sql = testkit::harness::connect(&url).await;
            sql.query_one("SHOW server_version", &[])
                .await
                .map(|r| r.get::<_, String>(0))
                .unwrap_or_default()
        }
        Err(_) => String::new(),
    };
    format!(
        "{model}, {cores} cores{memory}; Linux {}; PostgreSQL {postgres} (fsync off, loopback); \
         load average before the run {load}",
        kernel.trim()
    )
}

fn size_of(path: &Path) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| m.len())
}

fn binary_sizes() -> String {
    let mut text = String::new();
    for name in ["create-user", "scim", "cleanup", "set-password"] {
        let release = workspace_binary(name).ok().and_then(|p| size_of(&p));
        let zip = workspace_binary(name).ok().and_then(|p| {
            // target/release/<bin> → target/lambda/<bin>/bootstrap.zip
            let target = p.parent()?.parent()?;
            size_of(&target.join("lambda").join(name).join("bootstrap.zip"))
        });
        let mib = |b: u64| format!("{:.2} MiB", b as f64 / 1024.0 / 1024.0);
        let _ = writeln!(
            text,
            "| {name} | {} | {} |",
            release.map_or("not built".into(), mib),
            zip.map_or("not built (`make build`)".into(), mib)
        );
    }
    text
}

/// create-user at 1, 8 and 32 instances against its floor, and what goes with it.
fn render_creates(
    t: &mut String,
    machine: &str,
    seconds: u64,
    log_level: &str,
    rows: &[(BinaryRun, FloorRun)],
    wire: &Wire,
    floor_wire: &Wire,
) {
    let ms = |d: &[Duration]| Stats::of(d);
    let _ = writeln!(
        t,
        "Measured by `make bench` on {}: {machine}. Each row: {seconds} s of create-user \
         (release binary, `RUST_LOG={log_level}`, the example request with an employee and two \
         page permissions, a fresh address each time) and then {seconds} s of its floor with as \
         many pgbench clients, on the same cluster. Latency is from the Runtime API emulator's \
         point of view (event handed out to answer received).\n",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC")
    );
    let _ = writeln!(
        t,
        "| instances | creates/s | p50 ms | p95 ms | p99 ms | floor creates/s | floor p50 ms | \
         floor p95 ms | ratio to the floor | CPU ms per create | pgbench CPU ms per create | \
         doubles p50 ms | errors |"
    );
    let _ = writeln!(t, "|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for (run, floor) in rows {
        let l = ms(&run.latencies);
        let f = ms(&floor.latencies);
        let _ = writeln!(
            t,
            "| {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.0} | {:.2} | {:.2} | {:.2}× | {:.3} | {:.3} | {:.2} | {} |",
            run.instances,
            run.per_sec(),
            l.p50,
            l.p95,
            l.p99,
            floor.tps,
            f.p50,
            f.p95,
            run.per_sec() / floor.tps,
            run.cpu_ms_per_create(),
            floor.cpu_ms_per_create(),
            ms(&run.doubles).p50,
            run.errors,
        );
    }
    let _ = writeln!(t);
    let _ = writeln!(
        t,
        "Where the 2 cores went, CPU ms per create: the create-user processes, this bench's own \
         process (Runtime API emulators, Auth0 and email doubles, the driving loops) and the \
         Postgres cluster; for the floor, pgbench and the cluster.\n"
    );
    let _ = writeln!(
        t,
        "| instances | create-user | bench process | Postgres | total | floor: pgbench | floor: Postgres | floor total |"
    );
    let _ = writeln!(t, "|---|---|---|---|---|---|---|---|");
    for (run, floor) in rows {
        let n = run.creates as u64;
        let (binary, driver, db) = (
            run.cpu_ms_per_create(),
            ticks_per(run.driver_ticks, n),
            ticks_per(run.db_ticks, n),
        );
        let floor_db = ticks_per(floor.db_ticks, floor.transactions);
        let _ = writeln!(
            t,
            "| {} | {binary:.3} | {driver:.3} | {db:.3} | {:.3} | {:.3} | {floor_db:.3} | {:.3} |",
            run.instances,
            binary + driver + db,
            floor.cpu_ms_per_create(),
            floor.cpu_ms_per_create() + floor_db,
        );
    }
    let _ = writeln!(t);
    let _ = writeln!(
        t,
        "| instances | log lines per create | log bytes per create | token requests per 1,000 \
         creates | peak RSS of an instance |"
    );
    let _ = writeln!(t, "|---|---|---|---|---|");
    for (run, _) in rows {
        let per = |v: f64| v / run.creates.max(1) as f64;
        let _ = writeln!(
            t,
            "| {} | {:.1} | {:.0} | {:.2} | {:.1} MiB |",
            run.instances,
            per(run.log_lines as f64),
            per(run.log_bytes as f64),
            per(run.token_requests as f64) * 1000.0,
            run.peak_rss_kib as f64 / 1024.0
        );
    }
    let _ = writeln!(t);
    let _ = writeln!(
        t,
        "On the wire (a relay between the process and Postgres; a round trip is a burst of \
         client messages sent after an answer, a statement an Execute or a simple Query): \
         create-user {:.2} round trips and {:.2} statements per create; the floor {:.2} and \
         {:.2} (over {} creates each; the floor's count includes its connection set-up).\n",
        wire.per_request(wire.round_trips),
        wire.per_request(wire.statements),
        floor_wire.per_request(floor_wire.round_trips),
        floor_wire.per_request(floor_wire.statements),
        wire.requests
    );
    let cold: Vec<Duration> = rows
        .iter()
        .flat_map(|(r, _)| r.cold_starts.clone())
        .collect();
    let first: Vec<Duration> = rows
        .iter()
        .flat_map(|(r, _)| r.first_creates.clone())
        .collect();
    let _ = writeln!(
        t,
        "Cold start over {} starts (one after another, local secrets): process start to its \
         first `GET /next` p50 {:.1} ms (p95 {:.1} ms); the first create after it (opens the \
         connection, fetches the Auth0 token, prepares the statements) p50 {:.1} ms (p95 {:.1} \
         ms).\n",
        cold.len(),
        ms(&cold).p50,
        ms(&cold).p95,
        ms(&first).p50,
        ms(&first).p95
    );
    if let (Some((one, one_floor)), Some((eight, eight_floor))) = (rows.first(), rows.get(1)) {
        let p50 = ms(&one.latencies).p50;
        let budget = 2.0 * (ms(&one_floor.latencies).p50 + ms(&one.doubles).p50);
        let ratio = eight.per_sec() / eight_floor.tps;
        let cpu = rows
            .iter()
            .map(|(r, _)| r.cpu_ms_per_create())
            .fold(0.0, f64::max);
        let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
        let _ = writeln!(
            t,
            "Targets (issue #10): p50 at one instance {p50:.2} ms against 2 × (floor p50 + the \
             doubles' p50) = {budget:.2} ms: {}; throughput at 8 instances {ratio:.2}× the floor \
             (target 0.5×): {}; CPU per create at most {cpu:.3} ms over all rows (target < 0.7 \
             ms): {}.\n",
            verdict(p50 <= budget),
            verdict(ratio >= 0.5),
            verdict(cpu < 0.7)
        );
    }
}

/// The SCIM part of a run: its reads and creates, and the first sync (each skipped or not).
struct Scim<'a> {
    reads: Option<&'a scim::ScimRun>,
    sync: Option<&'a scim::SyncRun>,
}

#[allow(clippy::too_many_arguments)]
fn render(
    machine: &str,
    seconds: u64,
    log_level: &str,
    rows: &[(BinaryRun, FloorRun)],
    wires: Option<&(Wire, Wire)>,
    lifecycle: Option<&LifecycleRun>,
    scim: Scim<'_>,
    drift: &[(&str, Vec<&str>)],
    cleanup: &Option<String>,
    sweep: &[String],
    coldstart: &[String],
) -> String {
    let mut t = String::new();
    match wires {
        Some((wire, floor_wire)) if !rows.is_empty() => {
            render_creates(&mut t, machine, seconds, log_level, rows, wire, floor_wire);
        }
        _ => {
            let _ = writeln!(
                t,
                "Measured by `make bench` on {}: {machine}. create-user's rows: skipped \
                 (`BENCH_INSTANCES=0`).\n",
                chrono::Utc::now().format("%Y-%m-%d %H:%M UTC")
            );
        }
    }
    match lifecycle {
        Some(lifecycle) => render_lifecycle(&mut t, lifecycle),
        None => {
            let _ = writeln!(
                t,
                "The rest of the admin API: skipped (`BENCH_LIFECYCLE=0`).\n"
            );
        }
    }
    match scim.reads {
        Some(run) => scim::render_scim(&mut t, run),
        None => {
            let _ = writeln!(
                t,
                "SCIM's filter, paged read and creates: skipped (`BENCH_SCIM=0`).\n"
            );
        }
    }
    match scim.sync {
        Some(run) => scim::render_sync(&mut t, run),
        None => {
            let _ = writeln!(
                t,
                "SCIM's first sync: skipped (`BENCH_SCIM_SYNC_USERS=0`).\n"
            );
        }
    }
    if drift.is_empty() {
        let _ = writeln!(
            t,
            "Every floor holds shared's statements as the binaries send them (checked at the \
             start of the run).\n"
        );
    } else {
        for (file, missing) in drift {
            let _ = writeln!(
                t,
                "- The floor `tests/bench/{file}` no longer sends shared's {} as the binary \
                 does: its row measures something else until it is brought up to date.",
                missing.join(", ")
            );
        }
        let _ = writeln!(t);
    }
    for line in coldstart {
        let _ = writeln!(t, "- cold start, `coldstart` (15 starts each): {line}");
    }
    let _ = writeln!(t);
    let _ = writeln!(
        t,
        "| binary | x86_64 release binary | arm64 Lambda zip |\n|---|---|---|\n{}",
        binary_sizes()
    );
    match cleanup {
        Some(line) => {
            let _ = writeln!(t, "Cleanup (`cleanup_bench`, one run): {line}\n");
        }
        None => {
            let _ = writeln!(t, "Cleanup: skipped (BENCH_CLEANUP_ORPHANS=0).\n");
        }
    }
    if sweep.is_empty() {
        let _ = writeln!(t, "Auth0 sweep: skipped (BENCH_SWEEP_USERS=0).\n");
    } else {
        let _ = writeln!(
            t,
            "Auth0 sweep (`sweep_bench`, default settings unpaced; a day is 96 runs of the \
             15-minute schedule; see docs/cleanup.md):\n\n{}\n",
            sweep.join("\n")
        );
    }
    t
}

/// The rest of the admin API against its floors.
fn render_lifecycle(t: &mut String, run: &LifecycleRun) {
    let ms = |d: &[Duration]| Stats::of(d);
    let _ = writeln!(
        t,
        "The rest of the admin API, at one instance (load average before it {}). Each \
         operation runs for {} s after {WARM_UP} requests of warm-up (reactivate: once for each \
         user deactivate deactivated), then its floor for as long with one pgbench client on a \
         database seeded alike: Acme has {} users more, for the list; Globex a pool of {} that \
         its admin reads, makes ADMIN, deactivates, reactivates and deletes, each with an \
         employee, two page permissions and its Auth0 user in the double. Target: p50 within \
         1.3 × (floor p50 + the doubles' p50 for the operation's Auth0 calls).\n",
        run.load, run.seconds, run.list_users, run.pool
    );
    let _ = writeln!(
        t,
        "| operation | requests/s | p50 ms | p99 ms | floor p50 ms | doubles p50 ms | target ms \
         | met | round trips | statements (floor's) | Auth0 calls (at most) | CPU ms per \
         request | peak RSS |"
    );
    let _ = writeln!(t, "|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    for row in run.rows.iter().filter(|r| !r.op.is_list()) {
        let l = ms(&row.latencies);
        let _ = writeln!(
            t,
            "| {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {:.2} | {:.2} ({}) | {:.2} ({}) | {:.3} | {:.1} MiB |",
            row.op.name(),
            row.per_sec(),
            l.p50,
            l.p99,
            ms(&row.floor.latencies).p50,
            ms(&row.doubles).p50,
            row.target_ms(),
            verdict(row.met()),
            row.wire.per_request(row.wire.round_trips),
            row.wire.per_request(row.wire.statements),
            row.op.floor_statements(),
            row.auth0_per_request(),
            row.op.auth0_at_most(),
            ticks_per(row.cpu_ticks, row.requests as u64),
            row.peak_rss_kib as f64 / 1024.0,
        );
    }
    let _ = writeln!(t);
    let idle = ms(&run.idle.latencies);
    let _ = writeln!(
        t,
        "An answer that needs neither Postgres nor Auth0 (a GET of an id that is no id: 404 \
         before any I/O), the same way: p50 {:.2} ms, p99 {:.2} ms, CPU {:.3} ms per request; \
         no floor holds this part.\n",
        idle.p50,
        idle.p99,
        ticks_per(run.idle.cpu_ticks, run.idle.requests as u64)
    );
    let _ = writeln!(
        t,
        "The list (`?limit={LIST_LIMIT}`) over Acme's {} users, the first page and the page after \
         the {}th user (`&cursor=`), each against its SELECT alone (`user_views::list_sql`, {} \
         rows) under pgbench. Target: p50 within 1.5 × the SELECT's.\n",
        run.tenant_users,
        run.deep_after,
        LIST_LIMIT + 1
    );
    let _ = writeln!(
        t,
        "| page | requests/s | p50 ms | p99 ms | SELECT p50 ms | ratio | target ms | met | round \
         trips | statements | Auth0 calls | CPU ms per request | peak RSS |"
    );
    let _ = writeln!(t, "|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for row in run.rows.iter().filter(|r| r.op.is_list()) {
        let (l, select) = (ms(&row.latencies), ms(&row.floor.latencies));
        let _ = writeln!(
            t,
            "| {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2}× | {:.2} | {} | {:.2} | {:.2} | {:.2} | {:.3} | {:.1} MiB |",
            row.op.name(),
            row.per_sec(),
            l.p50,
            l.p99,
            select.p50,
            l.p50 / select.p50,
            row.target_ms(),
            verdict(row.met()),
            row.wire.per_request(row.wire.round_trips),
            row.wire.per_request(row.wire.statements),
            row.auth0_per_request(),
            ticks_per(row.cpu_ticks, row.requests as u64),
            row.peak_rss_kib as f64 / 1024.0,
        );
    }
    let _ = writeln!(t);
    let row_of = |op: Op| run.rows.iter().find(|r| r.op == op);
    if let (Some(first), Some(deep)) = (row_of(Op::ListFirst), row_of(Op::ListDeep)) {
        let p50 = |r: &OpRun| ms(&r.latencies).p50;
        let select = |r: &OpRun| ms(&r.floor.latencies).p50;
        let _ = writeln!(
            t,
            "Deep in the cursor the page's p50 is {:.2}× the first page's (its SELECT's {:.2}×).\n",
            p50(deep) / p50(first),
            select(deep) / select(first)
        );
    }

    let names = |rows: Vec<&OpRun>| {
        let names: Vec<&str> = rows.iter().map(|r| r.op.name()).collect();
        if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        }
    };
    let missed: Vec<String> = run
        .rows
        .iter()
        .filter(|r| !r.met())
        .map(|r| {
            let p50 = ms(&r.latencies).p50;
            format!(
                "{} ({:.2} ms against {:.2} ms: {:.2}× the target)",
                r.op.name(),
                p50,
                r.target_ms(),
                p50 / r.target_ms()
            )
        })
        .collect();
    let too_many = run
        .rows
        .iter()
        .filter(|r| r.auth0_per_request() > r.op.auth0_at_most())
        .collect();
    let rss = run.rows.iter().map(|r| r.peak_rss_kib).max().unwrap_or(0);
    let errors: usize = run.rows.iter().map(|r| r.errors).sum();
    let _ = writeln!(
        t,
        "Targets (issue #24): p50 within its target: met for {}; NOT met for {}. Auth0 calls \
         above the limit: {}. Peak RSS of an instance at most {:.1} MiB (target under 20 MB): {}. \
         Errors: {errors}.\n",
        names(run.rows.iter().filter(|r| r.met()).collect()),
        if missed.is_empty() {
            "none".to_string()
        } else {
            missed.join("; ")
        },
        names(too_many),
        rss as f64 / 1024.0,
        verdict((rss * 1024) < 20_000_000),
    );
    for warning in &run.warnings {
        let _ = writeln!(t, "- Note: {warning}.");
    }
    if !run.warnings.is_empty() {
        let _ = writeln!(t);
    }
}

/// Replaces what is between the markers (or appends them with the report).
fn write_between_marks(path: &Path, report: &str) -> std::io::Result<()> {
    let old = std::fs::read_to_string(path).unwrap_or_else(|_| "# Performance\n\n".into());
    let block = format!("{START_MARK}\n{report}{END_MARK}");
    let new = match (old.find(START_MARK), old.find(END_MARK)) {
        (Some(start), Some(end)) if end > start => {
            format!("{}{block}{}", &old[..start], &old[end + END_MARK.len()..])
        }
        _ => format!("{old}\n{block}\n"),
    };
    std::fs::write(path, new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_floor_holds_the_statements_shared_sends() {
        let drift: Vec<_> = floor_files()
            .iter()
            .map(|floor| (floor.file, floor.drift()))
            .filter(|(_, missing)| !missing.is_empty())
            .collect();
        assert!(
            drift.is_empty(),
            "floors in tests/bench/ that no longer send these as the binary does: {drift:?}"
        );
    }

    #[test]
    fn a_floor_counts_the_statements_it_sends() {
        let count = |file: &str| {
            let floor = floor_files().into_iter().find(|f| f.file == file).unwrap();
            floor_statements(floor.sql)
        };
        assert_eq!(count("create_user_floor.sql"), 10);
        assert_eq!(count("create_user_no_pages_floor.sql"), 8);
        assert_eq!(count("scim_create_floor.sql"), 8);
        assert_eq!(count("scim_filter_floor.sql"), 3);
        assert_eq!(count("scim_page_floor.sql"), 3);
        assert_eq!(Op::Get.floor_statements(), 2);
        assert_eq!(Op::Deactivate.floor_statements(), 12);
    }
}
