//! Update: the role and the page permissions, replaced in one transaction; a new role also
//! goes into the Auth0 user's role tag (`app_metadata.role`, merged at the first level, so
//! the other tags stay), undone when the transaction does not commit.
//!
//! A change of role runs as the other changes of an existing user do, with an intent (see
//! `flow::intent`); permissions alone touch nothing in Auth0 and need none.

use deadpool_postgres::Object;

use super::LifecycleError;
use super::steps::{AUTH0_ROLE, CHANGE_USER, PERMISSIONS, VALIDATE};
use super::target::{self, Found};
use crate::db::user_views::UserView;
use crate::db::{Bound, DbError, Tx, pages, users};
use crate::domain::{PageId, PagePermission, Role, UserId};
use crate::flow::{Auth0Changes, Context, Failure, Intent, Operation};

/// What a PATCH changes; `None` keeps what is there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserChanges {
    pub role: Option<Role>,
    /// The user's page permissions, all of them: the ones not listed are taken away.
    pub permissions: Option<Vec<PagePermission>>,
}

/// Changes the user `id`.
pub struct UpdateUser<'a> {
    pub id: UserId,
    pub changes: &'a UserChanges,
}

impl UpdateUser<'_> {
    /// The new role, when it is one.
    fn new_role(&self, now: Role) -> Option<Role> {
        self.changes.role.filter(|role| *role != now)
    }
}

impl Operation for UpdateUser<'_> {
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
        target::intent(cx, found, "update", |user| {
            let role = self.new_role(user.role);
            if let Some(role) = role {
                cx.principal.may_assign(role)?;
            }
            Ok(role.is_some())
        })
    }

    async fn run(
        &self,
        cx: &Context<'_>,
        tx: &Tx<'_>,
        auth0: &mut Auth0Changes<'_>,
        (found, missing_pages): Self::Reads,
    ) -> Result<UserView, LifecycleError> {
        let (user, auth0_id) = target::changeable(cx, found)?;
        let role = self.new_role(user.role);
        if let Some(role) = role {
            cx.principal.may_assign(role)?;
        }
        let missing_pages = missing_pages.map_err(Failure::database(VALIDATE))?;
        if !missing_pages.is_empty() {
            return Err(LifecycleError::UnknownPages(missing_pages));
        }
        if role.is_some() {
            target::keep_an_owner(cx, tx, &user).await?;
        }
        let id = user.id;
        let permissions = self.changes.permissions.as_deref();
        let view = target::change_and_read_back(
            cx,
            tx,
            id,
            &[users::SET_ROLE, pages::REPLACE],
            |c, db| async move {
                // In this order (prepared first); the second only reports the first's failure.
                let (set, replaced) = tokio::join!(
                    biased;
                    async {
                        match role {
                            Some(role) => db.on(users::set_role(c, id, role)).await,
                            None => Ok(()),
                        }
                    },
                    async {
                        match permissions {
                            Some(permissions) => db.on(pages::replace(c, id, permissions)).await,
                            None => Ok(()),
                        }
                    }
                );
                set.map_err(Failure::database(CHANGE_USER))?;
                replaced.map_err(Failure::database(PERMISSIONS))?;
                Ok(())
            },
        )
        .await?;
        if let Some(role) = role {
            auth0
                .set_role(AUTH0_ROLE, &auth0_id, role, user.role)
                .await?;
        }
        Ok(view)
    }

    fn committed(&self, user: &UserView) {
        tracing::info!(
            step = "commit",
            user_id = %user.user.id,
            role = self.changes.role.map(Role::as_str),
            pages = self.changes.permissions.as_ref().map(Vec::len),
            "user updated"
        );
    }
}
