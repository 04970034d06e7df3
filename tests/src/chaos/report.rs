//! The campaign's counts and checks: printed, and written as `docs/RELIABILITY.md`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use super::{CleanupStats, Ledger, Outcome, Settings};

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
    /// Answers by status and code; kills and timeouts under their own names.
    pub outcomes: BTreeMap<String, u64>,
    pub kills: u64,
    /// Kills by the last step the killed request had logged.
    pub kills_after: BTreeMap<String, u64>,
    pub timeouts: u64,
    pub adopted: u64,
    pub process_starts: u64,
    pub failed_starts: u64,
    pub faults: BTreeMap<String, u64>,
    pub cleanup: CleanupStats,
    pub final_cleanup: CleanupStats,
    pub abandoned: u64,
    pub committed: u64,
    pub emails_sent: u64,
    pub checks: Vec<Check>,
}

impl Report {
    pub(crate) fn new(settings: Settings, campaign_time: Duration, ledger: &Ledger) -> Report {
        let mut outcomes = BTreeMap::new();
        let mut kills_after = BTreeMap::new();
        let (mut kills, mut timeouts, mut adopted) = (0, 0, 0);
        for attempt in &ledger.attempts {
            let key = match &attempt.outcome {
                Outcome::Answered { status, code } if code.is_empty() => status.to_string(),
                Outcome::Answered { status, code } => format!("{status} {code}"),
                Outcome::Killed { after_email } => {
                    kills += 1;
                    let step = attempt.last_step.clone().unwrap_or("(none yet)".into());
                    *kills_after.entry(step).or_default() += 1;
                    if *after_email {
                        "killed (kill -9) once its email was accepted".into()
                    } else {
                        "killed (kill -9) at a random moment".into()
                    }
                }
                Outcome::TimedOut => {
                    timeouts += 1;
                    "no answer by the hard timeout (killed)".into()
                }
            };
            *outcomes.entry(key).or_default() += 1;
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
            process_starts: ledger.process_starts,
            failed_starts: ledger.failed_starts,
            faults: ledger.faults.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            cleanup: ledger.cleanup.clone(),
            final_cleanup: CleanupStats::default(),
            abandoned: 0,
            committed: 0,
            emails_sent: 0,
            checks: Vec::new(),
        }
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

    /// The counts and checks, for a terminal.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let s = &self.settings;
        let _ = writeln!(
            out,
            "chaos: seed {}, {} create-user processes, {:.0} s, kill {}%, a fault every ~{} ms",
            s.seed,
            s.instances,
            self.campaign_time.as_secs_f64(),
            s.kill_percent,
            s.fault_every.as_millis()
        );
        let _ = writeln!(
            out,
            "requests {}  201s {}  kills {}  hard timeouts {}  adoptions (begun) {}  process starts {} (failed {})",
            self.requests,
            self.outcomes.get("201").copied().unwrap_or(0),
            self.kills,
            self.timeouts,
            self.adopted,
            self.process_starts,
            self.failed_starts
        );
        let _ = writeln!(out, "answers:");
        for (outcome, n) in &self.outcomes {
            let _ = writeln!(out, "  {n:>6}  {outcome}");
        }
        let _ = writeln!(out, "kills by the last step logged:");
        for (step, n) in &self.kills_after {
            let _ = writeln!(out, "  {n:>6}  {step}");
        }
        let _ = writeln!(out, "faults injected ({}):", self.faults_total());
        for (fault, n) in &self.faults {
            let _ = writeln!(out, "  {n:>6}  {fault}");
        }
        let _ = writeln!(
            out,
            "cleanup during the campaign: {} runs, {} partial, {} unavailable, removed {} pending rows and {} Auth0 users",
            self.cleanup.runs,
            self.cleanup.partial,
            self.cleanup.unavailable,
            self.cleanup.db_orphans_removed,
            self.cleanup.auth0_orphans_removed
        );
        let _ = writeln!(
            out,
            "final cleanup: {} runs, removed {} pending rows and {} Auth0 users; {} abandoned addresses retried; {} users, {} emails",
            self.final_cleanup.runs,
            self.final_cleanup.db_orphans_removed,
            self.final_cleanup.auth0_orphans_removed,
            self.abandoned,
            self.committed,
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
             serve create requests for {:.0} s like an admin panel that retries: half the \
             requests carry an `Idempotency-Key`, a failed request is sent again (same body, same \
             key) {}% of the time and otherwise given up, and one fresh request in ten reuses an \
             address another process used recently.",
            s.instances,
            self.campaign_time.as_secs_f64(),
            s.retry_percent
        );
        let _ = writeln!(
            out,
            "- Each invocation has a {} ms deadline; {}% of them are killed (`kill -9`) at a \
             random moment within their usual duration, and any without an answer a second after \
             the deadline is killed as Lambda would. A killed process is replaced by a new one.",
            s.function_timeout.as_millis(),
            s.kill_percent
        );
        let _ = writeln!(
            out,
            "- A fault every {} ms on average (uniformly 0 to twice that apart): on the Auth0 \
             double (any Management API operation or the token endpoint) and the email double a \
             503, a 500, a 429, a dropped connection, work done but answered after the app's \
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
            "- Then the faults stop, every create-user process is killed, a final cleanup runs \
             with no grace (nothing can be in flight), every address no row holds is created \
             again by a fresh process, and the checks below run over Postgres, the Auth0 double, \
             the email double and every line the processes wrote.\n"
        );
        let _ = writeln!(out, "## Last run\n");
        let _ = writeln!(
            out,
            "Seed {} (`CHAOS_SEED={} make chaos` repeats its choices; the interleaving differs \
             from run to run). {} requests, {:.0} a minute; {} answered 201; {} kills, {} hard \
             timeouts; {} requests took over (or began to take over) an earlier attempt's Auth0 user; {} processes started.\n",
            s.seed,
            s.seed,
            self.requests,
            per_minute(self.requests),
            self.outcomes.get("201").copied().unwrap_or(0),
            self.kills,
            self.timeouts,
            self.adopted,
            self.process_starts
        );
        let _ = writeln!(out, "| Answer | Count |\n|---|---:|");
        for (outcome, n) in &self.outcomes {
            let _ = writeln!(out, "| {outcome} | {n} |");
        }
        let _ = writeln!(
            out,
            "\nKills by the last step the killed request had logged:\n\n| Step | Kills |\n|---|---:|"
        );
        for (step, n) in &self.kills_after {
            let _ = writeln!(out, "| {step} | {n} |");
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
             `DependencyUnavailable`; they removed {} pending rows and {} Auth0 users. The final \
             pass ({} run(s)) removed {} pending rows and {} Auth0 users. {} abandoned addresses \
             were created again; at the end {} users and {} emails.\n",
            self.cleanup.runs,
            self.cleanup.partial,
            self.cleanup.unavailable,
            self.cleanup.db_orphans_removed,
            self.cleanup.auth0_orphans_removed,
            self.final_cleanup.runs,
            self.final_cleanup.db_orphans_removed,
            self.final_cleanup.auth0_orphans_removed,
            self.abandoned,
            self.committed,
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
            "- A committed user's working link is the email whose token hashes to the user's \
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
             listed with its attempts (answer, last step logged, whether it adopted).\n\
             - A kill \"at a random moment\" lands uniformly within 1.5 times the usual duration \
             of an invocation, so most land before the first step is logged (the process is \
             receiving the event or checking the caller); the kills \"once its email was \
             accepted\" are aimed at the window between the email and the COMMIT.\n\
             - Not covered: a kill of cleanup itself, Secrets Manager faults, and cleanup's own \
             log lines (it runs in the campaign's process, whose output is not scanned).\n\
             - Knobs: `CHAOS_INSTANCES`, `CHAOS_SECONDS`, `CHAOS_SEED`, `CHAOS_KILL_PERCENT`, \
             `CHAOS_FAULT_EVERY_MS`, `CHAOS_FUNCTION_TIMEOUT_MS`, `CHAOS_CLEANUP_EVERY_MS`, \
             `CHAOS_GRACE_MS`; \
             `CHAOS_REPORT` names the file written (empty: none)."
        );
        out
    }
}
