//! One process per worker, sending requests like a client that retries: a create-user process
//! for an admin panel (creates, and lifecycle operations: a new role, new page permissions,
//! deactivate, reactivate, delete), or a scim process for an identity provider (creates with an
//! invitation, a password or `active: false`; PATCHes as Okta and Entra send them, PUTs,
//! DELETEs), both on the users the campaign was answered 201 for, whichever API made them. A
//! failed request is sent again (same body, same `Idempotency-Key`) or given up; a SCIM create
//! answered `409 uniqueness` is followed by a look-up by userName, as Okta does. Any invocation
//! may be killed at a random moment or at an aimed one; a killed process is replaced.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use super::{Api, Attempt, Campaign, DOMAIN, KnownUser, Login, Op, Outcome, scim_create_of};
use crate::doubles::Auth0Double;
use crate::harness::{CREATE_PATH, Response, SCIM_USERS_PATH, api_event, scim_event, seed};
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

/// SCIM's schemas, as the identity providers send them.
const CORE_USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
pub(super) const SCIM_ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
const LIST_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub(super) const APP_USER: &str =
    "urn:atomic-user-provisioning:scim:schemas:extension:app:2.0:User";

/// Names an identity provider gives its people.
const GIVEN_NAMES: [&str; 4] = ["Olga", "Enzo", "Ada", "Grace"];
const FAMILY_NAMES: [&str; 4] = ["Okta", "Entra", "Lovelace", "Hopper"];

struct Request {
    op: Op,
    address: String,
    /// The user a lifecycle operation is on, and its Auth0 user.
    user: Option<(String, String)>,
    /// The admin panel's user (the JWT's `sub`); none for SCIM, whose principal is its token.
    caller: &'static str,
    method: &'static str,
    path: String,
    body: Option<Value>,
    key: Option<String>,
    /// A SCIM request's query (a look-up's filter).
    query: Vec<(&'static str, String)>,
}

impl Request {
    fn event(&self, scim_token: &str) -> Value {
        if self.op.api() == Api::Scim {
            let query: Vec<(&str, &str)> =
                self.query.iter().map(|(k, v)| (*k, v.as_str())).collect();
            return scim_event(
                self.method,
                &self.path,
                Some(scim_token),
                self.body.as_ref(),
                &query,
            );
        }
        let body = self.body.as_ref().map(Value::to_string);
        let mut event = api_event(self.method, &self.path, Some(self.caller), body.as_deref());
        if let Some(key) = &self.key {
            event["headers"]["idempotency-key"] = json!(key);
        }
        event
    }
}

pub(crate) async fn run(campaign: Arc<Campaign>, worker: usize, api: Api) {
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
            process = start(&campaign, api).await;
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
            fresh_request(&campaign, &mut rng, worker, sent, api)
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
            invocation = function.invoke_within(request.event(&campaign.scim_token), campaign.settings.function_timeout) => {
                Some(invocation)
            }
            _ = tokio::time::sleep(kill_at.unwrap_or(hard_timeout)) => None,
            token = aimed_moment, if kill_aimed => {
                aimed_hit = true;
                // An inviting create's: the setup token of the email accepted just before the
                // kill.
                if request.op.invites() {
                    token_before_kill = Some(token.unwrap_or_default());
                }
                None
            }
        };
        let mut replayed = false;
        let mut answer = None;
        let mut misshapen = None;
        let (outcome, logs, created) = match answered {
            Some(Ok(invocation)) => {
                typical_ms = typical_ms * 0.9 + started.elapsed().as_millis() as f64 * 0.1;
                let response = match &invocation.outcome {
                    crate::runtime_api::Outcome::Response(raw) if api == Api::Scim => {
                        let (response, fault) = scim_answer(raw, &request);
                        misshapen = fault;
                        response
                    }
                    crate::runtime_api::Outcome::Response(_) => Response::of(&invocation),
                    other => {
                        // A function error is an invocation without an HTTP answer: 502 at
                        // API Gateway. Neither function does this; count it as a 502.
                        tracing::warn!(?other, "{} failed its invocation", api.binary());
                        misshapen =
                            Some(format!("a function error instead of an answer: {other:?}"));
                        Response {
                            status: 502,
                            headers: Value::Null,
                            body: json!({"code": "FUNCTION_ERROR"}),
                        }
                    }
                };
                replayed = response.headers["idempotent-replayed"] == json!("true");
                let created = match (api, response.status) {
                    (Api::Admin, 201) => {
                        let user = &response.body["user"];
                        Some((
                            user["id"].as_str().unwrap_or_default().to_string(),
                            user["auth0UserId"].as_str().unwrap_or_default().to_string(),
                        ))
                    }
                    // SCIM does not show the Auth0 user: the one tagged for the new row.
                    (Api::Scim, 201) => {
                        let id = response.body["id"].as_str().unwrap_or_default().to_string();
                        let auth0_id = auth0_of(&campaign.auth0, &request.address, &id);
                        Some((id, auth0_id))
                    }
                    _ => None,
                };
                let kept = match (api, response.status) {
                    (_, 200) => request.op.on_a_user() || request.op == Op::ScimFind,
                    (Api::Scim, 201) => true,
                    _ => false,
                };
                if kept {
                    answer = Some(response.body.clone());
                }
                process = Some(function);
                let outcome = Outcome::Answered {
                    status: response.status,
                    code: match api {
                        Api::Admin => response.code().to_string(),
                        Api::Scim => response.body["scimType"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                    },
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
            Outcome::Answered { status, code } => match api {
                Api::Admin => {
                    *status >= 500
                        || code == "USER_CREATION_IN_PROGRESS"
                        || code == "USER_CHANGE_IN_PROGRESS"
                        || code == "REQUEST_IN_PROGRESS"
                }
                // A 409 without `uniqueness` is a change in progress; a 429 asks to back off.
                Api::Scim => {
                    *status >= 500 || *status == 429 || (*status == 409 && code != "uniqueness")
                }
            },
            Outcome::Killed { .. } | Outcome::TimedOut => true,
        };
        if let Some((id, auth0_id)) = &created {
            let active = request.op != Op::ScimCreateInactive;
            created_user(
                &campaign,
                &mut rng,
                request.op,
                &request.address,
                id,
                auth0_id,
                active,
            )
            .await;
        }
        if let (Some((id, _)), Outcome::Answered { status, code }) = (&request.user, &outcome) {
            follow_answer(&campaign, request.op, id, *status, code, answer.as_ref());
        }
        if let (Op::ScimFind, Some(found)) = (request.op, answer.as_ref()) {
            found_user(&campaign, &request.address, found);
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
            misshapen,
            asked: request.body.clone(),
        };
        // The address is taken (by an earlier attempt that committed, or by someone else):
        // Okta looks the user up by userName and takes it as its own.
        let taken = request.op.is_create()
            && api == Api::Scim
            && matches!(&attempt.outcome, Outcome::Answered { status: 409, code } if code == "uniqueness");
        if process.is_some() {
            answered_last = Some((attempt, log_offset));
        } else {
            record(&campaign, attempt, &logs, log_offset);
        }
        if taken {
            retry = Some(find_request(&request.address));
        } else if failed && rng.random_bool(f64::from(campaign.settings.retry_percent) / 100.0) {
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

/// The moment an aimed kill lands: for a create that invites, once the email API accepted a
/// message to its address (the setup token it carries); for one that does not, once an Auth0
/// user with its address appeared; for a lifecycle operation, once its Auth0 user is not as it
/// was when the request was sent (blocked or unblocked, another role tag, or gone). What it
/// compares with is read now, before the request is sent. A look-up changes nothing: never.
fn aimed_moment<'a>(
    campaign: &'a Campaign,
    request: &'a Request,
) -> Pin<Box<dyn Future<Output = Option<String>> + Send + 'a>> {
    if request.op == Op::ScimFind {
        return Box::pin(std::future::pending());
    }
    if request.op.is_create() && !request.op.invites() {
        let address = &request.address;
        let before = campaign.auth0.users_with_email(address).len();
        return Box::pin(async move {
            while campaign.auth0.users_with_email(address).len() <= before {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            None
        });
    }
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
/// the set-password flow's PATCH would) and logs in with it, asking for a refresh token; a
/// person whose identity provider sent a password logs in with that one; then the user is one
/// lifecycle operations may pick. A user answered 201 before (a replay) is left as it is.
async fn created_user(
    campaign: &Campaign,
    rng: &mut StdRng,
    op: Op,
    address: &str,
    id: &str,
    auth0_id: &str,
    active: bool,
) {
    let known = campaign
        .ledger()
        .attempts
        .iter()
        .any(|a| a.created.as_ref().is_some_and(|(created, _)| created == id));
    if known || id.is_empty() || campaign.users().iter().any(|u| u.id == id) {
        return;
    }
    let auth0 = &campaign.auth0;
    let sent_password = campaign.ledger().scim_passwords.get(address).cloned();
    if let (Op::ScimCreateInactive, Some(password)) = (op, &sent_password) {
        // Created blocked: the password the provider sent must not log in, not even now.
        let (status, body) = auth0
            .log_in_unfaulted(address, password, "openid offline_access")
            .await;
        let told = body["error_description"].as_str().unwrap_or_default();
        let mut ledger = campaign.ledger();
        ledger
            .blocked_at_creation
            .push((id.to_string(), status, told.to_string()));
        ledger.logins.push(Login {
            user_id: id.to_string(),
            address: address.to_string(),
            auth0_id: auth0_id.to_string(),
            password: password.clone(),
            refresh_token: None,
        });
    }
    let password = match op {
        Op::ScimCreatePassword => sent_password,
        _ if op.invites() && rng.random_bool(0.5) => {
            let password = format!("Chaos-{}-9", uuid::Uuid::new_v4().simple());
            auth0
                .set_password_unfaulted(auth0_id, &password)
                .await
                .then_some(password)
        }
        _ => None,
    };
    if let Some(password) = password {
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
    campaign.users().push(KnownUser {
        id: id.to_string(),
        address: address.to_string(),
        auth0_id: auth0_id.to_string(),
        active,
    });
}

/// The Auth0 user tagged for row `id` with `address`, from the double's state.
fn auth0_of(auth0: &Auth0Double, address: &str, id: &str) -> String {
    auth0
        .users_with_email(address)
        .into_iter()
        .find(|user| user["app_metadata"]["db_user_id"] == json!(id))
        .and_then(|user| user["user_id"].as_str().map(str::to_string))
        .unwrap_or_default()
}

/// A look-up's answer: the user with the address, as the identity provider now knows it; one
/// lifecycle operations may pick from then on.
fn found_user(campaign: &Campaign, address: &str, found: &Value) {
    let Some(resource) = found["Resources"]
        .as_array()
        .and_then(|all| all.iter().find(|r| r["userName"] == json!(address)))
    else {
        return;
    };
    let Some(id) = resource["id"].as_str() else {
        return;
    };
    let auth0_id = auth0_of(&campaign.auth0, address, id);
    let mut users = campaign.users();
    if auth0_id.is_empty() || users.iter().any(|u| u.id == id) {
        return;
    }
    users.push(KnownUser {
        id: id.to_string(),
        address: address.to_string(),
        auth0_id,
        active: resource["active"] != json!(false),
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
    let gone = (op.is_delete() && status == op.success())
        || code == "USER_NOT_FOUND"
        || (op.api() == Api::Scim && status == 404);
    if gone {
        users.retain(|u| u.id != id);
    } else if let Some(active) =
        answer.and_then(|a| a["isActive"].as_bool().or(a["active"].as_bool()))
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

async fn start(campaign: &Campaign, api: Api) -> Option<LambdaProcess> {
    match LambdaProcess::start(api.binary(), &campaign.vars).await {
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
/// one), else a create; through `api`.
fn fresh_request(
    campaign: &Campaign,
    rng: &mut StdRng,
    worker: usize,
    n: u64,
    api: Api,
) -> Request {
    if rng.random_bool(f64::from(campaign.settings.lifecycle_percent) / 100.0) {
        let user = pick_user(campaign, rng);
        if let Some(user) = user {
            return match api {
                Api::Admin => lifecycle_request(rng, user),
                Api::Scim => scim_change_request(rng, user),
            };
        }
    }
    match api {
        Api::Admin => create_request(campaign, rng, worker, n),
        Api::Scim => scim_create_request(campaign, rng, worker, n),
    }
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
        query: Vec::new(),
    }
}

/// A user the campaign created (through either API), picked at random, one time in five
/// among those last seen deactivated (when there are any): someone coming back to them.
fn pick_user(campaign: &Campaign, rng: &mut StdRng) -> Option<KnownUser> {
    let users = campaign.users();
    if users.is_empty() {
        return None;
    }
    let deactivated: Vec<&KnownUser> = users.iter().filter(|u| !u.active).collect();
    Some(if !deactivated.is_empty() && rng.random_bool(0.2) {
        deactivated[rng.random_range(0..deactivated.len())].clone()
    } else {
        users[rng.random_range(0..users.len())].clone()
    })
}

/// What an admin would do next with `user`, by the state the last answer told (an active user
/// is changed, deactivated or deleted; a deactivated one mostly reactivated), from Acme's admin
/// or its owner (two people at work on the same users).
fn lifecycle_request(rng: &mut StdRng, user: KnownUser) -> Request {
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
        _ => unreachable!("an admin lifecycle operation was picked"),
    };
    let caller = if rng.random_bool(0.5) {
        seed::ACME_ADMIN_SUB
    } else {
        seed::ACME_OWNER_SUB
    };
    let key = rng
        .random_bool(0.5)
        .then(|| uuid::Uuid::new_v4().to_string());
    Request {
        op,
        address: user.address,
        user: Some((user.id, user.auth0_id)),
        caller,
        method,
        path,
        body,
        key,
        query: Vec::new(),
    }
}

/// An identity provider's create: a fresh address whose name says which kind (an invitation,
/// Okta's password, or `active: false`), or one time in ten a recent address of the admin
/// panel's (a person an admin created, pushed by the identity provider too: invited).
fn scim_create_request(campaign: &Campaign, rng: &mut StdRng, worker: usize, n: u64) -> Request {
    let recent = {
        let recent = RECENT.lock().unwrap_or_else(|p| p.into_inner());
        (!recent.is_empty() && rng.random_bool(0.1))
            .then(|| recent[rng.random_range(0..recent.len())].clone())
    };
    let address = recent.unwrap_or_else(|| {
        let kind = match rng.random_range(0..100) {
            0..40 => "inv",
            40..75 => "pw",
            75..88 => "off",
            _ => "offpw",
        };
        format!("s{}-w{worker}-n{n}-{kind}@{DOMAIN}", campaign.settings.seed)
    });
    let op = scim_create_of(&address);
    let okta = rng.random_bool(0.5);
    let mut body = json!({
        "schemas": [CORE_USER],
        "userName": address,
        "emails": [{"primary": true, "value": address, "type": "work"}],
        "externalId": format!("00u{}", &uuid::Uuid::new_v4().simple().to_string()[..12]),
        "active": if okta { json!(op != Op::ScimCreateInactive) } else { json!(if op == Op::ScimCreateInactive { "False" } else { "True" }) },
    });
    if rng.random_bool(0.7) {
        let (given, family) = person_name(rng);
        body["name"] = json!({"givenName": given, "familyName": family});
        body["displayName"] = json!(format!("{given} {family}"));
    }
    if rng.random_bool(0.2) {
        body[APP_USER] = json!({"role": "ADMIN"});
    }
    if address
        .split('@')
        .next()
        .unwrap_or_default()
        .ends_with("pw")
    {
        let password = {
            let mut ledger = campaign.ledger();
            ledger
                .scim_passwords
                .entry(address.clone())
                .or_insert_with(|| format!("Scim-{}-7x", uuid::Uuid::new_v4().simple()))
                .clone()
        };
        body["password"] = json!(password);
    }
    Request {
        op,
        address,
        user: None,
        caller: "",
        method: "POST",
        path: SCIM_USERS_PATH.to_string(),
        body: Some(body),
        key: None,
        query: Vec::new(),
    }
}

/// Okta's look-up of a user by its address.
fn find_request(address: &str) -> Request {
    Request {
        op: Op::ScimFind,
        address: address.to_string(),
        user: None,
        caller: "",
        method: "GET",
        path: SCIM_USERS_PATH.to_string(),
        body: None,
        key: None,
        query: vec![
            ("filter", format!("userName eq \"{address}\"")),
            ("startIndex", "1".into()),
            ("count", "10".into()),
        ],
    }
}

fn person_name(rng: &mut StdRng) -> (&'static str, &'static str) {
    (
        GIVEN_NAMES[rng.random_range(0..GIVEN_NAMES.len())],
        FAMILY_NAMES[rng.random_range(0..FAMILY_NAMES.len())],
    )
}

/// What an identity provider would send next for `user`, by the state the last answer told:
/// an active user deactivated (as Okta or as Entra words it), renamed, given a role, replaced
/// whole (PUT) or deleted; a deactivated one mostly reactivated.
fn scim_change_request(rng: &mut StdRng, user: KnownUser) -> Request {
    let roll = rng.random_range(0..100);
    let op = if user.active {
        match roll {
            0..20 => Op::ScimDeactivateOkta,
            20..35 => Op::ScimDeactivateEntra,
            35..50 => Op::ScimRename,
            50..68 => Op::ScimRole,
            68..85 => Op::ScimReplace,
            _ => Op::ScimDelete,
        }
    } else {
        match roll {
            0..50 => Op::ScimReactivate,
            50..60 => Op::ScimRole,
            60..75 => Op::ScimReplace,
            75..85 => Op::ScimDeactivateEntra,
            _ => Op::ScimDelete,
        }
    };
    let patch = |operations: Value| json!({"schemas": [PATCH_OP], "Operations": operations});
    let role = if rng.random_bool(0.5) {
        "ADMIN"
    } else {
        "USER"
    };
    let (given, family) = person_name(rng);
    let okta = rng.random_bool(0.5);
    let (method, body) = match op {
        Op::ScimDeactivateOkta => (
            "PATCH",
            Some(patch(
                json!([{"op": "replace", "value": {"active": false}}]),
            )),
        ),
        Op::ScimDeactivateEntra => (
            "PATCH",
            Some(patch(
                json!([{"op": "Replace", "path": "active", "value": "False"}]),
            )),
        ),
        Op::ScimReactivate if okta => (
            "PATCH",
            Some(patch(json!([{"op": "replace", "value": {"active": true}}]))),
        ),
        Op::ScimReactivate => (
            "PATCH",
            Some(patch(
                json!([{"op": "Replace", "path": "active", "value": "True"}]),
            )),
        ),
        Op::ScimRename if okta => (
            "PATCH",
            Some(patch(json!([{"op": "replace", "value": {
                "name": {"givenName": given, "familyName": family},
                "displayName": format!("{given} {family}"),
            }}]))),
        ),
        Op::ScimRename => (
            "PATCH",
            Some(patch(json!([
                {"op": "Replace", "path": "name.givenName", "value": given},
                {"op": "Replace", "path": "name.familyName", "value": family},
            ]))),
        ),
        Op::ScimRole if okta => (
            "PATCH",
            Some(patch(
                json!([{"op": "replace", "value": {APP_USER: {"role": role}}}]),
            )),
        ),
        Op::ScimRole => (
            "PATCH",
            Some(patch(
                json!([{"op": "Replace", "path": format!("{APP_USER}:role"), "value": role}]),
            )),
        ),
        Op::ScimReplace => {
            // Mostly the state the provider last saw, sometimes the other.
            let active = user.active != rng.random_bool(0.3);
            (
                "PUT",
                Some(json!({
                    "schemas": [CORE_USER],
                    "id": user.id,
                    "userName": user.address,
                    "name": {"givenName": given, "familyName": family},
                    "emails": [{"primary": true, "value": user.address, "type": "work"}],
                    "externalId": format!("00u{}", &uuid::Uuid::new_v4().simple().to_string()[..12]),
                    "active": active,
                    APP_USER: {"role": role},
                })),
            )
        }
        Op::ScimDelete => ("DELETE", None),
        _ => unreachable!("a SCIM change was picked"),
    };
    Request {
        op,
        path: format!("{SCIM_USERS_PATH}/{}", user.id),
        address: user.address,
        user: Some((user.id, user.auth0_id)),
        caller: "",
        method,
        body,
        key: None,
        query: Vec::new(),
    }
}

/// A SCIM answer, read without trusting its shape: the status, headers and body (`Null` when
/// there is none or it is no JSON), and what is wrong with its shape for `request`, if
/// anything: a body in `application/scim+json` unless 204 (which has none); an error in SCIM's
/// error schema with the status as a string, `Retry-After` on a 429 and on a change in
/// progress, `uniqueness` on a create's 409; a created or changed user that is the user asked
/// for; a look-up's `ListResponse`.
fn scim_answer(raw: &Value, request: &Request) -> (Response, Option<String>) {
    let status = raw["statusCode"].as_u64().unwrap_or(0) as u16;
    let headers = raw["headers"].clone();
    let text = raw["body"].as_str();
    let body = text
        .and_then(|t| serde_json::from_str::<Value>(t).ok())
        .unwrap_or(Value::Null);
    let response = Response {
        status,
        headers,
        body,
    };
    let fault = scim_shape(&response, text, request).err();
    (response, fault)
}

fn scim_shape(response: &Response, text: Option<&str>, request: &Request) -> Result<(), String> {
    let (status, headers, body) = (response.status, &response.headers, &response.body);
    let header = |name: &str| headers[name].as_str();
    if status == 204 {
        if request.op != Op::ScimDelete {
            return Err("a 204 to a request that is no delete".into());
        }
        if text.is_some_and(|t| !t.is_empty()) || header("content-type").is_some() {
            return Err("a 204 with a body or a content type".into());
        }
        return Ok(());
    }
    if header("content-type") != Some("application/scim+json") {
        return Err(format!("content type {:?}", header("content-type")));
    }
    if !body.is_object() {
        return Err("a body that is no JSON object".into());
    }
    if status >= 400 {
        if body["schemas"] != json!([SCIM_ERROR])
            || body["status"] != json!(status.to_string())
            || !body["detail"].is_string()
        {
            return Err(format!("an error not in SCIM's error schema: {body}"));
        }
        let busy = status == 409 && body.get("scimType").is_none();
        if (status == 429 || busy) && header("retry-after").is_none() {
            return Err(format!("a {status} without Retry-After"));
        }
        if status == 409 && request.op.is_create() && body["scimType"] != json!("uniqueness") {
            return Err(format!(
                "a create's 409 without scimType uniqueness: {body}"
            ));
        }
        return Ok(());
    }
    let is_user = |resource: &Value| {
        resource["schemas"]
            .as_array()
            .is_some_and(|s| s.contains(&json!(CORE_USER)))
            && resource["id"].is_string()
            && resource["userName"] == json!(request.address)
    };
    match (request.op, status) {
        (op, 201) if op.is_create() => {
            let id = body["id"].as_str().unwrap_or_default();
            let location = header("location").unwrap_or_default();
            if !is_user(body) || !location.ends_with(&format!("/Users/{id}")) {
                return Err(format!("a 201 that is not the user created: {body}"));
            }
            if body["active"] != json!(op != Op::ScimCreateInactive) {
                return Err(format!("a 201 with active {}", body["active"]));
            }
        }
        (Op::ScimFind, 200) => {
            if body["schemas"] != json!([LIST_RESPONSE])
                || !body["totalResults"].is_u64()
                || !body["Resources"]
                    .as_array()
                    .is_some_and(|r| r.iter().all(is_user))
            {
                return Err(format!(
                    "a look-up's 200 that is no ListResponse of the user: {body}"
                ));
            }
        }
        (_, 200) => {
            let id = request.user.as_ref().map(|(id, _)| id.as_str());
            if !is_user(body) || body["id"].as_str() != id {
                return Err(format!("a 200 that is not the user changed: {body}"));
            }
        }
        _ => {
            return Err(format!(
                "{status}, a status SCIM does not answer this request with"
            ));
        }
    }
    Ok(())
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
