//! What can happen to a user, across both systems: create (with the password-setup
//! invitation), send the invitation again, change the role and page permissions, deactivate,
//! reactivate, delete; and the reads: one user, a tenant's users, whether an address is taken.
//! Each mutating operation is a [`crate::flow::Operation`], run all or nothing by
//! [`crate::flow::run`] for a principal of [`crate::access`]; the HTTP edges (the admin API)
//! parse requests into these and render what they return.

mod auth0_user;
mod change;
mod create;
mod delete;
mod error;
mod exists;
mod invitation;
mod resend;
mod target;
mod views;

pub use change::{ChangeUser, UserChanges};
pub use create::{CreateUser, CreatedUser};
pub use delete::{DeleteUser, DeletedUser};
pub use error::LifecycleError;
pub use exists::email_exists;
pub use resend::{ResendInvitation, ResentInvitation};
pub use views::{matching_users, user, users};

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
    pub const OWNERS: Step = Step::local("owners", "checking the tenant's owners");
    pub const CHANGE_USER: Step = Step::local("change_user", "storing the change");
    pub const READ_USER: Step = Step::local("read_user", "reading the user back");
    pub const AUTH0_ROLE: Step = Step::new("auth0_role", "updating the role in Auth0");
    pub const AUTH0_BLOCK: Step = Step::new("auth0_block", "blocking the Auth0 user");
    pub const AUTH0_UNBLOCK: Step = Step::new("auth0_unblock", "unblocking the Auth0 user");
    pub const AUTH0_REVOKE: Step = Step::new(
        "auth0_revoke",
        "ending the Auth0 sessions and refresh tokens",
    );
    pub const AUTH0_DELETE: Step = Step::new("auth0_delete", "deleting the Auth0 user");
}

#[cfg(doc)]
use crate::flow::Step;
