//! The admin API: the admin panel's calls on `…/direct-users/…`, behind API Gateway's JWT
//! authorizer. Routes requests to the user operations of [`crate::lifecycle`] for the caller's
//! [`Credential`], and answers what they did (or why not) in the admin panel's shapes.

pub mod request;

use http::{HeaderValue, Method, StatusCode};
use serde_json::{Value, json};

use crate::access::{Credential, Denied};
use crate::deadline::Deadline;
use crate::domain::{CallerSub, FieldError, IdempotencyKey};
use crate::flow::{self, Compensation, IdempotentRequest, KeyRefusal, Operation, Outcome};
use crate::http_api::{
    self, Answer, ApiError, ApiEvent, ApiRequest, ApiResponse, ErrorCode, Headers, NotAnApiEvent,
    dependency, error_body, read_json_body_within, timestamp,
};
use crate::lifecycle::{
    self, CreateUser, CreatedUser, LifecycleError, ResendInvitation, ResentInvitation,
};
use crate::metrics::{self, Metric};
use crate::state::AppState;
use request::{parse_check_exists, parse_new_user, parse_resend_invitation};

/// Generous for the largest permission list the admin panel can send.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Create,
    CheckExists,
    ResendInvitation,
}

impl Route {
    /// The name requests of the route are fingerprinted and logged with.
    fn name(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::CheckExists => "check_exists",
            Self::ResendInvitation => "resend_invitation",
        }
    }

    /// What a failed request of the route left behind.
    fn outcome(self) -> dependency::Outcome {
        match self {
            Self::Create => dependency::Outcome {
                nothing_kept: "Nothing was created; it is safe to try again.",
                commit_unknown: "The database did not confirm the commit, so the user may have \
                    been created. Check before trying again: a retry answers \
                    USER_ALREADY_EXISTS if it was.",
            },
            Self::CheckExists => dependency::Outcome {
                nothing_kept: "Nothing was changed; it is safe to try again.",
                commit_unknown: "The database did not answer; it is safe to try again.",
            },
            Self::ResendInvitation => dependency::Outcome {
                nothing_kept: "Nothing was changed and earlier links still work; it is safe to \
                    try again.",
                commit_unknown: "The database did not confirm the commit, so the new \
                    invitation may have been stored and sent. Check the inbox before trying \
                    again: a retry sends another link and ends this one.",
            },
        }
    }
}

/// The admin API's routes.
pub const ROUTES: &[http_api::Route<Route>] = &[
    (Method::POST, "/direct-users/create", Route::Create),
    (
        Method::POST,
        "/direct-users/check-exists",
        Route::CheckExists,
    ),
    (
        Method::POST,
        "/direct-users/resend-invitation",
        Route::ResendInvitation,
    ),
];

/// The answer to an operation's error, for a request of `route`.
fn answer(err: &LifecycleError, route: Route) -> ApiError {
    use LifecycleError as E;
    match err {
        E::Denied(denied) => denied_answer(*denied),
        E::Key(KeyRefusal::InProgress) => ApiError {
            retry_after: Some(1),
            ..ApiError::new(
                ErrorCode::RequestInProgress,
                "Idempotency-Key: a request with this key is still running; retry in a moment \
                 to get its answer.",
            )
            .field("Idempotency-Key")
        },
        E::Key(KeyRefusal::Reused) => ApiError::new(
            ErrorCode::IdempotencyKeyReused,
            "Idempotency-Key: this key was used with another request; a new request needs a \
             new key.",
        )
        .field("Idempotency-Key"),
        E::UnknownPages(ids) => ApiError::new(
            ErrorCode::UnknownPage,
            format!(
                "permissions: unknown page id(s): {}",
                ids.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
        .field("permissions"),
        E::EmployeeNotFound => ApiError::new(
            ErrorCode::EmployeeNotFound,
            "employee_id: no such employee in your organisation.",
        )
        .field("employee_id"),
        E::EmployeeAlreadyLinked => ApiError::new(
            ErrorCode::EmployeeAlreadyLinked,
            "employee_id: this employee is already linked to a user.",
        )
        .field("employee_id"),
        E::EmailTaken => ApiError::new(
            ErrorCode::UserAlreadyExists,
            "email: a user with this email already exists.",
        )
        .field("email")
        .friendly("A user with this email address already exists. Use a different email address."),
        E::CreationInProgress => ApiError::new(
            ErrorCode::UserCreationInProgress,
            "email: this user is still being created; try again in a moment.",
        )
        .field("email")
        .friendly("This user is being created right now. Refresh the list in a moment."),
        E::UserNotFound => ApiError::new(
            ErrorCode::UserNotFound,
            "email: no user with this email in your organisation.",
        )
        .field("email"),
        E::AlreadyActivated => ApiError::new(
            ErrorCode::AlreadyActivated,
            "email: this user has already set a password; there is no invitation to resend.",
        )
        .field("email")
        .friendly("This user has already set a password and can sign in."),
        E::UserInactive => ApiError::new(
            ErrorCode::UserInactive,
            "email: this user is deactivated; reactivate the user before inviting again.",
        )
        .field("email"),
        E::Auth0UserExists => ApiError::new(
            ErrorCode::Auth0UserExists,
            "email: this email already has a login that this application did not create.",
        )
        .field("email")
        .friendly("This email address already has a login. Contact support to link it."),
        E::Failed {
            failure,
            compensation,
        } => dependency::answer(failure, *compensation, route.outcome()),
    }
}

fn denied_answer(denied: Denied) -> ApiError {
    match denied {
        Denied::UnknownCaller => ApiError::new(
            ErrorCode::CallerNotFound,
            "The caller is not a user of this application.",
        ),
        Denied::InactiveCaller => ApiError::new(
            ErrorCode::CallerInactive,
            "The caller's account is inactive.",
        ),
        Denied::NotAnAdmin => ApiError::new(
            ErrorCode::NotAnAdmin,
            "Only an OWNER or ADMIN can manage users.",
        ),
        Denied::RoleNotAllowed(role) => ApiError::new(
            ErrorCode::RoleNotAllowed,
            format!(
                "role: only an OWNER can give a user the role {}.",
                role.as_str()
            ),
        )
        .field("role"),
        Denied::OwnerProtected => ApiError::new(
            ErrorCode::RoleNotAllowed,
            "Only an OWNER can manage an OWNER's account.",
        ),
    }
}

/// The Lambda handler: every outcome is an HTTP response; only an event that is no API
/// Gateway proxy event fails the invocation.
pub async fn handle(state: &AppState, event: ApiEvent) -> Result<ApiResponse, NotAnApiEvent> {
    http_api::serve(event, error_body, async |request, deadline, request_id| {
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
    let route = http_api::route(ROUTES, request.method(), request.path())?.route;
    let credential = credential(request)?;
    let body = read_json_body_within(request, MAX_BODY_BYTES)?;
    let call = Call {
        state,
        request,
        deadline,
        request_id,
        route,
        credential,
        body,
    };
    match route {
        Route::Create => {
            let new_user = parse_new_user(&call.body)?;
            tracing::info!(route = "create", email = %new_user.email, role = new_user.role.as_str(), "create-user request");
            call.mutate(
                &CreateUser::new(&new_user),
                StatusCode::CREATED,
                created_body,
            )
            .await
        }
        Route::ResendInvitation => {
            let email = parse_resend_invitation(&call.body)?;
            tracing::info!(route = "resend_invitation", email = %email, "resend-invitation request");
            call.mutate(
                &ResendInvitation { email: &email },
                StatusCode::OK,
                resent_body,
            )
            .await
        }
        Route::CheckExists => {
            let email = parse_check_exists(&call.body)?;
            let exists = lifecycle::email_exists(state, &call.credential, &email, deadline)
                .await
                .map_err(|err| log_failure(&err, route))?;
            Ok((
                StatusCode::OK,
                json!({ "exists": exists, "email": email.as_str() }),
                Headers::new(),
            ))
        }
    }
}

/// One request of the admin API, read and routed.
struct Call<'a> {
    state: &'a AppState,
    request: &'a ApiRequest,
    deadline: &'a Deadline,
    request_id: &'a str,
    route: Route,
    credential: Credential,
    body: Value,
}

impl Call<'_> {
    /// Runs a mutating operation, with the request's `Idempotency-Key` when it carries one,
    /// and answers `status` with `body` of what it did, or the answer stored for the key.
    async fn mutate<O: Operation<Error = LifecycleError>>(
        &self,
        operation: &O,
        status: StatusCode,
        body: fn(&O::Output) -> Value,
    ) -> Result<Answer, ApiError> {
        let key = idempotency_key(self.request)?;
        // What is stored for the key is exactly what this request answers.
        let render = |outcome: Result<&O::Output, &LifecycleError>| match outcome {
            Ok(done) => (status.as_u16(), body(done)),
            Err(err) => {
                let api = answer(err, self.route);
                (api.status.as_u16(), error_body(&api, self.request_id))
            }
        };
        let idempotent = key.as_ref().map(|key| {
            let ttl = self.state.config.idempotency_key_ttl;
            let (route, caller) = (self.route.name(), self.credential.identity());
            IdempotentRequest::new(key, route, caller, &self.body, ttl, &render)
        });
        tracing::debug!(idempotent = key.is_some(), "running the operation");
        let outcome = flow::run(
            self.state,
            &self.credential,
            operation,
            idempotent.as_ref(),
            self.deadline,
        )
        .await
        .map_err(|err| log_failure(&err, self.route))?;
        Ok(match outcome {
            Outcome::Done(done) => (status, body(&done), Headers::new()),
            Outcome::Replayed(answer) => {
                let status = StatusCode::from_u16(answer.status)
                    .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let replayed = vec![(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"))];
                (status, answer.body, replayed)
            }
        })
    }
}

fn log_failure(err: &LifecycleError, route: Route) -> ApiError {
    let api = answer(err, route);
    if let (true, LifecycleError::Failed { failure, .. }) = (api.status.is_server_error(), err) {
        metrics::count(Metric::Rollbacks, 1, Some(("Step", failure.step().name())));
    }
    if err.compensation() == Compensation::Failed {
        tracing::error!(
            route = route.name(),
            "an auth0 change was left for the cleanup job"
        );
    }
    http_api::log_server_error(&api, err, route.name());
    api
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

/// The caller API Gateway's JWT authorizer verified.
fn credential(request: &ApiRequest) -> Result<Credential, ApiError> {
    request
        .jwt_sub()
        .ok_or("No caller identity: the request carries no JWT `sub` claim.")
        .and_then(CallerSub::parse)
        .map(Credential::Jwt)
        .map_err(|message| ApiError::new(ErrorCode::Unauthenticated, message))
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
            "auth0UserId": user.auth0.auth0_user_id().map(|id| id.as_str()),
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
        let route = |method, path| http_api::route(ROUTES, &method, path).map(|m| m.route);
        assert_eq!(
            route(Method::POST, "/prod/api/direct-users/create"),
            Ok(Route::Create)
        );
        assert_eq!(
            route(Method::POST, "/direct-users/check-exists/"),
            Ok(Route::CheckExists)
        );
        assert_eq!(
            route(Method::POST, "/direct-users/delete")
                .unwrap_err()
                .status,
            StatusCode::NOT_FOUND
        );
        let refused = route(Method::GET, "/direct-users/create").unwrap_err();
        assert_eq!(refused.status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(refused.allow.as_deref(), Some("POST"));
    }
}
