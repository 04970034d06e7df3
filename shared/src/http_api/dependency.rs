//! The one mapping from a dependency's failure to an answer, used by every handler: 503 when
//! the dependency could not be reached or there was no time left to call it, 502 when it
//! answered with a failure, 500 only for what looks like a bug. Each API says in `outcome`
//! what the failure left behind.

use super::{ApiError, ErrorCode};
use crate::auth0::Auth0Error;
use crate::db::DbError;
use crate::email::EmailError;
use crate::flow::{Compensation, Failure};

/// What an operation that failed left behind, in the words of its API.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    /// Nothing was kept: "Nothing was created; it is safe to try again."
    pub nothing_kept: &'static str,
    /// The COMMIT was sent and never confirmed, so it may have landed.
    pub commit_unknown: &'static str,
    /// The database is as it was, but an Auth0 change could not be undone yet (cleanup will):
    /// what that means for a retry.
    pub undo_pending: &'static str,
}

impl Outcome {
    /// For a route that changes nothing in Auth0, so has nothing to undo there.
    pub const NO_AUTH0_CHANGE: &'static str = "Nothing was changed; a change in Auth0 could not be undone yet and the cleanup job \
         will finish it.";
}

/// The answer to `failure`; `compensation` says what became of the Auth0 changes.
pub fn answer(failure: &Failure, compensation: Compensation, outcome: Outcome) -> ApiError {
    let kept = if compensation == Compensation::Failed {
        outcome.undo_pending
    } else {
        outcome.nothing_kept
    };
    match failure {
        // Not a dependency's fault: too little of the Lambda's time was left to call it.
        Failure::Auth0 {
            source: Auth0Error::Deadline(_),
            ..
        }
        | Failure::Email {
            source: EmailError::Deadline(_),
            ..
        }
        | Failure::Database {
            source: DbError::Deadline(_),
            ..
        }
        | Failure::Pool(DbError::Deadline(_)) => ApiError::new(
            ErrorCode::Timeout,
            format!("The request ran out of time. {kept}"),
        ),
        Failure::Auth0 {
            source: Auth0Error::Secret(_),
            ..
        }
        | Failure::Email {
            source: EmailError::Secret(_),
            ..
        } => ApiError::new(
            ErrorCode::SecretsUnavailable,
            format!("The service's credentials could not be read. {kept}"),
        ),
        Failure::Auth0 { source, .. } if source.is_unavailable() => ApiError::new(
            ErrorCode::Auth0Unavailable,
            format!("Auth0 is not reachable or is rate limiting us. {kept}"),
        ),
        Failure::Auth0 { step, source } => ApiError::new(
            ErrorCode::Auth0Failed,
            format!(
                "Auth0 failed while {} ({}). {kept}",
                step.doing(),
                auth0_status(source)
            ),
        ),
        Failure::Email { source, .. } if source.is_unavailable() => ApiError::new(
            ErrorCode::EmailUnavailable,
            format!("The email service is not reachable. {kept}"),
        ),
        Failure::Email { .. } => ApiError::new(
            ErrorCode::EmailFailed,
            format!("The password-setup email could not be sent. {kept}"),
        ),
        // Unlike every other failure, something may have been kept.
        Failure::Database { .. } if failure.commit_outcome_unknown() => {
            ApiError::new(ErrorCode::DatabaseUnavailable, outcome.commit_unknown)
        }
        // A lock held too long: on `users` while checking the caller, or on an insert, where
        // waiting for a table lock and for another insert of the same address look the same
        // to us; or two requests that waited for each other. Transient either way.
        Failure::Database { step, source } if source.is_contention() => ApiError::new(
            ErrorCode::DatabaseBusy,
            format!(
                "The database was busy (a lock was held too long, or two requests waited for each other) while {}. {kept}",
                step.doing()
            ),
        ),
        Failure::Database { step, source } if source.is_unavailable() => ApiError::new(
            ErrorCode::DatabaseUnavailable,
            format!("The database did not answer while {}. {kept}", step.doing()),
        ),
        Failure::Database { step, .. } => ApiError::new(
            ErrorCode::InternalError,
            format!("Something went wrong while {}. {kept}", step.doing()),
        ),
        Failure::Pool(_) => ApiError::new(
            ErrorCode::DatabaseUnavailable,
            format!("No database connection is available. {kept}"),
        ),
    }
}

fn auth0_status(err: &Auth0Error) -> String {
    match err {
        Auth0Error::Api { status, .. } => format!("status {status}"),
        Auth0Error::Credentials { status, .. } => format!("credentials refused, status {status}"),
        _ => "unexpected answer".into(),
    }
}
