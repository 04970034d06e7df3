//! The create-user flow: one Postgres transaction around the Auth0 user and the email.
//! Any failure after Auth0 created the user deletes that user before the rollback.

mod error;
pub mod handler;
pub mod request;

use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction;
use url::Url;
use uuid::Uuid;

pub use error::{Compensation, CreateUserError, Step};

use crate::auth0::{Auth0User, CREATED_BY_MARKER, NewAuth0User, OwnershipTags};
use crate::db::{self, employees, pages, reset_tokens, users};
use crate::deadline::Deadline;
use crate::domain::{
    Auth0UserId, CallerSub, Email, EmployeeId, EmployeeRequest, NewUser, PagePermission, Role,
    TenantId, UserId,
};
use crate::email::PasswordSetupEmail;
use crate::metrics::{self, Metric};
use crate::reset_token::{ResetToken, temporary_password};
use crate::state::AppState;

#[derive(Debug, Clone)]
pub struct CreatedUser {
    pub id: UserId,
    pub email: Email,
    pub role: Role,
    pub tenant_id: TenantId,
    pub auth0_user_id: Auth0UserId,
    pub employee_id: Option<EmployeeId>,
    pub permissions: Vec<PagePermission>,
    pub created_at: DateTime<Utc>,
    /// An orphan Auth0 user of ours was taken over instead of creating a new one.
    pub adopted_auth0_user: bool,
}

pub async fn create_user(
    state: &AppState,
    caller: &CallerSub,
    new_user: &NewUser,
    deadline: &Deadline,
) -> Result<CreatedUser, CreateUserError> {
    // After a freeze every pooled connection may be dead; each failed attempt discards the
    // one it found (the pool sees it closed), so pool size + 1 attempts reach a live one.
    let attempts = state.pool.status().max_size + 1;
    let mut result = attempt(state, caller, new_user, deadline).await;
    for _ in 1..attempts {
        match &result {
            Err(err) if err.is_safe_to_retry() => {
                tracing::warn!(error = %err, "database connection lost before any external call; retrying");
                result = attempt(state, caller, new_user, deadline).await;
            }
            _ => break,
        }
    }
    result
}

/// Answers the admin panel's "does this email exist?" for an authorised caller.
pub async fn email_exists(
    state: &AppState,
    caller: &CallerSub,
    email: &Email,
) -> Result<bool, CreateUserError> {
    let client = state.pool.get().await.map_err(CreateUserError::Pool)?;
    let client = &client;
    // Pipelined on one connection: one round trip for both.
    let (caller, exists) = tokio::join!(
        users::find_caller(client, caller.as_str()),
        users::email_exists(client, email)
    );
    authorize(
        caller.map_err(CreateUserError::database(Step::Authorize))?,
        None,
    )?;
    exists.map_err(CreateUserError::database(Step::Validate))
}

fn authorize(
    caller: Option<users::CallerRecord>,
    new_role: Option<Role>,
) -> Result<users::CallerRecord, CreateUserError> {
    let caller = caller.ok_or(CreateUserError::UnknownCaller)?;
    if !caller.is_active {
        return Err(CreateUserError::InactiveCaller);
    }
    if !matches!(caller.role, Role::Owner | Role::Admin) {
        return Err(CreateUserError::NotAnAdmin);
    }
    match new_role {
        Some(role) if !caller.role.may_create(role) => Err(CreateUserError::RoleNotAllowed(role)),
        _ => Ok(caller),
    }
}

async fn attempt(
    state: &AppState,
    caller_sub: &CallerSub,
    new_user: &NewUser,
    deadline: &Deadline,
) -> Result<CreatedUser, CreateUserError> {
    let mut client = state.pool.get().await.map_err(CreateUserError::Pool)?;
    let mut tx = client
        .transaction()
        .await
        .map_err(CreateUserError::database(Step::Begin))?;

    // Independent reads, pipelined on the connection: one round trip for both.
    let page_ids: Vec<_> = new_user.permissions.iter().map(|p| p.page_id).collect();
    let (caller, missing_pages) = tokio::join!(
        users::find_caller(&tx, caller_sub.as_str()),
        pages::missing(&tx, &page_ids)
    );
    let caller = caller.map_err(CreateUserError::database(Step::Authorize))?;
    let caller = authorize(caller, Some(new_user.role))?;
    let missing_pages = missing_pages.map_err(CreateUserError::database(Step::Validate))?;
    if !missing_pages.is_empty() {
        return Err(CreateUserError::UnknownPages(missing_pages));
    }
    if let EmployeeRequest::Link(employee_id) = new_user.employee {
        check_employee_is_free(&tx, &caller, employee_id).await?;
    }

    // Writes in step order, one at a time: pipelined, a failure in one would abort the
    // transaction under the others and blur which step failed.
    let user_id = UserId::new(Uuid::new_v4());
    let created_at = insert_user(&tx, &caller, user_id, new_user).await?;
    let employee_id = attach_employee(&tx, &caller, user_id, new_user).await?;
    grant_permissions(&tx, user_id, &new_user.permissions).await?;

    // From here on something exists outside the database: every failure must undo it.
    let tags = OwnershipTags {
        created_by: CREATED_BY_MARKER.into(),
        tenant_id: caller.tenant_id.to_string(),
        role: new_user.role.as_str().into(),
        db_user_id: user_id.to_string(),
    };
    let (auth0_id, adopted) =
        provision_auth0_user(state, &tx, &new_user.email, &tags, deadline).await?;
    tracing::info!(step = "auth0_create", adopted, "auth0 user ready");

    let finished = finish(
        state, &mut tx, &caller, user_id, new_user, &auth0_id, deadline,
    )
    .await;
    let result = match finished {
        Ok(()) => tx
            .commit()
            .await
            .map_err(CreateUserError::database(Step::Commit)),
        Err(err) => Err(err),
    };
    if let Err(err) = result {
        let outcome = compensate(state, &auth0_id, deadline).await;
        // Dropping an unfinished transaction also rolls back; this just says so in the log.
        tracing::warn!(step = "rollback", error = %err, "create-user rolled back");
        return Err(err.with_compensation(outcome));
    }
    tracing::info!(step = "commit", user_id = %user_id, "user created");
    Ok(CreatedUser {
        id: user_id,
        email: new_user.email.clone(),
        role: new_user.role,
        tenant_id: caller.tenant_id,
        auth0_user_id: auth0_id,
        employee_id,
        permissions: new_user.permissions.clone(),
        created_at,
        adopted_auth0_user: adopted,
    })
}

/// Locks the employee to link, before the first write: another tenant's is "not found".
async fn check_employee_is_free(
    tx: &Transaction<'_>,
    caller: &users::CallerRecord,
    employee_id: EmployeeId,
) -> Result<(), CreateUserError> {
    let target = employees::lock_for_link(tx, employee_id, caller.tenant_id, caller.business_id)
        .await
        .map_err(CreateUserError::database(Step::Validate))?;
    match target {
        employees::LinkTarget::NotFound => Err(CreateUserError::EmployeeNotFound),
        employees::LinkTarget::AlreadyLinked => Err(CreateUserError::EmployeeAlreadyLinked),
        employees::LinkTarget::Free => Ok(()),
    }
}

async fn grant_permissions(
    tx: &Transaction<'_>,
    user_id: UserId,
    permissions: &[PagePermission],
) -> Result<(), CreateUserError> {
    pages::grant(tx, user_id, permissions)
        .await
        .map_err(CreateUserError::database(Step::Permissions))?;
    tracing::info!(
        step = "permissions",
        pages = permissions.len(),
        "permissions stored"
    );
    Ok(())
}

/// The unique index decides between concurrent requests for one email: the loser waits at
/// most `lock_timeout` for the winner, then gets a conflict, never a 500.
async fn insert_user(
    tx: &Transaction<'_>,
    caller: &users::CallerRecord,
    user_id: UserId,
    new_user: &NewUser,
) -> Result<DateTime<Utc>, CreateUserError> {
    let pending = users::PendingUser {
        id: user_id,
        tenant_id: caller.tenant_id,
        business_id: caller.business_id,
        email: &new_user.email,
        role: new_user.role,
        created_by: caller.id,
    };
    let created_at = users::insert_pending(tx, &pending).await.map_err(|err| {
        if db::violated_unique_constraint(&err) == Some("users_email_lower_key") {
            CreateUserError::EmailTaken
        } else if db::is_lock_timeout(&err) {
            CreateUserError::CreationInProgress
        } else {
            CreateUserError::database(Step::InsertUser)(err)
        }
    })?;
    tracing::info!(step = "insert_user", user_id = %user_id, email = %new_user.email, "pending user stored");
    Ok(created_at)
}

async fn attach_employee(
    tx: &Transaction<'_>,
    caller: &users::CallerRecord,
    user_id: UserId,
    new_user: &NewUser,
) -> Result<Option<EmployeeId>, CreateUserError> {
    let employee_id = match &new_user.employee {
        EmployeeRequest::None => return Ok(None),
        EmployeeRequest::Create(employee) => employees::insert(
            tx,
            caller.tenant_id,
            caller.business_id,
            user_id,
            &new_user.email,
            employee,
        )
        .await
        .map_err(CreateUserError::database(Step::Employee))?,
        EmployeeRequest::Link(employee_id) => {
            let linked = employees::link(tx, *employee_id, user_id)
                .await
                .map_err(|err| {
                    if db::violated_unique_constraint(&err) == Some("employees_user_id_key") {
                        CreateUserError::EmployeeAlreadyLinked
                    } else {
                        CreateUserError::database(Step::Employee)(err)
                    }
                })?;
            if linked == 0 {
                return Err(CreateUserError::EmployeeAlreadyLinked);
            }
            *employee_id
        }
    };
    tracing::info!(step = "employee", employee_id = %employee_id, "employee attached");
    Ok(Some(employee_id))
}

/// Creates the Auth0 user; on 409 adopts an orphan of ours that no row points at.
async fn provision_auth0_user(
    state: &AppState,
    tx: &Transaction<'_>,
    email: &Email,
    tags: &OwnershipTags,
    deadline: &Deadline,
) -> Result<(Auth0UserId, bool), CreateUserError> {
    let password = temporary_password();
    let request = NewAuth0User {
        email,
        password: &password,
        tags,
    };
    let auth0_failure = |step, source| CreateUserError::Auth0 {
        step,
        source,
        compensation: Compensation::NotNeeded,
    };
    // A second round only when the orphan we came to adopt was removed while we waited.
    for _ in 0..2 {
        match state.auth0.create_user(&request, deadline).await {
            Ok(user) => {
                let id = user.id().map_err(|detail| {
                    auth0_failure(
                        Step::Auth0Create,
                        crate::auth0::Auth0Error::Malformed {
                            op: "create_user",
                            detail,
                        },
                    )
                })?;
                return Ok((id, false));
            }
            Err(err) if err.is_conflict() => {
                if let Some(id) = adopt_orphan(state, tx, email, tags, deadline).await? {
                    return Ok((id, true));
                }
            }
            Err(err) => {
                // Without an answer we cannot know whether Auth0 created the user: look and undo.
                let outcome = if err.may_have_acted() {
                    remove_users_tagged_with(state, email, &tags.db_user_id, deadline).await
                } else {
                    Compensation::NotNeeded
                };
                return Err(auth0_failure(Step::Auth0Create, err).with_compensation(outcome));
            }
        }
    }
    Err(CreateUserError::Auth0UserExists)
}

/// Takes over an orphan Auth0 user of ours with this address. `None`: the address has no
/// Auth0 user any more (cleanup removed it while we waited for the address lock).
async fn adopt_orphan(
    state: &AppState,
    tx: &Transaction<'_>,
    email: &Email,
    tags: &OwnershipTags,
    deadline: &Deadline,
) -> Result<Option<Auth0UserId>, CreateUserError> {
    let auth0_failure = |source| CreateUserError::Auth0 {
        step: Step::Auth0Adopt,
        source,
        compensation: Compensation::NotNeeded,
    };
    // Held until COMMIT or ROLLBACK: cleanup cannot delete the user we adopt meanwhile.
    db::locks::lock_address(tx, email.as_str())
        .await
        .map_err(|err| {
            if db::is_lock_timeout(&err) {
                CreateUserError::CreationInProgress
            } else {
                CreateUserError::database(Step::Auth0Adopt)(err)
            }
        })?;
    let existing = state
        .auth0
        .users_by_email(email, deadline)
        .await
        .map_err(auth0_failure)?;
    if existing.is_empty() {
        return Ok(None);
    }
    let Some(orphan) = existing.iter().find(|u| u.is_ours()) else {
        return Err(CreateUserError::Auth0UserExists);
    };
    let Ok(orphan_id) = orphan.id() else {
        return Err(CreateUserError::Auth0UserExists);
    };
    let claimed = users::auth0_sub_in_use(tx, &orphan_id)
        .await
        .map_err(CreateUserError::database(Step::Auth0Adopt))?;
    if claimed {
        return Err(CreateUserError::Auth0UserExists);
    }
    tracing::info!(step = "auth0_adopt", auth0_user_id = %orphan_id, "adopting an orphan auth0 user of ours");
    match state.auth0.set_tags(&orphan_id, tags, deadline).await {
        Ok(_) => Ok(Some(orphan_id)),
        Err(err) => {
            let outcome = compensate(state, &orphan_id, deadline).await;
            Err(auth0_failure(err).with_compensation(outcome))
        }
    }
}

/// Steps after the Auth0 user exists, inside the transaction.
async fn finish(
    state: &AppState,
    tx: &mut Transaction<'_>,
    caller: &users::CallerRecord,
    user_id: UserId,
    new_user: &NewUser,
    auth0_id: &Auth0UserId,
    deadline: &Deadline,
) -> Result<(), CreateUserError> {
    users::set_auth0_sub(tx, user_id, auth0_id)
        .await
        .map_err(CreateUserError::database(Step::StoreAuth0Id))?;
    tracing::info!(step = "store_auth0_id", "auth0 id stored");

    let expires_at = Utc::now() + state.config.reset_token_ttl;
    let token = store_reset_token(tx, user_id, expires_at).await?;
    tracing::info!(step = "reset_token", "reset token hash stored");

    let link = set_password_link(&state.config.frontend_url, &token, &new_user.email);
    let email = PasswordSetupEmail {
        to: &new_user.email,
        tenant_name: &caller.tenant_name,
        role: new_user.role,
        link: &link,
        expires_at,
        idempotency_key: format!("password-setup/{user_id}"),
    };
    let message_id = state
        .email
        .send_password_setup(&email, deadline)
        .await
        .map_err(|source| CreateUserError::Email {
            source,
            compensation: Compensation::NotNeeded,
        })?;
    tracing::info!(
        step = "send_email",
        message_id,
        "password-setup email accepted"
    );
    Ok(())
}

/// In a savepoint, so a hash collision (astronomically unlikely) costs one retry, not the user.
async fn store_reset_token(
    tx: &mut Transaction<'_>,
    user_id: UserId,
    expires_at: DateTime<Utc>,
) -> Result<ResetToken, CreateUserError> {
    let mut collided = false;
    loop {
        let token = ResetToken::generate();
        let savepoint = tx
            .savepoint("reset_token")
            .await
            .map_err(CreateUserError::database(Step::ResetToken))?;
        match reset_tokens::insert(&savepoint, user_id, token.hash(), expires_at).await {
            Ok(()) => {
                savepoint
                    .commit()
                    .await
                    .map_err(CreateUserError::database(Step::ResetToken))?;
                return Ok(token);
            }
            Err(err)
                if !collided
                    && db::violated_unique_constraint(&err)
                        == Some(reset_tokens::TOKEN_HASH_UNIQUE) =>
            {
                tracing::warn!("reset token hash collided; trying a new token");
                savepoint
                    .rollback()
                    .await
                    .map_err(CreateUserError::database(Step::ResetToken))?;
                collided = true;
            }
            Err(err) => return Err(CreateUserError::database(Step::ResetToken)(err)),
        }
    }
}

fn set_password_link(frontend: &Url, token: &ResetToken, email: &Email) -> Url {
    let mut link = frontend.clone();
    link.set_path(&format!(
        "{}/auth/set-password",
        frontend.path().trim_end_matches('/')
    ));
    link.query_pairs_mut()
        .clear()
        .append_pair("token", token.expose())
        .append_pair("email", email.as_str());
    link
}

const COMPENSATION_ATTEMPTS: u32 = 3;

/// Deletes the Auth0 user we created; idempotent, so retried a few times.
async fn compensate(state: &AppState, auth0_id: &Auth0UserId, deadline: &Deadline) -> Compensation {
    for attempt in 1..=COMPENSATION_ATTEMPTS {
        match state.auth0.delete_user(auth0_id, deadline).await {
            Ok(()) => {
                tracing::info!(step = "compensate", attempt, "auth0 user deleted");
                metrics::count(Metric::CompensatingDeletes, 1, None);
                return Compensation::Deleted;
            }
            Err(err) => {
                tracing::warn!(step = "compensate", attempt, error = %err, "compensating delete failed");
                if deadline.remaining() < std::time::Duration::from_millis(200) {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100 * u64::from(attempt)))
                    .await;
            }
        }
    }
    tracing::error!(step = "compensate", auth0_user_id = %auth0_id, "auth0 user left for the cleanup job");
    metrics::count(Metric::CompensatingDeleteFailures, 1, None);
    Compensation::Failed
}

/// After an unanswered create: finds the user Auth0 may have made for this attempt and deletes it.
async fn remove_users_tagged_with(
    state: &AppState,
    email: &Email,
    db_user_id: &str,
    deadline: &Deadline,
) -> Compensation {
    let found = match state.auth0.users_by_email(email, deadline).await {
        Ok(users) => users,
        Err(err) => {
            tracing::error!(step = "compensate", error = %err, "could not check for a half-created auth0 user");
            return Compensation::Failed;
        }
    };
    let ours: Vec<&Auth0User> = found
        .iter()
        .filter(|u| {
            u.is_ours()
                && u.app_metadata.get("db_user_id").and_then(|v| v.as_str()) == Some(db_user_id)
        })
        .collect();
    let mut outcome = Compensation::NotNeeded;
    for user in ours {
        if let Ok(id) = user.id() {
            outcome = match compensate(state, &id, deadline).await {
                Compensation::Failed => Compensation::Failed,
                _ if outcome == Compensation::Failed => Compensation::Failed,
                done => done,
            };
        }
    }
    outcome
}
