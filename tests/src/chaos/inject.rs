//! The fault injector: at random intervals one fault, through the doubles' control API (as an
//! operator would) or on the database (a killed backend, a silent network).

use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use super::Campaign;
use crate::doubles::AUTH0_OPS;
use crate::freezable_proxy::FreezableProxy;

pub(crate) struct Targets {
    pub auth0: String,
    pub email: String,
    pub proxy: Arc<FreezableProxy>,
    /// A connection to the server's admin database, for `pg_terminate_backend`.
    pub admin: tokio_postgres::Client,
    /// The campaign's database.
    pub database: String,
}

/// Longer than the app's HTTP timeout (2 s): the caller gives up on an answer.
const PAST_HTTP_TIMEOUT_MS: u64 = 2_500;

pub(crate) async fn run(campaign: Arc<Campaign>, targets: Targets) {
    let mut rng = StdRng::seed_from_u64(campaign.settings.seed ^ 0xfa17);
    let http = reqwest::Client::new();
    let mut stop = campaign.stop.clone();
    let mean = campaign.settings.fault_every.as_millis() as u64;
    while !campaign.stopped() {
        let pause = Duration::from_millis(rng.random_range(0..=2 * mean));
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = stop.changed() => break,
        }
        let kind = match rng.random_range(0..100) {
            0..40 => auth0_fault(&http, &targets.auth0, &mut rng).await,
            40..70 => email_fault(&http, &targets.email, &mut rng).await,
            70..85 => terminate_backend(&targets).await,
            _ => {
                let longest = super::LONGEST_SILENCE.as_millis() as u64;
                let frozen = Duration::from_millis(rng.random_range(200..=longest));
                targets.proxy.freeze();
                tokio::select! {
                    _ = tokio::time::sleep(frozen) => {}
                    _ = stop.changed() => {}
                }
                targets.proxy.thaw();
                "database: network silent 0.2-1.5 s".to_string()
            }
        };
        *campaign.ledger().faults.entry(kind).or_default() += 1;
    }
    targets.proxy.thaw();
}

/// The Auth0 operations the app calls, each as likely to fail: every Management API operation
/// (create-user's, the lifecycle's `update_user`, `delete_user`, `revoke_sessions`,
/// `revoke_refresh_tokens`, cleanup's searches) and the token endpoint. Not `refresh_token`:
/// only a person's refresh grant is counted as that, and the app never makes one.
fn auth0_fault_ops() -> Vec<&'static str> {
    AUTH0_OPS
        .into_iter()
        .filter(|op| *op != "refresh_token")
        .collect()
}

async fn auth0_fault(http: &reqwest::Client, base: &str, rng: &mut StdRng) -> String {
    let ops = auth0_fault_ops();
    let op = ops[rng.random_range(0..ops.len())];
    let (fault, what) = variant(op, rng);
    post_fault(http, base, fault).await;
    format!("auth0 {op}: {what}")
}

async fn email_fault(http: &reqwest::Client, base: &str, rng: &mut StdRng) -> String {
    let (fault, what) = variant("send_email", rng);
    post_fault(http, base, fault).await;
    format!("email send_email: {what}")
}

/// One of the ways a dependency fails, for `op`.
fn variant(op: &str, rng: &mut StdRng) -> (Value, &'static str) {
    let times = rng.random_range(1..=2);
    match rng.random_range(0..6) {
        0 => (json!({"op": op, "status": 503, "times": times}), "503"),
        1 => (json!({"op": op, "status": 500, "times": times}), "500"),
        // One in three spends the rate limit: past the client's two retries, so the caller is
        // answered (SCIM's 429, the admin API's 503).
        2 if rng.random_bool(1.0 / 3.0) => (
            json!({"op": op, "status": 429, "times": 3}),
            "429 three times (past the client's retries)",
        ),
        2 => (json!({"op": op, "status": 429, "times": 1}), "429"),
        3 => (
            json!({"op": op, "drop": true, "times": 1}),
            "connection dropped",
        ),
        // The work is done, the answer comes after the caller stopped waiting.
        4 => (
            json!({"op": op, "delay_ms": PAST_HTTP_TIMEOUT_MS, "times": 1}),
            "done, answered after the HTTP timeout",
        ),
        // The work is done and answered late: a wide window for a kill in between.
        _ => (
            json!({"op": op, "delay_ms": 400, "times": 1}),
            "done, answered 400 ms late",
        ),
    }
}

async fn post_fault(http: &reqwest::Client, base: &str, fault: Value) {
    let sent = http
        .post(format!("{base}/__control/faults"))
        .json(&fault)
        .send()
        .await;
    if let Err(err) = sent {
        tracing::warn!(%err, "fault not injected");
    }
}

/// Ends one random session of the campaign's database (create-user's or cleanup's).
async fn terminate_backend(targets: &Targets) -> String {
    let ended = targets
        .admin
        .query_opt(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
              WHERE datname = $1 AND pid <> pg_backend_pid() AND backend_type = 'client backend'
              ORDER BY random() LIMIT 1",
            &[&targets.database],
        )
        .await;
    match ended {
        Ok(Some(_)) => "database: pg_terminate_backend".to_string(),
        Ok(None) => "database: pg_terminate_backend (no session open)".to_string(),
        Err(_) => "database: pg_terminate_backend (failed)".to_string(),
    }
}

/// Removes every fault not yet used, from both doubles.
pub(crate) async fn clear(auth0: &str, email: &str) {
    let http = reqwest::Client::new();
    for base in [auth0, email] {
        let _ = http.delete(format!("{base}/__control/faults")).send().await;
    }
}
