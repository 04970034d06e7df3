//! Every `code` an answer can carry, each with its one status, in one table. `openapi.yaml`
//! documents exactly these, under these statuses (`tests/tests/it/openapi.rs` holds it to
//! [`ErrorCode::ALL`]).

use http::StatusCode;

/// Declares [`ErrorCode`] with its `ALL`, `status` and `as_str` from one row per code.
macro_rules! error_catalogue {
    ($($code:ident = $status:ident, $text:literal;)*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($code,)*
        }

        impl ErrorCode {
            pub const ALL: &[ErrorCode] = &[$(Self::$code,)*];

            pub fn status(self) -> StatusCode {
                match self {
                    $(Self::$code => StatusCode::$status,)*
                }
            }

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$code => $text,)*
                }
            }
        }
    };
}

error_catalogue! {
    InvalidJson = BAD_REQUEST, "INVALID_JSON";
    InvalidBody = BAD_REQUEST, "INVALID_BODY";
    ValidationError = BAD_REQUEST, "VALIDATION_ERROR";
    UnknownPage = BAD_REQUEST, "UNKNOWN_PAGE";
    InvalidLink = BAD_REQUEST, "INVALID_LINK";
    WeakPassword = BAD_REQUEST, "WEAK_PASSWORD";
    Unauthenticated = UNAUTHORIZED, "UNAUTHENTICATED";
    CallerNotFound = FORBIDDEN, "CALLER_NOT_FOUND";
    CallerInactive = FORBIDDEN, "CALLER_INACTIVE";
    NotAnAdmin = FORBIDDEN, "NOT_AN_ADMIN";
    RoleNotAllowed = FORBIDDEN, "ROLE_NOT_ALLOWED";
    OwnerProtected = FORBIDDEN, "OWNER_PROTECTED";
    CannotActOnSelf = FORBIDDEN, "CANNOT_ACT_ON_SELF";
    NotFound = NOT_FOUND, "NOT_FOUND";
    EmployeeNotFound = NOT_FOUND, "EMPLOYEE_NOT_FOUND";
    UserNotFound = NOT_FOUND, "USER_NOT_FOUND";
    ScimTokenNotFound = NOT_FOUND, "SCIM_TOKEN_NOT_FOUND";
    MethodNotAllowed = METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED";
    UserAlreadyExists = CONFLICT, "USER_ALREADY_EXISTS";
    UserCreationInProgress = CONFLICT, "USER_CREATION_IN_PROGRESS";
    EmployeeAlreadyLinked = CONFLICT, "EMPLOYEE_ALREADY_LINKED";
    Auth0UserExists = CONFLICT, "AUTH0_USER_EXISTS";
    AlreadyActivated = CONFLICT, "ALREADY_ACTIVATED";
    UserInactive = CONFLICT, "USER_INACTIVE";
    RequestInProgress = CONFLICT, "REQUEST_IN_PROGRESS";
    LastOwner = CONFLICT, "LAST_OWNER";
    UserChangeInProgress = CONFLICT, "USER_CHANGE_IN_PROGRESS";
    LinkExpired = GONE, "LINK_EXPIRED";
    PayloadTooLarge = PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE";
    UnsupportedMediaType = UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE";
    IdempotencyKeyReused = UNPROCESSABLE_ENTITY, "IDEMPOTENCY_KEY_REUSED";
    InternalError = INTERNAL_SERVER_ERROR, "INTERNAL_ERROR";
    Auth0Failed = BAD_GATEWAY, "AUTH0_FAILED";
    EmailFailed = BAD_GATEWAY, "EMAIL_FAILED";
    DatabaseUnavailable = SERVICE_UNAVAILABLE, "DATABASE_UNAVAILABLE";
    DatabaseBusy = SERVICE_UNAVAILABLE, "DATABASE_BUSY";
    Auth0Unavailable = SERVICE_UNAVAILABLE, "AUTH0_UNAVAILABLE";
    EmailUnavailable = SERVICE_UNAVAILABLE, "EMAIL_UNAVAILABLE";
    SecretsUnavailable = SERVICE_UNAVAILABLE, "SECRETS_UNAVAILABLE";
    Timeout = SERVICE_UNAVAILABLE, "TIMEOUT";
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn every_code_is_listed_once_and_spelled_as_its_name_in_upper_snake_case() {
        let texts: HashSet<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(texts.len(), ErrorCode::ALL.len());
        for code in ErrorCode::ALL {
            let name: String = format!("{code:?}")
                .chars()
                .flat_map(|c| {
                    let gap = c.is_ascii_uppercase().then_some('_');
                    gap.into_iter().chain([c.to_ascii_uppercase()])
                })
                .collect();
            assert_eq!(name.trim_start_matches('_'), code.as_str());
        }
    }
}
