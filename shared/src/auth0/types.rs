//! What the client takes and answers: our ownership tags, Auth0's users, the rate-limit quota.

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::domain::{Auth0UserId, Email, Role, TenantId, UserId};

/// The `app_metadata.created_by` value that marks a user as ours; cleanup trusts nothing else.
pub const CREATED_BY_MARKER: &str = "atomic-user-provisioning";

/// v3 search answers at most this many users a page.
pub const SEARCH_PAGE_SIZE: usize = 100;

/// The tags every Auth0 user we create carries in `app_metadata`, so orphans can be recognised
/// later: `{"created_by": CREATED_BY_MARKER, "tenant_id", "role", "db_user_id"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnershipTags {
    pub tenant_id: TenantId,
    pub role: Role,
    /// The `users` row this Auth0 user was made for.
    pub db_user_id: UserId,
}

impl Serialize for OwnershipTags {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serde_json::json!({
            "created_by": CREATED_BY_MARKER,
            "tenant_id": self.tenant_id.to_string(),
            "role": self.role.as_str(),
            "db_user_id": self.db_user_id.to_string(),
        })
        .serialize(serializer)
    }
}

impl OwnershipTags {
    /// The tags in `app_metadata`, if it carries our marker and all of them parse.
    fn read(app_metadata: &serde_json::Value) -> Option<Self> {
        let text = |key: &str| app_metadata.get(key).and_then(serde_json::Value::as_str);
        (text("created_by")? == CREATED_BY_MARKER).then_some(())?;
        Some(Self {
            tenant_id: TenantId::parse(text("tenant_id")?).ok()?,
            role: Role::parse(text("role")?).ok()?,
            db_user_id: UserId::parse(text("db_user_id")?).ok()?,
        })
    }
}

/// A user as the Management API answers it, parsed once here: everything past the client
/// works on checked types.
#[derive(Debug, Clone, PartialEq)]
pub struct Auth0User {
    pub id: Auth0UserId,
    pub email: Option<String>,
    /// As Auth0 holds it; cleanup compares it whole to see whether a user changed.
    pub app_metadata: serde_json::Value,
    /// `None` when Auth0 sent none we can read: such a user is never old enough to delete.
    pub created_at: Option<DateTime<Utc>>,
    /// Logins refused (Auth0 leaves the field out until it was set).
    pub blocked: bool,
}

impl<'de> Deserialize<'de> for Auth0User {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            user_id: String,
            #[serde(default)]
            email: Option<String>,
            #[serde(default)]
            app_metadata: serde_json::Value,
            #[serde(default)]
            created_at: Option<String>,
            #[serde(default)]
            blocked: Option<bool>,
        }
        let raw = Raw::deserialize(deserializer)?;
        Ok(Self {
            id: Auth0UserId::parse(&raw.user_id).map_err(serde::de::Error::custom)?,
            email: raw.email,
            created_at: raw
                .created_at
                .and_then(|at| DateTime::parse_from_rfc3339(&at).ok())
                .map(|at| at.with_timezone(&Utc)),
            app_metadata: raw.app_metadata,
            blocked: raw.blocked.unwrap_or(false),
        })
    }
}

impl Auth0User {
    /// True when this system created the user (it carries our marker).
    pub fn is_ours(&self) -> bool {
        self.app_metadata
            .get("created_by")
            .and_then(serde_json::Value::as_str)
            == Some(CREATED_BY_MARKER)
    }

    /// Our tags, when the user is ours and they all parse.
    pub fn tags(&self) -> Option<OwnershipTags> {
        OwnershipTags::read(&self.app_metadata)
    }

    /// The `users` row a user of ours was made for (read alone: the other tags may be old).
    pub fn db_user_id(&self) -> Option<UserId> {
        self.is_ours().then_some(())?;
        let id = self.app_metadata.get("db_user_id")?.as_str()?;
        UserId::parse(id).ok()
    }

    /// The role our tags give the user, when it is ours and the tag reads.
    pub fn role_tag(&self) -> Option<Role> {
        self.is_ours().then_some(())?;
        Role::from_stored(self.app_metadata.get("role")?.as_str()?).ok()
    }

    /// Created before `cutoff`, as far as Auth0 says.
    pub fn created_before(&self, cutoff: DateTime<Utc>) -> bool {
        self.created_at.is_some_and(|at| at < cutoff)
    }
}

pub struct NewAuth0User<'a> {
    pub email: &'a Email,
    pub password: &'a SecretString,
    pub tags: &'a OwnershipTags,
    /// Created with every login refused (a user created deactivated).
    pub blocked: bool,
}

/// What the last Management API answer said about the tenant's rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitQuota {
    pub remaining: u64,
    /// Epoch second at which the window resets.
    pub reset: u64,
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use uuid::Uuid;

    use super::*;

    #[test]
    fn a_user_is_parsed_once_into_checked_types_and_our_tags_round_trip() {
        let tags = OwnershipTags {
            tenant_id: TenantId::new(Uuid::new_v4()),
            role: Role::Admin,
            db_user_id: UserId::new(Uuid::new_v4()),
        };
        let answer = json!({
            "user_id": "auth0|65f0c0ffee0000000000beef",
            "email": "ann@acme.test",
            "created_at": "2026-11-24T10:00:00.123Z",
            "app_metadata": tags,
        });
        let user: Auth0User = serde_json::from_value(answer).unwrap();
        assert_eq!(user.id.as_str(), "auth0|65f0c0ffee0000000000beef");
        assert!(user.is_ours());
        assert_eq!(user.tags(), Some(tags.clone()));
        assert_eq!(user.db_user_id(), Some(tags.db_user_id));
        let created = user.created_at.unwrap();
        assert!(user.created_before(created + chrono::Duration::milliseconds(1)));
        assert!(!user.created_before(created));
        assert_eq!(user.app_metadata["created_by"], CREATED_BY_MARKER);
    }

    #[test]
    fn a_foreign_user_has_no_tags_and_a_malformed_id_is_refused() {
        let foreign: Auth0User = serde_json::from_value(json!({
            "user_id": "google-oauth2|1234",
            "app_metadata": {"created_by": "someone-else", "db_user_id": Uuid::new_v4()},
        }))
        .unwrap();
        assert!(!foreign.is_ours() && foreign.tags().is_none() && foreign.db_user_id().is_none());
        assert!(
            !foreign.created_before(Utc::now()),
            "no created_at: never old enough"
        );
        assert!(serde_json::from_value::<Auth0User>(json!({"user_id": "no-provider"})).is_err());
    }
}

/// A `PATCH /api/v2/users/{id}` that changes state, not credentials: only the fields given are
/// sent. `app_metadata` merges at the first level (Auth0's rule): the keys given replace
/// theirs, a `null` removes one, the others stay.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct UserPatch {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_metadata: Option<serde_json::Value>,
}

impl UserPatch {
    pub fn blocked(blocked: bool) -> Self {
        Self {
            blocked: Some(blocked),
            ..Self::default()
        }
    }

    /// The role tag alone; the other tags stay as they are.
    pub fn role(role: Role) -> Self {
        Self {
            app_metadata: Some(serde_json::json!({ "role": role.as_str() })),
            ..Self::default()
        }
    }
}
