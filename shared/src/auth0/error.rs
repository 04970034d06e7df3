//! How a Management API call fails, and which call it was.

use std::fmt;

use crate::deadline::DeadlineExceeded;
use crate::secrets::SecretsError;

/// A Management API operation the client performs, as errors and log lines name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Token,
    CreateUser,
    UsersByEmail,
    UpdateUser,
    DeleteUser,
    GetUser,
    SearchUsers,
    RevokeSessions,
    RevokeRefreshTokens,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::CreateUser => "create_user",
            Self::UsersByEmail => "users_by_email",
            Self::UpdateUser => "update_user",
            Self::DeleteUser => "delete_user",
            Self::GetUser => "get_user",
            Self::SearchUsers => "search_users",
            Self::RevokeSessions => "revoke_sessions",
            Self::RevokeRefreshTokens => "revoke_refresh_tokens",
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Auth0Error {
    #[error("Auth0 refused our client credentials ({status}: {description})")]
    Credentials { status: u16, description: String },
    #[error("Auth0 answered {status} to {op}: {message}")]
    Api {
        op: Op,
        status: u16,
        message: String,
        error_code: Option<String>,
    },
    #[error("Auth0 kept rate-limiting {op} (429)")]
    RateLimited { op: Op },
    #[error("Auth0 did not answer {op} in time or at all")]
    Unreachable {
        op: Op,
        #[source]
        source: reqwest::Error,
    },
    #[error("Auth0 sent an unexpected answer to {op}: {detail}")]
    Malformed { op: Op, detail: String },
    #[error(transparent)]
    Deadline(#[from] DeadlineExceeded),
    #[error("the Auth0 credentials could not be read: {0}")]
    Secret(#[from] SecretsError),
}

impl Auth0Error {
    /// Without the request URL: `users-by-email` carries the address in its query string,
    /// and this error is logged and reported.
    pub(super) fn unreachable(op: Op, source: reqwest::Error) -> Self {
        Self::Unreachable {
            op,
            source: source.without_url(),
        }
    }

    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Api { status: 409, .. })
    }

    /// Whether Auth0 may have carried out the request although we got no usable answer
    /// (a timeout, a dropped connection, a 5xx). A refused token, a 4xx or a 429 means it did not.
    pub fn may_have_acted(&self) -> bool {
        match self {
            // The token request failed: the call itself was never sent.
            Self::Unreachable { op: Op::Token, .. }
            | Self::Malformed { op: Op::Token, .. }
            | Self::Api { op: Op::Token, .. } => false,
            Self::Unreachable { .. } | Self::Malformed { .. } => true,
            Self::Api { status, .. } => *status >= 500,
            Self::Credentials { .. }
            | Self::RateLimited { .. }
            | Self::Deadline(_)
            | Self::Secret(_) => false,
        }
    }

    /// Auth0's message when it refused a password by its policy: a 400 whose message starts
    /// with the rule, `PasswordStrengthError: …`, `PasswordHistoryError: …`,
    /// `PasswordDictionaryError: …`, `PasswordNoUserInfoError: …`.
    pub fn password_policy_message(&self) -> Option<&str> {
        let Self::Api {
            status: 400,
            message,
            ..
        } = self
        else {
            return None;
        };
        let (rule, _) = message.split_once(':')?;
        (rule.starts_with("Password") && rule.ends_with("Error")).then_some(message.as_str())
    }

    /// Auth0 could not be reached or would not serve us now; as opposed to answering "no".
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            Self::Unreachable { .. }
                | Self::RateLimited { .. }
                | Self::Deadline(_)
                | Self::Secret(_)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_op_reads_as_the_name_errors_and_logs_have_always_used() {
        let names = [
            (Op::Token, "token"),
            (Op::CreateUser, "create_user"),
            (Op::UsersByEmail, "users_by_email"),
            (Op::UpdateUser, "update_user"),
            (Op::DeleteUser, "delete_user"),
            (Op::GetUser, "get_user"),
            (Op::SearchUsers, "search_users"),
            (Op::RevokeSessions, "revoke_sessions"),
            (Op::RevokeRefreshTokens, "revoke_refresh_tokens"),
        ];
        for (op, name) in names {
            assert_eq!((op.as_str(), op.to_string().as_str()), (name, name));
        }
        let err = Auth0Error::RateLimited { op: Op::GetUser };
        assert_eq!(err.to_string(), "Auth0 kept rate-limiting get_user (429)");
    }
}
