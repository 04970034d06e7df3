//! What a dependency did to a flow: the one failure type every flow's error carries beside its
//! own refusals, so deciding what a failure means (retry it, keep the connection, undo Auth0,
//! answer 502 or 503) is written once.

use super::Step;
use crate::auth0::Auth0Error;
use crate::db::DbError;
use crate::email::EmailError;

#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("the database failed while {}", .step.doing())]
    Database {
        step: Step,
        #[source]
        source: DbError,
    },
    #[error("no database connection available")]
    Pool(#[source] DbError),
    #[error("Auth0 failed while {}", .step.doing())]
    Auth0 {
        step: Step,
        #[source]
        source: Auth0Error,
    },
    #[error("the email API failed while {}", .step.doing())]
    Email {
        step: Step,
        #[source]
        source: EmailError,
    },
}

impl Failure {
    pub fn database(step: Step) -> impl FnOnce(DbError) -> Self {
        move |source| Self::Database { step, source }
    }

    pub fn auth0(step: Step) -> impl FnOnce(Auth0Error) -> Self {
        move |source| Self::Auth0 { step, source }
    }

    pub fn email(step: Step) -> impl FnOnce(EmailError) -> Self {
        move |source| Self::Email { step, source }
    }

    /// The step it happened in (what a rollback metric is labelled with).
    pub fn step(&self) -> Step {
        match self {
            Self::Database { step, .. } | Self::Auth0 { step, .. } | Self::Email { step, .. } => {
                *step
            }
            Self::Pool(_) => Step::BEGIN,
        }
    }

    /// A connection lost before anything outside the database was asked to change: the same
    /// attempt on a fresh connection may just work.
    pub fn is_retryable_on_a_fresh_connection(&self) -> bool {
        matches!(
            self,
            Self::Database { step, source }
                if step.precedes_outside_calls() && source.is_connection_lost()
        )
    }

    /// The connection must not serve anyone again: its server stopped answering, or it was
    /// found dead.
    pub fn leaves_connection_unusable(&self) -> bool {
        matches!(self, Self::Database { source, .. } if source.leaves_connection_unusable())
    }

    /// The COMMIT was sent but its answer never came (no answer in time, connection lost):
    /// whether it landed is unknown.
    pub fn commit_outcome_unknown(&self) -> bool {
        match self {
            Self::Database { step, source } if *step == Step::COMMIT => {
                matches!(source, DbError::NoAnswer(_)) || source.is_connection_lost()
            }
            _ => false,
        }
    }

    /// The email API got the message but did not answer (a timeout, a connection lost after
    /// sending): it may have accepted it, and the person may hold its link.
    pub fn email_may_have_been_sent(&self) -> bool {
        matches!(
            self,
            Self::Email { source: EmailError::Unreachable(err), .. } if !err.is_connect()
        )
    }
}
