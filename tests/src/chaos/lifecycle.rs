//! The lifecycle's checks, run after the final cleanup (no grace, nothing in flight): the two
//! systems say what the database says (docs/lifecycle.md), acknowledged changes lasted, every
//! answer was one the API documents, and who can still log in.
//!
//! | the row     | its Auth0 user                                                       |
//! |-------------|----------------------------------------------------------------------|
//! | active      | exists, unblocked, tagged with the row's id and role                  |
//! | deactivated | exists, blocked, tagged with the row's id and role                    |
//! | gone        | no Auth0 user tagged with the row's id                               |

use std::collections::{BTreeSet, HashMap, HashSet};

use serde_json::{Value, json};

use super::check::Row;
use super::report::Check;
use super::workers::APP_USER;
use super::{Api, Attempt, Login, Op, Outcome};
use crate::doubles::Auth0Double;

/// Every Auth0 user, by its id.
fn auth0_users(auth0: &Auth0Double) -> HashMap<String, Value> {
    auth0
        .users()
        .into_iter()
        .map(|u| (u["user_id"].as_str().unwrap_or_default().to_string(), u))
        .collect()
}

fn redact(address: &str) -> String {
    shared::domain::redact_email(address)
}

/// No operation left its intent behind: the final cleanup converged every one.
pub(super) async fn no_intent_left(sql: &tokio_postgres::Client) -> Result<Check, String> {
    let rows = sql
        .query(
            "SELECT user_id::text, operation FROM lifecycle_intents ORDER BY created_at",
            &[],
        )
        .await
        .map_err(|e| e.to_string())?;
    let mut check = Check::new("no lifecycle intent is left");
    check.record(rows.is_empty(), || {
        let left: Vec<String> = rows
            .iter()
            .map(|r| format!("{} ({})", r.get::<_, String>(1), r.get::<_, String>(0)))
            .collect();
        format!("{} intents left: {}", rows.len(), left.join(", "))
    });
    Ok(check)
}

/// Every user id the campaign was answered 201 for, or sent a lifecycle operation for.
fn known_ids(attempts: &[Attempt]) -> BTreeSet<&str> {
    attempts
        .iter()
        .filter_map(|a| {
            a.created
                .as_ref()
                .map(|(id, _)| id.as_str())
                .or(a.user_id.as_deref())
        })
        .filter(|id| !id.is_empty())
        .collect()
}

/// The three equivalences, for every row and every user id the campaign knew.
pub(super) fn equivalences(rows: &[Row], attempts: &[Attempt], auth0: &Auth0Double) -> [Check; 3] {
    let users = auth0_users(auth0);
    let mut active = Check::new(
        "an active row ↔ its Auth0 user exists, unblocked, tagged with the row's id and role",
    );
    let mut deactivated = Check::new(
        "a deactivated row ↔ its Auth0 user exists, blocked, tagged with the row's id and role",
    );
    for row in rows {
        let user = users.get(&row.auth0_sub);
        let blocked = user.is_some_and(|u| u["blocked"] == json!(true));
        let tags = user.map(|u| &u["app_metadata"]);
        let tagged =
            tags.is_some_and(|t| t["db_user_id"] == json!(row.id) && t["role"] == json!(row.role));
        let ok = user.is_some() && tagged && blocked != row.is_active;
        let why = || {
            let state = match (user, tags) {
                (None, _) => "no Auth0 user".to_string(),
                (Some(_), Some(t)) => format!(
                    "Auth0 user {} {}, tagged role {} for row {}",
                    row.auth0_sub,
                    if blocked { "blocked" } else { "unblocked" },
                    t["role"],
                    t["db_user_id"]
                ),
                (Some(_), None) => "an Auth0 user without tags".to_string(),
            };
            format!(
                "row {} ({}, {}, role {}): {state}; {}",
                row.id,
                redact(&row.email),
                if row.is_active {
                    "active"
                } else {
                    "deactivated"
                },
                row.role,
                history(attempts, &row.id)
            )
        };
        if row.is_active {
            active.record(ok, why);
        } else {
            deactivated.record(ok, why);
        }
    }

    let row_ids: HashSet<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    let mut tagged_for: HashMap<&str, Vec<&str>> = HashMap::new();
    for (id, user) in &users {
        if let Some(row_id) = user["app_metadata"]["db_user_id"].as_str() {
            tagged_for.entry(row_id).or_default().push(id.as_str());
        }
    }
    let mut gone = Check::new("no row ↔ no Auth0 user tagged with that row's id");
    for id in known_ids(attempts) {
        if row_ids.contains(id) {
            continue;
        }
        let left = tagged_for.get(id).map(Vec::as_slice).unwrap_or_default();
        gone.record(left.is_empty(), || {
            format!(
                "user {id} has no row, but Auth0 users {} are tagged with its id; {}",
                left.join(", "),
                history(attempts, id)
            )
        });
    }
    [active, deactivated, gone]
}

/// A delete answered 200 left neither the row nor an Auth0 user tagged for it; the last
/// answered change to a user (answered 200, not replayed, begun after every other request on
/// the user had ended) is what its row holds.
pub(super) async fn acknowledged(
    sql: &tokio_postgres::Client,
    rows: &[Row],
    attempts: &[Attempt],
    auth0: &Auth0Double,
) -> Result<[Check; 2], String> {
    let by_id: HashMap<&str, &Row> = rows.iter().map(|r| (r.id.as_str(), r)).collect();
    let users = auth0_users(auth0);
    let mut deleted = Check::new(
        "every delete answered 200 (SCIM's: 204) left neither its row nor its Auth0 user",
    );
    let mut done = BTreeSet::new();
    for attempt in attempts
        .iter()
        .filter(|a| a.op.is_delete() && answered(a, a.op.success()))
    {
        let Some(id) = attempt.user_id.as_deref() else {
            continue;
        };
        if !done.insert(id) {
            continue;
        }
        let tagged: Vec<&String> = users
            .iter()
            .filter(|(_, u)| u["app_metadata"]["db_user_id"] == json!(id))
            .map(|(auth0_id, _)| auth0_id)
            .collect();
        let row = by_id.get(id);
        deleted.record(row.is_none() && tagged.is_empty(), || {
            format!(
                "user {id}: {}, Auth0 users tagged for it: {tagged:?}; {}",
                if row.is_some() {
                    "the row is there"
                } else {
                    "no row"
                },
                history(attempts, id)
            )
        });
    }

    let permissions = permissions(sql).await?;
    let names = names(sql).await?;
    let mut last = Check::new(
        "the last change answered 200 to a user (or SCIM's 201 that created it; nothing else in flight) is what its row holds",
    );
    // A SCIM create's 201 shows the user as a change's 200 does: it counts as the first change.
    let mut on_user: HashMap<&str, Vec<&Attempt>> = HashMap::new();
    for attempt in attempts {
        let id = match &attempt.created {
            Some((id, _)) if attempt.op.api() == Api::Scim => Some(id.as_str()),
            _ if attempt.op.on_a_user() => attempt.user_id.as_deref(),
            _ => None,
        };
        if let Some(id) = id {
            on_user.entry(id).or_default().push(attempt);
        }
    }
    for (id, list) in &on_user {
        let Some((index, latest)) = list.iter().enumerate().max_by_key(|(_, a)| a.sent_at) else {
            continue;
        };
        let alone = list
            .iter()
            .enumerate()
            .all(|(i, other)| i == index || other.ended_at <= latest.sent_at);
        if latest.op.is_delete()
            || latest.replayed
            || !answered(latest, latest.op.success())
            || !alone
        {
            continue;
        }
        let Some(answer) = &latest.answer else {
            continue;
        };
        let said = Said::of(latest.op.api(), answer);
        let holds = by_id.get(id).map(|r| Said {
            active: Some(r.is_active),
            role: Some(r.role.clone()),
            permissions: said
                .permissions
                .as_ref()
                .map(|_| permissions.get(r.id.as_str()).cloned().unwrap_or_default()),
            external_id: said.external_id.as_ref().map(|_| r.external_id.clone()),
            name: said
                .name
                .as_ref()
                .map(|_| names.get(r.id.as_str()).cloned()),
        });
        last.record(holds.as_ref() == Some(&said), || {
            format!(
                "user {id}: the last answer ({}) said {said:?}, the row holds {holds:?}; {}",
                latest.op.name(),
                history(attempts, id)
            )
        });
    }
    Ok([deleted, last])
}

/// What an answer said a user is, in the terms the row can be compared in: the admin API's
/// answer shows the page permissions, SCIM's the external id and the name.
#[derive(Debug, PartialEq, Eq)]
struct Said {
    active: Option<bool>,
    role: Option<String>,
    permissions: Option<Vec<Permission>>,
    external_id: Option<Option<String>>,
    name: Option<Option<(String, String)>>,
}

impl Said {
    fn of(api: Api, answer: &Value) -> Said {
        let text = |v: &Value| v.as_str().map(str::to_string);
        match api {
            Api::Admin => Said {
                active: answer["isActive"].as_bool(),
                role: text(&answer["role"]),
                permissions: Some(answer_permissions(answer)),
                external_id: None,
                name: None,
            },
            Api::Scim => Said {
                active: answer["active"].as_bool(),
                role: text(&answer[APP_USER]["role"]),
                permissions: None,
                external_id: Some(text(&answer["externalId"])),
                name: Some(
                    text(&answer["name"]["givenName"]).zip(text(&answer["name"]["familyName"])),
                ),
            },
        }
    }
}

/// What a SCIM request asked of the user, as JSON pointers into the user resource and the
/// values they must hold (SCIM's booleans as JSON's).
fn scim_asked(op: Op, asked: &Value) -> Vec<(String, Value)> {
    let role = format!("/{APP_USER}/role");
    let mut wanted: Vec<(String, Value)> = Vec::new();
    let flag = |v: &Value| match v {
        Value::String(s) => json!(s.eq_ignore_ascii_case("true")),
        other => other.clone(),
    };
    let resource = |object: &Value, wanted: &mut Vec<(String, Value)>| {
        if let Some(active) = object.get("active") {
            wanted.push(("/active".into(), flag(active)));
        }
        for part in ["givenName", "familyName"] {
            if let Some(value) = object.get("name").and_then(|n| n.get(part)) {
                wanted.push((format!("/name/{part}"), value.clone()));
            }
        }
        if let Some(external_id) = object.get("externalId") {
            wanted.push(("/externalId".into(), external_id.clone()));
        }
        if let Some(value) = object.get(APP_USER).and_then(|a| a.get("role")) {
            wanted.push((role.clone(), value.clone()));
        }
    };
    if op.is_create() || op == Op::ScimReplace {
        resource(asked, &mut wanted);
        if op.is_create() && asked.get(APP_USER).is_none() {
            wanted.push((role.clone(), json!("USER")));
        }
        return wanted;
    }
    for operation in asked["Operations"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let value = &operation["value"];
        match operation["path"].as_str() {
            None => resource(value, &mut wanted),
            Some("active") => wanted.push(("/active".into(), flag(value))),
            Some(path) if path.starts_with("name.") => {
                wanted.push((format!("/name/{}", &path["name.".len()..]), value.clone()));
            }
            Some(path) if path.eq_ignore_ascii_case(&format!("{APP_USER}:role")) => {
                wanted.push((role.clone(), value.clone()));
            }
            Some(_) => {}
        }
    }
    wanted
}

/// Every SCIM create answered 201 and change answered 200 shows what it asked: a change
/// either made it or found it made (the user read back in the same transaction, under its
/// lock), whatever else ran beside it.
pub(super) fn scim_answers_what_was_asked(attempts: &[Attempt]) -> Check {
    let mut check = Check::new(
        "every SCIM create answered 201 and change answered 200 shows what it asked (active, name, externalId, role)",
    );
    for attempt in attempts.iter().filter(|a| a.op.api() == Api::Scim) {
        let (Some(answer), Some(asked)) = (&attempt.answer, &attempt.asked) else {
            continue;
        };
        if !(attempt.op.is_create() || attempt.op.on_a_user()) {
            continue;
        }
        let differ: Vec<String> = scim_asked(attempt.op, asked)
            .into_iter()
            .filter(|(pointer, value)| answer.pointer(pointer) != Some(value))
            .map(|(pointer, value)| {
                format!(
                    "{pointer}: asked {value}, answered {}",
                    answer.pointer(&pointer).unwrap_or(&Value::Null)
                )
            })
            .collect();
        check.record(differ.is_empty(), || {
            let id = answer["id"].as_str().unwrap_or_default();
            format!(
                "{} of user {id}: {}; {}",
                attempt.op.name(),
                differ.join(", "),
                history(attempts, id)
            )
        });
    }
    check
}

/// Every campaign user's name, as its employee record keeps it.
async fn names(sql: &tokio_postgres::Client) -> Result<HashMap<String, (String, String)>, String> {
    let rows = sql
        .query(
            "SELECT u.id::text, e.first_name, e.last_name
               FROM employees e JOIN users u ON u.id = e.user_id
              WHERE u.email LIKE '%@' || $1",
            &[&super::DOMAIN],
        )
        .await
        .map_err(|e| e.to_string())?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2))))
        .collect())
}

type Permission = (String, bool, bool, bool, bool);

/// Every campaign user's page permissions, sorted.
async fn permissions(
    sql: &tokio_postgres::Client,
) -> Result<HashMap<String, Vec<Permission>>, String> {
    let rows = sql
        .query(
            "SELECT a.user_id::text, a.page_id::text, a.can_read, a.can_write, a.can_edit, a.can_delete
               FROM user_page_access a JOIN users u ON u.id = a.user_id
              WHERE u.email LIKE '%@' || $1
              ORDER BY 1, 2",
            &[&super::DOMAIN],
        )
        .await
        .map_err(|e| e.to_string())?;
    let mut by_user: HashMap<String, Vec<Permission>> = HashMap::new();
    for r in rows {
        by_user.entry(r.get(0)).or_default().push((
            r.get(1),
            r.get(2),
            r.get(3),
            r.get(4),
            r.get(5),
        ));
    }
    Ok(by_user)
}

fn answer_permissions(answer: &Value) -> Vec<Permission> {
    let flag = |p: &Value, name: &str| p[name].as_bool().unwrap_or(false);
    let mut list: Vec<Permission> = answer["permissions"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|p| {
            (
                p["pageId"].as_str().unwrap_or_default().to_string(),
                flag(p, "canRead"),
                flag(p, "canWrite"),
                flag(p, "canEdit"),
                flag(p, "canDelete"),
            )
        })
        .collect();
    list.sort();
    list
}

fn answered(attempt: &Attempt, expected: u16) -> bool {
    matches!(attempt.outcome, Outcome::Answered { status, .. } if status == expected)
}

/// A delete of user `id` (through either API) was sent before `attempt` ended.
fn delete_sent_before(attempts: &[Attempt], index: usize, attempt: &Attempt) -> bool {
    attempts.iter().enumerate().any(|(i, other)| {
        i != index
            && other.op.is_delete()
            && other.user_id.is_some()
            && other.user_id == attempt.user_id
            && other.sent_at <= attempt.ended_at
    })
}

/// Every admin API lifecycle answer is one the API documents for what happened.
pub(super) fn documented_answers(attempts: &[Attempt]) -> Check {
    let mut check = Check::new(
        "every lifecycle answer is 200, 409 USER_CHANGE_IN_PROGRESS or REQUEST_IN_PROGRESS, a 502/503, or 404 after a delete",
    );
    for (index, attempt) in attempts.iter().enumerate() {
        let Outcome::Answered { status, code } = &attempt.outcome else {
            continue;
        };
        if !attempt.op.on_a_user() || attempt.op.api() != Api::Admin {
            continue;
        }
        let ok = match (*status, code.as_str()) {
            (200, _) => true,
            (409, "USER_CHANGE_IN_PROGRESS" | "REQUEST_IN_PROGRESS") => true,
            (502 | 503, code) => code != "FUNCTION_ERROR",
            (404, "USER_NOT_FOUND") => delete_sent_before(attempts, index, attempt),
            _ => false,
        };
        check.record(ok, || {
            let id = attempt.user_id.as_deref().unwrap_or_default();
            format!(
                "{} of user {id}: {status} {code}; {}",
                attempt.op.name(),
                history(attempts, id)
            )
        });
    }
    check
}

/// Every SCIM answer is one SCIM's API documents for what happened, in SCIM's shape: a create
/// 201 or `409 uniqueness`; a change 200, a delete 204, either `409` while another change of
/// the user is in progress or `404` once a delete of it was sent; a look-up 200; any of them
/// 429 (Auth0's rate limit spent), 502 or 503. A 400 (the campaign sends only valid requests),
/// a 500 or a function error fails it, and so does any answer out of SCIM's shape (see
/// `workers::scim_answer`).
pub(super) fn documented_scim_answers(attempts: &[Attempt]) -> Check {
    let mut check = Check::new(
        "every SCIM answer is 201/200/204, 409 uniqueness (create) or change in progress, 404 after a delete, 429, 502 or 503, in SCIM's shape",
    );
    for (index, attempt) in attempts.iter().enumerate() {
        let Outcome::Answered { status, code } = &attempt.outcome else {
            continue;
        };
        let op = attempt.op;
        if op.api() != Api::Scim {
            continue;
        }
        let status_ok = match (*status, code.as_str()) {
            (s, _) if s == op.success() => true,
            (409, "uniqueness") => op.is_create(),
            (409, "") => op.on_a_user(),
            (404, "") => op.on_a_user() && delete_sent_before(attempts, index, attempt),
            (429 | 502 | 503, "") => true,
            _ => false,
        };
        check.record(status_ok && attempt.misshapen.is_none(), || {
            let id = attempt.user_id.as_deref().unwrap_or_default();
            format!(
                "{} of {}: {status} {code}{}; {}",
                op.name(),
                if id.is_empty() {
                    redact(&attempt.address)
                } else {
                    format!("user {id}")
                },
                attempt
                    .misshapen
                    .as_deref()
                    .map(|why| format!(" (out of shape: {why})"))
                    .unwrap_or_default(),
                history(attempts, id)
            )
        });
    }
    check
}

/// Who can get in, with the passwords and refresh tokens the campaign got: a deactivated
/// row's user has no session or refresh token left and cannot log in, a deleted user's
/// password does not log in, an active row's does, and a refresh token issued before a
/// deactivation answered 200 is refused (also after a reactivation).
pub(super) async fn access(
    rows: &[Row],
    logins: &[Login],
    attempts: &[Attempt],
    auth0: &Auth0Double,
) -> [Check; 5] {
    let by_id: HashMap<&str, &Row> = rows.iter().map(|r| (r.id.as_str(), r)).collect();
    let endpoint = TokenEndpoint::new(auth0);
    let mut revoked =
        Check::new("a deactivated row's Auth0 user has no open session and no live refresh token");
    let mut refresh = Check::new(
        "a refresh token issued before an answer saying the user is deactivated is refused (also after a reactivation)",
    );
    let mut blocked =
        Check::new("a deactivated row's password is refused at login: user is blocked");
    let mut active = Check::new("an active row's password logs in");
    // Before any login below opens a session.
    for login in logins {
        if let Some(row) = by_id.get(login.user_id.as_str())
            && !row.is_active
        {
            let (sessions, tokens) = (
                auth0.sessions_of(&login.auth0_id),
                auth0.refresh_tokens_of(&login.auth0_id),
            );
            revoked.record(sessions == 0 && tokens == 0, || {
                format!(
                    "user {}: {sessions} sessions, {tokens} refresh tokens; {}",
                    row.id,
                    history(attempts, &row.id)
                )
            });
        }
    }
    for login in logins {
        let Some(token) = &login.refresh_token else {
            continue;
        };
        // Any answer saying so (a deactivation through either API, or a later change of a
        // deactivated user): the user was active when the token was issued, so a deactivation
        // committed since, and it revoked the token.
        let deactivated = attempts.iter().any(|a| {
            a.user_id.as_deref() == Some(login.user_id.as_str())
                && answered(a, 200)
                && a.answer.as_ref().is_some_and(|answer| {
                    answer["isActive"] == json!(false) || answer["active"] == json!(false)
                })
        });
        if !deactivated {
            continue;
        }
        let (status, body) = endpoint.refresh(token).await;
        refresh.record(status != 200, || {
            format!(
                "user {}: refresh answered {}; {}",
                login.user_id,
                told(status, &body),
                history(attempts, &login.user_id)
            )
        });
    }
    for login in logins {
        let Some(row) = by_id.get(login.user_id.as_str()) else {
            continue;
        };
        let (status, body) = endpoint.log_in(&login.address, &login.password).await;
        if row.is_active {
            active.record(status == 200, || {
                format!(
                    "user {}: login answered {}; {}",
                    row.id,
                    told(status, &body),
                    history(attempts, &row.id)
                )
            });
        } else {
            let ok = status == 403 && body["error_description"] == json!("user is blocked");
            blocked.record(ok, || {
                format!(
                    "user {}: login answered {}; {}",
                    row.id,
                    told(status, &body),
                    history(attempts, &row.id)
                )
            });
        }
    }
    let deleted = deleted_logins(rows, logins, attempts, auth0, "").await;
    [revoked, refresh, blocked, deleted, active]
}

/// A user SCIM created with `active: false` and a password was refused at login as soon as
/// its 201 came: 403 "user is blocked".
pub(super) fn blocked_at_creation(tried: &[(String, u16, String)]) -> Check {
    let mut check = Check::new(
        "a user SCIM created with `active: false` is refused at login as soon as its 201 comes: user is blocked",
    );
    for (id, status, told) in tried {
        check.record(*status == 403 && told == "user is blocked", || {
            format!("user {id}: login answered {status} {told:?}")
        });
    }
    check
}

/// The password of a user whose row is gone does not log in (to whatever now holds the
/// address). `suffix` names the moment.
pub(super) async fn deleted_logins(
    rows: &[Row],
    logins: &[Login],
    attempts: &[Attempt],
    auth0: &Auth0Double,
    suffix: &str,
) -> Check {
    let row_ids: HashSet<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    let endpoint = TokenEndpoint::new(auth0);
    let mut check = Check::new(&format!(
        "a deleted user's password is refused at login{suffix}"
    ));
    for login in logins
        .iter()
        .filter(|l| !row_ids.contains(l.user_id.as_str()))
    {
        let (status, body) = endpoint.log_in(&login.address, &login.password).await;
        check.record(status != 200, || {
            format!(
                "user {} ({}): login answered {}; {}",
                login.user_id,
                redact(&login.address),
                told(status, &body),
                history(attempts, &login.user_id)
            )
        });
    }
    check
}

/// The Auth0 double's token endpoint over HTTP, as a login form (and an app refreshing its
/// tokens) calls it, with one client for every call.
pub(super) struct TokenEndpoint<'a> {
    auth0: &'a Auth0Double,
    http: reqwest::Client,
}

impl<'a> TokenEndpoint<'a> {
    pub(super) fn new(auth0: &'a Auth0Double) -> Self {
        TokenEndpoint {
            auth0,
            http: reqwest::Client::new(),
        }
    }

    /// The password-realm grant: status and body.
    async fn log_in(&self, email: &str, password: &str) -> (u16, Value) {
        self.post(&self.auth0.login_request(email, password)).await
    }

    /// The refresh-token grant, as the login's public client sends it: status and body.
    async fn refresh(&self, refresh_token: &str) -> (u16, Value) {
        let login = self.auth0.login_request("", "");
        let request = json!({
            "grant_type": "refresh_token",
            "client_id": login["client_id"],
            "refresh_token": refresh_token,
        });
        self.post(&request).await
    }

    async fn post(&self, request: &Value) -> (u16, Value) {
        let url = format!("{}/oauth/token", self.auth0.base_url());
        match self.http.post(url).json(request).send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let text = response.text().await.unwrap_or_default();
                (status, serde_json::from_str(&text).unwrap_or(Value::Null))
            }
            Err(err) => (0, json!({ "error_description": err.to_string() })),
        }
    }
}

/// A token endpoint's answer without its tokens: the status and the error's description.
fn told(status: u16, body: &Value) -> String {
    match body["error_description"].as_str() {
        Some(description) => format!("{status} {description:?}"),
        None => format!("{status}"),
    }
}

/// The requests on user `id`, in the order sent: what each asked and got.
pub(super) fn history(attempts: &[Attempt], id: &str) -> String {
    let mut mine: Vec<&Attempt> = attempts
        .iter()
        .filter(|a| {
            a.user_id.as_deref() == Some(id) || a.created.as_ref().is_some_and(|(c, _)| c == id)
        })
        .collect();
    mine.sort_by_key(|a| a.sent_at);
    let told: Vec<String> = mine.iter().map(|a| describe(a)).collect();
    if told.is_empty() {
        "no request named it".into()
    } else {
        format!("requests: {}", told.join(" → "))
    }
}

/// One attempt in a few words: the operation, its answer (or kill) and last step logged, when.
pub(super) fn describe(attempt: &Attempt) -> String {
    let outcome = match &attempt.outcome {
        Outcome::Answered { status, code } if code.is_empty() => status.to_string(),
        Outcome::Answered { status, code } => format!("{status} {code}"),
        Outcome::Killed { aimed: true } if attempt.op.invites() => {
            "killed once its email was accepted".into()
        }
        Outcome::Killed { aimed: true } if attempt.op.is_create() => {
            "killed once its Auth0 user existed".into()
        }
        Outcome::Killed { aimed: true } => "killed once its Auth0 user changed".into(),
        Outcome::Killed { aimed: false } => "killed".into(),
        Outcome::TimedOut => "timed out".into(),
    };
    let replayed = if attempt.replayed { ", replayed" } else { "" };
    let step = attempt.last_step.as_deref().unwrap_or("none");
    let adopted = if attempt.adopted { ", adopted" } else { "" };
    format!(
        "{} {outcome}{replayed} (last step {step}{adopted}; {:.1}-{:.1} s)",
        attempt.op.name(),
        attempt.sent_at.as_secs_f64(),
        attempt.ended_at.as_secs_f64()
    )
}
