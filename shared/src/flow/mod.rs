//! The core of every flow that changes both systems:
//!
//! ```text
//! BEGIN ║ the principal (access::resolve) ║ the operation's first reads    one round trip
//!   [Idempotency-Key: its lock and stored answer; the work in a savepoint]
//!   the operation's rows; each Auth0 change recorded with its inverse (Auth0Changes)
//!   [the answer stored for the key]
//! COMMIT
//! any failure: the Auth0 changes undone (unless the outcome is ambiguous), ROLLBACK
//! ```
//!
//! A flow is an [`Operation`]; [`run`] drives it on a pooled connection ([`connection`]) and
//! decides what its errors mean with [`Failure`], [`Auth0Changes`] and [`idempotency`]. The
//! authorization rules live in [`crate::access`].

mod auth0_changes;
pub mod connection;
mod failure;
pub mod idempotency;
mod step;

use std::future::Future;
use std::pin::Pin;

use deadpool_postgres::Object;

pub use auth0_changes::{Auth0Changes, Compensation};
pub use connection::CarriesFailure;
pub use failure::Failure;
pub use idempotency::{IdempotentRequest, KeyRefusal, Outcome};
pub use step::Step;

use crate::access::{self, Credential, Denied, Principal};
use crate::db::{Bound, Tx};
use crate::deadline::Deadline;
use crate::state::AppState;

/// The error of a flow that [`run`] drives: refusals of its own, plus what the core may
/// answer (a denial, a key that cannot be used now, a dependency's failure).
pub trait FlowError:
    CarriesFailure + From<Denied> + From<KeyRefusal> + Send + Sync + 'static
{
    /// Records what was done about the Auth0 changes, for the answer and the logs.
    fn with_compensation(self, outcome: Compensation) -> Self;
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

    /// Sent with BEGIN and the principal's lookup, in one round trip, before anything is
    /// decided: reads that may lock rows but never write (a replayed `Idempotency-Key` answer
    /// must find nothing written). Must not depend on the principal.
    fn reads(&self, client: &Object, db: Bound) -> impl Future<Output = Self::Reads> + Send;

    /// Everything before COMMIT: the decisions, the rows, and the Auth0 changes, each made
    /// through `auth0` so that it is undone when the transaction does not commit.
    fn run(
        &self,
        cx: &Context<'_>,
        tx: &Tx<'_>,
        auth0: &mut Auth0Changes<'_>,
        reads: Self::Reads,
    ) -> impl Future<Output = Result<Self::Output, Self::Error>> + Send;

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
}

impl<O: Operation> Attempt<'_, O> {
    async fn on(
        &self,
        client: &mut Object,
        credential: &Credential,
        key: Option<&IdempotentRequest<'_, O::Output, O::Error>>,
    ) -> Result<Outcome<O::Output>, O::Error> {
        let db = self.db;
        let operation = self.operation;
        // Prepared first, so the lookup reaches the server before the operation's reads: when
        // both fail (a table lock), the caller's is the answer.
        crate::db::ensure_prepared(db, client, access::STATEMENTS)
            .await
            .map_err(Failure::database(Step::AUTHORIZE))?;
        let (mut tx, (principal, reads)) = Tx::begin_with(client, db, |client, db| async move {
            tokio::join!(
                biased;
                access::resolve::<O::Error>(client, db, credential),
                operation.reads(client, db)
            )
        })
        .await
        .map_err(Failure::database(Step::BEGIN))?;
        let principal = principal?;
        let cx = Context {
            state: self.state,
            db,
            deadline: self.deadline,
            principal: &principal,
        };
        let mut auth0 = Auth0Changes::new(self.state, self.deadline);

        let Some(request) = key else {
            return match operation.run(&cx, &tx, &mut auth0, reads).await {
                Ok(output) => self.commit(tx, auth0, output).await.map(Outcome::Done),
                Err(err) => Err(auth0.undo(err).await),
            };
        };
        let tenant = principal.tenant_id;
        if let Some(answer) = idempotency::claim(&tx, db, tenant, request).await? {
            return Ok(Outcome::Replayed(answer));
        }
        // The request's work in a savepoint: a refusal (4xx) undoes it and is stored in its
        // place, in the same transaction; a failure (5xx) rolls everything back and leaves the
        // key free.
        let work = db
            .on(tx.savepoint("request"))
            .await
            .map_err(Failure::database(Step::IDEMPOTENCY))?;
        let output = match operation.run(&cx, &work, &mut auth0, reads).await {
            Ok(output) => output,
            Err(err) => {
                let err = auth0.undo(err).await;
                let answer = (request.render)(Err(&err));
                if answer.0 >= 500 {
                    return Err(err);
                }
                let stored = match db.on(work.rollback()).await {
                    Ok(()) => self.store_and_commit(tx, tenant, request, answer).await,
                    Err(rollback) => Err(Failure::database(Step::IDEMPOTENCY)(rollback)),
                };
                if let Err(failure) = stored {
                    tracing::warn!(error = %failure, "the refusal could not be stored for replay");
                }
                return Err(err);
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
            Ok(()) => self.commit(tx, auth0, output).await.map(Outcome::Done),
            Err(failure) => Err(auth0.undo(O::Error::from(failure)).await),
        }
    }

    /// A refusal's answer stored in place of the undone work, and committed.
    async fn store_and_commit(
        &self,
        tx: Tx<'_>,
        tenant: crate::domain::TenantId,
        request: &IdempotentRequest<'_, O::Output, O::Error>,
        answer: (u16, serde_json::Value),
    ) -> Result<(), Failure> {
        idempotency::store(&tx, self.db, tenant, request, answer).await?;
        self.db
            .on(tx.commit())
            .await
            .map_err(Failure::database(Step::COMMIT))
    }

    /// COMMIT; if it fails, the Auth0 changes are undone, unless the COMMIT may have landed.
    async fn commit(
        &self,
        tx: Tx<'_>,
        auth0: Auth0Changes<'_>,
        output: O::Output,
    ) -> Result<O::Output, O::Error> {
        if let Err(failure) = self
            .db
            .on(tx.commit())
            .await
            .map_err(Failure::database(Step::COMMIT))
        {
            return Err(auth0.undo(O::Error::from(failure)).await);
        }
        self.operation.committed(&output);
        Ok(output)
    }
}
