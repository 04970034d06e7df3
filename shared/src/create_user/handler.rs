//! The HTTP edge of create-user: API Gateway HTTP API (payload 2.0) in, JSON response out.
//! Routing, body limits, caller identity, and the one mapping from errors to status codes.

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use base64::Engine;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use lambda_runtime::LambdaEvent;
use serde_json::{Value, json};
use tracing::Instrument;

use super::request::{parse_check_exists, parse_new_user, parse_resend_invitation};
use super::{
    Compensation, CreateUserError, CreatedUser, Creation, IdempotentRequest, ResentInvitation,
};
use crate::db::DbError;
use crate::deadline::Deadline;
use crate::domain::{CallerSub, FieldError, IdempotencyKey};
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

/// An error as the admin panel sees it: `{error, message, code, requestId, field?, userFriendly?}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
    pub user_friendly: Option<&'static str>,
    /// Seconds after which a retry makes sense (`Retry-After`).
    pub retry_after: Option<u32>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
            user_friendly: None,
            retry_after: None,
        }
    }

    /// The headers the answer carries besides the JSON ones.
    pub(crate) fn headers(&self) -> Headers {
        let mut headers = Headers::new();
        if self.status == StatusCode::METHOD_NOT_ALLOWED {
            headers.push((http::header::ALLOW, HeaderValue::from_static("POST")));
        }
        if let Some(seconds) = self.retry_after {
            headers.push((http::header::RETRY_AFTER, HeaderValue::from(seconds)));
        }
        headers
    }

    pub(crate) fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub(crate) fn friendly(mut self, text: &'static str) -> Self {
        self.user_friendly = Some(text);
        self
    }
}

impl From<FieldError> for ApiError {
    fn from(err: FieldError) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
            format!("{}: {}", err.field, err.message),
        )
        .field(err.field)
    }
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
            E::UnknownCaller => ApiError::new(
                StatusCode::FORBIDDEN,
                "CALLER_NOT_FOUND",
                "The caller is not a user of this application.",
            ),
            E::InactiveCaller => ApiError::new(
                StatusCode::FORBIDDEN,
                "CALLER_INACTIVE",
                "The caller's account is inactive.",
            ),
            E::NotAnAdmin => ApiError::new(
                StatusCode::FORBIDDEN,
                "NOT_AN_ADMIN",
                "Only an OWNER or ADMIN can manage users.",
            ),
            E::RoleNotAllowed(role) => ApiError::new(
                StatusCode::FORBIDDEN,
                "ROLE_NOT_ALLOWED",
                format!(
                    "role: an ADMIN cannot create a user with role {}.",
                    role.as_str()
                ),
            )
            .field("role"),
            E::UnknownPages(ids) => ApiError::new(
                StatusCode::BAD_REQUEST,
                "UNKNOWN_PAGE",
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
                StatusCode::NOT_FOUND,
                "EMPLOYEE_NOT_FOUND",
                "employee_id: no such employee in your organisation.",
            )
            .field("employee_id"),
            E::EmployeeAlreadyLinked => ApiError::new(
                StatusCode::CONFLICT,
                "EMPLOYEE_ALREADY_LINKED",
                "employee_id: this employee is already linked to a user.",
            )
            .field("employee_id"),
            E::EmailTaken => ApiError::new(
                StatusCode::CONFLICT,
                "USER_ALREADY_EXISTS",
                "email: a user with this email already exists.",
            )
            .field("email")
            .friendly(
                "A user with this email address already exists. Use a different email address.",
            ),
            E::CreationInProgress => ApiError::new(
                StatusCode::CONFLICT,
                "USER_CREATION_IN_PROGRESS",
                "email: this user is still being created; try again in a moment.",
            )
            .field("email")
            .friendly("This user is being created right now. Refresh the list in a moment."),
            E::UserNotFound => ApiError::new(
                StatusCode::NOT_FOUND,
                "USER_NOT_FOUND",
                "email: no user with this email in your organisation.",
            )
            .field("email"),
            E::AlreadyActivated => ApiError::new(
                StatusCode::CONFLICT,
                "ALREADY_ACTIVATED",
                "email: this user has already set a password; there is no invitation to resend.",
            )
            .field("email")
            .friendly("This user has already set a password and can sign in."),
            E::UserInactive => ApiError::new(
                StatusCode::CONFLICT,
                "USER_INACTIVE",
                "email: this user is deactivated; reactivate the user before inviting again.",
            )
            .field("email"),
            E::RequestInProgress => ApiError {
                retry_after: Some(1),
                ..ApiError::new(
                    StatusCode::CONFLICT,
                    "REQUEST_IN_PROGRESS",
                    "Idempotency-Key: a request with this key is still running; retry in a moment to get its answer.",
                )
                .field("Idempotency-Key")
            },
            E::IdempotencyKeyReused => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "IDEMPOTENCY_KEY_REUSED",
                "Idempotency-Key: this key was used with another request; a new request needs a new key.",
            )
            .field("Idempotency-Key"),
            E::Auth0UserExists => ApiError::new(
                StatusCode::CONFLICT,
                "AUTH0_USER_EXISTS",
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
            | E::Pool(DbError::Deadline(_)) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "TIMEOUT",
                format!("The request ran out of time. {NOTHING_KEPT}{leftover}"),
            ),
            E::Auth0 {
                source: crate::auth0::Auth0Error::Secret(_),
                ..
            }
            | E::Email {
                source: crate::email::EmailError::Secret(_),
                ..
            } => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "SECRETS_UNAVAILABLE",
                format!("The service's credentials could not be read. {NOTHING_KEPT}{leftover}"),
            ),
            E::Auth0 { source, .. } if source.is_unavailable() => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "AUTH0_UNAVAILABLE",
                format!("Auth0 is not reachable or is rate limiting us. {NOTHING_KEPT}{leftover}"),
            ),
            E::Auth0 { step, source, .. } => ApiError::new(
                StatusCode::BAD_GATEWAY,
                "AUTH0_FAILED",
                format!(
                    "Auth0 failed while {} ({}). {NOTHING_KEPT}{leftover}",
                    step.describe(),
                    auth0_status(source)
                ),
            ),
            E::Email { source, .. } if source.is_unavailable() => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "EMAIL_UNAVAILABLE",
                format!("The email service is not reachable. {NOTHING_KEPT}{leftover}"),
            ),
            E::Email { .. } => ApiError::new(
                StatusCode::BAD_GATEWAY,
                "EMAIL_FAILED",
                format!("The password-setup email could not be sent. {NOTHING_KEPT}{leftover}"),
            ),
            // Unlike every other failure, something may have been kept.
            E::Database { .. } if err.commit_outcome_unknown() => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "DATABASE_UNAVAILABLE",
                "The database did not confirm the commit, so the user may have been created. \
                 Check before trying again: a retry answers USER_ALREADY_EXISTS if it was.",
            ),
            // A lock held too long: on `users` while checking the caller, or on the insert,
            // where waiting for a table lock and for another insert of the same address look
            // the same to us. Transient either way, and nothing was kept.
            E::Database { step, source, .. } if source.is_lock_timeout() => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "DATABASE_BUSY",
                format!(
                    "The database was busy (a lock was held too long) while {}. {NOTHING_KEPT}{leftover}",
                    step.describe()
                ),
            ),
            E::Database { step, source, .. } if source.is_unavailable() => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "DATABASE_UNAVAILABLE",
                format!(
                    "The database did not answer while {}. {NOTHING_KEPT}{leftover}",
                    step.describe()
                ),
            ),
            E::Database { step, .. } => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL_ERROR",
                format!(
                    "Something went wrong while {}. {NOTHING_KEPT}{leftover}",
                    step.describe()
                ),
            ),
            E::Pool(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "DATABASE_UNAVAILABLE",
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

/// The Lambda handler: never fails the invocation; every outcome is an HTTP response.
pub async fn handle(
    state: &AppState,
    event: LambdaEvent<ApiGatewayV2httpRequest>,
) -> Result<ApiGatewayV2httpResponse, std::convert::Infallible> {
    let request_id = event.context.request_id.clone();
    let deadline = Deadline::from_epoch_millis(event.context.deadline);
    let span = tracing::info_span!("request", request_id = %request_id);
    let response = async {
        let (status, body, headers) =
            match dispatch(state, &event.payload, &deadline, &request_id).await {
                Ok(answer) => answer,
                Err(err) => {
                    tracing::info!(
                        status = err.status.as_u16(),
                        code = err.code,
                        "request refused"
                    );
                    (err.status, error_body(&err, &request_id), err.headers())
                }
            };
        json_response(status, &body, headers)
    }
    .instrument(span)
    .await;
    Ok(response)
}

/// Headers an answer carries besides Content-Type and Cache-Control.
pub(crate) type Headers = Vec<(http::header::HeaderName, HeaderValue)>;

/// Stripe's name for the header that marks a replayed answer.
const IDEMPOTENT_REPLAYED: http::header::HeaderName =
    http::header::HeaderName::from_static("idempotent-replayed");

async fn dispatch(
    state: &AppState,
    request: &ApiGatewayV2httpRequest,
    deadline: &Deadline,
    request_id: &str,
) -> Result<(StatusCode, Value, Headers), ApiError> {
    let route = route(&request.request_context.http.method, request_path(request))?;
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
    if api.status.is_server_error() {
        // The full cause chain goes to the log; the caller gets the opaque message.
        tracing::error!(error = %error_chain(err), code = api.code, "create-user failed");
    }
    api
}

pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

pub(crate) fn request_path(request: &ApiGatewayV2httpRequest) -> &str {
    request
        .raw_path
        .as_deref()
        .or(request.request_context.http.path.as_deref())
        .unwrap_or("/")
}

/// Routes on the path suffix, so any stage or base path in front keeps working.
pub fn route(method: &Method, path: &str) -> Result<Route, ApiError> {
    let path = path.trim_end_matches('/');
    let route = if path.ends_with("/direct-users/create") {
        Route::Create
    } else if path.ends_with("/direct-users/check-exists") {
        Route::CheckExists
    } else if path.ends_with("/direct-users/resend-invitation") {
        Route::ResendInvitation
    } else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "No such endpoint.",
        ));
    };
    if method != Method::POST {
        return Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            format!("{method} is not allowed here; use POST."),
        ));
    }
    Ok(route)
}

/// The optional `Idempotency-Key` header, checked like any field.
fn idempotency_key(request: &ApiGatewayV2httpRequest) -> Result<Option<IdempotencyKey>, ApiError> {
    let Some(raw) = request.headers.get("idempotency-key") else {
        return Ok(None);
    };
    let raw = raw
        .to_str()
        .map_err(|_| "must be visible ASCII characters (a UUID, for example)".to_string());
    raw.and_then(IdempotencyKey::parse)
        .map(Some)
        .map_err(|message| FieldError::new("Idempotency-Key", message).into())
}

fn caller_sub(request: &ApiGatewayV2httpRequest) -> Result<CallerSub, ApiError> {
    request
        .request_context
        .authorizer
        .as_ref()
        .and_then(|a| a.jwt.as_ref())
        .and_then(|jwt| jwt.claims.get("sub"))
        .and_then(|sub| CallerSub::parse(sub))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "UNAUTHENTICATED",
                "No caller identity: the request carries no JWT `sub` claim.",
            )
        })
}

fn read_json_body(request: &ApiGatewayV2httpRequest) -> Result<Value, ApiError> {
    read_json_body_within(request, MAX_BODY_BYTES)
}

/// The request's JSON body, refused with 413 above `limit` bytes (decoded).
pub(crate) fn read_json_body_within(
    request: &ApiGatewayV2httpRequest,
    limit: usize,
) -> Result<Value, ApiError> {
    let raw = request.body.as_deref().unwrap_or("");
    // Base64 is 4/3 of the payload: check the decoded size, but refuse absurd input early.
    if raw.len() > limit * 4 / 3 + 4 {
        return Err(too_large(limit));
    }
    let bytes = if request.is_base64_encoded {
        base64::engine::general_purpose::STANDARD
            .decode(raw)
            .map_err(|_| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "INVALID_BODY",
                    "body: not valid base64.",
                )
                .field("body")
            })?
    } else {
        raw.as_bytes().to_vec()
    };
    if bytes.len() > limit {
        return Err(too_large(limit));
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "INVALID_JSON",
            "body: a JSON object is required.",
        )
        .field("body"));
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "INVALID_JSON",
            format!(
                "body: malformed JSON at line {} column {}.",
                e.line(),
                e.column()
            ),
        )
        .field("body")
    })
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "PAYLOAD_TOO_LARGE",
        format!("body: larger than {limit} bytes."),
    )
    .field("body")
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

pub(crate) fn timestamp(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

pub(crate) fn error_body(err: &ApiError, request_id: &str) -> Value {
    let mut body = json!({
        "error": err.status.canonical_reason().unwrap_or("Error"),
        "message": err.message,
        "code": err.code,
        "requestId": request_id,
    });
    if let Some(field) = &err.field {
        body["field"] = json!(field);
    }
    if let Some(text) = err.user_friendly {
        body["userFriendly"] = json!(text);
    }
    body
}

pub(crate) fn json_response(
    status: StatusCode,
    body: &Value,
    extra: Headers,
) -> ApiGatewayV2httpResponse {
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    for (name, value) in extra {
        headers.insert(name, value);
    }
    let mut response = ApiGatewayV2httpResponse::default();
    response.status_code = i64::from(status.as_u16());
    response.headers = headers;
    response.body = Some(Body::Text(body.to_string()));
    response
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
