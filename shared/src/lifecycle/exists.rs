//! check-exists: whether an address has an account, in any tenant (addresses are unique across
//! all of them), for a principal who may manage users.

use super::LifecycleError;
use super::steps::VALIDATE;
use crate::access::Credential;
use crate::db::{Bound, users};
use crate::deadline::Deadline;
use crate::domain::Email;
use crate::flow::{self, Failure, connection};
use crate::state::AppState;

pub async fn email_exists(
    state: &AppState,
    credential: &Credential,
    email: &Email,
    deadline: &Deadline,
) -> Result<bool, LifecycleError> {
    let db = Bound::work(*deadline, &state.config.timeouts);
    let mut attempts = connection::Attempts::new(state, db);
    loop {
        let client = attempts.connection().await?;
        // Pipelined on one connection: one round trip for both.
        let (principal, exists) = tokio::join!(
            flow::authorize::<LifecycleError>(&client, db, credential),
            db.on(users::email_exists(&client, email))
        );
        let result = principal.and_then(|_| {
            exists.map_err(|err| LifecycleError::from(Failure::database(VALIDATE)(err)))
        });
        if !attempts.again(client, &result) {
            return result;
        }
    }
}
