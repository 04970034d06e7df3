//! The fault campaign behind `make chaos`: real create-user processes behind the Runtime API
//! emulator, serving creates and the lifecycle operations (update, deactivate, reactivate,
//! delete) on the users created before, and real scim processes serving an identity provider's
//! creates, PATCHes, PUTs and DELETEs on the same users, killed at random (`kill -9`), with
//! Auth0, email and database faults injected and cleanup looping beside them; then an invariant
//! checker over both systems and the logs.
//!
//! Cleanup runs in this process (`shared::cleanup::handle`, the binary's own entry) with a
//! state whose grace period is the campaign's: the configuration's floor is one minute, which
//! would leave a short campaign's cleanup with nothing to do. The grace is kept above the hard
//! timeout of every create-user invocation (deadline + 1 s, after which the process is killed),
//! which is the contract the floor protects. The final pass runs with no grace at all, once
//! every create-user and scim process is dead and nothing can be in flight.

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
    /// scim processes serving an identity provider at the same time (besides `instances`).
    pub scim_instances: usize,
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
    /// Where to write every line the processes wrote, for a post-mortem (`CHAOS_LOGS`).
    pub logs: Option<String>,
}

impl Settings {
    /// The defaults of `make chaos`: 4 create-user and 2 scim processes for 60 s.
    pub fn new(seed: u64) -> Settings {
        let function_timeout = Duration::from_secs(6);
        Settings {
            instances: 4,
            scim_instances: 2,
            duration: Duration::from_secs(60),
            seed,
            function_timeout,
            grace: safe_grace(function_timeout),
            kill_percent: 15,
            retry_percent: 70,
            lifecycle_percent: 40,
            fault_every: Duration::from_millis(300),
            cleanup_every: Duration::from_millis(1_500),
            logs: None,
        }
    }

    /// `CHAOS_INSTANCES`, `CHAOS_SECONDS`, `CHAOS_SEED`, `CHAOS_KILL_PERCENT`,
    /// `CHAOS_FAULT_EVERY_MS`, `CHAOS_FUNCTION_TIMEOUT_MS`, `CHAOS_CLEANUP_EVERY_MS`,
    /// `CHAOS_GRACE_MS` (default [`safe_grace`]), `CHAOS_LIFECYCLE_PERCENT`,
    /// `CHAOS_SCIM_INSTANCES`, `CHAOS_LOGS`.
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
        let scim_instances =
            number("CHAOS_SCIM_INSTANCES", defaults.scim_instances as u64)? as usize;
        if scim_instances > 32 {
            return Err("CHAOS_SCIM_INSTANCES must be from 0 to 32".into());
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
            scim_instances,
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
            logs: std::env::var("CHAOS_LOGS")
                .ok()
                .filter(|p| !p.trim().is_empty()),
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

/// Which function a request goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Api {
    /// create-user: the admin panel's API (a JWT of Acme's admin or owner).
    Admin,
    /// scim: an identity provider (Okta, Entra ID) with a SCIM token of Acme.
    Scim,
}

impl Api {
    /// The workspace binary that serves it.
    pub fn binary(self) -> &'static str {
        match self {
            Api::Admin => "create-user",
            Api::Scim => "scim",
        }
    }
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
    /// SCIM `POST /Users` without a password: the person is invited.
    ScimCreate,
    /// SCIM `POST /Users` with Okta's `password`: no invitation, the password logs in.
    ScimCreatePassword,
    /// SCIM `POST /Users` with `active: false`: created with its login blocked.
    ScimCreateInactive,
    /// SCIM `GET /Users?filter=userName eq "…"`: what Okta does after a `409 uniqueness`.
    ScimFind,
    /// Okta's deactivation: `PATCH` `{"op":"replace","value":{"active":false}}` (no path).
    ScimDeactivateOkta,
    /// Entra's deactivation: `PATCH` `{"op":"Replace","path":"active","value":"False"}`.
    ScimDeactivateEntra,
    /// `PATCH` active true (Okta's path-less `true` or Entra's `"True"`).
    ScimReactivate,
    /// `PATCH` of `name.givenName` and `name.familyName` (Okta's path-less object or Entra's
    /// two paths).
    ScimRename,
    /// `PATCH` of the app extension's `role`.
    ScimRole,
    /// `PUT` of the whole user: name, externalId, active, role.
    ScimReplace,
    /// SCIM `DELETE /Users/{id}`: 204.
    ScimDelete,
}

impl Op {
    pub const ALL: [Op; 17] = [
        Op::Create,
        Op::UpdateRole,
        Op::UpdatePermissions,
        Op::Deactivate,
        Op::Reactivate,
        Op::Delete,
        Op::ScimCreate,
        Op::ScimCreatePassword,
        Op::ScimCreateInactive,
        Op::ScimFind,
        Op::ScimDeactivateOkta,
        Op::ScimDeactivateEntra,
        Op::ScimReactivate,
        Op::ScimRename,
        Op::ScimRole,
        Op::ScimReplace,
        Op::ScimDelete,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Op::Create => "create",
            Op::UpdateRole => "update role",
            Op::UpdatePermissions => "update permissions",
            Op::Deactivate => "deactivate",
            Op::Reactivate => "reactivate",
            Op::Delete => "delete",
            Op::ScimCreate => "scim create (invited)",
            Op::ScimCreatePassword => "scim create (password)",
            Op::ScimCreateInactive => "scim create (active false)",
            Op::ScimFind => "scim find by userName",
            Op::ScimDeactivateOkta => "scim patch active false (Okta)",
            Op::ScimDeactivateEntra => "scim patch active \"False\" (Entra)",
            Op::ScimReactivate => "scim patch active true",
            Op::ScimRename => "scim patch name",
            Op::ScimRole => "scim patch role",
            Op::ScimReplace => "scim put",
            Op::ScimDelete => "scim delete",
        }
    }

    pub fn api(self) -> Api {
        match self {
            Op::Create
            | Op::UpdateRole
            | Op::UpdatePermissions
            | Op::Deactivate
            | Op::Reactivate
            | Op::Delete => Api::Admin,
            _ => Api::Scim,
        }
    }

    /// Creates a user (either API).
    pub fn is_create(self) -> bool {
        matches!(
            self,
            Op::Create | Op::ScimCreate | Op::ScimCreatePassword | Op::ScimCreateInactive
        )
    }

    /// Deletes a user (either API).
    pub fn is_delete(self) -> bool {
        matches!(self, Op::Delete | Op::ScimDelete)
    }

    /// A lifecycle operation: on a user by its id.
    pub fn on_a_user(self) -> bool {
        !self.is_create() && self != Op::ScimFind
    }

    /// The status of a success: 201 for a create, 204 for SCIM's delete, else 200.
    pub fn success(self) -> u16 {
        match self {
            _ if self.is_create() => 201,
            Op::ScimDelete => 204,
            _ => 200,
        }
    }

    /// A create that sends the person an invitation: not SCIM's with a password, nor with
    /// `active: false`.
    pub fn invites(self) -> bool {
        matches!(self, Op::Create | Op::ScimCreate)
    }
}

/// The SCIM create an address of the campaign's identity provider was made for, by its name
/// (`s…-pw@`; `s…-off@` or `s…-offpw@`, the latter with a password too; any other address: an
/// invitation). Every SCIM create of one address sends the same body, so this is what its row
/// was created as, when SCIM created it.
pub fn scim_create_of(address: &str) -> Op {
    let local = address.split('@').next().unwrap_or_default();
    if local.ends_with("-pw") && !local.ends_with("-offpw") {
        Op::ScimCreatePassword
    } else if local.ends_with("-off") || local.ends_with("-offpw") {
        Op::ScimCreateInactive
    } else {
        Op::ScimCreate
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
    /// The body of a lifecycle operation's 200, a look-up's 200 or a SCIM create's 201.
    pub answer: Option<Value>,
    /// What the request sent (its body): a SCIM answer is held to it.
    pub asked: Option<Value>,
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
    /// A SCIM answer not in SCIM's shape (content type, error schema, `Retry-After`, the
    /// resource): why.
    pub misshapen: Option<String>,
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
    /// The passwords the identity provider sent with its creates, by address.
    pub scim_passwords: HashMap<String, String>,
    /// Users SCIM created with `active: false` and a password: the login tried with it as soon
    /// as the 201 came (the user's id and the token endpoint's status and description).
    pub blocked_at_creation: Vec<(String, u16, String)>,
    /// The identity provider's token (set once the campaign ended, for the log scan).
    pub scim_token: String,
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
    /// The identity provider's SCIM token of Acme, made through the admin API.
    pub scim_token: String,
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
    let scim_token = scim_token(&cleanup_state).await?;
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
        scim_token,
    });

    let mut tasks = Vec::new();
    for worker in 0..settings.instances {
        tasks.push(tokio::spawn(workers::run(
            campaign.clone(),
            worker,
            Api::Admin,
        )));
    }
    for worker in 0..settings.scim_instances {
        let worker = settings.instances + worker;
        tasks.push(tokio::spawn(workers::run(
            campaign.clone(),
            worker,
            Api::Scim,
        )));
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

    // Nothing is in flight any more: every create-user and scim process is dead.
    let final_state = app_state(&vars, Duration::ZERO).await?;
    let mut direct_vars = vars.clone();
    direct_vars.insert("DATABASE_URL".into(), direct_url);
    let mut ledger = std::mem::take(&mut *campaign.ledger());
    ledger.scim_token = campaign.scim_token.clone();
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

/// A SCIM token of Acme, made by its admin through the admin API (as an admin setting up
/// Okta would), before any fault.
async fn scim_token(state: &AppState) -> Result<String, String> {
    let event = crate::harness::api_event(
        "POST",
        crate::harness::SCIM_TOKENS_PATH,
        Some(crate::harness::seed::ACME_ADMIN_SUB),
        Some(&json!({"name": "Chaos IdP"}).to_string()),
    );
    let mut context = Context::default();
    context.request_id = uuid::Uuid::new_v4().to_string();
    context.deadline = epoch_millis() + 20_000;
    let response = shared::admin_api::handle(state, crate::harness::handler_event(&event, context))
        .await
        .map_err(|e| format!("scim token: {e:?}"))?;
    let response = crate::harness::Response::from_lambda(
        serde_json::to_value(response).map_err(|e| e.to_string())?,
    );
    match response.body["token"].as_str() {
        Some(token) if response.status == 201 => Ok(token.to_string()),
        _ => Err(format!("scim token: {} {}", response.status, response.body)),
    }
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
