//! create-user: the user row, its employee and page permissions, the Auth0 user and the
//! password-setup email, all or nothing.
//!
//! ```text
//! BEGIN ║ principal ║ unknown pages                           (flow::run)
//!   [the employee to link, locked]
//!   user (pending_…) ║ employee ║ page permissions            one round trip
//!   Auth0: create the user (409: adopt an orphan of ours)     undone by deleting it
//!   the Auth0 id ║ SAVEPOINT; the token's hash                 one round trip
//!   the password-setup email
//! COMMIT
//! ```

use chrono::{DateTime, Utc};
use deadpool_postgres::Object;
use secrecy::SecretString;
use uuid::Uuid;

use super::LifecycleError;
use super::auth0_user::{Login, Provisioned, provision};
use super::invitation::{self, Invitee, Issue};
use super::steps::{EMPLOYEE, INSERT_USER, PERMISSIONS, STORE_AUTH0_ID, VALIDATE};
use crate::auth0::OwnershipTags;
use crate::db::{self, Bound, DbError, Tx, employees, pages, reset_tokens, users};
use crate::domain::{
    Auth0UserId, Email, EmployeeId, EmployeeRequest, NewUser, PageId, PagePermission, Role,
    TenantId, UserId,
};
use crate::flow::{Auth0Changes, Context, Failure, Operation};
use crate::metrics::{self, Metric};

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

/// Creates `new_user` in the principal's tenant and business.
pub struct CreateUser<'a> {
    new_user: &'a NewUser,
    /// The new row's id, chosen before the first attempt: the Auth0 user is tagged with it.
    user_id: UserId,
    /// The person's own password (an identity provider's password sync): the login gets it,
    /// and no invitation is sent.
    password: Option<&'a SecretString>,
    /// False: the user is created deactivated (its login blocked, no invitation).
    active: bool,
}

impl<'a> CreateUser<'a> {
    /// An active user, invited to set a password.
    pub fn new(new_user: &'a NewUser) -> Self {
        Self {
            new_user,
            user_id: UserId::new(Uuid::new_v4()),
            password: None,
            active: true,
        }
    }

    /// With the person's own password: no invitation.
    pub fn with_password(self, password: Option<&'a SecretString>) -> Self {
        Self { password, ..self }
    }

    /// Created deactivated (`false`): the login blocked, no invitation.
    pub fn active(self, active: bool) -> Self {
        Self { active, ..self }
    }

    /// Whether the person is sent the password-setup email: not when they have a password
    /// already, nor when the user starts deactivated.
    fn invites(&self) -> bool {
        self.password.is_none() && self.active
    }
}

/// What writing the rows returned.
struct Written {
    created_at: DateTime<Utc>,
    employee_id: Option<EmployeeId>,
}

impl Operation for CreateUser<'_> {
    type Output = CreatedUser;
    type Error = LifecycleError;
    /// The requested pages that do not exist.
    type Reads = Result<Vec<PageId>, DbError>;

    async fn reads(&self, client: &Object, db: Bound) -> Self::Reads {
        let page_ids: Vec<_> = self
            .new_user
            .permissions
            .iter()
            .map(|p| p.page_id)
            .collect();
        db.on(pages::missing(client, &page_ids)).await
    }

    async fn run(
        &self,
        cx: &Context<'_>,
        tx: &Tx<'_>,
        auth0: &mut Auth0Changes<'_>,
        missing_pages: Self::Reads,
    ) -> Result<CreatedUser, LifecycleError> {
        let new_user = self.new_user;
        cx.principal.may_assign(new_user.role)?;
        let missing_pages = missing_pages.map_err(Failure::database(VALIDATE))?;
        if !missing_pages.is_empty() {
            return Err(LifecycleError::UnknownPages(missing_pages));
        }
        if let EmployeeRequest::Link(employee_id) = new_user.employee {
            self.check_employee_is_free(cx, tx, employee_id).await?;
        }
        let Written {
            created_at,
            employee_id,
        } = self.write_rows(cx, tx).await?;

        // From here on something exists outside the database: `auth0` undoes it on failure.
        let tags = OwnershipTags {
            tenant_id: cx.principal.tenant_id,
            role: new_user.role,
            db_user_id: self.user_id,
        };
        let login = Login {
            email: &new_user.email,
            tags: &tags,
            password: self.password,
            blocked: !self.active,
        };
        let (auth0_user_id, provisioned) = provision(cx, tx, auth0, &login).await?;
        let adopted = provisioned != Provisioned::Created;
        tracing::debug!(step = "auth0_create", adopted, "auth0 user ready");
        let user = CreatedUser {
            id: self.user_id,
            email: new_user.email.clone(),
            role: new_user.role,
            tenant_id: cx.principal.tenant_id,
            auth0_user_id,
            employee_id,
            permissions: new_user.permissions.clone(),
            created_at,
            adopted_auth0_user: adopted,
        };
        if self.invites() {
            self.invite(cx, tx, &user, provisioned).await?;
        } else {
            self.link_only(cx, tx, &user).await?;
        }
        Ok(user)
    }

    fn committed(&self, user: &CreatedUser) {
        metrics::count(Metric::UsersCreated, 1, None);
        // The one line a create logs at info (with the request's own line): the steps are debug.
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
    }
}

impl CreateUser<'_> {
    /// Locks the employee to link, before the first write: another tenant's is "not found".
    async fn check_employee_is_free(
        &self,
        cx: &Context<'_>,
        tx: &Tx<'_>,
        employee_id: EmployeeId,
    ) -> Result<(), LifecycleError> {
        let principal = cx.principal;
        let target = cx
            .db
            .on(employees::lock_for_link(
                tx.client(),
                employee_id,
                principal.tenant_id,
                principal.business_id,
            ))
            .await
            .map_err(Failure::database(VALIDATE))?;
        match target {
            employees::LinkTarget::NotFound => Err(LifecycleError::EmployeeNotFound),
            employees::LinkTarget::AlreadyLinked => Err(LifecycleError::EmployeeAlreadyLinked),
            employees::LinkTarget::Free => Ok(()),
        }
    }

    /// The user row, its employee and its permissions in one round trip, run in this order
    /// (prepared first): the later two find the row, and when one fails, the ones after it
    /// only report the aborted transaction, so the first error in this order is the cause.
    async fn write_rows(&self, cx: &Context<'_>, tx: &Tx<'_>) -> Result<Written, LifecycleError> {
        let employee = match self.new_user.employee {
            EmployeeRequest::Link(_) => employees::LINK,
            EmployeeRequest::Create(_) | EmployeeRequest::None => employees::INSERT,
        };
        let client = tx.client();
        db::ensure_prepared(
            cx.db,
            client,
            &[users::INSERT_PENDING, employee, pages::GRANT],
        )
        .await
        .map_err(Failure::database(INSERT_USER))?;
        let (created_at, employee_id, granted) = cx
            .db
            .burst(|db| async move {
                tokio::join!(
                    biased;
                    self.insert_user(cx, client, db),
                    self.attach_employee(client, db),
                    self.grant_permissions(client, db)
                )
            })
            .await
            .map_err(Failure::database(INSERT_USER))?;
        let created_at = created_at?;
        let employee_id = employee_id?;
        granted?;
        Ok(Written {
            created_at,
            employee_id,
        })
    }

    /// The unique index decides between concurrent requests for one email: the loser waits
    /// for the winner and then gets a conflict, never a 500. A loser that waits longer than
    /// `lock_timeout` gets the plain lock timeout (503 `DATABASE_BUSY`): Postgres words it the
    /// same whether the wait was for another insert of this email or for a lock on the table.
    async fn insert_user(
        &self,
        cx: &Context<'_>,
        client: &Object,
        db: Bound,
    ) -> Result<DateTime<Utc>, LifecycleError> {
        let new_user = self.new_user;
        let principal = cx.principal;
        let pending = users::PendingUser {
            id: self.user_id,
            tenant_id: principal.tenant_id,
            business_id: principal.business_id,
            email: &new_user.email,
            role: new_user.role,
            created_by: principal.acting_user,
            created_by_token: principal.scim_token,
            external_id: new_user.external_id.as_deref(),
            is_active: self.active,
        };
        let created_at = db
            .on(users::insert_pending(client, &pending))
            .await
            .map_err(|err| {
                err.on_constraint(users::EMAIL_UNIQUE, LifecycleError::EmailTaken, |err| {
                    Failure::database(INSERT_USER)(err).into()
                })
            })?;
        tracing::debug!(step = "insert_user", user_id = %self.user_id, email = %new_user.email, "pending user stored");
        Ok(created_at)
    }

    async fn attach_employee(
        &self,
        client: &Object,
        db: Bound,
    ) -> Result<Option<EmployeeId>, LifecycleError> {
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
                .map_err(Failure::database(EMPLOYEE))?,
            EmployeeRequest::Link(employee_id) => {
                let linked = db
                    .on(employees::link(client, *employee_id, self.user_id))
                    .await
                    .map_err(|err| {
                        err.on_constraint(
                            employees::USER_UNIQUE,
                            LifecycleError::EmployeeAlreadyLinked,
                            |err| Failure::database(EMPLOYEE)(err).into(),
                        )
                    })?;
                if linked == 0 {
                    return Err(LifecycleError::EmployeeAlreadyLinked);
                }
                *employee_id
            }
        };
        tracing::debug!(step = "employee", employee_id = %employee_id, "employee attached");
        Ok(Some(employee_id))
    }

    async fn grant_permissions(&self, client: &Object, db: Bound) -> Result<(), LifecycleError> {
        let permissions = &self.new_user.permissions;
        db.on(pages::grant(client, self.user_id, permissions))
            .await
            .map_err(Failure::database(PERMISSIONS))?;
        tracing::debug!(
            step = "permissions",
            pages = permissions.len(),
            "permissions stored"
        );
        Ok(())
    }

    /// Once the Auth0 user exists, for a user who gets no invitation: its id stored, and, when
    /// the person has a password already, the set-up marked done; one round trip.
    async fn link_only(
        &self,
        cx: &Context<'_>,
        tx: &Tx<'_>,
        user: &CreatedUser,
    ) -> Result<(), LifecycleError> {
        let client = tx.client();
        let statements = [users::SET_AUTH0_SUB, users::MARK_SET_UP];
        db::ensure_prepared(cx.db, client, &statements)
            .await
            .map_err(Failure::database(STORE_AUTH0_ID))?;
        let set_up = self.password.is_some();
        let (stored, marked) = cx
            .db
            .burst(|db| async move {
                tokio::join!(
                    biased;
                    db.on(users::set_auth0_sub(client, user.id, &user.auth0_user_id)),
                    async {
                        match set_up {
                            true => db.on(users::mark_set_up(client, user.id)).await,
                            false => Ok(()),
                        }
                    }
                )
            })
            .await
            .map_err(Failure::database(STORE_AUTH0_ID))?;
        stored.map_err(Failure::database(STORE_AUTH0_ID))?;
        marked.map_err(Failure::database(STORE_AUTH0_ID))?;
        Ok(())
    }

    /// Once the Auth0 user exists: its id and the invitation's token stored in one round
    /// trip, then the email.
    async fn invite(
        &self,
        cx: &Context<'_>,
        tx: &Tx<'_>,
        user: &CreatedUser,
        provisioned: Provisioned,
    ) -> Result<(), LifecycleError> {
        let issue = match provisioned {
            Provisioned::AdoptedOldLogin => Issue::FirstOfAnOldLogin,
            Provisioned::Created | Provisioned::Adopted => Issue::First {
                auth0_id: &user.auth0_user_id,
            },
        };
        let token = invitation::new_token(cx.state, issue).await?;
        // In this order (prepared first): the token's savepoint comes after the id is stored,
        // so a token retried after a collision keeps the id.
        let statements = [users::SET_AUTH0_SUB, reset_tokens::INSERT];
        db::ensure_prepared(cx.db, tx.client(), &statements)
            .await
            .map_err(Failure::database(STORE_AUTH0_ID))?;
        let expires_at = invitation::expiry(cx.state);
        let (stored_id, token) = tokio::join!(
            biased;
            cx.db
                .on(users::set_auth0_sub(tx.client(), user.id, &user.auth0_user_id)),
            invitation::store_token(tx, cx.db, user.id, expires_at, issue, token)
        );
        stored_id.map_err(Failure::database(STORE_AUTH0_ID))?;
        tracing::debug!(step = "store_auth0_id", "auth0 id stored");
        let token = token?;
        let invitee = Invitee {
            user_id: user.id,
            email: &user.email,
            role: user.role,
            tenant_name: &cx.principal.tenant_name,
        };
        Ok(invitation::send(cx.state, &invitee, &token, cx.deadline).await?)
    }
}
