use std::fmt;

use crate::auth0::Auth0Error;
use crate::db::DbError;

/// The steps of set-password; a failure names the step it happened in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Begin,
    FindToken,
    /// Marking the tokens used and the user as set up, after Auth0 took the password.
    CompleteSetup,
    Commit,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Begin => "begin",
            Self::FindToken => "find_token",
            Self::CompleteSetup => "complete_setup",
            Self::Commit => "commit",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Self::Begin => "opening the database transaction",
            Self::FindToken => "looking up the link",
            Self::CompleteSetup => "recording that the password was set",
            Self::Commit => "committing",
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SetPasswordError {
    /// Unknown token, another address, a used token or a deactivated user: one answer for all,
    /// so the endpoint tells a guesser nothing.
    #[error("the link is not valid")]
    InvalidLink,
    #[error("the link has expired")]
    LinkExpired,
    /// Auth0's password policy refused the password; its message says which rule.
    #[error("Auth0 refused the password: {0}")]
    WeakPassword(String),
    #[error("Auth0 failed while setting the password")]
    Auth0(#[source] Auth0Error),
    #[error("the database failed while {}", step.describe())]
    Database {
        step: Step,
        #[source]
        source: DbError,
    },
    #[error("no database connection available")]
    Pool(#[source] DbError),
}

impl SetPasswordError {
    pub fn database(step: Step) -> impl FnOnce(DbError) -> Self {
        move |source| Self::Database { step, source }
    }

    /// A connection lost before Auth0 was called: a fresh connection may just work.
    pub fn is_safe_to_retry(&self) -> bool {
        matches!(
            self,
            Self::Database { step: Step::Begin | Step::FindToken, source }
                if source.is_connection_lost()
        )
    }

    /// The database did not answer, or the connection was found dead: it is not pooled again.
    pub fn database_went_silent(&self) -> bool {
        matches!(
            self,
            Self::Database { source, .. } if source.leaves_connection_unusable()
        )
    }
}

impl From<Auth0Error> for SetPasswordError {
    fn from(err: Auth0Error) -> Self {
        match err.password_policy_message() {
            Some(message) => Self::WeakPassword(message.to_string()),
            None => Self::Auth0(err),
        }
    }
}
