//! The Auth0 half of a flow that changes both systems. Every change a flow makes to Auth0
//! inside its database transaction goes through [`Auth0Changes`], which records how to undo
//! it; when the transaction cannot commit, [`Auth0Changes::undo`] decides what to do about
//! them and does it, within what the deadline's compensation reserve leaves.
//!
//! | change                              | undone by                                         |
//! |-------------------------------------|---------------------------------------------------|
//! | create a user                       | deleting it (idempotent, so retried)               |
//! | take over an orphan of ours (adopt) | nothing: it was an orphan before and stays one     |
//!
//! The decision: undo, unless the outcome is ambiguous. A COMMIT without an answer may have
//! landed (a committed row may hold the login): left for cleanup, which removes what no row
//! holds. An email that may have gone out carries a link to this login: kept for the retry,
//! which adopts it and makes the link work.

use std::time::Duration;

use super::{FlowError, Step};
use crate::auth0::{Auth0Error, Auth0User, Budget, NewAuth0User, OwnershipTags, UserPatch};
use crate::deadline::Deadline;
use crate::domain::{Auth0UserId, Email, Role};
use crate::flow::Failure;
use crate::metrics::{self, Metric};
use crate::state::AppState;

/// Undoing is idempotent, so a failed attempt is tried again this often.
const UNDO_ATTEMPTS: u32 = 3;
/// Below this much time before the deadline no further undo attempt is started.
const UNDO_FLOOR: Duration = Duration::from_millis(200);

/// What happened to Auth0 when the flow failed after changing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compensation {
    /// Nothing was (or could have been) changed in Auth0.
    NotNeeded,
    /// Every change was undone.
    Undone,
    /// An undo failed; what it left carries our tags, so the cleanup job finishes it.
    Failed,
    /// Not attempted: the COMMIT got no answer and may have landed, and undoing the Auth0 side
    /// of a committed row would leave the two systems disagreeing. Cleanup removes what no row
    /// holds. Also: undone, but after a change that got no answer, which may still land after
    /// its undo; cleanup looks again once it surely has (the operation's intent stays).
    LeftForCleanup,
    /// Not undone on purpose: an orphan this attempt adopted (it was one before the request and
    /// stays one), or a user whose password-setup email may have gone out. A retry adopts it,
    /// makes the same token and posts the same message (which the email API delivers once), so
    /// a link the person may already hold starts to work; without a retry the cleanup job
    /// removes it after the grace period.
    KeptForRetry,
}

/// How a change is undone.
#[derive(Debug)]
enum Inverse {
    Delete(Auth0UserId),
    /// Nothing to undo: kept on purpose (see [`Compensation::KeptForRetry`]).
    Keep(Auth0UserId),
    /// Back to this state: `blocked`, or the role tag.
    Patch(Auth0UserId, UserPatch),
}

/// What to do about the changes when the transaction will not commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    Undo,
    KeepForRetry,
    LeaveForCleanup,
}

impl Decision {
    fn for_error<E: FlowError>(err: &E) -> Self {
        match err.failure() {
            Some(failure) if failure.commit_outcome_unknown() => Self::LeaveForCleanup,
            Some(failure) if failure.email_may_have_been_sent() => Self::KeepForRetry,
            _ => Self::Undo,
        }
    }
}

/// The Auth0 changes of one attempt, each with its inverse.
pub struct Auth0Changes<'a> {
    state: &'a AppState,
    deadline: &'a Deadline,
    made: Vec<Inverse>,
    /// What was done about a change whose call got no usable answer (it may have happened).
    unanswered: Compensation,
    /// A state change got no usable answer: it may still land after its undo, so only a later
    /// look (cleanup's, by the intent) can tell the two systems agree.
    unconfirmed: bool,
}

impl<'a> Auth0Changes<'a> {
    pub fn new(state: &'a AppState, deadline: &'a Deadline) -> Self {
        Self {
            state,
            deadline,
            made: Vec::new(),
            unanswered: Compensation::NotNeeded,
            unconfirmed: false,
        }
    }

    /// Creates the Auth0 user; undone by deleting it. `Ok(None)`: the address has a login
    /// already (Auth0's 409) and nothing changed. A create without a usable answer may have
    /// happened: the address's users tagged with `user.tags`' row id are deleted before the
    /// failure is returned.
    pub async fn create_user(
        &mut self,
        step: Step,
        user: &NewAuth0User<'_>,
    ) -> Result<Option<Auth0UserId>, Failure> {
        match self.state.auth0.create_user(user, self.deadline).await {
            Ok(id) => {
                self.made.push(Inverse::Delete(id.clone()));
                Ok(Some(id))
            }
            Err(err) if err.is_conflict() => Ok(None),
            Err(err) => {
                if err.may_have_acted() {
                    self.unanswered = self.remove_unanswered_create(user).await;
                }
                Err(Failure::auth0(step)(err))
            }
        }
    }

    /// Takes over `id`, an orphan of ours no row holds, for this flow's row: tagged for it,
    /// unblocked (unless `blocked`: the row is created deactivated), and with nothing of its
    /// past left to sign in with (a fresh random password;
    /// its sessions and refresh tokens ended when `revoke` says so), so that only the new
    /// invitation's link leads in. Never undone: it was an orphan before the request and stays
    /// one, for a retry to adopt (and the link its first attempt may have emailed to start
    /// working) or for cleanup to remove.
    pub async fn adopt(
        &mut self,
        step: Step,
        id: &Auth0UserId,
        tags: &OwnershipTags,
        password: &secrecy::SecretString,
        revoke: bool,
        blocked: bool,
    ) -> Result<(), Failure> {
        // Recorded first: whatever of this happened, the decision is the same.
        self.made.push(Inverse::Keep(id.clone()));
        let auth0 = &self.state.auth0;
        auth0
            .set_password(id, password, self.deadline)
            .await
            .map_err(Failure::auth0(step))?;
        if revoke {
            self.revoke_logins(step, id).await?;
        }
        let patch = UserPatch {
            blocked: Some(blocked),
            app_metadata: Some(serde_json::to_value(tags).expect("tags serialize")),
        };
        auth0
            .update_user(id, &patch, Budget::Work, self.deadline)
            .await
            .map(drop)
            .map_err(Failure::auth0(step))
    }

    /// Refuses every further login of the user; undone by unblocking.
    pub async fn block(&mut self, step: Step, id: &Auth0UserId) -> Result<(), Failure> {
        self.patch(
            step,
            id,
            UserPatch::blocked(true),
            UserPatch::blocked(false),
        )
        .await
    }

    /// Lets the user log in again; undone by blocking.
    pub async fn unblock(&mut self, step: Step, id: &Auth0UserId) -> Result<(), Failure> {
        self.patch(
            step,
            id,
            UserPatch::blocked(false),
            UserPatch::blocked(true),
        )
        .await
    }

    /// Sets the user's role tag to `role`; undone by setting `previous` back.
    pub async fn set_role(
        &mut self,
        step: Step,
        id: &Auth0UserId,
        role: Role,
        previous: Role,
    ) -> Result<(), Failure> {
        self.patch(step, id, UserPatch::role(role), UserPatch::role(previous))
            .await
    }

    /// Ends the user's sessions and revokes its refresh tokens (Auth0's Enterprise-plan
    /// endpoints). Not undone: a person signed out signs in again.
    pub async fn revoke_logins(&mut self, step: Step, id: &Auth0UserId) -> Result<(), Failure> {
        let auth0 = &self.state.auth0;
        auth0
            .revoke_sessions(id, Budget::Work, self.deadline)
            .await
            .map_err(Failure::auth0(step))?;
        auth0
            .revoke_refresh_tokens(id, Budget::Work, self.deadline)
            .await
            .map_err(Failure::auth0(step))
    }

    /// A state change with its inverse, recorded when the change happened or may have (no
    /// usable answer): undoing one that did not happen sets the state the user already has.
    async fn patch(
        &mut self,
        step: Step,
        id: &Auth0UserId,
        change: UserPatch,
        inverse: UserPatch,
    ) -> Result<(), Failure> {
        let result = self
            .state
            .auth0
            .update_user(id, &change, Budget::Work, self.deadline)
            .await;
        let unanswered = result.as_ref().is_err_and(Auth0Error::may_have_acted);
        if result.is_ok() || unanswered {
            self.made.push(Inverse::Patch(id.clone(), inverse));
        }
        self.unconfirmed |= unanswered;
        result.map(drop).map_err(Failure::auth0(step))
    }

    /// The transaction will not commit (or its COMMIT failed): decides what to do about the
    /// changes made, does it, and records the outcome in the error for the answer and the log.
    pub async fn undo<E: FlowError>(self, err: E) -> E {
        if self.made.is_empty() {
            return match self.unanswered {
                Compensation::NotNeeded => err,
                outcome => err.with_compensation(outcome),
            };
        }
        match Decision::for_error(&err) {
            Decision::LeaveForCleanup => {
                tracing::error!(step = "commit", error = %err, "commit unconfirmed; the auth0 changes are left for the cleanup job");
                err.with_compensation(Compensation::LeftForCleanup)
            }
            Decision::KeepForRetry => {
                tracing::warn!(step = "rollback", error = %err, "rolled back; the auth0 user is kept for a retry to adopt");
                err.with_compensation(Compensation::KeptForRetry)
            }
            Decision::Undo => {
                let mut outcome = Compensation::Undone;
                for inverse in self.made.iter().rev() {
                    outcome = worse(outcome, self.apply(inverse).await);
                }
                if self.unconfirmed && outcome == Compensation::Undone {
                    // Undone as far as anyone can tell now; the intent stays for cleanup.
                    outcome = Compensation::LeftForCleanup;
                }
                // Dropping the unfinished transaction rolls it back; this says so in the log.
                tracing::warn!(step = "rollback", error = %err, compensation = ?outcome, "rolled back");
                err.with_compensation(outcome)
            }
        }
    }

    async fn apply(&self, inverse: &Inverse) -> Compensation {
        match inverse {
            Inverse::Keep(id) => {
                tracing::info!(step = "rollback", auth0_user_id = %id, "adopted auth0 user kept");
                Compensation::KeptForRetry
            }
            Inverse::Delete(id) => {
                let undone = self.retried(id, inverse).await;
                if undone == Compensation::Undone {
                    metrics::count(Metric::CompensatingDeletes, 1, None);
                } else {
                    metrics::count(Metric::CompensatingDeleteFailures, 1, None);
                }
                undone
            }
            Inverse::Patch(id, _) => self.retried(id, inverse).await,
        }
    }

    /// An undo, tried again while it fails and the deadline allows (every undo is idempotent).
    async fn retried(&self, id: &Auth0UserId, inverse: &Inverse) -> Compensation {
        for attempt in 1..=UNDO_ATTEMPTS {
            match self.undo_once(inverse).await {
                Ok(()) => {
                    tracing::info!(step = "compensate", attempt, "auth0 change undone");
                    return Compensation::Undone;
                }
                Err(err) => {
                    tracing::warn!(step = "compensate", attempt, error = %err, "undoing an auth0 change failed");
                    if self.deadline.remaining() < UNDO_FLOOR {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
                }
            }
        }
        tracing::error!(step = "compensate", auth0_user_id = %id, "auth0 change left for the cleanup job");
        Compensation::Failed
    }

    async fn undo_once(&self, inverse: &Inverse) -> Result<(), Auth0Error> {
        let auth0 = &self.state.auth0;
        match inverse {
            Inverse::Keep(_) => Ok(()),
            Inverse::Delete(id) => auth0.delete_user(id, self.deadline).await,
            Inverse::Patch(id, patch) => auth0
                .update_user(id, patch, Budget::Cleanup, self.deadline)
                .await
                .map(drop),
        }
    }

    /// After a create without an answer: finds the user Auth0 may have made for this attempt
    /// (tagged with its row's id) and deletes it.
    async fn remove_unanswered_create(&self, user: &NewAuth0User<'_>) -> Compensation {
        let found = match self.users_with(user.email).await {
            Ok(found) => found,
            Err(err) => {
                tracing::error!(step = "compensate", error = %err, "could not check for a half-created auth0 user");
                return Compensation::Failed;
            }
        };
        let mut outcome = Compensation::NotNeeded;
        for made in found
            .iter()
            .filter(|u| u.db_user_id() == Some(user.tags.db_user_id))
        {
            let inverse = Inverse::Delete(made.id.clone());
            outcome = worse(outcome, self.apply(&inverse).await);
        }
        outcome
    }

    async fn users_with(&self, email: &Email) -> Result<Vec<Auth0User>, Auth0Error> {
        self.state.auth0.users_by_email(email, self.deadline).await
    }
}

/// The outcome of several undos: a failure anywhere is the outcome.
fn worse(so_far: Compensation, next: Compensation) -> Compensation {
    match (so_far, next) {
        (Compensation::Failed, _) | (_, Compensation::Failed) => Compensation::Failed,
        (Compensation::KeptForRetry, _) | (_, Compensation::KeptForRetry) => {
            Compensation::KeptForRetry
        }
        (Compensation::NotNeeded, next) => next,
        (so_far, _) => so_far,
    }
}
