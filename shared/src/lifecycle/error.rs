//! The one error of the user operations: why one was refused, or which dependency failed and
//! what was done about Auth0. Its messages name no operation: the HTTP edges say what the
//! operation was.

use crate::access::Denied;
use crate::domain::PageId;
use crate::flow::{Busy, CarriesFailure, Compensation, Failure, FlowError, KeyRefusal};

#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error(transparent)]
    Denied(#[from] Denied),
    #[error(transparent)]
    Key(#[from] KeyRefusal),
    #[error(transparent)]
    Busy(#[from] Busy),
    #[error("unknown page ids")]
    UnknownPages(Vec<PageId>),
    #[error("employee not found in the caller's tenant")]
    EmployeeNotFound,
    #[error("employee already linked to a user")]
    EmployeeAlreadyLinked,
    #[error("a user with this email already exists")]
    EmailTaken,
    /// The user is still `pending_…`: a create-user is running for it.
    #[error("the user is still being created")]
    CreationInProgress,
    #[error("an Auth0 user with this email exists and was not created by this system")]
    Auth0UserExists,
    #[error("no such user in the caller's tenant")]
    UserNotFound,
    #[error("the user has already set a password")]
    AlreadyActivated,
    #[error("the user is deactivated")]
    UserInactive,
    /// Auth0's password policy refused the password the request carried; its message says
    /// which rule.
    #[error("no such SCIM token in the caller's tenant")]
    TokenNotFound,
    #[error("Auth0 refused the password: {0}")]
    WeakPassword(String),
    #[error("{failure}")]
    Failed {
        #[source]
        failure: Failure,
        compensation: Compensation,
    },
}

impl From<Failure> for LifecycleError {
    fn from(failure: Failure) -> Self {
        Self::Failed {
            failure,
            compensation: Compensation::NotNeeded,
        }
    }
}

impl CarriesFailure for LifecycleError {
    fn failure(&self) -> Option<&Failure> {
        match self {
            Self::Failed { failure, .. } => Some(failure),
            _ => None,
        }
    }
}

impl FlowError for LifecycleError {
    fn with_compensation(mut self, outcome: Compensation) -> Self {
        if let Self::Failed { compensation, .. } = &mut self {
            *compensation = outcome;
        }
        self
    }

    fn compensation(&self) -> Compensation {
        match self {
            Self::Failed { compensation, .. } => *compensation,
            _ => Compensation::NotNeeded,
        }
    }
}
