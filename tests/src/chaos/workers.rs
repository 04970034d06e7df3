//! One create-user process per worker, sending requests like an admin panel that retries:
//! creates, and lifecycle operations (a new role, new page permissions, deactivate, reactivate,
//! delete) on users the campaign was answered 201 for. A failed request is sent again (same
//! body, same `Idempotency-Key`) or given up. Any invocation may be killed at a random moment
//! or at an aimed one; a killed process is replaced.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use super::{Attempt, Campaign, DOMAIN, KnownUser, Login, Op, Outcome};
use crate::doubles::Auth0Double;
use crate::harness::{CREATE_PATH, Response, api_event, seed};
use crate::lambda_process::LambdaProcess;

/// Addresses recently used by any worker; a fresh request sometimes takes one of them, so
/// requests for one address meet (taken, in progress, adoption) across processes.
static RECENT: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
const RECENT_KEPT: usize = 16;

/// The campaign's users' pages: a permissions change picks among them.
const PAGES: [&str; 3] = [
    seed::PAGE_DASHBOARD,
    seed::PAGE_REPORTS,
    seed::PAGE_SETTINGS,
];

struct Request {
    op: Op,
    address: String,
    /// The user a lifecycle operation is on, and its Auth0 user.
    user: Option<(String, String)>,
    /// The admin panel's user (the JWT's `sub`).
    caller: &'static str,
    method: &'static str,
    path: String,
    body: Option<Value>,
    key: Option<String>,
}

impl Request {
    fn event(&self) -> Value {
        let body = self.body.as_ref().map(Value::to_string);
        let mut event = api_event(self.method, &self.path, Some(self.caller), body.as_deref());
        if let Some(key) = &self.key {
            event["headers"]["idempotency-key"] = json!(key);
        }
        event
    }
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
        // Half the kills land at a random moment, half at the aimed one.
        let kill = rng.random_bool(f64::from(campaign.settings.kill_percent) / 100.0);
        let kill_aimed = kill && rng.random_bool(0.5);
        let kill_at = (kill && !kill_aimed)
            .then(|| Duration::from_millis(rng.random_range(0..=(typical_ms * 1.5) as u64 + 20)));
        let hard_timeout = campaign.settings.function_timeout + Duration::from_secs(1);
        let log_offset = function.logs_so_far().len();
        let aimed_moment = aimed_moment(&campaign, &request);
        let started = Instant::now();
        let sent_at = campaign.now();
        let mut token_before_kill = None;
        let mut aimed_hit = false;
        let answered = tokio::select! {
            invocation = function.invoke_within(request.event(), campaign.settings.function_timeout) => {
                Some(invocation)
            }
            _ = tokio::time::sleep(kill_at.unwrap_or(hard_timeout)) => None,
            token = aimed_moment, if kill_aimed => {
                aimed_hit = true;
                // A create's: the setup token of the email accepted just before the kill.
                if request.op == Op::Create {
                    token_before_kill = Some(token.unwrap_or_default());
                }
                None
            }
        };
        let mut replayed = false;
        let mut answer = None;
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
                replayed = response.headers["idempotent-replayed"] == json!("true");
                let created = (response.status == 201).then(|| {
                    let user = &response.body["user"];
                    (
                        user["id"].as_str().unwrap_or_default().to_string(),
                        user["auth0UserId"].as_str().unwrap_or_default().to_string(),
                    )
                });
                if request.op.on_a_user() && response.status == 200 {
                    answer = Some(response.body.clone());
                }
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
                let outcome = if kill_at.is_some() || aimed_hit {
                    Outcome::Killed { aimed: aimed_hit }
                } else {
                    Outcome::TimedOut
                };
                (outcome, logs, None)
            }
        };
        let ended_at = campaign.now();
        let failed = match &outcome {
            Outcome::Answered { status, code } => {
                *status >= 500
                    || code == "USER_CREATION_IN_PROGRESS"
                    || code == "USER_CHANGE_IN_PROGRESS"
                    || code == "REQUEST_IN_PROGRESS"
            }
            Outcome::Killed { .. } | Outcome::TimedOut => true,
        };
        if let Some((id, auth0_id)) = &created {
            created_user(&campaign, &mut rng, &request.address, id, auth0_id).await;
        }
        if let (Some((id, _)), Outcome::Answered { status, code }) = (&request.user, &outcome) {
            follow_answer(&campaign, request.op, id, *status, code, answer.as_ref());
        }
        let attempt = Attempt {
            op: request.op,
            address: request.address.clone(),
            user_id: request.user.as_ref().map(|(id, _)| id.clone()),
            outcome,
            replayed,
            answer,
            sent_at,
            ended_at,
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

/// The moment an aimed kill lands: for a create, once the email API accepted a message to its
/// address (the setup token it carries); for a lifecycle operation, once its Auth0 user is not
/// as it was when the request was sent (blocked or unblocked, another role tag, or gone).
/// What it compares with is read now, before the request is sent.
fn aimed_moment<'a>(
    campaign: &'a Campaign,
    request: &'a Request,
) -> Pin<Box<dyn Future<Output = Option<String>> + Send + 'a>> {
    match &request.user {
        None => {
            let address = &request.address;
            let emails_before = campaign.email.emails_to(address).len();
            Box::pin(async move {
                loop {
                    let sent = campaign.email.emails_to(address);
                    if sent.len() > emails_before {
                        let last = sent.last().and_then(|m| m.setup_token_and_email());
                        return last.map(|(token, _)| token);
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            })
        }
        Some((_, auth0_id)) => {
            let address = &request.address;
            let before = auth0_seen(&campaign.auth0, address, auth0_id);
            Box::pin(async move {
                while auth0_seen(&campaign.auth0, address, auth0_id) == before {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                None
            })
        }
    }
}

/// What a lifecycle operation may change of an Auth0 user: whether it exists, whether it is
/// blocked, its role tag.
fn auth0_seen(auth0: &Auth0Double, address: &str, auth0_id: &str) -> Option<(bool, Value)> {
    auth0
        .users_with_email(address)
        .into_iter()
        .find(|user| user["user_id"] == json!(auth0_id))
        .map(|user| {
            (
                user["blocked"] == json!(true),
                user["app_metadata"]["role"].clone(),
            )
        })
}

/// A 201: half the time the invited person sets a password (in the Auth0 double directly, as
/// the set-password flow's PATCH would) and logs in with it, asking for a refresh token; then
/// the user is one lifecycle operations may pick. A user answered 201 before (a replay) is
/// left as it is.
async fn created_user(
    campaign: &Campaign,
    rng: &mut StdRng,
    address: &str,
    id: &str,
    auth0_id: &str,
) {
    let known = campaign
        .ledger()
        .attempts
        .iter()
        .any(|a| a.created.as_ref().is_some_and(|(created, _)| created == id));
    if known || campaign.users().iter().any(|u| u.id == id) {
        return;
    }
    if rng.random_bool(0.5) {
        let password = format!("Chaos-{}-9", uuid::Uuid::new_v4().simple());
        let auth0 = &campaign.auth0;
        if auth0.set_password_unfaulted(auth0_id, &password).await {
            let (status, body) = auth0
                .log_in_unfaulted(address, &password, "openid offline_access")
                .await;
            let refresh_token = body["refresh_token"]
                .as_str()
                .filter(|_| status == 200)
                .map(str::to_string);
            campaign.ledger().logins.push(Login {
                user_id: id.to_string(),
                address: address.to_string(),
                auth0_id: auth0_id.to_string(),
                password,
                refresh_token,
            });
        }
    }
    campaign.users().push(KnownUser {
        id: id.to_string(),
        address: address.to_string(),
        auth0_id: auth0_id.to_string(),
        active: true,
    });
}

/// What the admin panel learns from a lifecycle answer: the user's state, or that it is gone.
fn follow_answer(
    campaign: &Campaign,
    op: Op,
    id: &str,
    status: u16,
    code: &str,
    answer: Option<&Value>,
) {
    let mut users = campaign.users();
    let gone = (op == Op::Delete && status == 200) || code == "USER_NOT_FOUND";
    if gone {
        users.retain(|u| u.id != id);
    } else if let Some(active) = answer.and_then(|a| a["isActive"].as_bool())
        && let Some(user) = users.iter_mut().find(|u| u.id == id)
    {
        user.active = active;
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

/// A lifecycle operation on a known user (`lifecycle_percent` of the time, once there is
/// one), else a create.
fn fresh_request(campaign: &Campaign, rng: &mut StdRng, worker: usize, n: u64) -> Request {
    if rng.random_bool(f64::from(campaign.settings.lifecycle_percent) / 100.0)
        && let Some(request) = lifecycle_request(campaign, rng)
    {
        return request;
    }
    create_request(campaign, rng, worker, n)
}

fn create_request(campaign: &Campaign, rng: &mut StdRng, worker: usize, n: u64) -> Request {
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
    Request {
        op: Op::Create,
        address,
        user: None,
        caller: seed::ACME_ADMIN_SUB,
        method: "POST",
        path: CREATE_PATH.to_string(),
        body: Some(body),
        key,
    }
}

/// What an admin would do next with a user the campaign created, by the state the last answer
/// told (an active user is changed, deactivated or deleted; a deactivated one mostly
/// reactivated), from Acme's admin or its owner (two people at work on the same users).
/// The user is picked at random, one time in five among those last seen deactivated.
fn lifecycle_request(campaign: &Campaign, rng: &mut StdRng) -> Option<Request> {
    let user = {
        let users = campaign.users();
        if users.is_empty() {
            return None;
        }
        // One pick in five among the users last seen deactivated, when there are any: an
        // admin coming back to them.
        let deactivated: Vec<&KnownUser> = users.iter().filter(|u| !u.active).collect();
        if !deactivated.is_empty() && rng.random_bool(0.2) {
            deactivated[rng.random_range(0..deactivated.len())].clone()
        } else {
            users[rng.random_range(0..users.len())].clone()
        }
    };
    let roll = rng.random_range(0..100);
    let op = if user.active {
        match roll {
            0..30 => Op::UpdateRole,
            30..50 => Op::UpdatePermissions,
            50..85 => Op::Deactivate,
            _ => Op::Delete,
        }
    } else {
        match roll {
            0..60 => Op::Reactivate,
            60..75 => Op::UpdateRole,
            75..85 => Op::Deactivate,
            _ => Op::Delete,
        }
    };
    let path = format!("/api/direct-users/{}", user.id);
    let (method, path, body) = match op {
        Op::UpdateRole => {
            let role = if rng.random_bool(0.5) {
                "ADMIN"
            } else {
                "USER"
            };
            ("PATCH", path, Some(json!({ "role": role })))
        }
        Op::UpdatePermissions => {
            let mut permissions = Vec::new();
            for page in PAGES {
                if rng.random_bool(0.5) {
                    permissions.push(json!({
                        "pageId": page,
                        "canRead": true,
                        "canWrite": rng.random_bool(0.5),
                        "canEdit": rng.random_bool(0.3),
                        "canDelete": rng.random_bool(0.2),
                    }));
                }
            }
            ("PATCH", path, Some(json!({ "permissions": permissions })))
        }
        Op::Deactivate => ("POST", format!("{path}/deactivate"), None),
        Op::Reactivate => ("POST", format!("{path}/reactivate"), None),
        Op::Delete => ("DELETE", path, None),
        Op::Create => unreachable!("a lifecycle operation was picked"),
    };
    let caller = if rng.random_bool(0.5) {
        seed::ACME_ADMIN_SUB
    } else {
        seed::ACME_OWNER_SUB
    };
    let key = rng
        .random_bool(0.5)
        .then(|| uuid::Uuid::new_v4().to_string());
    Some(Request {
        op,
        address: user.address,
        user: Some((user.id, user.auth0_id)),
        caller,
        method,
        path,
        body,
        key,
    })
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
