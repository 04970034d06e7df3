//! What can happen to a user, across both systems: create (with the password-setup
//! invitation), send the invitation again, and the read the admin panel makes before a create.
//! Each mutating operation is a [`crate::flow::Operation`], run all or nothing by
//! [`crate::flow::run`] for a principal of [`crate::access`]; the HTTP edges (the admin API)
//! parse requests into these and render what they return.

mod auth0_user;
mod create;
mod error;
mod exists;
mod invitation;
mod resend;

pub use create::{CreateUser, CreatedUser};
pub use error::LifecycleError;
pub use exists::email_exists;
pub use resend::{ResendInvitation, ResentInvitation};

/// The steps of the user operations, besides the ones every flow shares ([`Step`]'s).
mod steps {
    use crate::flow::Step;

    pub const VALIDATE: Step = Step::local("validate", "checking the request against the database");
    pub const INSERT_USER: Step = Step::local("insert_user", "storing the user");
    pub const EMPLOYEE: Step = Step::local("employee", "storing the employee");
    pub const PERMISSIONS: Step = Step::local("permissions", "storing the page permissions");
    pub const FIND_USER: Step = Step::local("find_user", "looking up the user");
    pub const AUTH0_CREATE: Step = Step::new("auth0_create", "creating the Auth0 user");
    pub const AUTH0_ADOPT: Step = Step::new("auth0_adopt", "adopting the existing Auth0 user");
    pub const STORE_AUTH0_ID: Step = Step::new("store_auth0_id", "storing the Auth0 user id");
    pub const RESET_TOKEN: Step = Step::new("reset_token", "storing the password-setup token");
    pub const SEND_EMAIL: Step = Step::new("send_email", "sending the password-setup email");
}

#[cfg(doc)]
use crate::flow::Step;
