//! The campaign's counts and checks: printed, and written as `docs/RELIABILITY.md`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use super::{Api, CleanupStats, Ledger, Op, Outcome, Settings};

/// One rule checked over many cases.
#[derive(Debug, Clone)]
pub struct Check {
    pub name: String,
    /// A failure fails the campaign; otherwise the check is a reported observation.
    pub invariant: bool,
    pub passed: u64,
    pub failed: u64,
    /// The first failures, described without a full address.
    pub notes: Vec<String>,
}

const NOTES_KEPT: usize = 8;

impl Check {
    pub(crate) fn new(name: &str) -> Check {
        Check {
            name: name.to_string(),
            invariant: true,
            passed: 0,
            failed: 0,
            notes: Vec::new(),
        }
    }

    pub(crate) fn observed(name: &str) -> Check {
        Check {
            invariant: false,
            ..Check::new(name)
        }
    }

    pub(crate) fn single(name: &str, ok: bool, why: String) -> Check {
        let mut check = Check::new(name);
        check.record(ok, || why);
        check
    }

    pub(crate) fn record(&mut self, ok: bool, why: impl FnOnce() -> String) {
        if ok {
            self.passed += 1;
        } else {
            self.failed += 1;
            if self.notes.len() < NOTES_KEPT {
                self.notes.push(why());
            }
        }
    }

    pub fn held(&self) -> bool {
        self.failed == 0
    }
}

/// Everything a campaign counted and checked.
#[derive(Debug, Clone)]
pub struct Report {
    pub settings: Settings,
    pub campaign_time: Duration,
    pub requests: u64,
    /// Answers by operation, then by status and code (a replayed `Idempotency-Key` answer
    /// apart); kills and timeouts under their own names.
    pub outcomes: BTreeMap<Op, BTreeMap<String, u64>>,
    pub kills: u64,
    /// Kills by operation and the last step the killed request had logged.
    pub kills_after: BTreeMap<(Op, String), u64>,
    pub timeouts: u64,
    pub adopted: u64,
    /// Passwords the campaign set (and logged in with), and refresh tokens it got.
    pub passwords_set: u64,
    pub refresh_tokens: u64,
    pub process_starts: u64,
    pub failed_starts: u64,
    pub faults: BTreeMap<String, u64>,
    pub cleanup: CleanupStats,
    pub final_cleanup: CleanupStats,
    pub abandoned: u64,
    pub committed: u64,
    pub deactivated: u64,
    pub emails_sent: u64,
    pub checks: Vec<Check>,
}

impl Report {
    pub(crate) fn new(settings: Settings, campaign_time: Duration, ledger: &Ledger) -> Report {
        let mut outcomes: BTreeMap<Op, BTreeMap<String, u64>> = BTreeMap::new();
        let mut kills_after = BTreeMap::new();
        let (mut kills, mut timeouts, mut adopted) = (0, 0, 0);
        for attempt in &ledger.attempts {
            let key = match &attempt.outcome {
                Outcome::Answered { status, code } => {
                    let mut key = if code.is_empty() {
                        status.to_string()
                    } else {
                        format!("{status} {code}")
                    };
                    if attempt.replayed {
                        key.push_str(" (Idempotency-Key replay)");
                    }
                    key
                }
                Outcome::Killed { aimed } => {
                    kills += 1;
                    let step = attempt.last_step.clone().unwrap_or("(none yet)".into());
                    *kills_after.entry((attempt.op, step)).or_default() += 1;
                    let op = attempt.op;
                    match aimed {
                        false => "killed (kill -9) at a random moment".into(),
                        true if op.invites() => {
                            "killed (kill -9) once its email was accepted".into()
                        }
                        true if op.is_create() => {
                            "killed (kill -9) once its Auth0 user existed".into()
                        }
                        true => "killed (kill -9) once its Auth0 user changed".into(),
                    }
                }
                Outcome::TimedOut => {
                    timeouts += 1;
                    "no answer by the hard timeout (killed)".into()
                }
            };
            *outcomes
                .entry(attempt.op)
                .or_default()
                .entry(key)
                .or_default() += 1;
            adopted += u64::from(attempt.adopted);
        }
        Report {
            settings,
            campaign_time,
            requests: ledger.attempts.len() as u64,
            outcomes,
            kills,
            kills_after,
            timeouts,
            adopted,
            passwords_set: ledger.logins.len() as u64,
            refresh_tokens: ledger
                .logins
                .iter()
                .filter(|l| l.refresh_token.is_some())
                .count() as u64,
            process_starts: ledger.process_starts,
            failed_starts: ledger.failed_starts,
            faults: ledger.faults.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            cleanup: ledger.cleanup.clone(),
            final_cleanup: CleanupStats::default(),
            abandoned: 0,
            committed: 0,
            deactivated: 0,
            emails_sent: 0,
            checks: Vec::new(),
        }
    }

    /// How many requests of `op` got `answer` ("201", "409 USER_ALREADY_EXISTS", …).
    pub fn count(&self, op: Op, answer: &str) -> u64 {
        self.outcomes
            .get(&op)
            .and_then(|answers| answers.get(answer))
            .copied()
            .unwrap_or(0)
    }

    /// How many requests of `op` were sent.
    pub fn sent(&self, op: Op) -> u64 {
        self.outcomes
            .get(&op)
            .map_or(0, |answers| answers.values().sum())
    }

    /// How many requests of `op` were answered `status`, replayed or not.
    pub fn answered(&self, op: Op, status: u16) -> u64 {
        let prefix = status.to_string();
        self.outcomes.get(&op).map_or(0, |answers| {
            answers
                .iter()
                .filter(|(answer, _)| answer.split(' ').next() == Some(prefix.as_str()))
                .map(|(_, n)| n)
                .sum()
        })
    }

    /// Every invariant held.
    pub fn held(&self) -> bool {
        self.checks.iter().all(|c| !c.invariant || c.held())
    }

    pub fn failed_invariants(&self) -> Vec<&Check> {
        self.checks
            .iter()
            .filter(|c| c.invariant && !c.held())
            .collect()
    }

    fn faults_total(&self) -> u64 {
        self.faults.values().sum()
    }

    fn lifecycle_requests(&self) -> u64 {
        Op::ALL
            .iter()
            .filter(|op| op.on_a_user())
            .map(|op| self.sent(*op))
            .sum()
    }

    /// Requests sent to the scim function.
    pub fn scim_requests(&self) -> u64 {
        Op::ALL
            .iter()
            .filter(|op| op.api() == Api::Scim)
            .map(|op| self.sent(*op))
            .sum()
    }

    /// Creates answered 201, through either API.
    fn created(&self) -> u64 {
        Op::ALL
            .iter()
            .filter(|op| op.is_create())
            .map(|op| self.answered(*op, 201))
            .sum()
    }

    /// The counts and checks, for a terminal.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let s = &self.settings;
        let _ = writeln!(
            out,
            "chaos: seed {}, {} create-user and {} scim processes, {:.0} s, kill {}%, a fault every ~{} ms, lifecycle {}%",
            s.seed,
            s.instances,
            s.scim_instances,
            self.campaign_time.as_secs_f64(),
            s.kill_percent,
            s.fault_every.as_millis(),
            s.lifecycle_percent
        );
        let _ = writeln!(
            out,
            "requests {} (lifecycle {}, SCIM {})  201s {}  kills {}  hard timeouts {}  adoptions (begun) {}  passwords set {}  process starts {} (failed {})",
            self.requests,
            self.lifecycle_requests(),
            self.scim_requests(),
            self.created(),
            self.kills,
            self.timeouts,
            self.adopted,
            self.passwords_set,
            self.process_starts,
            self.failed_starts
        );
        let _ = writeln!(out, "answers:");
        for (op, answers) in &self.outcomes {
            for (outcome, n) in answers {
                let _ = writeln!(out, "  {n:>6}  {}: {outcome}", op.name());
            }
        }
        let _ = writeln!(out, "kills by the last step logged:");
        for ((op, step), n) in &self.kills_after {
            let _ = writeln!(out, "  {n:>6}  {}: {step}", op.name());
        }
        let _ = writeln!(out, "faults injected ({}):", self.faults_total());
        for (fault, n) in &self.faults {
            let _ = writeln!(out, "  {n:>6}  {fault}");
        }
        let _ = writeln!(
            out,
            "cleanup during the campaign: {} runs, {} partial, {} unavailable, removed {} pending rows and {} Auth0 users, converged {} lifecycle intents",
            self.cleanup.runs,
            self.cleanup.partial,
            self.cleanup.unavailable,
            self.cleanup.db_orphans_removed,
            self.cleanup.auth0_orphans_removed,
            self.cleanup.intents_converged
        );
        let _ = writeln!(
            out,
            "final cleanup: {} runs, removed {} pending rows and {} Auth0 users, converged {} lifecycle intents; {} addresses without a row created again; {} users ({} deactivated), {} emails",
            self.final_cleanup.runs,
            self.final_cleanup.db_orphans_removed,
            self.final_cleanup.auth0_orphans_removed,
            self.final_cleanup.intents_converged,
            self.abandoned,
            self.committed,
            self.deactivated,
            self.emails_sent
        );
        let _ = writeln!(out, "checks:");
        for check in &self.checks {
            let verdict = match (check.held(), check.invariant) {
                (true, _) => "held",
                (false, true) => "FAILED",
                (false, false) => "observed",
            };
            let _ = writeln!(
                out,
                "  {verdict:<8} {} ({} passed, {} failed)",
                check.name, check.passed, check.failed
            );
            for note in &check.notes {
                let _ = writeln!(out, "             {note}");
            }
        }
        let _ = writeln!(
            out,
            "{}",
            if self.held() {
                "every invariant held"
            } else {
                "AN INVARIANT FAILED"
            }
        );
        out
    }

    /// `docs/RELIABILITY.md`: what was injected, how often, what held.
    pub fn markdown(&self, machine: &str, binaries: &str) -> String {
        let s = &self.settings;
        let minutes = self.campaign_time.as_secs_f64() / 60.0;
        let per_minute = |n: u64| n as f64 / minutes.max(1e-9);
        let mut out = String::new();
        let _ = writeln!(out, "# Reliability: the fault campaign\n");
        let _ = writeln!(
            out,
            "This file is written by `make chaos` (`scripts/chaos.sh`, `tests/src/bin/chaos.rs`); \
             the numbers below are from its last run on {machine}, with {binaries}. A shorter \
             run of the same campaign is part of `make test` \
             (`tests/tests/it/chaos.rs`).\n"
        );
        let _ = writeln!(out, "## What the campaign does\n");
        let _ = writeln!(
            out,
            "- {} real `create-user` processes, each behind its own Lambda Runtime API emulator, \
             serve the admin API for {:.0} s like an admin panel that retries: half the \
             requests carry an `Idempotency-Key`, a failed request (5xx, a `409` saying the \
             user or the request is still in progress, a kill) is sent again (same body, same \
             key) {}% of the time and otherwise given up.",
            s.instances,
            self.campaign_time.as_secs_f64(),
            s.retry_percent
        );
        let _ = writeln!(
            out,
            "- Creates: one fresh create in ten reuses an address another process used \
             recently. Half the users answered 201 get a password (set in the Auth0 double \
             directly, as the set-password flow's PATCH does, standing in for the invited \
             person) and log in with it once, asking for a refresh token (`offline_access`); \
             these in-process calls of the double are not counted and take no injected fault.",
        );
        let _ = writeln!(
            out,
            "- Lifecycle: {}% of fresh requests (once a user exists) are an operation on a \
             user the campaign was answered 201 for, picked at random (one pick in five among \
             the users last seen deactivated, when there are any), sent by Acme's admin or its \
             owner: on a user last seen active, a new role (ADMIN or USER, 30%), new page \
             permissions (20%), deactivate (35%) or delete (15%); on one last seen deactivated, \
             reactivate (60%), a new role (15%), deactivate again (10%) or delete (15%). A \
             user answered deleted (or `404`) is no longer picked.",
            s.lifecycle_percent
        );
        let _ = writeln!(
            out,
            "- SCIM: {} real `scim` processes beside them serve an identity provider with a SCIM \
             token of Acme (made through the admin API, `POST /api/scim-tokens`), retrying as \
             the admin panel does (no `Idempotency-Key`: SCIM has none). Its creates (the \
             other {}%) are, by the address's name, an invitation (40%), Okta's `password` \
             (35%: no invitation, the person logs in with it at once, asking for a refresh \
             token) or `active: false` (25%: created with its login blocked; half of them with \
             a password too, which is tried at once and must be refused), with a name 70% \
             of the time and the role ADMIN 20%; one in ten instead takes a recent address of \
             the admin panel's (invited). A create answered `409 uniqueness` is followed by a \
             look-up (`GET /Users?filter=userName eq \"…\"`), and the user found is the \
             provider's from then on. Its changes ({}% of its requests) go to any user the \
             campaign knows, whichever API created it, so they meet the admin panel's on the \
             same users: on a user last seen active, Okta's path-less `{{\"op\":\"replace\",\
             \"value\":{{\"active\":false}}}}` (20%), Entra's `{{\"op\":\"Replace\",\
             \"path\":\"active\",\"value\":\"False\"}}` (15%), a new name (15%: Okta's \
             path-less object or Entra's two paths), a new role through the app extension \
             (18%), a PUT of the whole user (17%: a new name and externalId, the role, and the \
             activity last seen, flipped 30% of the time) or DELETE (15%); on one last seen \
             deactivated, active true (50%), a role (10%), a PUT (15%), Entra's deactivation \
             again (10%) or DELETE (15%).",
            s.scim_instances,
            100 - s.lifecycle_percent,
            s.lifecycle_percent
        );
        let _ = writeln!(
            out,
            "- Each invocation has a {} ms deadline; {}% of them are killed (`kill -9`): half \
             at a random moment within their usual duration, half at an aimed one (a create \
             that invites once the email API accepted its message, one that does not once its \
             Auth0 user existed, a lifecycle operation once its Auth0 user changed: blocked, \
             unblocked, a new role tag, or deleted). Any without an answer a second after the \
             deadline is killed as Lambda would. A killed process is replaced by a new one.",
            s.function_timeout.as_millis(),
            s.kill_percent
        );
        let _ = writeln!(
            out,
            "- A fault every {} ms on average (uniformly 0 to twice that apart): on the Auth0 \
             double (any operation the app calls, each as likely: the token endpoint, \
             `create_user`, `get_user`, `update_user`, `delete_user`, `users_by_email`, \
             `search_users`, `revoke_sessions`, `revoke_refresh_tokens`) and the email double \
             a 503, a 500, a 429 (one in three of them three times in a row: past the Auth0 \
             client's two retries, so the rate limit is spent for the caller), a dropped \
             connection, work done but answered after the app's \
             2 s HTTP timeout, or work done and answered 400 ms late; on the database a \
             `pg_terminate_backend` of a random session, or 0.2-1.5 s of network silence (a \
             proxy between every process and Postgres holds all traffic).",
            s.fault_every.as_millis()
        );
        let _ = writeln!(
            out,
            "- Cleanup runs every {} ms beside them, in the campaign's own process through \
             `shared::cleanup::handle` (the binary's entry), with a {} s grace period: above \
             every create-user's hard timeout plus the longest network silence injected (a \
             COMMIT sent just before a kill may land that late), which is the contract the \
             one-minute floor of `CLEANUP_GRACE_PERIOD_MINUTES` protects in production; the \
             floor itself would leave a short campaign's cleanup idle. A run with \
             `CHAOS_GRACE_MS=0` breaks the contract on purpose: when this campaign was written, \
             such a 20 s run ended with a committed user whose Auth0 user cleanup had deleted \
             while it was being created, and the checker failed it (exit 1).",
            s.cleanup_every.as_millis(),
            s.grace.as_secs_f64()
        );
        let _ = writeln!(
            out,
            "- Then the faults stop, every create-user and scim process is killed, a final cleanup runs \
             with no grace (nothing can be in flight), and the checks below run over Postgres, \
             the Auth0 double (its users, and logins and refresh grants against it), the email \
             double and every line the processes wrote; every address no row holds (never \
             committed, or deleted) is created again by fresh processes (as many as the \
             campaign ran) and the checks that concern it run again.\n"
        );
        let _ = writeln!(out, "## Last run\n");
        let _ = writeln!(
            out,
            "Seed {} (`CHAOS_SEED={} make chaos` repeats its choices; the interleaving differs \
             from run to run). {} requests, {:.0} a minute, {} of them lifecycle operations \
             and {} SCIM requests; {} creates answered 201; {} kills, {} hard timeouts; {} requests took over (or \
             began to take over) an earlier attempt's Auth0 user; {} passwords set or sent by \
             the identity provider ({} with a \
             refresh token); {} processes started.\n",
            s.seed,
            s.seed,
            self.requests,
            per_minute(self.requests),
            self.lifecycle_requests(),
            self.scim_requests(),
            self.created(),
            self.kills,
            self.timeouts,
            self.adopted,
            self.passwords_set,
            self.refresh_tokens,
            self.process_starts
        );
        let _ = writeln!(out, "| Operation | Answer | Count |\n|---|---|---:|");
        for (op, answers) in &self.outcomes {
            for (outcome, n) in answers {
                let _ = writeln!(out, "| {} | {outcome} | {n} |", op.name());
            }
        }
        let _ = writeln!(
            out,
            "\nKills by the last step the killed request had logged:\n\n| Operation | Step | Kills |\n|---|---|---:|"
        );
        for ((op, step), n) in &self.kills_after {
            let _ = writeln!(out, "| {} | {step} | {n} |", op.name());
        }
        let _ = writeln!(
            out,
            "\nFaults injected: {} ({:.0} a minute).\n\n| Fault | Count |\n|---|---:|",
            self.faults_total(),
            per_minute(self.faults_total())
        );
        for (fault, n) in &self.faults {
            let _ = writeln!(out, "| {fault} | {n} |");
        }
        let _ = writeln!(
            out,
            "\nCleanup during the campaign: {} runs, {} partial, {} failed as \
             `DependencyUnavailable`; they removed {} pending rows and {} Auth0 users and \
             converged {} lifecycle intents. The final pass ({} run(s)) removed {} pending rows \
             and {} Auth0 users and converged {} lifecycle intents. {} addresses without a row \
             were created again; at the end {} users ({} deactivated) and {} emails.\n",
            self.cleanup.runs,
            self.cleanup.partial,
            self.cleanup.unavailable,
            self.cleanup.db_orphans_removed,
            self.cleanup.auth0_orphans_removed,
            self.cleanup.intents_converged,
            self.final_cleanup.runs,
            self.final_cleanup.db_orphans_removed,
            self.final_cleanup.auth0_orphans_removed,
            self.final_cleanup.intents_converged,
            self.abandoned,
            self.committed,
            self.deactivated,
            self.emails_sent
        );
        let _ = writeln!(out, "## What held\n");
        let _ = writeln!(
            out,
            "| Check | Kind | Passed | Failed |\n|---|---|---:|---:|"
        );
        for check in &self.checks {
            let kind = if check.invariant {
                "invariant"
            } else {
                "observed"
            };
            let _ = writeln!(
                out,
                "| {} | {kind} | {} | {} |",
                check.name, check.passed, check.failed
            );
        }
        for check in self.checks.iter().filter(|c| !c.notes.is_empty()) {
            let _ = writeln!(out, "\n{}:\n", check.name);
            for note in &check.notes {
                let _ = writeln!(out, "- {note}");
            }
        }
        let _ = writeln!(
            out,
            "\n{}\n",
            if self.held() {
                "Every invariant held."
            } else {
                "**An invariant failed**: see the notes above."
            }
        );
        let _ = writeln!(out, "## Reading the checks\n");
        let _ = writeln!(
            out,
            "- The lifecycle's equivalences (docs/lifecycle.md) are checked for every row of \
             the campaign's domain and every user id it was answered 201 for: an active row's \
             Auth0 user exists, is not blocked and carries the row's id and role \
             (`app_metadata.db_user_id`, `app_metadata.role`); a deactivated row's is blocked \
             (and carries them too); a user id without a row has no Auth0 user tagged with it; \
             and no lifecycle intent is left. They are checked after the final cleanup, before \
             any address is created again.\n\
             - An acknowledged change lasts: a delete answered 200 left neither row nor Auth0 \
             user, and when the last request on a user was answered 200 (not a replay) and \
             started after every other request on it had ended (answered, or its process dead), \
             the row holds what that answer said (active or not, role, page permissions). A \
             replayed answer is the first request's, which later ones may have changed, so it \
             is not held to this.\n\
             - Every lifecycle answer is one the API documents for what happened: 200, `409 \
             USER_CHANGE_IN_PROGRESS` (another operation on the user, or a killed one's intent \
             until cleanup converges it), `409 REQUEST_IN_PROGRESS`, a 502 or 503, and `404 \
             USER_NOT_FOUND` only for a user a delete had been sent for. A 500 (what looks like \
             a bug) or any other refusal fails it.\n\
             - Every SCIM answer is one SCIM's API documents for what happened, in SCIM's \
             shape: a create 201 (the user, `active` as asked, a `Location` to it) or `409` with \
             `scimType: uniqueness`; a change 200 (the user changed), a delete 204 (no body, no \
             content type); a look-up 200 (a `ListResponse`); `409` without a `scimType` while \
             another change of the user is in progress and `404` once a delete of it was sent \
             (through either API); and any of them 429 (Auth0's rate limit spent), 502 or 503. \
             Every error is `application/scim+json` in SCIM's error schema with the status as a \
             string, and a 429 or a change in progress carries `Retry-After`. A 400 (the \
             campaign sends only valid requests), a 500 or a function error fails it. The last \
             change answered 200 through SCIM is held to its `active`, role, `externalId` and \
             name (the employee record's), as the admin API's is to its activity, role and \
             page permissions.\n\
             - Who can get in: with the passwords the campaign set (and those the identity \
             provider sent with its creates), a deactivated row's user is \
             refused at login (403 \"user is blocked\"), a deleted user's address refuses the \
             old password (before and after the address is created again), and an active row's \
             user logs in; a refresh token issued before any answer saying the user is \
             deactivated (a deactivation through either API, or a later change of a deactivated \
             user) is refused, also when the user was reactivated since (the deactivation \
             revoked it); a deactivated row's Auth0 user has no open session or live refresh \
             token. Users without a password known to the campaign are left out of the login \
             checks.\n\
             - A user SCIM created with a password or `active: false` is not invited: its row \
             has no setup token and no email went to its address (unless the admin API also \
             created that address); every other row's person got exactly one working link.\n\
             - A committed user's working link is the email whose token hashes to the user's \
             stored token. The setup token is derived from the Auth0 user id and the email's \
             `Idempotency-Key` is a hash of the message, so a retry that adopts the Auth0 user \
             of a killed attempt sends the identical message and the email API keeps one: the \
             invariant on requests killed once their email was accepted checks exactly that, \
             for every such request whose address ended with that attempt's Auth0 user.\n\
             - An email whose link works for nobody (the observed checks) was sent by an attempt \
             whose Auth0 user did not survive, so the user that was finally committed is another \
             one, with another token. Three ways lead there: the attempt was killed and given \
             up, and cleanup removed its orphan before anyone retried; a retry began to adopt \
             the orphan and failed (setting its tags, or any later step), and its compensation \
             deleted the adopted user; or the attempt itself failed after its email was accepted \
             (the email API answering after the HTTP timeout, a commit that failed) and its \
             compensation deleted its Auth0 user. An accepted email cannot be recalled. Each such address is \
             listed with its attempts (answer, last step logged, whether it adopted). An \
             address whose user was deleted has the deleted user's email too, and the user an \
             earlier attempt left is gone with its token rows: such addresses are left out of \
             the checks on kills once the email was accepted and of the strict count (the \
             working-link invariant still counts them).\n\
             - A kill \"at a random moment\" lands uniformly within 1.5 times the usual duration \
             of an invocation, so most land before the first step is logged (the process is \
             receiving the event or checking the caller); the aimed kills of creates land \
             between the email and the COMMIT, those of lifecycle operations between an Auth0 \
             change and the COMMIT (or, for a delete, between the Auth0 delete and the intent's \
             removal).\n\
             - Not covered: a kill of cleanup itself, Secrets Manager faults, the set-password \
             flow (passwords are set in the double directly), and cleanup's own log lines (it \
             runs in the campaign's process, whose output is not scanned).\n\
             - Knobs: `CHAOS_INSTANCES`, `CHAOS_SCIM_INSTANCES`, `CHAOS_SECONDS`, `CHAOS_SEED`, `CHAOS_KILL_PERCENT`, \
             `CHAOS_LIFECYCLE_PERCENT`, `CHAOS_FAULT_EVERY_MS`, `CHAOS_FUNCTION_TIMEOUT_MS`, \
             `CHAOS_CLEANUP_EVERY_MS`, `CHAOS_GRACE_MS`; \
             `CHAOS_REPORT` names the file written (empty: none)."
        );
        out
    }
}
