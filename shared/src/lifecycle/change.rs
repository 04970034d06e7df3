//! A change to an existing user: its role, page permissions, activity, name (its employee's)
//! and external id, in one transaction with the Auth0 changes it needs, all or nothing. The
//! admin API's update, deactivate and reactivate are this with one field; SCIM's PUT and PATCH
//! are this with several.
//!
//! ```text
//! BEGIN ║ principal ║ the user, locked ║ unknown pages; the rules; the intent; COMMIT
//! BEGIN ║ principal ║ the user, locked ║ unknown pages; the rules again
//!   [taking an active OWNER away (deactivate, demote): another stays]
//!   the row's changes ║ the user read back                         one round trip
//!   Auth0: blocked (deactivate), the role tag, unblocked (reactivate); each undone on failure;
//!          then a deactivated user's sessions and refresh tokens ended
//!   the intent removed ║ COMMIT                                       one round trip
//! ```
//! Only a change of role or activity touches Auth0 and takes an intent (see `flow::intent`);
//! the rest (permissions, name, external id) is the database's alone. Asking for what the user
//! has already changes nothing and answers the user as it is.

use deadpool_postgres::Object;

use super::LifecycleError;
use super::steps::{
    AUTH0_BLOCK, AUTH0_REVOKE, AUTH0_ROLE, AUTH0_UNBLOCK, CHANGE_USER, EMPLOYEE, PERMISSIONS,
    VALIDATE,
};
use super::target::{self, Found};
use crate::db::user_views::UserView;
use crate::db::users::UserRecord;
use crate::db::{Bound, DbError, Tx, employees, pages, users};
use crate::domain::{PageId, PagePermission, PersonName, Role, UserId};
use crate::flow::{Auth0Changes, Context, Failure, Intent, Operation};

/// What a change asks for; `None` keeps what is there.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserChanges {
    pub role: Option<Role>,
    /// The user's page permissions, all of them: the ones not listed are taken away.
    pub permissions: Option<Vec<PagePermission>>,
    /// `false` deactivates, `true` reactivates.
    pub active: Option<bool>,
    /// The user's name, kept by its employee record (made when there is none).
    pub name: Option<PersonName>,
    /// What an identity provider calls the user; `Some(None)` clears it.
    pub external_id: Option<Option<String>>,
}

/// Changes the user `id`.
pub struct ChangeUser<'a> {
    pub id: UserId,
    pub changes: &'a UserChanges,
}

/// What of the changes asked for differs from the user as it is.
struct Differs {
    role: Option<Role>,
    active: Option<bool>,
}

impl ChangeUser<'_> {
    fn differs(&self, user: &UserRecord) -> Differs {
        Differs {
            role: self.changes.role.filter(|role| *role != user.role),
            active: self
                .changes
                .active
                .filter(|active| *active != user.is_active),
        }
    }

    /// The intent's name: a change of activity is a deactivation or a reactivation.
    fn operation(differs: &Differs) -> &'static str {
        match differs.active {
            Some(false) => "deactivate",
            Some(true) => "reactivate",
            None => "update",
        }
    }
}

impl Operation for ChangeUser<'_> {
    type Output = UserView;
    type Error = LifecycleError;
    /// The user, locked, and the requested pages that do not exist.
    type Reads = (Found, Result<Vec<PageId>, DbError>);

    async fn reads(&self, client: &Object, db: Bound) -> Self::Reads {
        let page_ids: Vec<PageId> = self
            .changes
            .permissions
            .iter()
            .flatten()
            .map(|p| p.page_id)
            .collect();
        tokio::join!(
            biased;
            db.on(users::lock_by_id(client, self.id)),
            db.on(pages::missing(client, &page_ids))
        )
    }

    fn intent(
        &self,
        cx: &Context<'_>,
        (found, _): &Self::Reads,
    ) -> Result<Option<Intent>, LifecycleError> {
        let mut operation = "update";
        let intent = target::intent(cx, found, "update", |user| {
            let differs = self.differs(user);
            if let Some(role) = differs.role {
                cx.principal.may_assign(role)?;
            }
            operation = Self::operation(&differs);
            Ok(differs.role.is_some() || differs.active.is_some())
        })?;
        Ok(intent.map(|intent| Intent {
            operation,
            ..intent
        }))
    }

    async fn run(
        &self,
        cx: &Context<'_>,
        tx: &Tx<'_>,
        auth0: &mut Auth0Changes<'_>,
        (found, missing_pages): Self::Reads,
    ) -> Result<UserView, LifecycleError> {
        let (user, auth0_id) = target::changeable(cx, found)?;
        let differs = self.differs(&user);
        if let Some(role) = differs.role {
            cx.principal.may_assign(role)?;
        }
        let missing_pages = missing_pages.map_err(Failure::database(VALIDATE))?;
        if !missing_pages.is_empty() {
            return Err(LifecycleError::UnknownPages(missing_pages));
        }
        // Demoting or deactivating an active OWNER takes one away.
        if differs.role.is_some() || differs.active == Some(false) {
            target::keep_an_owner(cx, tx, &user).await?;
        }
        let view = self.change_rows(cx, tx, &user, &differs).await?;
        let id = &auth0_id;
        if differs.active == Some(false) {
            // Blocked first: from then on no login or refresh succeeds, whatever follows.
            auth0.block(AUTH0_BLOCK, id).await?;
        }
        if let Some(role) = differs.role {
            auth0.set_role(AUTH0_ROLE, id, role, user.role).await?;
        }
        match differs.active {
            Some(true) => auth0.unblock(AUTH0_UNBLOCK, id).await?,
            Some(false) if cx.state.config.auth0_revoke_sessions => {
                auth0.revoke_logins(AUTH0_REVOKE, id).await?
            }
            _ => {}
        }
        Ok(view)
    }

    fn committed(&self, user: &UserView) {
        let changes = self.changes;
        tracing::info!(
            step = "commit",
            user_id = %user.user.id,
            role = changes.role.map(Role::as_str),
            active = changes.active,
            pages = changes.permissions.as_ref().map(Vec::len),
            name = changes.name.is_some(),
            external_id = changes.external_id.is_some(),
            "user changed"
        );
    }
}

impl ChangeUser<'_> {
    /// Every row change, and the user read back, in one round trip (prepared first, so they
    /// run in this order; a failure makes the ones after it report only the aborted
    /// transaction).
    async fn change_rows(
        &self,
        cx: &Context<'_>,
        tx: &Tx<'_>,
        user: &UserRecord,
        differs: &Differs,
    ) -> Result<UserView, LifecycleError> {
        let changes = self.changes;
        let id = user.id;
        let statements = [
            users::SET_ROLE,
            pages::REPLACE,
            users::DEACTIVATE,
            users::REACTIVATE,
            employees::SET_NAME,
            users::SET_EXTERNAL_ID,
        ];
        let role = differs.role;
        let active = differs.active;
        target::change_and_read_back(cx, tx, id, &statements, |c, db| async move {
            let (set_role, replaced, activity, named, external) = tokio::join!(
                biased;
                async {
                    match role {
                        Some(role) => db.on(users::set_role(c, id, role)).await,
                        None => Ok(()),
                    }
                },
                async {
                    match &changes.permissions {
                        Some(permissions) => db.on(pages::replace(c, id, permissions)).await,
                        None => Ok(()),
                    }
                },
                async {
                    match active {
                        Some(false) => db.on(users::deactivate(c, id)).await,
                        Some(true) => db.on(users::reactivate(c, id)).await,
                        None => Ok(()),
                    }
                },
                async {
                    match &changes.name {
                        Some(name) => db.on(employees::set_name(c, id, name)).await,
                        None => Ok(()),
                    }
                },
                async {
                    match &changes.external_id {
                        Some(external_id) => {
                            db.on(users::set_external_id(c, id, external_id.as_deref()))
                                .await
                        }
                        None => Ok(()),
                    }
                }
            );
            set_role.map_err(Failure::database(CHANGE_USER))?;
            replaced.map_err(Failure::database(PERMISSIONS))?;
            activity.map_err(Failure::database(CHANGE_USER))?;
            named.map_err(Failure::database(EMPLOYEE))?;
            external.map_err(Failure::database(CHANGE_USER))?;
            Ok(())
        })
        .await
    }
}
