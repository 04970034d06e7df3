//! The HTTP edge of create-user: API Gateway HTTP API (payload 2.0) in, JSON response out.
//! Routing, body limits, caller identity, and the one mapping from errors to status codes.

use http::{HeaderValue, Method, StatusCode};
use serde_json::{Value, json};

use super::request::{parse_check_exists, parse_new_user, parse_resend_invitation};
use super::{
    Compensation, CreateUserError, CreatedUser, Creation, IdempotentRequest, ResentInvitation,
};
use crate::db::DbError;
use crate::deadline::Deadline;
use crate::domain::{CallerSub, FieldError, IdempotencyKey};
use crate::http_api::{
    self, Answer, ApiError, ApiEvent, ApiRequest, ApiResponse, ErrorCode, Headers, NotAnApiEvent,
    error_body, read_json_body_within, timestamp,
};
use crate::metrics::{self, Metric};
use crate::state::AppState;

/// Generous for the largest permission list the admin panel can send.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Create,
    CheckExists,
    ResendInvitation,
}

const NOTHING_KEPT: &str = "Nothing was created; it is safe to try again.";

impl From<&CreateUserError> for ApiError {
    fn from(err: &CreateUserError) -> Self {
        use CreateUserError as E;
        let leftover = if err.compensation() == Compensation::Failed {
            " The Auth0 user could not be removed yet; the cleanup job will remove it."
        } else {
            ""
        };
        match err {
            E::UnknownCaller => ApiError::new(ErrorCode::CallerNotFound,
                "The caller is not a user of this application.",
            ),
            E::InactiveCaller => ApiError::new(ErrorCode::CallerInactive,
                "The caller's account is inactive.",
            ),
            E::NotAnAdmin => ApiError::new(ErrorCode::NotAnAdmin,
                "Only an OWNER or ADMIN can manage users.",
            ),
            E::RoleNotAllowed(role) => ApiError::new(ErrorCode::RoleNotAllowed,
                format!(
                    "role: an ADMIN cannot create a user with role {}.",
                    role.as_str()
                ),
            )
            .field("role"),
            E::UnknownPages(ids) => ApiError::new(ErrorCode::UnknownPage,
                format!(
                    "permissions: unknown page id(s): {}",
                    ids.iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
            .field("permissions"),
            E::EmployeeNotFound => ApiError::new(ErrorCode::EmployeeNotFound,
                "employee_id: no such employee in your organisation.",
            )
            .field("employee_id"),
            E::EmployeeAlreadyLinked => ApiError::new(ErrorCode::EmployeeAlreadyLinked,
                "employee_id: this employee is already linked to a user.",
            )
            .field("employee_id"),
            E::EmailTaken => ApiError::new(ErrorCode::UserAlreadyExists,
                "email: a user with this email already exists.",
            )
            .field("email")
            .friendly(
                "A user with this email address already exists. Use a different email address.",
            ),
            E::CreationInProgress => ApiError::new(ErrorCode::UserCreationInProgress,
                "email: this user is still being created; try again in a moment.",
            )
            .field("email")
            .friendly("This user is being created right now. Refresh the list in a moment."),
            E::UserNotFound => ApiError::new(ErrorCode::UserNotFound,
                "email: no user with this email in your organisation.",
            )
            .field("email"),
            E::AlreadyActivated => ApiError::new(ErrorCode::AlreadyActivated,
                "email: this user has already set a password; there is no invitation to resend.",
            )
            .field("email")
            .friendly("This user has already set a password and can sign in."),
            E::UserInactive => ApiError::new(ErrorCode::UserInactive,
                "email: this user is deactivated; reactivate the user before inviting again.",
            )
            .field("email"),
            E::RequestInProgress => ApiError {
                retry_after: Some(1),
                ..ApiError::new(ErrorCode::RequestInProgress,
                    "Idempotency-Key: a request with this key is still running; retry in a moment to get its answer.",
                )
                .field("Idempotency-Key")
            },
            E::IdempotencyKeyReused => ApiError::new(ErrorCode::IdempotencyKeyReused,
                "Idempotency-Key: this key was used with another request; a new request needs a new key.",
            )
            .field("Idempotency-Key"),
            E::Auth0UserExists => ApiError::new(ErrorCode::Auth0UserExists,
                "email: this email already has a login that this application did not create.",
            )
            .field("email")
            .friendly("This email address already has a login. Contact support to link it."),
            // Not a dependency's fault: too little of the Lambda's time was left to call it.
            E::Auth0 {
                source: crate::auth0::Auth0Error::Deadline(_),
                ..
            }
            | E::Email {
                source: crate::email::EmailError::Deadline(_),
                ..
            }
            | E::Database {
                source: DbError::Deadline(_),
                ..
            }
            | E::Pool(DbError::Deadline(_)) => ApiError::new(ErrorCode::Timeout,
                format!("The request ran out of time. {NOTHING_KEPT}{leftover}"),
            ),
            E::Auth0 {
                source: crate::auth0::Auth0Error::Secret(_),
                ..
            }
            | E::Email {
                source: crate::email::EmailError::Secret(_),
                ..
            } => ApiError::new(ErrorCode::SecretsUnavailable,
                format!("The service's credentials could not be read. {NOTHING_KEPT}{leftover}"),
            ),
            E::Auth0 { source, .. } if source.is_unavailable() => ApiError::new(ErrorCode::Auth0Unavailable,
                format!("Auth0 is not reachable or is rate limiting us. {NOTHING_KEPT}{leftover}"),
            ),
            E::Auth0 { step, source, .. } => ApiError::new(ErrorCode::Auth0Failed,
                format!(
                    "Auth0 failed while {} ({}). {NOTHING_KEPT}{leftover}",
                    step.describe(),
                    auth0_status(source)
                ),
            ),
            E::Email { source, .. } if source.is_unavailable() => ApiError::new(ErrorCode::EmailUnavailable,
                format!("The email service is not reachable. {NOTHING_KEPT}{leftover}"),
            ),
            E::Email { .. } => ApiError::new(ErrorCode::EmailFailed,
                format!("The password-setup email could not be sent. {NOTHING_KEPT}{leftover}"),
            ),
            // Unlike every other failure, something may have been kept.
            E::Database { .. } if err.commit_outcome_unknown() => ApiError::new(ErrorCode::DatabaseUnavailable,
                "The database did not confirm the commit, so the user may have been created. \
                 Check before trying again: a retry answers USER_ALREADY_EXISTS if it was.",
            ),
            // A lock held too long: on `users` while checking the caller, or on the insert,
            // where waiting for a table lock and for another insert of the same address look
            // the same to us. Transient either way, and nothing was kept.
            E::Database { step, source, .. } if source.is_lock_timeout() => ApiError::new(ErrorCode::DatabaseBusy,
                format!(
                    "The database was busy (a lock was held too long) while {}. {NOTHING_KEPT}{leftover}",
                    step.describe()
                ),
            ),
            E::Database { step, source, .. } if source.is_unavailable() => ApiError::new(ErrorCode::DatabaseUnavailable,
                format!(
                    "The database did not answer while {}. {NOTHING_KEPT}{leftover}",
                    step.describe()
                ),
            ),
            E::Database { step, .. } => ApiError::new(ErrorCode::InternalError,
                format!(
                    "Something went wrong while {}. {NOTHING_KEPT}{leftover}",
                    step.describe()
                ),
            ),
            E::Pool(_) => ApiError::new(ErrorCode::DatabaseUnavailable,
                format!("No database connection is available. {NOTHING_KEPT}"),
            ),
        }
    }
}

fn auth0_status(err: &crate::auth0::Auth0Error) -> String {
    match err {
        crate::auth0::Auth0Error::Api { status, .. } => format!("status {status}"),
        crate::auth0::Auth0Error::Credentials { status, .. } => {
            format!("credentials refused, status {status}")
        }
        _ => "unexpected answer".into(),
    }
}

/// The Lambda handler: every outcome is an HTTP response; only an event that is no API
/// Gateway proxy event fails the invocation.
pub async fn handle(state: &AppState, event: ApiEvent) -> Result<ApiResponse, NotAnApiEvent> {
    http_api::serve(event, async |request, deadline, request_id| {
        dispatch(state, request, deadline, request_id).await
    })
    .await
}

/// Stripe's name for the header that marks a replayed answer.
const IDEMPOTENT_REPLAYED: http::header::HeaderName =
    http::header::HeaderName::from_static("idempotent-replayed");

async fn dispatch(
    state: &AppState,
    request: &ApiRequest,
    deadline: &Deadline,
    request_id: &str,
) -> Result<Answer, ApiError> {
    let route = route(request.method(), request.path())?;
    let caller = caller_sub(request)?;
    let body = read_json_body(request)?;
    match route {
        Route::Create => {
            let new_user = parse_new_user(&body)?;
            let key = idempotency_key(request)?;
            tracing::info!(route = "create", email = %new_user.email, role = new_user.role.as_str(), idempotent = key.is_some(), "create-user request");
            // What is stored for the key is exactly what this request answers.
            let render = |outcome: Result<&CreatedUser, &CreateUserError>| match outcome {
                Ok(user) => (StatusCode::CREATED.as_u16(), created_body(user)),
                Err(err) => {
                    let api = ApiError::from(err);
                    (api.status.as_u16(), error_body(&api, request_id))
                }
            };
            let ttl = state.config.idempotency_key_ttl;
            let idempotent = key
                .as_ref()
                .map(|key| IdempotentRequest::new(key, "create", &caller, &body, ttl, &render));
            let creation =
                super::create_user(state, &caller, &new_user, idempotent.as_ref(), deadline)
                    .await
                    .map_err(|err| log_failure(&err))?;
            match creation {
                Creation::Created(created) => {
                    metrics::count(Metric::UsersCreated, 1, None);
                    Ok((StatusCode::CREATED, created_body(&created), Headers::new()))
                }
                Creation::Replayed(answer) => {
                    let status = StatusCode::from_u16(answer.status)
                        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                    let replayed = vec![(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"))];
                    Ok((status, answer.body, replayed))
                }
            }
        }
        Route::ResendInvitation => {
            let email = parse_resend_invitation(&body)?;
            tracing::info!(route = "resend_invitation", email = %email, "resend-invitation request");
            let resent = super::resend_invitation(state, &caller, &email, deadline)
                .await
                .map_err(|err| log_failure(&err))?;
            Ok((StatusCode::OK, resent_body(&resent), Headers::new()))
        }
        Route::CheckExists => {
            let email = parse_check_exists(&body)?;
            let exists = super::email_exists(state, &caller, &email, deadline)
                .await
                .map_err(|err| log_failure(&err))?;
            Ok((
                StatusCode::OK,
                json!({ "exists": exists, "email": email.as_str() }),
                Headers::new(),
            ))
        }
    }
}

fn log_failure(err: &CreateUserError) -> ApiError {
    let api = ApiError::from(err);
    if let (true, Some(step)) = (api.status.is_server_error(), err.failed_step()) {
        metrics::count(Metric::Rollbacks, 1, Some(("Step", step.as_str())));
    }
    http_api::log_server_error(&api, err, "create-user");
    api
}

/// The admin API's routes, by path suffix.
pub fn route(method: &Method, path: &str) -> Result<Route, ApiError> {
    http_api::route(
        method,
        path,
        &[
            ("/direct-users/create", Route::Create),
            ("/direct-users/check-exists", Route::CheckExists),
            ("/direct-users/resend-invitation", Route::ResendInvitation),
        ],
    )
}

/// The optional `Idempotency-Key` header, checked like any field.
fn idempotency_key(request: &ApiRequest) -> Result<Option<IdempotencyKey>, ApiError> {
    let Some(raw) = request.headers().get("idempotency-key") else {
        return Ok(None);
    };
    let raw = raw
        .to_str()
        .map_err(|_| "must be visible ASCII characters (a UUID, for example)".to_string());
    raw.and_then(IdempotencyKey::parse)
        .map(Some)
        .map_err(|message| FieldError::new("Idempotency-Key", message).into())
}

fn caller_sub(request: &ApiRequest) -> Result<CallerSub, ApiError> {
    request
        .jwt_sub()
        .ok_or("No caller identity: the request carries no JWT `sub` claim.")
        .and_then(CallerSub::parse)
        .map_err(|message| ApiError::new(ErrorCode::Unauthenticated, message))
}

fn read_json_body(request: &ApiRequest) -> Result<Value, ApiError> {
    read_json_body_within(request, MAX_BODY_BYTES)
}

fn created_body(user: &CreatedUser) -> Value {
    json!({
        "user": {
            "id": user.id.to_string(),
            "email": user.email.as_str(),
            "role": user.role.as_str(),
            "tenantId": user.tenant_id.to_string(),
            "auth0UserId": user.auth0_user_id.as_str(),
            "employeeId": user.employee_id.map(|id| id.to_string()),
            "permissions": user.permissions.iter().map(|p| json!({
                "pageId": p.page_id.to_string(),
                "canRead": p.can_read,
                "canWrite": p.can_write,
                "canEdit": p.can_edit,
                "canDelete": p.can_delete,
            })).collect::<Vec<_>>(),
            "isActive": true,
            "setupCompletedAt": null,
            "createdAt": timestamp(user.created_at),
        },
        "message": format!("User created. A password-setup email was sent to {}.", user.email.as_str()),
    })
}

fn resent_body(resent: &ResentInvitation) -> Value {
    let user = &resent.user;
    json!({
        "user": {
            "id": user.id.to_string(),
            "email": user.email,
            "role": user.role.as_str(),
            "tenantId": user.tenant_id.to_string(),
            "auth0UserId": user.auth0_sub,
            "isActive": user.is_active,
            "setupCompletedAt": user.setup_completed_at.map(timestamp),
            "createdAt": timestamp(user.created_at),
        },
        "expiresAt": timestamp(resent.expires_at),
        "message": format!(
            "A new password-setup email was sent to {}. Earlier links no longer work.",
            user.email
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_on_the_path_suffix_with_404_and_405() {
        assert_eq!(
            route(&Method::POST, "/prod/api/direct-users/create"),
            Ok(Route::Create)
        );
        assert_eq!(
            route(&Method::POST, "/direct-users/check-exists/"),
            Ok(Route::CheckExists)
        );
        assert_eq!(
            route(&Method::POST, "/direct-users/delete")
                .unwrap_err()
                .status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            route(&Method::GET, "/direct-users/create")
                .unwrap_err()
                .status,
            StatusCode::METHOD_NOT_ALLOWED
        );
    }
}
