//! The core of every flow that changes both systems:
//!
//! ```text
//! BEGIN ║ the principal (access::resolve) ║ the operation's first reads    one round trip
//!   [Idempotency-Key: its lock and stored answer]
//!   [an intent (intent::Intent): recorded, COMMIT; BEGIN ║ principal ║ reads again]
//!   [the work in a savepoint, for the key]
//!   the operation's rows; each Auth0 change recorded with its inverse (Auth0Changes)
//!   [the answer stored for the key] [the intent removed]
//! COMMIT
//! any failure: the Auth0 changes undone (unless the outcome is ambiguous), ROLLBACK
//! ```
//!
//! A flow is an [`Operation`]; [`run`] drives it on a pooled connection ([`connection`]) and
//! decides what its errors mean with [`Failure`], [`Auth0Changes`], [`idempotency`] and
//! [`intent`]. The authorization rules live in [`crate::access`].

mod auth0_changes;
pub mod connection;
mod failure;
pub mod idempotency;
pub mod intent;
mod step;

use std::future::Future;
use std::pin::Pin;

use deadpool_postgres::Object;
use serde_json::Value;

pub use auth0_changes::{Auth0Changes, Compensation};
pub use connection::CarriesFailure;
pub use failure::Failure;
pub use idempotency::{IdempotentRequest, KeyRefusal, Outcome};
pub use intent::Intent;
pub use step::Step;

use crate::access::{self, Credential, Denied, Principal};
use crate::db::{Bound, Tx};
use crate::deadline::Deadline;
use crate::domain::TenantId;
use crate::state::AppState;

/// The principal of `credential` ([`access::resolve`]), or why there is none in the flow's
/// error: a refusal as it is, a database failure as the authorization step's.
pub async fn authorize<E: From<Denied> + From<Failure>>(
    client: &impl deadpool_postgres::GenericClient,
    db: Bound,
    credential: &Credential,
) -> Result<Principal, E> {
    access::resolve(client, db, credential)
        .await
        .map_err(|unresolved| match unresolved {
            access::Unresolved::Denied(denied) => E::from(denied),
            access::Unresolved::Database(err) => E::from(Failure::database(Step::AUTHORIZE)(err)),
        })
}

/// Another operation on the same user has not finished (its intent is there).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("another change to this user is in progress")]
pub struct Busy;

/// The error of a flow that [`run`] drives: refusals of its own, plus what the core may
/// answer (a denial, a key that cannot be used now, a user busy with another operation, a
/// dependency's failure).
pub trait FlowError:
    CarriesFailure + From<Denied> + From<KeyRefusal> + From<Busy> + Send + Sync + 'static
{
    /// Records what was done about the Auth0 changes, for the answer and the logs.
    fn with_compensation(self, outcome: Compensation) -> Self;

    /// What was done about the Auth0 changes.
    fn compensation(&self) -> Compensation;
}

/// What every step of an operation may use.
pub struct Context<'a> {
    pub state: &'a AppState,
    /// Bounds every database wait of the attempt (see [`Bound::work`]).
    pub db: Bound,
    pub deadline: &'a Deadline,
    pub principal: &'a Principal,
}

/// A change to a user that may touch both systems.
pub trait Operation: Sync {
    /// What the operation returns once committed.
    type Output: Send + Sync;
    type Error: FlowError;
    /// What [`Operation::reads`] found.
    type Reads: Send;

    /// With an intent, the intent is removed after [`Operation::after_commit`] succeeded,
    /// not in the operation's COMMIT.
    const FINISHES_AFTER_COMMIT: bool = false;

    /// Sent with BEGIN and the principal's lookup, in one round trip, before anything is
    /// decided: reads that may lock rows but never write (a replayed `Idempotency-Key` answer
    /// must find nothing written). Must not depend on the principal.
    fn reads(&self, client: &Object, db: Bound) -> impl Future<Output = Self::Reads> + Send;

    /// An operation that changes the Auth0 user of an existing row names it here, once the
    /// decisions that may refuse it passed: [`run`] then records the intent and commits it
    /// before the operation runs, in a second transaction (see [`intent`]). `None`, the
    /// default: the operation needs none (what it leaves in Auth0 after a crash is told apart
    /// by its tags, or it changes nothing there) and runs in the reads' transaction.
    fn intent(
        &self,
        _cx: &Context<'_>,
        _reads: &Self::Reads,
    ) -> Result<Option<Intent>, Self::Error> {
        Ok(None)
    }

    /// Everything before COMMIT: the decisions, the rows, and the Auth0 changes, each made
    /// through `auth0` so that it is undone when the transaction does not commit.
    fn run(
        &self,
        cx: &Context<'_>,
        tx: &Tx<'_>,
        auth0: &mut Auth0Changes<'_>,
        reads: Self::Reads,
    ) -> impl Future<Output = Result<Self::Output, Self::Error>> + Send;

    /// After COMMIT: what can only follow the rows (deleting the Auth0 user of a deleted row).
    /// A failure is logged, and what it did not do is left to cleanup by the intent.
    fn after_commit(
        &self,
        _cx: &Context<'_>,
        _output: &Self::Output,
    ) -> impl Future<Output = Result<(), Failure>> + Send {
        async { Ok(()) }
    }

    /// Once the COMMIT landed: the operation's one info line.
    fn committed(&self, output: &Self::Output);
}

/// The future of [`run`].
pub type Running<'a, O> = Pin<
    Box<
        dyn Future<Output = Result<Outcome<<O as Operation>::Output>, <O as Operation>::Error>>
            + Send
            + 'a,
    >,
>;

/// Runs `operation` for `credential`: authorized, all or nothing across both systems, and
/// replayed instead of run again for a repeated `Idempotency-Key`.
///
/// Boxed as a `Send` future here, where every lifetime is known: the flow's futures nest deep
/// enough to hit rustc's query depth in its callers', and a `Send` left to be proved at the
/// runtime's spawn, through the generic operation, is one rustc cannot always prove.
pub fn run<'a, O: Operation>(
    state: &'a AppState,
    credential: &'a Credential,
    operation: &'a O,
    key: Option<&'a IdempotentRequest<'a, O::Output, O::Error>>,
    deadline: &'a Deadline,
) -> Running<'a, O> {
    Box::pin(async move {
        let db = Bound::work(*deadline, &state.config.timeouts);
        let attempt = Attempt {
            state,
            db,
            deadline,
            operation,
            id: uuid::Uuid::new_v4(),
        };
        let mut attempts = connection::Attempts::new(state, db);
        loop {
            let mut client = attempts.connection().await?;
            let result = attempt.on(&mut client, credential, key).await;
            if !attempts.again(client, &result) {
                return result;
            }
        }
    })
}

struct Attempt<'a, O> {
    state: &'a AppState,
    db: Bound,
    deadline: &'a Deadline,
    operation: &'a O,
    /// Marks the request's intent as its own, across its tries on fresh connections.
    id: uuid::Uuid,
}

type Key<'r, O> =
    Option<&'r IdempotentRequest<'r, <O as Operation>::Output, <O as Operation>::Error>>;

impl<O: Operation> Attempt<'_, O> {
    async fn on(
        &self,
        client: &mut Object,
        credential: &Credential,
        key: Key<'_, O>,
    ) -> Result<Outcome<O::Output>, O::Error> {
        let db = self.db;
        let (tx, principal, reads) = self.begin(client, credential).await?;
        let cx = self.context(&principal);
        let tenant = principal.tenant_id;
        if let Some(request) = key
            && let Some(answer) = idempotency::claim(&tx, db, tenant, request).await?
        {
            return Ok(Outcome::Replayed(answer));
        }
        let intent = match self.operation.intent(&cx, &reads) {
            Ok(intent) => intent,
            Err(refusal) => return Err(self.refused(tx, tenant, key, refusal, None).await),
        };
        let Some(intent) = intent else {
            return self.work(tx, &cx, key, reads, None).await;
        };
        // Recorded and committed in one round trip.
        crate::db::ensure_prepared(db, tx.client(), &[crate::db::intents::INSERT])
            .await
            .map_err(Failure::database(intent::INTENT))?;
        let connection = tx.client();
        let recorded = self
            .commit_after(tx, |db| intent::record(connection, db, &intent, self.id))
            .await?;
        if !recorded {
            // Not stored for the key: it says "not now", and the key's retry must run.
            return Err(Busy.into());
        }

        // The intent is committed: from here on every way out removes it, or leaves it to
        // cleanup when Auth0 may not match the row.
        let result = self.with_intent(client, credential, key, &intent).await;
        match &result {
            Ok(Outcome::Done(output)) if O::FINISHES_AFTER_COMMIT => {
                match self
                    .operation
                    .after_commit(&self.context(&principal), output)
                    .await
                {
                    Ok(()) => self.close(client, &intent).await,
                    Err(failure) => {
                        tracing::warn!(error = %failure, "left for the cleanup job to finish");
                    }
                }
            }
            Ok(_) => {}
            Err(err) if err.failure().is_none_or(|_| self.agrees(err)) => {
                self.close(client, &intent).await
            }
            Err(_) => tracing::warn!("the change is left for the cleanup job to finish"),
        }
        result
    }

    /// The second transaction of an operation with an intent: BEGIN, the principal and the
    /// reads again, and the work.
    async fn with_intent(
        &self,
        client: &mut Object,
        credential: &Credential,
        key: Key<'_, O>,
        intent: &Intent,
    ) -> Result<Outcome<O::Output>, O::Error> {
        let (tx, principal, reads) = self.begin(client, credential).await?;
        let cx = self.context(&principal);
        self.work(tx, &cx, key, reads, Some(intent)).await
    }

    fn context<'p>(&'p self, principal: &'p Principal) -> Context<'p> {
        Context {
            state: self.state,
            db: self.db,
            deadline: self.deadline,
            principal,
        }
    }

    /// BEGIN, the principal and the operation's reads, in one round trip.
    async fn begin<'c>(
        &self,
        client: &'c mut Object,
        credential: &Credential,
    ) -> Result<(Tx<'c>, Principal, O::Reads), O::Error> {
        let db = self.db;
        let operation = self.operation;
        // Prepared first, so the lookup reaches the server before the operation's reads: when
        // both fail (a table lock), the caller's is the answer.
        crate::db::ensure_prepared(db, client, access::STATEMENTS)
            .await
            .map_err(Failure::database(Step::AUTHORIZE))?;
        let (tx, (principal, reads)) = Tx::begin_with(client, db, |client, db| async move {
            tokio::join!(
                biased;
                authorize::<O::Error>(client, db, credential),
                operation.reads(client, db)
            )
        })
        .await
        .map_err(Failure::database(Step::BEGIN))?;
        Ok((tx, principal?, reads))
    }

    /// After a failure: whether both systems are as they were (nothing changed in Auth0, or
    /// every change undone), so the intent can go.
    fn agrees(&self, err: &O::Error) -> bool {
        matches!(
            err.compensation(),
            Compensation::NotNeeded | Compensation::Undone
        )
    }

    /// Removes the intent after the transaction ended; if even that fails, cleanup does it.
    async fn close(&self, client: &Object, intent: &Intent) {
        if let Err(failure) = intent::close(client, self.db, intent.user_id).await {
            tracing::warn!(error = %failure, "the intent is left for the cleanup job");
        }
    }

    /// The operation in `tx`, up to its COMMIT: in a savepoint when it has a key (a refusal
    /// is stored in its place, a failure leaves the key free), with the intent removed in the
    /// same COMMIT, and the Auth0 changes undone when it does not commit.
    async fn work(
        &self,
        mut tx: Tx<'_>,
        cx: &Context<'_>,
        key: Key<'_, O>,
        reads: O::Reads,
        intent: Option<&Intent>,
    ) -> Result<Outcome<O::Output>, O::Error> {
        let db = self.db;
        let operation = self.operation;
        let tenant = cx.principal.tenant_id;
        let mut auth0 = Auth0Changes::new(self.state, self.deadline);
        let Some(request) = key else {
            return match operation.run(cx, &tx, &mut auth0, reads).await {
                Ok(output) => self
                    .commit(tx, auth0, output, intent)
                    .await
                    .map(Outcome::Done),
                Err(err) => Err(auth0.undo(err).await),
            };
        };
        let work = db
            .on(tx.savepoint("request"))
            .await
            .map_err(Failure::database(Step::IDEMPOTENCY))?;
        let output = match operation.run(cx, &work, &mut auth0, reads).await {
            Ok(output) => output,
            Err(err) => {
                let err = auth0.undo(err).await;
                if (request.render)(Err(&err)).0 >= 500 {
                    return Err(err);
                }
                return match db.on(work.rollback()).await {
                    Ok(()) => Err(self.refused(tx, tenant, key, err, intent).await),
                    Err(rollback) => {
                        let failure = Failure::database(Step::IDEMPOTENCY)(rollback);
                        tracing::warn!(error = %failure, "the refusal could not be stored for replay");
                        Err(err)
                    }
                };
            }
        };
        let answer = (request.render)(Ok(&output));
        let released = db
            .on(work.commit())
            .await
            .map_err(Failure::database(Step::COMMIT));
        let stored = match released {
            Ok(()) => idempotency::store(&tx, db, tenant, request, answer).await,
            Err(failure) => Err(failure),
        };
        match stored {
            Ok(()) => self
                .commit(tx, auth0, output, intent)
                .await
                .map(Outcome::Done),
            Err(failure) => Err(auth0.undo(O::Error::from(failure)).await),
        }
    }

    /// A refusal: with a key, its answer stored (in the undone work's place) and committed,
    /// the intent removed in the same COMMIT; without, the transaction rolls back.
    async fn refused(
        &self,
        tx: Tx<'_>,
        tenant: TenantId,
        key: Key<'_, O>,
        err: O::Error,
        intent: Option<&Intent>,
    ) -> O::Error {
        let Some(request) = key else {
            return err;
        };
        let answer = (request.render)(Err(&err));
        if answer.0 >= 500 {
            return err;
        }
        if let Err(failure) = self
            .store_and_commit(tx, tenant, request, answer, intent)
            .await
        {
            tracing::warn!(error = %failure, "the refusal could not be stored for replay");
        }
        err
    }

    async fn store_and_commit(
        &self,
        tx: Tx<'_>,
        tenant: TenantId,
        request: &IdempotentRequest<'_, O::Output, O::Error>,
        answer: (u16, Value),
        intent: Option<&Intent>,
    ) -> Result<(), Failure> {
        idempotency::store(&tx, self.db, tenant, request, answer).await?;
        if let Some(intent) = intent {
            intent::close(tx.client(), self.db, intent.user_id).await?;
        }
        self.db
            .on(tx.commit())
            .await
            .map_err(Failure::database(Step::COMMIT))
    }

    /// COMMIT, with the intent's removal in the same round trip (unless the operation finishes
    /// after its COMMIT); if it fails, the Auth0 changes are undone, unless the COMMIT may
    /// have landed.
    async fn commit(
        &self,
        tx: Tx<'_>,
        auth0: Auth0Changes<'_>,
        output: O::Output,
        intent: Option<&Intent>,
    ) -> Result<O::Output, O::Error> {
        let closing = intent.filter(|_| !O::FINISHES_AFTER_COMMIT);
        let committed = match closing {
            Some(intent) => {
                let db = self.db;
                let prepared =
                    crate::db::ensure_prepared(db, tx.client(), &[crate::db::intents::DELETE])
                        .await
                        .map_err(Failure::database(intent::INTENT));
                match prepared {
                    Ok(()) => {
                        let client = tx.client();
                        self.commit_after(tx, |db| intent::close(client, db, intent.user_id))
                            .await
                    }
                    Err(failure) => Err(failure),
                }
            }
            None => self
                .db
                .on(tx.commit())
                .await
                .map_err(Failure::database(Step::COMMIT)),
        };
        if let Err(failure) = committed {
            return Err(auth0.undo(O::Error::from(failure)).await);
        }
        self.operation.committed(&output);
        Ok(output)
    }

    /// COMMIT, with `first` (prepared statements, given the burst's bound) sent ahead of it in
    /// the same round trip. A
    /// failure of `first` aborted the transaction: the COMMIT then answered, but rolled back,
    /// and the failure is `first`'s. No answer to the round trip is the COMMIT's (it may have
    /// landed).
    async fn commit_after<T, F: Future<Output = Result<T, Failure>>>(
        &self,
        tx: Tx<'_>,
        first: impl FnOnce(Bound) -> F,
    ) -> Result<T, Failure> {
        let (first, committed) = self
            .db
            .burst(|db| async move { tokio::join!(biased; first(db), db.on(tx.commit())) })
            .await
            .map_err(Failure::database(Step::COMMIT))?;
        let value = first?;
        committed.map_err(Failure::database(Step::COMMIT))?;
        Ok(value)
    }
}
