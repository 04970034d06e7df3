use crate::auth0::Auth0Error;
use crate::flow::{CarriesFailure, Failure};

/// The steps of set-password, besides the ones every flow shares (`flow::Step`'s).
pub(super) mod steps {
    use crate::flow::Step;

    pub const FIND_TOKEN: Step = Step::local("find_token", "looking up the link");
    pub const AUTH0_PASSWORD: Step = Step::new("auth0_password", "setting the password");
    /// Marking the tokens used and the user as set up, after Auth0 took the password.
    pub const COMPLETE_SETUP: Step =
        Step::new("complete_setup", "recording that the password was set");
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
    #[error(transparent)]
    Failed(#[from] Failure),
}

impl SetPasswordError {
    /// Auth0's answer to the password: its policy's refusal is the person's to fix.
    pub(super) fn from_auth0(err: Auth0Error) -> Self {
        match err.password_policy_message() {
            Some(message) => Self::WeakPassword(message.to_string()),
            None => Failure::auth0(steps::AUTH0_PASSWORD)(err).into(),
        }
    }
}

impl CarriesFailure for SetPasswordError {
    fn failure(&self) -> Option<&Failure> {
        match self {
            Self::Failed(failure) => Some(failure),
            _ => None,
        }
    }
}
