//! One create-user process per worker, sending requests like an admin panel that retries:
//! a failed request is sent again (same body, same `Idempotency-Key`) or given up. Any
//! invocation may be killed at a random moment; a killed process is replaced.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use super::{Attempt, Campaign, DOMAIN, Outcome};
use crate::harness::{Response, create_event, seed};
use crate::lambda_process::LambdaProcess;

/// Addresses recently used by any worker; a fresh request sometimes takes one of them, so
/// requests for one address meet (taken, in progress, adoption) across processes.
static RECENT: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
const RECENT_KEPT: usize = 16;

struct Request {
    address: String,
    body: Value,
    key: Option<String>,
}

pub(crate) async fn run(campaign: Arc<Campaign>, worker: usize) {
    let mut rng = StdRng::seed_from_u64(campaign.settings.seed.wrapping_add(worker as u64 * 7919));
    let mut process = None;
    let mut retry: Option<Request> = None;
    let mut sent = 0u64;
    // The mean time of an answered invocation: kills land anywhere within it.
    let mut typical_ms = 150.0f64;
    // An answered request, and where its log lines start: its last lines may still be in the
    // pipe when the answer arrives, so its steps are read when the next request starts.
    let mut answered_last: Option<(Attempt, usize)> = None;
    while !campaign.stopped() {
        let Some(function) = process.take() else {
            process = start(&campaign).await;
            if process.is_none() {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            continue;
        };
        if let Some((attempt, offset)) = answered_last.take() {
            record(&campaign, attempt, &function.logs_so_far(), offset);
        }
        let request = retry.take().unwrap_or_else(|| {
            sent += 1;
            fresh_request(&campaign, &mut rng, worker, sent)
        });
        let mut event = create_event(seed::ACME_ADMIN_SUB, &request.body);
        if let Some(key) = &request.key {
            event["headers"]["idempotency-key"] = json!(key);
        }
        // Half the kills land at a random moment, half as soon as the email is accepted.
        let kill = rng.random_bool(f64::from(campaign.settings.kill_percent) / 100.0);
        let kill_after_email = kill && rng.random_bool(0.5);
        let kill_at = (kill && !kill_after_email)
            .then(|| Duration::from_millis(rng.random_range(0..=(typical_ms * 1.5) as u64 + 20)));
        let hard_timeout = campaign.settings.function_timeout + Duration::from_secs(1);
        let log_offset = function.logs_so_far().len();
        let emails_before = campaign.email.emails_to(&request.address).len();
        let email_accepted = async {
            loop {
                let sent = campaign.email.emails_to(&request.address);
                if sent.len() > emails_before {
                    let last = sent.last().and_then(|m| m.setup_token_and_email());
                    return last.map(|(token, _)| token);
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        };
        let started = Instant::now();
        let mut token_before_kill = None;
        let answered = tokio::select! {
            invocation = function.invoke_within(event, campaign.settings.function_timeout) => {
                Some(invocation)
            }
            _ = tokio::time::sleep(kill_at.unwrap_or(hard_timeout)) => None,
            token = email_accepted, if kill_after_email => {
                token_before_kill = Some(token.unwrap_or_default());
                None
            }
        };
        let (outcome, logs, created) = match answered {
            Some(Ok(invocation)) => {
                typical_ms = typical_ms * 0.9 + started.elapsed().as_millis() as f64 * 0.1;
                let response = match &invocation.outcome {
                    crate::runtime_api::Outcome::Response(_) => Response::of(&invocation),
                    other => {
                        // A function error is an invocation without an HTTP answer: 502 at
                        // API Gateway. create-user never does this; count it as a 502.
                        tracing::warn!(?other, "create-user failed its invocation");
                        Response {
                            status: 502,
                            headers: Value::Null,
                            body: json!({"code": "FUNCTION_ERROR"}),
                        }
                    }
                };
                let created = (response.status == 201).then(|| {
                    let user = &response.body["user"];
                    (
                        user["id"].as_str().unwrap_or_default().to_string(),
                        user["auth0UserId"].as_str().unwrap_or_default().to_string(),
                    )
                });
                process = Some(function);
                let outcome = Outcome::Answered {
                    status: response.status,
                    code: response.code().to_string(),
                };
                (outcome, String::new(), created)
            }
            // No answer by the hard timeout (or the emulator gave up): Lambda kills it.
            Some(Err(_)) => {
                let logs = function.kill().await.text;
                campaign.ledger().outputs.push(logs.clone());
                (Outcome::TimedOut, logs, None)
            }
            None => {
                let logs = function.kill().await.text;
                campaign.ledger().outputs.push(logs.clone());
                let outcome = if kill_at.is_some() || token_before_kill.is_some() {
                    Outcome::Killed {
                        after_email: token_before_kill.is_some(),
                    }
                } else {
                    Outcome::TimedOut
                };
                (outcome, logs, None)
            }
        };
        let failed = match &outcome {
            Outcome::Answered { status, code } => {
                *status >= 500
                    || code == "USER_CREATION_IN_PROGRESS"
                    || code == "REQUEST_IN_PROGRESS"
            }
            Outcome::Killed { .. } | Outcome::TimedOut => true,
        };
        let attempt = Attempt {
            address: request.address.clone(),
            outcome,
            last_step: None,
            adopted: false,
            created,
            token_before_kill,
        };
        if process.is_some() {
            answered_last = Some((attempt, log_offset));
        } else {
            record(&campaign, attempt, &logs, log_offset);
        }
        if failed && rng.random_bool(f64::from(campaign.settings.retry_percent) / 100.0) {
            retry = Some(request);
        }
    }
    if let Some(function) = process {
        let logs = function.kill().await.text;
        if let Some((attempt, offset)) = answered_last.take() {
            record(&campaign, attempt, &logs, offset);
        }
        campaign.ledger().outputs.push(logs);
    }
}

/// Adds `attempt` to the ledger with the steps its log lines (from `offset`) name.
fn record(campaign: &Campaign, mut attempt: Attempt, logs: &str, offset: usize) {
    (attempt.last_step, attempt.adopted) = steps(logs.get(offset..).unwrap_or_default());
    campaign.ledger().attempts.push(attempt);
}

async fn start(campaign: &Campaign) -> Option<LambdaProcess> {
    match LambdaProcess::start("create-user", &campaign.vars).await {
        Ok(process) => {
            campaign.ledger().process_starts += 1;
            Some(process)
        }
        Err(err) => {
            let mut ledger = campaign.ledger();
            ledger.failed_starts += 1;
            ledger.outputs.push(err);
            None
        }
    }
}

fn fresh_request(campaign: &Campaign, rng: &mut StdRng, worker: usize, n: u64) -> Request {
    let mut recent = RECENT.lock().unwrap_or_else(|p| p.into_inner());
    let address = if !recent.is_empty() && rng.random_bool(0.1) {
        recent[rng.random_range(0..recent.len())].clone()
    } else {
        let address = format!("c{}-w{worker}-n{n}@{DOMAIN}", campaign.settings.seed);
        recent.push(address.clone());
        if recent.len() > RECENT_KEPT {
            recent.remove(0);
        }
        address
    };
    let mut body = json!({
        "email": address,
        "role": "USER",
        "permissions": [{"pageId": seed::PAGE_DASHBOARD, "canRead": true}],
    });
    if rng.random_bool(0.3) {
        body["create_employee"] = json!(true);
        body["employee_data"] = json!({"firstName": "Chaos", "lastName": "Monkey"});
    }
    let key = rng
        .random_bool(0.5)
        .then(|| uuid::Uuid::new_v4().to_string());
    Request { address, body, key }
}

/// The last `step` the request's log lines name, and whether it took over (or began to take
/// over) an Auth0 user of an earlier attempt.
fn steps(logs: &str) -> (Option<String>, bool) {
    let mut last = None;
    let mut adopted = false;
    for line in logs.lines() {
        let Ok(line) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if let Some(step) = line["step"].as_str() {
            // Logged once the orphan is found, before its tags are set.
            adopted |= step == "auth0_adopt";
            last = Some(step.to_string());
        }
        adopted |= line["adopted"] == json!(true);
    }
    (last, adopted)
}
