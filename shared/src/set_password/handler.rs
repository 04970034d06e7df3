//! The HTTP edge of set-password: API Gateway HTTP API (payload 2.0) in, JSON out. Public
//! routes (no JWT authorizer): small bodies only, the token checked before any query runs.

use http::{Method, StatusCode};
use serde_json::{Value, json};

use super::request::{RequestError, parse_link, parse_set_password};
use super::{LinkInfo, SetPasswordError};
use crate::auth0::Auth0Error;
use crate::db::DbError;
use crate::deadline::Deadline;
use crate::http_api::{
    self, ApiError, ApiEvent, ApiRequest, ApiResponse, ErrorCode, Headers, NotAnApiEvent,
    read_json_body_within, timestamp,
};
use crate::metrics::{self, Metric};
use crate::state::AppState;

/// A token, an address and a password fit in far less; anything bigger is not the page.
pub const MAX_BODY_BYTES: usize = 4 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Verify,
    SetPassword,
}

const LINK_STILL_WORKS: &str = "Your link still works; please try again in a moment.";

impl From<RequestError> for ApiError {
    fn from(err: RequestError) -> Self {
        match err {
            RequestError::Link(field) => ApiError::new(
                ErrorCode::InvalidLink,
                format!("{}: {}", field.field, field.message),
            )
            .field(field.field)
            .friendly(INVALID_LINK_FRIENDLY),
            RequestError::Field(field) => field.into(),
        }
    }
}

const INVALID_LINK_FRIENDLY: &str = "This link does not work. Open the newest invitation email, or ask your administrator to send a new invitation.";

impl From<&SetPasswordError> for ApiError {
    fn from(err: &SetPasswordError) -> Self {
        use SetPasswordError as E;
        match err {
            E::InvalidLink => ApiError::new(
                ErrorCode::InvalidLink,
                "This link is not valid (unknown, already used, or for another address).",
            )
            .friendly(INVALID_LINK_FRIENDLY),
            E::LinkExpired => ApiError::new(
                ErrorCode::LinkExpired,
                "This link has expired. Ask your administrator to send a new invitation.",
            )
            .friendly(
                "This link has expired. Ask your administrator to send you a new invitation.",
            ),
            E::WeakPassword(message) => {
                ApiError::new(ErrorCode::WeakPassword, format!("password: {message}"))
                    .field("password")
            }
            E::Auth0(Auth0Error::Deadline(_)) => ApiError::new(
                ErrorCode::Timeout,
                format!("The request ran out of time. {LINK_STILL_WORKS}"),
            ),
            E::Auth0(Auth0Error::Secret(_)) => ApiError::new(
                ErrorCode::SecretsUnavailable,
                format!("The service's credentials could not be read. {LINK_STILL_WORKS}"),
            ),
            E::Auth0(source) if source.is_unavailable() => ApiError::new(
                ErrorCode::Auth0Unavailable,
                format!("Auth0 is not reachable or is rate limiting us. {LINK_STILL_WORKS}"),
            ),
            E::Auth0(_) => ApiError::new(
                ErrorCode::Auth0Failed,
                format!("Auth0 failed while setting the password. {LINK_STILL_WORKS}"),
            ),
            E::Database {
                source: DbError::Deadline(_),
                ..
            } => ApiError::new(
                ErrorCode::Timeout,
                format!("The request ran out of time. {LINK_STILL_WORKS}"),
            ),
            E::Database { step, source } if source.is_lock_timeout() => ApiError::new(
                ErrorCode::DatabaseBusy,
                format!(
                    "The database was busy while {}. {LINK_STILL_WORKS}",
                    step.describe()
                ),
            ),
            E::Database { step, source } if source.is_unavailable() => ApiError::new(
                ErrorCode::DatabaseUnavailable,
                format!(
                    "The database did not answer while {}. {LINK_STILL_WORKS}",
                    step.describe()
                ),
            ),
            E::Database { step, .. } => ApiError::new(
                ErrorCode::InternalError,
                format!(
                    "Something went wrong while {}. {LINK_STILL_WORKS}",
                    step.describe()
                ),
            ),
            E::Pool(_) => ApiError::new(
                ErrorCode::DatabaseUnavailable,
                format!("No database connection is available. {LINK_STILL_WORKS}"),
            ),
        }
    }
}

/// The Lambda handler: every outcome is an HTTP response; only an event that is no API
/// Gateway proxy event fails the invocation.
pub async fn handle(state: &AppState, event: ApiEvent) -> Result<ApiResponse, NotAnApiEvent> {
    http_api::serve(event, async |request, deadline, _| {
        let (status, body) = dispatch(state, request, deadline).await?;
        Ok((status, body, Headers::new()))
    })
    .await
}

async fn dispatch(
    state: &AppState,
    request: &ApiRequest,
    deadline: &Deadline,
) -> Result<(StatusCode, Value), ApiError> {
    let route = route(request.method(), request.path())?;
    let body = read_json_body_within(request, MAX_BODY_BYTES)?;
    match route {
        Route::Verify => {
            let link = parse_link(&body)?;
            let info = super::verify_link(state, &link, deadline)
                .await
                .map_err(|err| log_failure(&err))?;
            Ok((StatusCode::OK, link_body(&info)))
        }
        Route::SetPassword => {
            let (link, password) = parse_set_password(&body)?;
            tracing::info!(route = "set_password", email = %link.email, "set-password request");
            let info = super::set_password(state, &link, &password, deadline)
                .await
                .map_err(|err| log_failure(&err))?;
            metrics::count(Metric::PasswordsSet, 1, None);
            Ok((
                StatusCode::OK,
                json!({
                    "email": info.email,
                    "tenantName": info.tenant_name,
                    "message": "Your password is set. Sign in with your email address and the new password.",
                }),
            ))
        }
    }
}

fn link_body(info: &LinkInfo) -> Value {
    json!({
        "email": info.email,
        "tenantName": info.tenant_name,
        "role": info.role.as_str(),
        "expiresAt": timestamp(info.expires_at),
    })
}

fn log_failure(err: &SetPasswordError) -> ApiError {
    let api = ApiError::from(err);
    http_api::log_server_error(&api, err, "set-password");
    api
}

/// The set-password page's routes, by path suffix (the longer one first).
pub fn route(method: &Method, path: &str) -> Result<Route, ApiError> {
    http_api::route(
        method,
        path,
        &[
            ("/auth/set-password/verify", Route::Verify),
            ("/auth/set-password", Route::SetPassword),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_on_the_path_suffix_with_404_and_405() {
        assert_eq!(
            route(&Method::POST, "/prod/api/auth/set-password/verify"),
            Ok(Route::Verify)
        );
        assert_eq!(
            route(&Method::POST, "/api/auth/set-password/"),
            Ok(Route::SetPassword)
        );
        assert_eq!(
            route(&Method::POST, "/api/auth/reset").unwrap_err().status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            route(&Method::GET, "/api/auth/set-password")
                .unwrap_err()
                .status,
            StatusCode::METHOD_NOT_ALLOWED
        );
    }
}
