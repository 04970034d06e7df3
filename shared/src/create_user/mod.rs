//! The create-user flow: one Postgres transaction around the Auth0 user and the email.
//! Any failure after Auth0 created the user deletes that user before the rollback.

mod auth0_user;
mod error;
pub mod handler;
mod idempotency;
mod invitation;
pub mod request;
mod resend;

use chrono::{DateTime, Utc};
use deadpool_postgres::Object;
use uuid::Uuid;

pub use error::{Compensation, CreateUserError, Step};
pub use idempotency::{Creation, IdempotentRequest};
pub use resend::{ResentInvitation, resend_invitation};

use auth0_user::{compensate, provision_auth0_user};
use invitation::{Invitee, Issue};

use crate::auth0::OwnershipTags;
use crate::db::{self, Bound, Tx, employees, idempotency_keys, pages, reset_tokens, users};
use crate::deadline::Deadline;
use crate::domain::{
    Auth0UserId, CallerSub, Email, EmployeeId, EmployeeRequest, NewUser, PageId, PagePermission,
    Role, TenantId, UserId,
};
use crate::state::AppState;

#[derive(Debug, Clone)]
pub struct CreatedUser {
    pub id: UserId,
    pub email: Email,
    pub role: Role,
    pub tenant_id: TenantId,
    pub auth0_user_id: Auth0UserId,
    pub employee_id: Option<EmployeeId>,
    pub permissions: Vec<PagePermission>,
    pub created_at: DateTime<Utc>,
    /// An orphan Auth0 user of ours was taken over instead of creating a new one.
    pub adopted_auth0_user: bool,
}

pub async fn create_user(
    state: &AppState,
    caller: &CallerSub,
    new_user: &NewUser,
    idempotency: Option<&IdempotentRequest<'_>>,
    deadline: &Deadline,
) -> Result<Creation, CreateUserError> {
    db::retry_on_lost_connection(
        &state.pool,
        || attempt(state, caller, new_user, idempotency, deadline),
        CreateUserError::is_safe_to_retry,
    )
    .await
}

/// Answers the admin panel's "does this email exist?" for an authorised caller.
pub async fn email_exists(
    state: &AppState,
    caller: &CallerSub,
    email: &Email,
    deadline: &Deadline,
) -> Result<bool, CreateUserError> {
    let db = Bound::work(*deadline, &state.config.timeouts);
    let client = db.get(&state.pool).await.map_err(CreateUserError::Pool)?;
    let answer = async {
        let client = &client;
        // Pipelined on one connection: one round trip for both.
        let (caller, exists) = tokio::join!(
            db.on(users::find_caller(client, caller.as_str())),
            db.on(users::email_exists(client, email))
        );
        authorize(
            caller.map_err(CreateUserError::database(Step::Authorize))?,
            None,
        )?;
        exists.map_err(CreateUserError::database(Step::Validate))
    }
    .await;
    discard_if_silent(client, &answer);
    answer
}

/// A connection whose server stopped answering, or that was found dead, is closed and not
/// handed to the next request: each failed attempt of the retry draws another connection.
fn discard_if_silent<T>(client: Object, result: &Result<T, CreateUserError>) {
    if let Err(CreateUserError::Database { source, .. }) = result
        && source.leaves_connection_unusable()
    {
        drop(Object::take(client));
    }
}

fn authorize(
    caller: Option<users::CallerRecord>,
    new_role: Option<Role>,
) -> Result<users::CallerRecord, CreateUserError> {
    let caller = caller.ok_or(CreateUserError::UnknownCaller)?;
    if !caller.is_active {
        return Err(CreateUserError::InactiveCaller);
    }
    if !matches!(caller.role, Role::Owner | Role::Admin) {
        return Err(CreateUserError::NotAnAdmin);
    }
    match new_role {
        Some(role) if !caller.role.may_create(role) => Err(CreateUserError::RoleNotAllowed(role)),
        _ => Ok(caller),
    }
}

/// Every database wait below is bounded by `db`: a server that accepts connections but
/// never answers costs at most the deadline's budget, never the whole Lambda timeout.
async fn attempt(
    state: &AppState,
    caller_sub: &CallerSub,
    new_user: &NewUser,
    idempotency: Option<&IdempotentRequest<'_>>,
    deadline: &Deadline,
) -> Result<Creation, CreateUserError> {
    let db = Bound::work(*deadline, &state.config.timeouts);
    let mut client = db.get(&state.pool).await.map_err(CreateUserError::Pool)?;
    let result = attempt_on(
        &mut client,
        db,
        state,
        caller_sub,
        new_user,
        idempotency,
        deadline,
    )
    .await;
    discard_if_silent(client, &result);
    result
}

async fn attempt_on(
    client: &mut Object,
    db: Bound,
    state: &AppState,
    caller_sub: &CallerSub,
    new_user: &NewUser,
    idempotency: Option<&IdempotentRequest<'_>>,
    deadline: &Deadline,
) -> Result<Creation, CreateUserError> {
    // Independent reads, pipelined with BEGIN: one round trip for all of them. The key's lock
    // goes first (in that order, once both are prepared), so the read of its stored answer
    // sees its last holder's COMMIT.
    if idempotency.is_some() {
        let key_statements = [idempotency_keys::TRY_LOCK, idempotency_keys::FIND];
        db::ensure_prepared(db, client, &key_statements)
            .await
            .map_err(CreateUserError::database(Step::Idempotency))?;
    }
    let rows = Rows {
        db,
        user_id: UserId::new(Uuid::new_v4()),
        new_user,
        caller_sub: caller_sub.as_str(),
    };
    // With no Idempotency-Key and no employee to link, nothing is decided between the reads and
    // the writes: the rows go out in the same round trip, after the reads. The insert checks
    // the caller as `authorize` does, so a caller who may not create writes nothing; one who
    // is refused, or asks for unknown pages, gets the answer the reads give, and the rows (if
    // any) roll back.
    let eager = idempotency.is_none() && !matches!(new_user.employee, EmployeeRequest::Link(_));
    if eager {
        // Prepared first, so the reads reach the server before the writes: a failed write
        // aborts the transaction, and a read behind it would only report that. A preparation
        // fails under its statement's own step (a table locked against its parse, say).
        let reads = [
            (users::FIND_CALLER, Step::Authorize),
            (pages::MISSING, Step::Validate),
        ];
        for (statement, step) in reads {
            db::ensure_prepared(db, client, &[statement])
                .await
                .map_err(CreateUserError::database(step))?;
        }
        rows.prepare(client).await?;
    }
    let page_ids: Vec<_> = new_user.permissions.iter().map(|p| p.page_id).collect();
    let sub = caller_sub.as_str();
    let rows = &rows;
    let (mut tx, (key_lock, stored, caller, missing_pages, written)) =
        Tx::begin_with(client, db, |client, db| async move {
            tokio::join!(
                biased;
                async {
                    match idempotency {
                        Some(request) => db
                            .on(idempotency_keys::try_lock(client, sub, request.key.as_str()))
                            .await
                            .map(Some),
                        None => Ok(None),
                    }
                },
                async {
                    match idempotency {
                        Some(request) => {
                            db.on(idempotency_keys::find(client, sub, request.key.as_str()))
                                .await
                        }
                        None => Ok(None),
                    }
                },
                db.on(users::find_caller(client, sub)),
                db.on(pages::missing(client, &page_ids)),
                async {
                    if eager {
                        Some(rows.write(client, db).await)
                    } else {
                        None
                    }
                }
            )
        })
        .await
        .map_err(CreateUserError::database(Step::Begin))?;
    let caller = caller.map_err(CreateUserError::database(Step::Authorize))?;
    let caller = authorize(caller, Some(new_user.role))?;
    let missing_pages = missing_pages.map_err(CreateUserError::database(Step::Validate));
    let attempt = Attempt {
        state,
        db,
        deadline,
        caller,
        rows,
    };

    let Some(request) = idempotency else {
        let prepared = attempt.prepare(&tx, missing_pages?, written).await?;
        return attempt.commit(tx, prepared).await.map(Creation::Created);
    };
    if key_lock.map_err(CreateUserError::database(Step::Idempotency))? != Some(true) {
        return Err(CreateUserError::RequestInProgress);
    }
    if let Some(answer) = stored.map_err(CreateUserError::database(Step::Idempotency))? {
        if answer.request_hash != request.fingerprint {
            return Err(CreateUserError::IdempotencyKeyReused);
        }
        tracing::info!(
            step = "idempotency",
            status = answer.status,
            "stored answer replayed"
        );
        return Ok(Creation::Replayed(answer));
    }

    // The request's work in a savepoint: a refusal (4xx) undoes it and is stored in its place,
    // in the same transaction; a failure (5xx) rolls everything back and leaves the key free.
    let work = db
        .on(tx.savepoint("request"))
        .await
        .map_err(CreateUserError::database(Step::Begin))?;
    let prepared = match missing_pages {
        Ok(missing) => attempt.prepare(&work, missing, None).await,
        Err(err) => Err(err),
    };
    let prepared = match prepared {
        Ok(prepared) => prepared,
        Err(err) => {
            let (status, body) = (request.render)(Err(&err));
            if status >= 500 {
                return Err(err);
            }
            let rolled_back = db
                .on(work.rollback())
                .await
                .map_err(CreateUserError::database(Step::Idempotency));
            let stored = match rolled_back {
                Ok(()) => {
                    store_answer(&tx, db, request, attempt.caller.tenant_id, status, &body).await
                }
                Err(rollback_err) => Err(rollback_err),
            };
            let committed = match stored {
                Ok(()) => db
                    .on(tx.commit())
                    .await
                    .map_err(CreateUserError::database(Step::Commit)),
                Err(store_err) => Err(store_err),
            };
            if let Err(store_err) = committed {
                tracing::warn!(error = %store_err, "the refusal could not be stored for replay");
            }
            return Err(err);
        }
    };
    let released = db
        .on(work.commit())
        .await
        .map_err(CreateUserError::database(Step::Commit));
    let (status, body) = (request.render)(Ok(&prepared.user));
    let stored = match released {
        Ok(()) => store_answer(&tx, db, request, attempt.caller.tenant_id, status, &body).await,
        Err(err) => Err(err),
    };
    match stored {
        Ok(()) => attempt.commit(tx, prepared).await.map(Creation::Created),
        Err(err) => Err(attempt.undo(&prepared, err).await),
    }
}

async fn store_answer(
    tx: &Tx<'_>,
    db: Bound,
    request: &IdempotentRequest<'_>,
    tenant_id: TenantId,
    status: u16,
    body: &serde_json::Value,
) -> Result<(), CreateUserError> {
    db.on(idempotency_keys::store(
        tx.client(),
        tenant_id,
        request.key.as_str(),
        &request.fingerprint,
        status,
        body,
        request.ttl,
    ))
    .await
    .map_err(CreateUserError::database(Step::Idempotency))
}

/// A user whose every step succeeded, waiting for COMMIT.
struct Prepared {
    user: CreatedUser,
}

/// The rows a create writes before Auth0: the user, its employee, its page permissions.
struct Rows<'a> {
    db: Bound,
    user_id: UserId,
    new_user: &'a NewUser,
    caller_sub: &'a str,
}

/// What writing the rows returned.
struct Written {
    created_at: DateTime<Utc>,
    employee_id: Option<EmployeeId>,
}

impl Rows<'_> {
    /// Prepares the statements [`Rows::write`] sends, so that they reach the server in its
    /// order when they go out in one burst.
    async fn prepare(&self, client: &Object) -> Result<(), CreateUserError> {
        let employee = match self.new_user.employee {
            EmployeeRequest::Link(_) => employees::LINK,
            EmployeeRequest::Create(_) | EmployeeRequest::None => employees::INSERT,
        };
        let statements = [users::INSERT_PENDING, employee, pages::GRANT];
        db::ensure_prepared(self.db, client, &statements)
            .await
            .map_err(CreateUserError::database(Step::InsertUser))
    }

    /// The user row, its employee and its permissions in one round trip, run in this order
    /// (prepared first): the later two find the row, and when one fails, the ones after it
    /// only report the aborted transaction, so the first error in this order is the cause.
    /// `None`: the caller may not create this user, and nothing was written. `db` bounds the
    /// waits: a burst's (see [`Bound::burst`]) when the rows go out with other statements.
    async fn write(&self, client: &Object, db: Bound) -> Result<Option<Written>, CreateUserError> {
        let (created_at, employee_id, granted) = tokio::join!(
            biased;
            self.insert_user(client, db),
            self.attach_employee(client, db),
            self.grant_permissions(client, db)
        );
        // Without the user row the other two wrote nothing or failed for want of it.
        let Some(created_at) = created_at? else {
            return Ok(None);
        };
        let employee_id = employee_id?;
        granted?;
        Ok(Some(Written {
            created_at,
            employee_id,
        }))
    }

    /// The unique index decides between concurrent requests for one email: the loser waits
    /// for the winner and then gets a conflict, never a 500. A loser that waits longer than
    /// `lock_timeout` gets the plain lock timeout (503 `DATABASE_BUSY`): Postgres words it the
    /// same whether the wait was for another insert of this email or for a lock on the table.
    async fn insert_user(
        &self,
        client: &Object,
        db: Bound,
    ) -> Result<Option<DateTime<Utc>>, CreateUserError> {
        let new_user = self.new_user;
        let pending = users::PendingUser {
            id: self.user_id,
            email: &new_user.email,
            role: new_user.role,
            caller_sub: self.caller_sub,
        };
        let created_at = db
            .on(users::insert_pending(client, &pending))
            .await
            .map_err(|err| {
                err.on_constraint(
                    users::EMAIL_UNIQUE,
                    CreateUserError::EmailTaken,
                    CreateUserError::database(Step::InsertUser),
                )
            })?;
        tracing::debug!(step = "insert_user", user_id = %self.user_id, email = %new_user.email, written = created_at.is_some(), "pending user stored");
        Ok(created_at)
    }

    async fn attach_employee(
        &self,
        client: &Object,
        db: Bound,
    ) -> Result<Option<EmployeeId>, CreateUserError> {
        let new_user = self.new_user;
        let employee_id = match &new_user.employee {
            EmployeeRequest::None => return Ok(None),
            EmployeeRequest::Create(employee) => db
                .on(employees::insert(
                    client,
                    self.user_id,
                    &new_user.email,
                    employee,
                ))
                .await
                .map_err(CreateUserError::database(Step::Employee))?,
            EmployeeRequest::Link(employee_id) => {
                let linked = db
                    .on(employees::link(client, *employee_id, self.user_id))
                    .await
                    .map_err(|err| {
                        err.on_constraint(
                            employees::USER_UNIQUE,
                            CreateUserError::EmployeeAlreadyLinked,
                            CreateUserError::database(Step::Employee),
                        )
                    })?;
                if linked == 0 {
                    return Err(CreateUserError::EmployeeAlreadyLinked);
                }
                *employee_id
            }
        };
        tracing::debug!(step = "employee", employee_id = %employee_id, "employee attached");
        Ok(Some(employee_id))
    }

    async fn grant_permissions(&self, client: &Object, db: Bound) -> Result<(), CreateUserError> {
        let permissions = &self.new_user.permissions;
        db.on(pages::grant(client, self.user_id, permissions))
            .await
            .map_err(CreateUserError::database(Step::Permissions))?;
        tracing::debug!(
            step = "permissions",
            pages = permissions.len(),
            "permissions stored"
        );
        Ok(())
    }
}

/// One try at creating the user, once the caller is authorized: what every step needs, so
/// each step is a method taking only the transaction, in the order they run (as cleanup's
/// `Run`).
struct Attempt<'a> {
    state: &'a AppState,
    db: Bound,
    deadline: &'a Deadline,
    caller: users::CallerRecord,
    /// The request's rows, and with them the request.
    rows: &'a Rows<'a>,
}

impl Attempt<'_> {
    /// Everything but the COMMIT. Any failure after the Auth0 user exists has undone it.
    /// `written`: what the rows sent with BEGIN returned, if they were.
    async fn prepare(
        &self,
        tx: &Tx<'_>,
        missing_pages: Vec<PageId>,
        written: Option<Result<Option<Written>, CreateUserError>>,
    ) -> Result<Prepared, CreateUserError> {
        if !missing_pages.is_empty() {
            return Err(CreateUserError::UnknownPages(missing_pages));
        }
        let written = match written {
            Some(written) => written?,
            None => None,
        };
        let Written {
            created_at,
            employee_id,
        } = match written {
            Some(written) => written,
            None => self.write_rows(tx).await?,
        };

        // From here on something exists outside the database: every failure must undo it.
        let new_user = self.rows.new_user;
        let tags = OwnershipTags {
            tenant_id: self.caller.tenant_id,
            role: new_user.role,
            db_user_id: self.rows.user_id,
        };
        let (auth0_id, adopted) = provision_auth0_user(
            self.state,
            tx,
            self.db,
            &new_user.email,
            &tags,
            self.deadline,
        )
        .await?;
        tracing::debug!(step = "auth0_create", adopted, "auth0 user ready");

        let prepared = Prepared {
            user: CreatedUser {
                id: self.rows.user_id,
                email: new_user.email.clone(),
                role: new_user.role,
                tenant_id: self.caller.tenant_id,
                auth0_user_id: auth0_id,
                employee_id,
                permissions: new_user.permissions.clone(),
                created_at,
                adopted_auth0_user: adopted,
            },
        };
        match self.finish(tx, &prepared.user).await {
            Ok(()) => Ok(prepared),
            Err(err) => Err(self.undo(&prepared, err).await),
        }
    }

    /// The rows, when they did not go out with BEGIN: after the employee to link is locked,
    /// or inside the Idempotency-Key's savepoint, or again after the caller's row changed.
    async fn write_rows(&self, tx: &Tx<'_>) -> Result<Written, CreateUserError> {
        if let EmployeeRequest::Link(employee_id) = self.rows.new_user.employee {
            self.check_employee_is_free(tx, employee_id).await?;
        }
        self.rows.prepare(tx.client()).await?;
        let written = self
            .db
            .burst(|db| self.rows.write(tx.client(), db))
            .await
            .map_err(CreateUserError::database(Step::InsertUser))??;
        match written {
            Some(written) => Ok(written),
            None => Err(self.refusal_now(tx).await),
        }
    }

    /// The insert refused a caller the read before it allowed: the caller's row changed in
    /// between (deactivated, demoted, removed). The answer is what it says now.
    async fn refusal_now(&self, tx: &Tx<'_>) -> CreateUserError {
        let caller = self
            .db
            .on(users::find_caller(tx.client(), self.rows.caller_sub))
            .await;
        match caller.map_err(CreateUserError::database(Step::Authorize)) {
            Ok(caller) => match authorize(caller, Some(self.rows.new_user.role)) {
                Err(refused) => refused,
                // Changed and changed back while this request ran: refused all the same.
                Ok(_) => CreateUserError::NotAnAdmin,
            },
            Err(err) => err,
        }
    }

    /// Locks the employee to link, before the first write: another tenant's is "not found".
    async fn check_employee_is_free(
        &self,
        tx: &Tx<'_>,
        employee_id: EmployeeId,
    ) -> Result<(), CreateUserError> {
        let caller = &self.caller;
        let target = self
            .db
            .on(employees::lock_for_link(
                tx.client(),
                employee_id,
                caller.tenant_id,
                caller.business_id,
            ))
            .await
            .map_err(CreateUserError::database(Step::Validate))?;
        match target {
            employees::LinkTarget::NotFound => Err(CreateUserError::EmployeeNotFound),
            employees::LinkTarget::AlreadyLinked => Err(CreateUserError::EmployeeAlreadyLinked),
            employees::LinkTarget::Free => Ok(()),
        }
    }

    /// Steps after the Auth0 user exists, inside the transaction: the Auth0 id and the
    /// invitation's token stored in one round trip, then the email.
    async fn finish(&self, tx: &Tx<'_>, user: &CreatedUser) -> Result<(), CreateUserError> {
        let issue = Issue::First {
            auth0_id: &user.auth0_user_id,
        };
        let token = invitation::new_token(self.state, issue).await?;
        // In this order (prepared first): the token's savepoint comes after the id is stored,
        // so a token retried after a collision keeps the id.
        let statements = [users::SET_AUTH0_SUB, reset_tokens::INSERT];
        db::ensure_prepared(self.db, tx.client(), &statements)
            .await
            .map_err(CreateUserError::database(Step::StoreAuth0Id))?;
        let expires_at = invitation::expiry(self.state);
        let (stored_id, token) = tokio::join!(
            biased;
            self.db
                .on(users::set_auth0_sub(tx.client(), user.id, &user.auth0_user_id)),
            invitation::store_token(tx, self.db, user.id, expires_at, issue, token)
        );
        stored_id.map_err(CreateUserError::database(Step::StoreAuth0Id))?;
        tracing::debug!(step = "store_auth0_id", "auth0 id stored");
        let token = token?;

        let invitee = Invitee {
            user_id: user.id,
            email: &user.email,
            role: user.role,
            tenant_name: &self.caller.tenant_name,
        };
        invitation::send(self.state, &invitee, &token, self.deadline).await
    }

    /// COMMIT; if it fails, the Auth0 user is undone, unless the COMMIT may have landed.
    async fn commit(&self, tx: Tx<'_>, prepared: Prepared) -> Result<CreatedUser, CreateUserError> {
        if let Err(err) = self
            .db
            .on(tx.commit())
            .await
            .map_err(CreateUserError::database(Step::Commit))
        {
            return Err(self.undo(&prepared, err).await);
        }
        // The one line a create logs at info (with the request's own line): the steps are debug.
        let user = &prepared.user;
        tracing::info!(
            step = "commit",
            user_id = %user.id,
            email = %user.email,
            auth0_user_id = %user.auth0_user_id,
            adopted = user.adopted_auth0_user,
            employee = user.employee_id.is_some(),
            pages = user.permissions.len(),
            "user created"
        );
        Ok(prepared.user)
    }

    /// Deletes the Auth0 user of a failed attempt; the transaction rolls back when dropped.
    /// Kept instead: after a COMMIT that got no answer (it may have landed: a row may hold the
    /// login), and when the user was an orphan we adopted or its email may have gone out (a
    /// retry adopts it and the link already sent works). Cleanup removes what no row holds.
    async fn undo(&self, prepared: &Prepared, err: CreateUserError) -> CreateUserError {
        let auth0_id = &prepared.user.auth0_user_id;
        if err.commit_outcome_unknown() {
            tracing::error!(step = "commit", auth0_user_id = %auth0_id, error = %err, "commit unconfirmed; auth0 user kept for the cleanup job");
            return err.with_compensation(Compensation::LeftForCleanup);
        }
        if prepared.user.adopted_auth0_user || err.email_may_have_been_sent() {
            tracing::warn!(step = "rollback", auth0_user_id = %auth0_id, error = %err, "create-user rolled back; auth0 user kept for a retry to adopt");
            return err.with_compensation(Compensation::KeptForRetry);
        }
        let outcome = compensate(self.state, auth0_id, self.deadline).await;
        // Dropping an unfinished transaction also rolls back; this just says so in the log.
        tracing::warn!(step = "rollback", error = %err, "create-user rolled back");
        err.with_compensation(outcome)
    }
}
