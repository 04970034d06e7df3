//! Who acts, and what they may do: the one place authorization is decided.
//!
//! The edge turns what it was given into a [`Credential`] (the JWT `sub` API Gateway's
//! authorizer verified, or a SCIM token's hash). Every flow resolves it into a [`Principal`]
//! with [`resolve`] (through `flow::authorize`, which names a database failure as the
//! authorization step), in the round trip that opens its transaction, and decides with the
//! principal's methods: no query of a flow checks the caller itself.
//!
//! The rules: the caller must be a user of a tenant, active, and an OWNER or ADMIN; everything
//! happens in the caller's tenant (another tenant's user is "not found", never "forbidden");
//! an ADMIN cannot manage an OWNER, nor give anyone the role OWNER; nobody changes their own
//! account through these operations; a tenant never loses its last active OWNER.

use deadpool_postgres::GenericClient;

use crate::db::{Bound, DbError, scim_tokens, users};
use crate::domain::{BusinessId, CallerSub, Role, ScimTokenId, TenantId, UserId};

/// What the edge knows of who is calling, before the database was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// An admin of the app, by the `sub` claim of the JWT API Gateway verified.
    Jwt(CallerSub),
    /// A tenant's SCIM client, by the SHA-256 of its bearer token.
    ScimToken([u8; 32]),
}

impl Credential {
    /// Who sent the request, for what makes two requests "the same" (an `Idempotency-Key`'s
    /// fingerprint).
    pub fn identity(&self) -> String {
        match self {
            Self::Jwt(sub) => sub.as_str().to_string(),
            Self::ScimToken(hash) => format!("scim:{}", hex::encode(hash)),
        }
    }
}

/// Who acts, once the credential was checked: everything a flow decides with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub tenant_id: TenantId,
    pub tenant_name: String,
    pub business_id: Option<BusinessId>,
    pub role: Role,
    /// The user acting; `None` for a credential that is no user.
    pub acting_user: Option<UserId>,
    /// The SCIM client's token acting, if the credential is one.
    pub scim_token: Option<ScimTokenId>,
}

/// Why a principal may not do what it asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error("the caller is not a user of any tenant")]
    UnknownCaller,
    #[error("the caller's account is inactive")]
    InactiveCaller,
    #[error("the caller is not an OWNER or ADMIN")]
    NotAnAdmin,
    #[error("an ADMIN cannot give anyone the role {}", .0.as_str())]
    RoleNotAllowed(Role),
    #[error("an ADMIN cannot manage an OWNER")]
    OwnerProtected,
    #[error("a caller cannot change their own account")]
    Yourself,
    #[error("the tenant would have no active OWNER left")]
    LastOwner,
    /// A SCIM token that is unknown or revoked: one answer for both, as for a missing one.
    #[error("the SCIM token is not valid")]
    InvalidToken,
}

impl Principal {
    /// Whether a user of `tenant` exists for this principal at all.
    pub fn sees(&self, tenant: TenantId) -> bool {
        self.tenant_id == tenant
    }

    /// Only an OWNER hands out ownership.
    pub fn may_assign(&self, role: Role) -> Result<(), Denied> {
        if role == Role::Owner && self.role != Role::Owner {
            return Err(Denied::RoleNotAllowed(role));
        }
        Ok(())
    }

    /// May act on a user (one it [`sees`](Self::sees)) whose role is `role`: an ADMIN cannot
    /// manage an OWNER.
    pub fn may_manage(&self, role: Role) -> Result<(), Denied> {
        if role == Role::Owner && self.role != Role::Owner {
            return Err(Denied::OwnerProtected);
        }
        Ok(())
    }

    /// May change (update, deactivate, reactivate, delete) the user `id` whose role is `role`:
    /// not their own account, and an OWNER's only as an OWNER.
    pub fn may_change(&self, id: UserId, role: Role) -> Result<(), Denied> {
        if self.acting_user == Some(id) {
            return Err(Denied::Yourself);
        }
        self.may_manage(role)
    }
}

/// A change that takes an active OWNER away (deactivating, deleting or demoting one) leaves
/// `others` active OWNERs in the tenant: refused when that is none.
pub fn keeps_an_owner(others: i64) -> Result<(), Denied> {
    if others < 1 {
        return Err(Denied::LastOwner);
    }
    Ok(())
}

/// Why a credential gives no principal.
#[derive(Debug)]
pub enum Unresolved {
    /// It may not manage users.
    Denied(Denied),
    /// The database could not say who it is.
    Database(DbError),
}

impl From<Denied> for Unresolved {
    fn from(denied: Denied) -> Self {
        Self::Denied(denied)
    }
}

impl From<DbError> for Unresolved {
    fn from(err: DbError) -> Self {
        Self::Database(err)
    }
}

/// The principal of `credential`, or why it may not manage users. One statement, so a flow
/// sends it with BEGIN and its first reads.
pub async fn resolve(
    client: &impl GenericClient,
    db: Bound,
    credential: &Credential,
) -> Result<Principal, Unresolved> {
    match credential {
        Credential::Jwt(sub) => {
            let caller = db.on(users::find_caller(client, sub.as_str())).await?;
            Ok(admin(caller)?)
        }
        Credential::ScimToken(hash) => {
            let token = db.on(scim_tokens::find(client, hash)).await?;
            Ok(scim_client(token)?)
        }
    }
}

/// The statements [`resolve`] runs, to prepare before a burst that must keep its order.
pub const STATEMENTS: &[&str] = &[users::FIND_CALLER, scim_tokens::FIND];

/// A SCIM client acts for its tenant as an ADMIN would, and is no user: it manages the
/// tenant's users but not its OWNERs, and cannot make anyone one.
fn scim_client(token: Option<scim_tokens::ActiveToken>) -> Result<Principal, Denied> {
    let token = token.ok_or(Denied::InvalidToken)?;
    Ok(Principal {
        tenant_id: token.tenant_id,
        tenant_name: token.tenant_name,
        business_id: token.business_id,
        role: Role::Admin,
        acting_user: None,
        scim_token: Some(token.id),
    })
}

fn admin(caller: Option<users::CallerRecord>) -> Result<Principal, Denied> {
    let caller = caller.ok_or(Denied::UnknownCaller)?;
    if !caller.is_active {
        return Err(Denied::InactiveCaller);
    }
    if !matches!(caller.role, Role::Owner | Role::Admin) {
        return Err(Denied::NotAnAdmin);
    }
    Ok(Principal {
        tenant_id: caller.tenant_id,
        tenant_name: caller.tenant_name,
        business_id: caller.business_id,
        role: caller.role,
        acting_user: Some(caller.id),
        scim_token: None,
    })
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    fn principal(role: Role) -> Principal {
        Principal {
            tenant_id: TenantId::new(Uuid::new_v4()),
            tenant_name: "Acme".into(),
            business_id: None,
            role,
            acting_user: Some(UserId::new(Uuid::new_v4())),
            scim_token: None,
        }
    }

    #[test]
    fn only_an_owner_gives_out_or_touches_ownership() {
        let (owner, admin) = (principal(Role::Owner), principal(Role::Admin));
        for role in Role::ALL {
            assert_eq!(owner.may_assign(role), Ok(()));
            assert_eq!(owner.may_manage(role), Ok(()));
        }
        assert_eq!(
            admin.may_assign(Role::Owner),
            Err(Denied::RoleNotAllowed(Role::Owner))
        );
        assert_eq!(admin.may_manage(Role::Owner), Err(Denied::OwnerProtected));
        assert_eq!(admin.may_assign(Role::Admin), Ok(()));
        assert_eq!(admin.may_manage(Role::User), Ok(()));
        assert_eq!(
            admin.may_change(UserId::new(Uuid::new_v4()), Role::Owner),
            Err(Denied::OwnerProtected)
        );
    }

    #[test]
    fn nobody_changes_their_own_account_and_the_last_owner_stays() {
        let owner = principal(Role::Owner);
        let me = owner.acting_user.unwrap();
        assert_eq!(owner.may_change(me, Role::Owner), Err(Denied::Yourself));
        assert_eq!(
            owner.may_change(UserId::new(Uuid::new_v4()), Role::Owner),
            Ok(())
        );
        assert_eq!(keeps_an_owner(0), Err(Denied::LastOwner));
        assert_eq!(keeps_an_owner(1), Ok(()));
    }

    #[test]
    fn a_caller_must_exist_be_active_and_manage_users() {
        let record = |role, is_active| users::CallerRecord {
            id: UserId::new(Uuid::new_v4()),
            tenant_id: TenantId::new(Uuid::new_v4()),
            tenant_name: "Acme".into(),
            business_id: None,
            role,
            is_active,
        };
        assert_eq!(admin(None), Err(Denied::UnknownCaller));
        assert_eq!(
            admin(Some(record(Role::Admin, false))),
            Err(Denied::InactiveCaller)
        );
        assert_eq!(
            admin(Some(record(Role::User, true))),
            Err(Denied::NotAnAdmin)
        );
        let owner = admin(Some(record(Role::Owner, true))).unwrap();
        assert_eq!(owner.role, Role::Owner);
        assert!(owner.acting_user.is_some());
        assert!(!owner.sees(TenantId::new(Uuid::new_v4())));
        assert!(owner.sees(owner.tenant_id));
    }
}
