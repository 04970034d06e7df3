use std::fmt;

use crate::auth0::Auth0Error;
use crate::domain::{PageId, Role};
use crate::email::EmailError;

/// The steps of the flow, in order; a failure names the step it happened in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Begin,
    Authorize,
    Validate,
    InsertUser,
    Employee,
    Permissions,
    Auth0Create,
    Auth0Adopt,
    StoreAuth0Id,
    ResetToken,
    SendEmail,
    Commit,
    /// resend-invitation: finding the invited user.
    FindUser,
    /// Reading or storing the answer of an `Idempotency-Key`.
    Idempotency,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Begin => "begin",
            Self::Authorize => "authorize",
            Self::Validate => "validate",
            Self::InsertUser => "insert_user",
            Self::Employee => "employee",
            Self::Permissions => "permissions",
            Self::Auth0Create => "auth0_create",
            Self::Auth0Adopt => "auth0_adopt",
            Self::StoreAuth0Id => "store_auth0_id",
            Self::ResetToken => "reset_token",
            Self::SendEmail => "send_email",
            Self::Commit => "commit",
            Self::FindUser => "find_user",
            Self::Idempotency => "idempotency",
        }
    }

    /// What the step does, for messages: "… failed while {describe}".
    pub fn describe(self) -> &'static str {
        match self {
            Self::Begin => "opening the database transaction",
            Self::Authorize => "checking the caller",
            Self::Validate => "checking the request against the database",
            Self::InsertUser => "storing the user",
            Self::Employee => "storing the employee",
            Self::Permissions => "storing the page permissions",
            Self::Auth0Create => "creating the Auth0 user",
            Self::Auth0Adopt => "adopting the existing Auth0 user",
            Self::StoreAuth0Id => "storing the Auth0 user id",
            Self::ResetToken => "storing the password-setup token",
            Self::SendEmail => "sending the password-setup email",
            Self::Commit => "committing",
            Self::FindUser => "looking up the user",
            Self::Idempotency => "checking the idempotency key",
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What happened to the Auth0 user when the flow failed after creating it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compensation {
    /// No Auth0 user was (or could have been) created.
    NotNeeded,
    Deleted,
    /// The delete failed; the user is tagged, so the cleanup job removes it.
    Failed,
    /// Not attempted: the commit got no answer and may have landed, and deleting the Auth0
    /// user of a committed row would leave a user who cannot log in. It is tagged; the
    /// cleanup job removes it if no row refers to it.
    LeftForCleanup,
    /// Not deleted on purpose: an orphan this attempt adopted (it was one before the request
    /// and stays one), or a user whose password-setup email may have gone out. A retry adopts
    /// it, makes the same token and posts the same message (which the email API delivers
    /// once), so a link the person may already hold starts to work; without a retry the
    /// cleanup job removes it after the grace period.
    KeptForRetry,
}

#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    #[error("the caller is not a user of any tenant")]
    UnknownCaller,
    #[error("the caller's account is inactive")]
    InactiveCaller,
    #[error("the caller is not an OWNER or ADMIN")]
    NotAnAdmin,
    #[error("an ADMIN cannot create a user with role {0:?}")]
    RoleNotAllowed(Role),
    #[error("unknown page ids")]
    UnknownPages(Vec<PageId>),
    #[error("employee not found in the caller's tenant")]
    EmployeeNotFound,
    #[error("employee already linked to a user")]
    EmployeeAlreadyLinked,
    #[error("a user with this email already exists")]
    EmailTaken,
    /// resend-invitation found the user still `pending_…`: a create-user is running for it.
    #[error("the user is still being created")]
    CreationInProgress,
    #[error("an Auth0 user with this email exists and was not created by this system")]
    Auth0UserExists,
    #[error("no user with this email in the caller's tenant")]
    UserNotFound,
    #[error("the user has already set a password")]
    AlreadyActivated,
    #[error("the user is deactivated")]
    UserInactive,
    #[error("another request with this Idempotency-Key is running")]
    RequestInProgress,
    #[error("this Idempotency-Key was used with another request")]
    IdempotencyKeyReused,
    #[error("Auth0 failed while {}", step.describe())]
    Auth0 {
        step: Step,
        #[source]
        source: Auth0Error,
        compensation: Compensation,
    },
    #[error("the email API failed")]
    Email {
        #[source]
        source: EmailError,
        compensation: Compensation,
    },
    #[error("the database failed while {}", step.describe())]
    Database {
        step: Step,
        #[source]
        source: crate::db::DbError,
        compensation: Compensation,
    },
    #[error("no database connection available")]
    Pool(#[source] crate::db::DbError),
}

impl CreateUserError {
    pub fn database(step: Step) -> impl FnOnce(crate::db::DbError) -> Self {
        move |source| Self::Database {
            step,
            source,
            compensation: Compensation::NotNeeded,
        }
    }

    /// A lost connection before anything left the database: a fresh connection may just work.
    pub fn is_safe_to_retry(&self) -> bool {
        match self {
            Self::Database {
                source,
                compensation: Compensation::NotNeeded,
                step,
            } => step_precedes_external_calls(*step) && source.is_connection_lost(),
            _ => false,
        }
    }

    /// The email API got the message but did not answer (a timeout, a connection lost after
    /// sending): it may have accepted it.
    pub fn email_may_have_been_sent(&self) -> bool {
        matches!(
            self,
            Self::Email {
                source: crate::email::EmailError::Unreachable(err),
                ..
            } if !err.is_connect()
        )
    }

    /// The commit was sent but its answer never came (no answer in time, connection lost):
    /// whether it landed is unknown.
    pub fn commit_outcome_unknown(&self) -> bool {
        match self {
            Self::Database {
                step: Step::Commit,
                source,
                ..
            } => matches!(source, crate::db::DbError::NoAnswer(_)) || source.is_connection_lost(),
            _ => false,
        }
    }

    /// The step a dependency failure happened in (what a rollback metric is labelled with).
    pub fn failed_step(&self) -> Option<Step> {
        match self {
            Self::Auth0 { step, .. } | Self::Database { step, .. } => Some(*step),
            Self::Email { .. } => Some(Step::SendEmail),
            Self::Pool(_) => Some(Step::Begin),
            _ => None,
        }
    }

    pub fn compensation(&self) -> Compensation {
        match self {
            Self::Auth0 { compensation, .. }
            | Self::Email { compensation, .. }
            | Self::Database { compensation, .. } => *compensation,
            _ => Compensation::NotNeeded,
        }
    }

    /// Records what the compensating delete achieved, for the response and the logs.
    pub fn with_compensation(mut self, outcome: Compensation) -> Self {
        if let Self::Auth0 { compensation, .. }
        | Self::Email { compensation, .. }
        | Self::Database { compensation, .. } = &mut self
        {
            *compensation = outcome;
        }
        self
    }
}

fn step_precedes_external_calls(step: Step) -> bool {
    matches!(
        step,
        Step::Begin
            | Step::Authorize
            | Step::FindUser
            | Step::Validate
            | Step::InsertUser
            | Step::Employee
            | Step::Permissions
    )
}
