//! Auth0's error bodies: the Management API's and the Authentication API's shapes.

use axum::http::StatusCode;
use serde_json::json;

use crate::doubles::server::Rejection;

/// `{"statusCode","error","message"[,"errorCode"]}`, the Management API error shape.
pub(super) fn management_error(
    status: StatusCode,
    message: &str,
    error_code: Option<&str>,
) -> Rejection {
    let mut body = json!({
        "statusCode": status.as_u16(),
        "error": status.canonical_reason().unwrap_or("Error"),
        "message": message,
    });
    if let Some(code) = error_code {
        body["errorCode"] = code.into();
    }
    Rejection { status, body }
}

pub(super) fn default_message(status: StatusCode) -> String {
    match status.as_u16() {
        500 => "An internal server error occurred".into(),
        _ => status.canonical_reason().unwrap_or("Error").into(),
    }
}

pub(super) fn rate_limited() -> Rejection {
    let status = StatusCode::TOO_MANY_REQUESTS;
    management_error(status, "Global limit has been reached", None)
}

/// The token check repeats its message under `attributes`, unlike other errors.
pub(super) fn unauthorized(message: &str) -> Rejection {
    let mut rejection = management_error(StatusCode::UNAUTHORIZED, message, None);
    rejection.body["attributes"] = json!({ "error": message });
    rejection
}

pub(super) fn bad_request(message: &str, error_code: Option<&str>) -> Rejection {
    management_error(StatusCode::BAD_REQUEST, message, error_code)
}

pub(super) fn invalid_body(detail: &str, property: Option<&str>) -> Rejection {
    schema_error("Payload", detail, property, "invalid_body")
}

pub(super) fn invalid_query(detail: &str, property: Option<&str>) -> Rejection {
    schema_error("Query", detail, property, "invalid_query_string")
}

/// A failed schema check of the body or the query string.
fn schema_error(what: &str, detail: &str, property: Option<&str>, code: &str) -> Rejection {
    let message = match property {
        Some(property) => format!("{what} validation error: '{detail}' on property {property}."),
        None => format!("{what} validation error: '{detail}'."),
    };
    bad_request(&message, Some(code))
}

pub(super) fn user_not_found() -> Rejection {
    let status = StatusCode::NOT_FOUND;
    management_error(status, "The user does not exist.", Some("inexistent_user"))
}

pub(super) fn inexistent_connection() -> Rejection {
    let message = "The connection does not exist.";
    bad_request(message, Some("inexistent_connection"))
}

pub(super) fn weak_password() -> Rejection {
    bad_request("PasswordStrengthError: Password is too weak", None)
}

/// `{"error","error_description"}`, the Authentication API error shape.
pub(super) fn oauth_error(status: StatusCode, error: &str, description: &str) -> Rejection {
    let body = json!({ "error": error, "error_description": description });
    Rejection { status, body }
}

pub(super) async fn not_found() -> Rejection {
    management_error(StatusCode::NOT_FOUND, "Not Found", None)
}
