//! The HTTP edge of set-password: API Gateway HTTP API (payload 2.0) in, JSON out. Public
//! routes (no JWT authorizer): small bodies only, the token checked before any query runs.

use http::{Method, StatusCode};
use serde_json::{Value, json};

use super::request::{RequestError, parse_link, parse_set_password};
use super::{LinkInfo, SetPasswordError};
use crate::deadline::Deadline;
use crate::flow::Compensation;
use crate::http_api::{
    self, ApiError, ApiEvent, ApiRequest, ApiResponse, ErrorCode, Headers, NotAnApiEvent,
    dependency, read_json_body_within, timestamp,
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

/// What a failed set-password left behind: nothing, the link works as before.
const OUTCOME: dependency::Outcome = dependency::Outcome {
    nothing_kept: "Your link still works; please try again in a moment.",
    commit_unknown: "Your link may have been used up: if signing in with the new password \
        fails, try the link again.",
    undo_pending: "Your link still works; please try again in a moment.",
};

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
            E::Failed(failure) => dependency::answer(failure, Compensation::NotNeeded, OUTCOME),
        }
    }
}

/// The Lambda handler: every outcome is an HTTP response; only an event that is no API
/// Gateway proxy event fails the invocation.
pub async fn handle(state: &AppState, event: ApiEvent) -> Result<ApiResponse, NotAnApiEvent> {
    http_api::serve(event, &http_api::JSON_API, async |request, deadline, _| {
        let (status, body) = dispatch(state, request, deadline).await?;
        Ok((status, body.into(), Headers::new()))
    })
    .await
}

async fn dispatch(
    state: &AppState,
    request: &ApiRequest,
    deadline: &Deadline,
) -> Result<(StatusCode, Value), ApiError> {
    let route = http_api::route(ROUTES, request.method(), request.path())?.route;
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

/// The set-password page's routes.
pub const ROUTES: &[http_api::Route<Route>] = &[
    (Method::POST, "/auth/set-password/verify", Route::Verify),
    (Method::POST, "/auth/set-password", Route::SetPassword),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn route(method: &Method, path: &str) -> Result<Route, ApiError> {
        http_api::route(ROUTES, method, path).map(|matched| matched.route)
    }

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
