//! The fault campaign behind `make chaos`: real create-user processes behind the Runtime API
//! emulator, serving creates and the lifecycle operations (update, deactivate, reactivate,
//! delete) on the users created before, killed at random (`kill -9`), with Auth0, email and
//! database faults injected and cleanup looping beside them; then an invariant checker over both
//! systems and the logs.
//!
//! Cleanup runs in this process (`shared::cleanup::handle`, the binary's own entry) with a
//! state whose grace period is the campaign's: the configuration's floor is one minute, which
//! would leave a short campaign's cleanup with nothing to do. The grace is kept above the hard
//! timeout of every create-user invocation (deadline + 1 s, after which the process is killed),
//! which is the contract the floor protects. The final pass runs with no grace at all, once
//! every create-user process is dead and nothing can be in flight.

mod check;
mod inject;
mod lifecycle;
mod report;
mod workers;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};
use shared::cleanup::{CleanupError, CleanupSummary};
use shared::config::Config;
use shared::state::AppState;
use tokio::sync::watch;

pub use report::{Check, Report};

use crate::doubles::{Auth0Double, EmailDouble};
use crate::freezable_proxy::FreezableProxy;
use crate::harness::{TestStack, epoch_millis};

/// Every address the campaign creates is in this domain.
pub const DOMAIN: &str = "chaos.test";

/// The knobs of one campaign.
#[derive(Clone, Debug)]
pub struct Settings {
    /// create-user processes serving at the same time.
    pub instances: usize,
    /// How long requests, kills and faults go on.
    pub duration: Duration,
    pub seed: u64,
    /// Deadline of each create-user invocation; the process is killed a second after it.
    pub function_timeout: Duration,
    /// Cleanup's grace period during the campaign (see [`safe_grace`]).
    pub grace: Duration,
    /// Chance, in percent, that an invocation is killed at a random moment.
    pub kill_percent: u32,
    /// Chance, in percent, that a failed request is sent again (same body, same key).
    pub retry_percent: u32,
    /// Share, in percent, of fresh requests that are lifecycle operations on a user the
    /// campaign created before (once there is one); the rest are creates.
    pub lifecycle_percent: u32,
    /// Mean time between two injected faults.
    pub fault_every: Duration,
    /// Time between two cleanup runs.
    pub cleanup_every: Duration,
}

impl Settings {
    /// The defaults of `make chaos`: 4 processes for 60 s.
    pub fn new(seed: u64) -> Settings {
        let function_timeout = Duration::from_secs(6);
        Settings {
            instances: 4,
            duration: Duration::from_secs(60),
            seed,
            function_timeout,
            grace: safe_grace(function_timeout),
            kill_percent: 15,
            retry_percent: 70,
            lifecycle_percent: 40,
            fault_every: Duration::from_millis(300),
            cleanup_every: Duration::from_millis(1_500),
        }
    }

    /// `CHAOS_INSTANCES`, `CHAOS_SECONDS`, `CHAOS_SEED`, `CHAOS_KILL_PERCENT`,
    /// `CHAOS_FAULT_EVERY_MS`, `CHAOS_FUNCTION_TIMEOUT_MS`, `CHAOS_CLEANUP_EVERY_MS`,
    /// `CHAOS_GRACE_MS` (default [`safe_grace`]), `CHAOS_LIFECYCLE_PERCENT`.
    pub fn from_env() -> Result<Settings, String> {
        fn number(key: &str, default: u64) -> Result<u64, String> {
            match std::env::var(key) {
                Ok(raw) if !raw.trim().is_empty() => raw
                    .trim()
                    .parse()
                    .map_err(|_| format!("{key} must be a whole number, got {raw:?}")),
                _ => Ok(default),
            }
        }
        let defaults = Settings::new(number("CHAOS_SEED", epoch_millis() % 1_000_000)?);
        let ms = |d: Duration| d.as_millis() as u64;
        let function_timeout = Duration::from_millis(number(
            "CHAOS_FUNCTION_TIMEOUT_MS",
            ms(defaults.function_timeout),
        )?);
        if function_timeout < Duration::from_secs(1) {
            return Err("CHAOS_FUNCTION_TIMEOUT_MS must be at least 1000".into());
        }
        let instances = number("CHAOS_INSTANCES", defaults.instances as u64)? as usize;
        if !(1..=32).contains(&instances) {
            return Err("CHAOS_INSTANCES must be from 1 to 32".into());
        }
        let kill_percent = number("CHAOS_KILL_PERCENT", u64::from(defaults.kill_percent))?;
        if kill_percent > 100 {
            return Err("CHAOS_KILL_PERCENT must be from 0 to 100".into());
        }
        let lifecycle_percent = number(
            "CHAOS_LIFECYCLE_PERCENT",
            u64::from(defaults.lifecycle_percent),
        )?;
        if lifecycle_percent > 100 {
            return Err("CHAOS_LIFECYCLE_PERCENT must be from 0 to 100".into());
        }
        Ok(Settings {
            instances,
            duration: Duration::from_secs(
                number("CHAOS_SECONDS", defaults.duration.as_secs())?.max(1),
            ),
            function_timeout,
            // Below the hard timeout breaks cleanup's contract: only to see the checker catch it.
            grace: Duration::from_millis(number(
                "CHAOS_GRACE_MS",
                ms(safe_grace(function_timeout)),
            )?),
            kill_percent: kill_percent as u32,
            lifecycle_percent: lifecycle_percent as u32,
            fault_every: Duration::from_millis(
                number("CHAOS_FAULT_EVERY_MS", ms(defaults.fault_every))?.max(10),
            ),
            cleanup_every: Duration::from_millis(
                number("CHAOS_CLEANUP_EVERY_MS", ms(defaults.cleanup_every))?.max(100),
            ),
            ..defaults
        })
    }
}

/// The longest network silence the injector causes.
pub const LONGEST_SILENCE: Duration = Duration::from_millis(1_500);

/// Cleanup's contract: an orphan is only removed once no create-user can still commit a row
/// for it. A process is killed a second after its deadline; a COMMIT it sent just before may
/// still be held by a silent network for [`LONGEST_SILENCE`]; half a second to spare.
pub fn safe_grace(function_timeout: Duration) -> Duration {
    function_timeout + Duration::from_secs(1) + LONGEST_SILENCE + Duration::from_millis(500)
}

/// What a request asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Op {
    Create,
    /// `PATCH {role}`: ADMIN or USER.
    UpdateRole,
    /// `PATCH {permissions}`: a random set of the seeded pages.
    UpdatePermissions,
    Deactivate,
    Reactivate,
    Delete,
}

impl Op {
    pub const ALL: [Op; 6] = [
        Op::Create,
        Op::UpdateRole,
        Op::UpdatePermissions,
        Op::Deactivate,
        Op::Reactivate,
        Op::Delete,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Op::Create => "create",
            Op::UpdateRole => "update role",
            Op::UpdatePermissions => "update permissions",
            Op::Deactivate => "deactivate",
            Op::Reactivate => "reactivate",
            Op::Delete => "delete",
        }
    }

    /// A lifecycle operation: on a user by its id, answered 200.
    pub fn on_a_user(self) -> bool {
        self != Op::Create
    }
}

/// What happened to one request, as the admin panel saw it.
#[derive(Clone, Debug)]
pub(crate) struct Attempt {
    pub op: Op,
    /// The address created, or of the user a lifecycle operation was on.
    pub address: String,
    /// The user a lifecycle operation was on.
    pub user_id: Option<String>,
    pub outcome: Outcome,
    /// Answered from the `Idempotency-Key`'s stored answer (`Idempotent-Replayed: true`).
    pub replayed: bool,
    /// The body of a lifecycle operation's 200.
    pub answer: Option<Value>,
    /// When the request was sent and when it ended (answered or killed), from the campaign's
    /// start.
    pub sent_at: Duration,
    pub ended_at: Duration,
    /// The last `step` the process logged for this request.
    pub last_step: Option<String>,
    /// The request took over (or began to take over) an Auth0 user of an earlier attempt.
    pub adopted: bool,
    /// `user.id` and `user.auth0UserId` of a 201.
    pub created: Option<(String, String)>,
    /// The setup token of the email accepted for this address just before the kill.
    pub token_before_kill: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Answered {
        status: u16,
        code: String,
    },
    /// `kill -9` while the request was in flight: at a random moment, or aimed: a create as
    /// soon as the email API accepted a message to its address (before the COMMIT, if it got
    /// there first), a lifecycle operation as soon as its Auth0 user changed (blocked,
    /// unblocked, its role tag, or gone).
    Killed {
        aimed: bool,
    },
    /// No answer by the hard timeout: killed like Lambda would.
    TimedOut,
}

/// A user the campaign was answered 201 for, that lifecycle operations may pick.
#[derive(Clone, Debug)]
pub(crate) struct KnownUser {
    pub id: String,
    pub address: String,
    pub auth0_id: String,
    /// Active as far as the last 200 said.
    pub active: bool,
}

/// A password the campaign set on a user it created (standing in for the invited person),
/// and the login made with it right then.
#[derive(Clone, Debug)]
pub(crate) struct Login {
    pub user_id: String,
    pub address: String,
    pub auth0_id: String,
    pub password: String,
    /// From the login, with `offline_access`, before any lifecycle operation on the user.
    pub refresh_token: Option<String>,
}

/// What the campaign's tasks record.
#[derive(Default)]
pub(crate) struct Ledger {
    pub attempts: Vec<Attempt>,
    pub logins: Vec<Login>,
    /// Everything each ended create-user process wrote.
    pub outputs: Vec<String>,
    pub process_starts: u64,
    pub failed_starts: u64,
    pub faults: HashMap<String, u64>,
    pub cleanup: CleanupStats,
}

#[derive(Default, Debug, Clone)]
pub struct CleanupStats {
    pub runs: u64,
    pub partial: u64,
    pub unavailable: u64,
    pub db_orphans_removed: u64,
    pub auth0_orphans_removed: u64,
    /// Lifecycle intents converged (their Auth0 user made to match the row) and removed.
    pub intents_converged: u64,
    pub errors: u64,
}

impl CleanupStats {
    fn record(&mut self, result: &Result<CleanupSummary, CleanupError>) {
        self.runs += 1;
        let summary = match result {
            Ok(summary) => summary,
            Err(CleanupError::DependencyUnavailable(summary)) => {
                self.unavailable += 1;
                summary
            }
            Err(CleanupError::InvalidRequest(_)) => return,
        };
        self.partial += u64::from(summary.partial);
        self.db_orphans_removed += summary.removed.db_orphans;
        self.auth0_orphans_removed +=
            summary.removed.auth0_orphans + summary.removed.auth0_users_of_db_orphans;
        self.intents_converged += summary.removed.intents;
        self.errors += summary.errors.len() as u64 + summary.errors_not_listed;
    }
}

/// Shared by the campaign's tasks.
pub(crate) struct Campaign {
    pub settings: Settings,
    /// create-user's environment (database through the proxy).
    pub vars: HashMap<String, String>,
    pub email: Arc<EmailDouble>,
    pub auth0: Arc<Auth0Double>,
    pub ledger: Mutex<Ledger>,
    /// Users created (answered 201) and not known to be deleted: lifecycle operations pick
    /// from these.
    pub users: Mutex<Vec<KnownUser>>,
    pub stop: watch::Receiver<bool>,
    pub started: Instant,
}

impl Campaign {
    pub fn stopped(&self) -> bool {
        *self.stop.borrow()
    }

    pub fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn users(&self) -> std::sync::MutexGuard<'_, Vec<KnownUser>> {
        self.users
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Time since the campaign started.
    pub fn now(&self) -> Duration {
        self.started.elapsed()
    }
}

/// Runs one campaign and checks what it left. Needs `TEST_DATABASE_URL` (or `DATABASE_URL`)
/// and the workspace binaries built, like the tests.
pub async fn run(settings: Settings) -> Result<Report, String> {
    let crate::harness::PreparedStack {
        db,
        auth0,
        email,
        mut vars,
    } = TestStack::prepare().await;
    let email = Arc::new(email);
    let auth0 = Arc::new(auth0);
    let direct_url = vars["DATABASE_URL"].clone();
    let direct = url::Url::parse(&direct_url).map_err(|e| e.to_string())?;
    let upstream = format!(
        "{}:{}",
        direct.host_str().unwrap_or("127.0.0.1"),
        direct.port().unwrap_or(5432)
    );
    let proxy = Arc::new(
        FreezableProxy::start(upstream)
            .await
            .map_err(|e| format!("proxy: {e}"))?,
    );
    vars.insert("DATABASE_URL".into(), proxy.postgres_url(&direct_url));
    vars.insert("RUST_LOG".into(), "info".into());

    let cleanup_state = app_state(&vars, settings.grace).await?;
    let (stop_tx, stop) = watch::channel(false);
    let campaign = Arc::new(Campaign {
        settings: settings.clone(),
        vars: vars.clone(),
        email: email.clone(),
        auth0: auth0.clone(),
        ledger: Mutex::new(Ledger::default()),
        users: Mutex::new(Vec::new()),
        stop,
        started: Instant::now(),
    });

    let mut tasks = Vec::new();
    for worker in 0..settings.instances {
        tasks.push(tokio::spawn(workers::run(campaign.clone(), worker)));
    }
    let injector = tokio::spawn(inject::run(
        campaign.clone(),
        inject::Targets {
            auth0: auth0.base_url(),
            email: email.base_url(),
            proxy: proxy.clone(),
            admin: db.admin_sql().await,
            database: db.name.clone(),
        },
    ));
    let cleaner = tokio::spawn(cleanup_loop(campaign.clone(), cleanup_state));

    tokio::time::sleep(settings.duration).await;
    stop_tx.send_replace(true);
    let _ = injector.await;
    proxy.thaw();
    let _ = cleaner.await;
    for task in tasks {
        let _ = task.await;
    }
    let campaign_time = campaign.started.elapsed();
    inject::clear(&auth0.base_url(), &email.base_url()).await;

    // Nothing is in flight any more: every create-user process is dead.
    let final_state = app_state(&vars, Duration::ZERO).await?;
    let mut direct_vars = vars.clone();
    direct_vars.insert("DATABASE_URL".into(), direct_url);
    let ledger = std::mem::take(&mut *campaign.ledger());
    check::run(
        &settings,
        campaign_time,
        ledger,
        &final_state,
        &direct_vars,
        &db,
        &auth0,
        &email,
    )
    .await
}

/// The app state cleanup runs with, its grace period set to `grace`.
async fn app_state(vars: &HashMap<String, String>, grace: Duration) -> Result<AppState, String> {
    let mut config =
        Config::from_lookup(|key| vars.get(key).cloned()).map_err(|e| format!("config: {e}"))?;
    config.cleanup.grace_period = grace;
    AppState::init_with_aws(config, None)
        .await
        .map_err(|e| format!("cleanup state: {e}"))
}

/// One cleanup invocation of everything, with a Lambda deadline `timeout` away.
pub(crate) async fn cleanup_once(
    state: &AppState,
    timeout: Duration,
) -> Result<CleanupSummary, CleanupError> {
    let mut context = Context::default();
    context.request_id = uuid::Uuid::new_v4().to_string();
    context.deadline = epoch_millis() + timeout.as_millis() as u64;
    shared::cleanup::handle(state, LambdaEvent::new(json!({}), context)).await
}

async fn cleanup_loop(campaign: Arc<Campaign>, state: AppState) {
    let mut stop = campaign.stop.clone();
    while !campaign.stopped() {
        let result = cleanup_once(&state, Duration::from_secs(10)).await;
        campaign.ledger().cleanup.record(&result);
        tokio::select! {
            _ = tokio::time::sleep(campaign.settings.cleanup_every) => {}
            _ = stop.changed() => break,
        }
    }
}
