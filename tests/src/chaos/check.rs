//! The invariant checker: runs after the faults stopped and every create-user and scim process is dead.
//! A final cleanup pass with no grace (nothing can be in flight), then both systems, the
//! emails and every log line are checked against what the admin panel was told; the
//! lifecycle's own checks are in `lifecycle.rs`.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Duration;

use serde_json::{Value, json};
use shared::auth0::CREATED_BY_MARKER;
use shared::reset_token::hash_token;
use shared::state::AppState;

use super::lifecycle::{self, describe};
use super::report::{Check, Report};
use super::{Attempt, DOMAIN, Ledger, Outcome, Settings, cleanup_once, scim_create_of};
use crate::doubles::{Auth0Double, EmailDouble};
use crate::harness::{Response, TestDb, connect, create_event, seed};
use crate::lambda_process::LambdaProcess;

#[allow(clippy::too_many_arguments)]
pub(crate) async fn run(
    settings: &Settings,
    campaign_time: Duration,
    mut ledger: Ledger,
    final_state: &AppState,
    vars: &HashMap<String, String>,
    db: &TestDb,
    auth0: &Auth0Double,
    email: &EmailDouble,
) -> Result<Report, String> {
    let mut report = Report::new(settings.clone(), campaign_time, &ledger);

    // The final cleanup: again until a run finishes everything (a run the campaign's faults
    // left partial or unavailable may still be winding down).
    let mut final_ok = false;
    for _ in 0..5 {
        let result = cleanup_once(final_state, Duration::from_secs(30)).await;
        report.final_cleanup.record(&result);
        if matches!(&result, Ok(summary) if !summary.partial && summary.errors.is_empty()) {
            final_ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    report.checks.push(Check::single(
        "the final cleanup pass (no grace, nothing in flight) completes",
        final_ok,
        "no run of five ended complete and without errors".into(),
    ));

    let sql = connect(&db.url).await;
    let pending: i64 = sql
        .query_one(
            "SELECT count(*) FROM users WHERE auth0_sub LIKE 'pending\\_%'",
            &[],
        )
        .await
        .map_err(|e| e.to_string())?
        .get(0);
    report.checks.push(Check::single(
        "no `pending_` row is left",
        pending == 0,
        format!("{pending} pending rows"),
    ));

    let rows = campaign_rows(&sql).await?;
    report.checks.extend(bijection(&rows, auth0));
    report
        .checks
        .push(answered_201s_exist(&ledger.attempts, &rows, auth0));

    // The lifecycle: each row's Auth0 user is what the row says, before any address is
    // created again.
    report.deactivated = rows.iter().filter(|r| !r.is_active).count() as u64;
    report.checks.push(lifecycle::no_intent_left(&sql).await?);
    report
        .checks
        .extend(lifecycle::equivalences(&rows, &ledger.attempts, auth0));
    report
        .checks
        .extend(lifecycle::acknowledged(&sql, &rows, &ledger.attempts, auth0).await?);
    report
        .checks
        .push(lifecycle::documented_answers(&ledger.attempts));
    report
        .checks
        .push(lifecycle::documented_scim_answers(&ledger.attempts));
    report
        .checks
        .push(lifecycle::scim_answers_what_was_asked(&ledger.attempts));
    report
        .checks
        .extend(lifecycle::access(&rows, &ledger.logins, &ledger.attempts, auth0).await);
    report
        .checks
        .push(lifecycle::blocked_at_creation(&ledger.blocked_at_creation));

    // Every address no row holds: nobody got it, or its user was deleted, so an admin must be
    // able to create it now.
    let committed: HashSet<&str> = rows.iter().map(|r| r.email.as_str()).collect();
    let abandoned: BTreeSet<String> = ledger
        .attempts
        .iter()
        .map(|a| a.address.clone())
        .filter(|a| !committed.contains(a.as_str()))
        .collect();
    report.abandoned = abandoned.len() as u64;
    let (recreated, output) = create_again(&abandoned, vars, settings.instances).await?;
    ledger.outputs.push(output);
    report.checks.push(recreated);

    // After the retries the same rules hold for every row, old and new.
    let rows = campaign_rows(&sql).await?;
    for mut check in bijection(&rows, auth0) {
        check.name.push_str(" (after the retries)");
        report.checks.push(check);
    }
    report.checks.push(
        lifecycle::deleted_logins(
            &rows,
            &ledger.logins,
            &ledger.attempts,
            auth0,
            " (after its address was created again)",
        )
        .await,
    );
    report
        .checks
        .extend(emails_per_user(&sql, &rows, email, &ledger.attempts).await?);
    report.emails_sent = email.emails().len() as u64;
    report.committed = rows.len() as u64;
    report.checks.push(log_scan(&ledger, email, vars));
    if let Some(path) = &settings.logs {
        std::fs::write(path, ledger.outputs.concat()).map_err(|e| format!("{path}: {e}"))?;
    }
    Ok(report)
}

pub(super) struct Row {
    pub id: String,
    pub email: String,
    pub auth0_sub: String,
    pub role: String,
    pub is_active: bool,
    pub external_id: Option<String>,
    /// Created through SCIM (`created_by_token` is set).
    pub by_scim: bool,
}

impl Row {
    /// The person was invited: not when SCIM created the user with a password or deactivated.
    fn invited(&self) -> bool {
        !self.by_scim || scim_create_of(&self.email).invites()
    }
}

async fn campaign_rows(sql: &tokio_postgres::Client) -> Result<Vec<Row>, String> {
    let rows = sql
        .query(
            "SELECT id::text, email, auth0_sub, role, is_active, external_id,
                    created_by_token IS NOT NULL
               FROM users
              WHERE email LIKE '%@' || $1",
            &[&DOMAIN],
        )
        .await
        .map_err(|e| e.to_string())?;
    Ok(rows
        .iter()
        .map(|r| Row {
            id: r.get(0),
            email: r.get(1),
            auth0_sub: r.get(2),
            role: r.get(3),
            is_active: r.get(4),
            external_id: r.get(5),
            by_scim: r.get(6),
        })
        .collect())
}

/// Every row has a live Auth0 user tagged as ours for it, and every Auth0 user tagged as ours
/// has its row.
fn bijection(rows: &[Row], auth0: &Auth0Double) -> [Check; 2] {
    let users: HashMap<String, Value> = auth0
        .users()
        .into_iter()
        .map(|u| (u["user_id"].as_str().unwrap_or_default().to_string(), u))
        .collect();
    let mut has_user = Check::new("every row has its live Auth0 user, tagged for that row");
    for row in rows {
        let tags = users.get(&row.auth0_sub).map(|u| &u["app_metadata"]);
        let ok = tags.is_some_and(|t| {
            t["created_by"] == CREATED_BY_MARKER && t["db_user_id"] == json!(row.id)
        });
        has_user.record(ok, || {
            format!(
                "row {} ({}): Auth0 user {} is {}",
                row.id,
                shared::domain::redact_email(&row.email),
                row.auth0_sub,
                if tags.is_some() {
                    "tagged for another row"
                } else {
                    "missing"
                }
            )
        });
    }
    let subs: HashSet<&str> = rows.iter().map(|r| r.auth0_sub.as_str()).collect();
    let mut has_row = Check::new("every Auth0 user tagged as ours has its row");
    for (id, user) in &users {
        if user["app_metadata"]["created_by"] != CREATED_BY_MARKER {
            continue;
        }
        has_row.record(subs.contains(id.as_str()), || {
            format!("Auth0 user {id} has no row (an orphan cleanup left)")
        });
    }
    [has_user, has_row]
}

fn answered_201s_exist(attempts: &[Attempt], rows: &[Row], auth0: &Auth0Double) -> Check {
    let by_id: HashMap<&str, &Row> = rows.iter().map(|r| (r.id.as_str(), r)).collect();
    let users: HashSet<String> = auth0
        .users()
        .iter()
        .filter_map(|u| u["user_id"].as_str().map(str::to_string))
        .collect();
    let mut check = Check::new(
        "every request answered 201 has its row and its Auth0 user (unless a delete was sent for it)",
    );
    let deleted: HashSet<&str> = attempts
        .iter()
        .filter(|a| a.op.is_delete())
        .filter_map(|a| a.user_id.as_deref())
        .collect();
    let mut exempt = 0;
    for (id, auth0_id) in attempts.iter().filter_map(|a| a.created.as_ref()) {
        if deleted.contains(id.as_str()) {
            exempt += 1;
            continue;
        }
        let ok = by_id
            .get(id.as_str())
            .is_some_and(|r| &r.auth0_sub == auth0_id)
            && users.contains(auth0_id);
        check.record(ok, || {
            format!("201 for user {id} / {auth0_id}: row or Auth0 user gone")
        });
    }
    if exempt > 0 {
        check.notes.push(format!(
            "{exempt} answered 201 and later sent a delete: checked by the lifecycle's checks"
        ));
    }
    check
}

/// Creates every abandoned address once more, with fresh processes (as many as the campaign
/// ran, each taking its share of the addresses) and no faults.
async fn create_again(
    abandoned: &BTreeSet<String>,
    vars: &HashMap<String, String>,
    instances: usize,
) -> Result<(Check, String), String> {
    let mut check = Check::new(
        "every address no row holds (never committed, or deleted) can be created again (201)",
    );
    if abandoned.is_empty() {
        return Ok((check, String::new()));
    }
    let addresses: Vec<&String> = abandoned.iter().collect();
    let share = addresses.len().div_ceil(instances.max(1));
    let runs = addresses.chunks(share).map(|chunk| async move {
        let function = LambdaProcess::start("create-user", vars).await?;
        let mut answers = Vec::new();
        for address in chunk {
            answers.push((*address, create_once(&function, address).await));
        }
        Ok::<_, String>((answers, function.kill().await.text))
    });
    let mut output = String::new();
    for run in futures::future::join_all(runs).await {
        let (answers, text) = run?;
        output.push_str(&text);
        for (address, (tries, answer)) in answers {
            if tries > 1 {
                check.notes.push(format!(
                    "{}: {tries} tries",
                    shared::domain::redact_email(address)
                ));
            }
            let ok = matches!(&answer, Ok(response) if response.status == 201);
            check.record(ok, || match &answer {
                Ok(response) => format!(
                    "{}: {} {}",
                    shared::domain::redact_email(address),
                    response.status,
                    response.code()
                ),
                Err(err) => format!("{}: {err}", shared::domain::redact_email(address)),
            });
        }
    }
    Ok((check, output))
}

/// One create of `address`: its answer, and how many tries it took.
async fn create_once(function: &LambdaProcess, address: &str) -> (u32, Result<Response, String>) {
    let event = create_event(
        seed::ACME_ADMIN_SUB,
        &json!({"email": address, "role": "USER"}),
    );
    // A 5xx here is the loaded machine, not the campaign: up to three tries, counted.
    let mut tries = 0;
    loop {
        tries += 1;
        let answer = function
            .invoke_within(event.clone(), Duration::from_secs(20))
            .await
            .map(|invocation| Response::of(&invocation));
        match &answer {
            Ok(response) if response.status >= 500 && tries < 3 => {}
            _ => return (tries, answer),
        }
    }
}

/// One email with a working link per committed user; emails whose link works for nobody are
/// counted apart, with the story of their address.
async fn emails_per_user(
    sql: &tokio_postgres::Client,
    rows: &[Row],
    email: &EmailDouble,
    attempts: &[Attempt],
) -> Result<[Check; 5], String> {
    let mut live = Check::new(
        "every committed user who was invited got exactly one email with a working link (one per role asked, when SCIM and the admin panel both created the address)",
    );
    let mut uninvited = Check::new(
        "a user SCIM created with a password or `active: false` got no invitation (no setup token; no email unless the admin API sent one for the address)",
    );
    let mut adopted = Check::new(
        "a request killed once its email was accepted, then retried and adopted: one email",
    );
    let mut replaced = Check::observed(
        "a request killed once its email was accepted ended with the same Auth0 user",
    );
    let mut causes: BTreeMap<&str, u64> = BTreeMap::new();
    let mut strict =
        Check::observed("every committed user got exactly one email (no earlier dead-link email)");
    // An address whose user was deleted has that user's email too.
    let deleted: HashSet<&str> = attempts
        .iter()
        .filter(|a| a.op.is_delete())
        .map(|a| a.address.as_str())
        .collect();
    let mut deleted_before = 0;
    for row in rows {
        if !row.invited() {
            let tokens: i64 = sql
                .query_one(
                    "SELECT count(*) FROM password_reset_tokens WHERE user_id::text = $1",
                    &[&row.id],
                )
                .await
                .map_err(|e| e.to_string())?
                .get(0);
            let sent = email.emails_to(&row.email).len();
            let admin_created = attempts
                .iter()
                .any(|a| a.address == row.email && a.op.invites());
            uninvited.record(tokens == 0 && (sent == 0 || admin_created), || {
                format!(
                    "{}: {tokens} setup tokens; {}",
                    shared::domain::redact_email(&row.email),
                    story(&row.email, attempts, sent, 0)
                )
            });
            continue;
        }
        let hashes: HashSet<Vec<u8>> = sql
            .query(
                "SELECT token_hash FROM password_reset_tokens t JOIN users u ON u.id = t.user_id
                  WHERE u.id::text = $1",
                &[&row.id],
            )
            .await
            .map_err(|e| e.to_string())?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let sent = email.emails_to(&row.email);
        let working = sent
            .iter()
            .filter(|m| {
                m.setup_token_and_email()
                    .is_some_and(|(token, _)| hashes.contains(hash_token(&token).as_slice()))
            })
            .count();
        // The user of a kill once its email was accepted is not known any more if the address's
        // user was deleted since (its token rows went with it).
        let mine: Vec<&Attempt> = attempts
            .iter()
            .filter(|a| a.address == row.email && a.op.is_create())
            .filter(|_| !deleted.contains(row.email.as_str()))
            .collect();
        // Creates of one address that asked for different roles send different messages (the
        // role is in the email), so their email API keys differ: one email each, with the same
        // link when one adopted the other's Auth0 user. (Only when SCIM took up an address of
        // the admin panel's: a retry sends the same request.)
        let roles: HashSet<&str> = attempts
            .iter()
            .filter(|a| a.address == row.email && a.op.invites())
            .map(asked_role)
            .collect();
        let messages = roles.len().max(1);
        for (index, attempt) in mine.iter().enumerate() {
            let Some(token) = attempt.token_before_kill.as_deref() else {
                continue;
            };
            let with_token = sent
                .iter()
                .filter(|m| m.setup_token_and_email().is_some_and(|(t, _)| t == token))
                .count();
            let same_user = hashes.contains(hash_token(token).as_slice());
            if same_user {
                adopted.record((1..=messages).contains(&with_token), || {
                    format!(
                        "{}: {with_token} emails carry the adopted user's link (creates asked for {messages} role(s)); {}",
                        shared::domain::redact_email(&row.email),
                        story(&row.email, attempts, sent.len(), working)
                    )
                });
                if with_token > 1 {
                    adopted.notes.push(format!(
                        "{}: {with_token} emails with the same link, one per role asked ({}); {}",
                        shared::domain::redact_email(&row.email),
                        roles.iter().copied().collect::<Vec<_>>().join(", "),
                        story(&row.email, attempts, sent.len(), working)
                    ));
                }
            }
            if !same_user {
                let later = &mine[index + 1..];
                let cause = if later.iter().any(|a| {
                    a.adopted
                        && matches!(a.outcome, Outcome::Answered { status, .. } if status >= 500)
                }) {
                    "a retry adopted its Auth0 user, then failed and its compensation deleted it"
                } else if later.is_empty() {
                    "given up: cleanup removed its Auth0 user, the address was created anew"
                } else {
                    "retried, but no retry got as far as adopting it; cleanup removed it"
                };
                *causes.entry(cause).or_default() += 1;
            }
            replaced.record(same_user, || {
                story(&row.email, attempts, sent.len(), working)
            });
        }
        live.record((1..=messages).contains(&working), || {
            format!(
                "{}: {working} working-link emails of {} (creates asked for {messages} role(s)); {}",
                shared::domain::redact_email(&row.email),
                sent.len(),
                story(&row.email, attempts, sent.len(), working)
            )
        });
        if deleted.contains(row.email.as_str()) {
            deleted_before += 1;
        } else {
            strict.record(sent.len() == 1, || {
                story(&row.email, attempts, sent.len(), working)
            });
        }
    }
    if deleted_before > 0 {
        strict.notes.insert(
            0,
            format!("{deleted_before} addresses whose earlier user was deleted are not counted"),
        );
    }
    for (cause, count) in causes.into_iter().rev() {
        replaced.notes.insert(0, format!("{count} × {cause}"));
    }
    if deleted_before > 0 {
        replaced.notes.insert(
            0,
            format!("{deleted_before} addresses whose earlier user was deleted are not counted"),
        );
    }
    Ok([live, uninvited, adopted, replaced, strict])
}

/// The role a create asked for: the admin API's `role`, SCIM's app extension (else USER).
fn asked_role(attempt: &Attempt) -> &str {
    let asked = attempt.asked.as_ref();
    asked
        .and_then(|body| body["role"].as_str())
        .or_else(|| asked.and_then(|body| body[super::workers::APP_USER]["role"].as_str()))
        .unwrap_or("USER")
}

/// What happened to `address`, without the address: each request's answer and last step.
fn story(address: &str, attempts: &[Attempt], sent: usize, working: usize) -> String {
    let story: Vec<String> = attempts
        .iter()
        .filter(|a| a.address == address)
        .map(describe)
        .collect();
    format!(
        "{}: {} emails, {} dead; requests: {}",
        shared::domain::redact_email(address),
        sent,
        sent - working,
        if story.is_empty() {
            "(only the checker's)".into()
        } else {
            story.join(" → ")
        }
    )
}

/// No full address, setup token, password or secret in anything a create-user process wrote.
fn log_scan(ledger: &Ledger, email: &EmailDouble, vars: &HashMap<String, String>) -> Check {
    let mut check = Check::new(
        "no full email address, setup token, password or secret in any process output (create-user's and scim's)",
    );
    let addresses: HashSet<&str> = ledger.attempts.iter().map(|a| a.address.as_str()).collect();
    let tokens: HashSet<String> = email
        .emails()
        .iter()
        .filter_map(|m| m.setup_token_and_email().map(|(token, _)| token))
        .collect();
    let mut secrets: Vec<&String> = ["AUTH0_CLIENT_SECRET", "EMAIL_API_KEY"]
        .iter()
        .filter_map(|k| vars.get(*k))
        .collect();
    // The identity provider's token, and the passwords it sent.
    secrets.push(&ledger.scim_token);
    secrets.extend(ledger.scim_passwords.values());
    secrets.retain(|s| !s.is_empty());
    let mut found: BTreeMap<&str, u64> = BTreeMap::new();
    let mut lines = 0u64;
    for output in &ledger.outputs {
        for line in output.lines() {
            lines += 1;
            let words = line.split(|c: char| !(c.is_ascii_alphanumeric() || "._+-@".contains(c)));
            for word in words {
                if addresses.contains(word) {
                    *found.entry("a full email address").or_default() += 1;
                }
                for part in word.split(['.', '@', '+']) {
                    if part.len() >= 20 && tokens.contains(part) {
                        *found.entry("a setup token").or_default() += 1;
                    }
                }
            }
            if secrets.iter().any(|s| line.contains(s.as_str())) {
                *found
                    .entry("a client secret, API key, SCIM token or SCIM password")
                    .or_default() += 1;
            }
            if let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(line) {
                let password = fields.iter().any(|(key, value)| {
                    key.to_lowercase().contains("password") && value.is_string()
                });
                if password {
                    *found.entry("a password field").or_default() += 1;
                }
            }
        }
    }
    check.passed = lines;
    for (what, count) in found {
        check.passed = check.passed.saturating_sub(count);
        check.failed += count;
        check.notes.push(format!("{count} lines with {what}"));
    }
    check
}
