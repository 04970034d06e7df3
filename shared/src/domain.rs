//! Validated domain types. Everything past the HTTP edge takes these, never raw strings.

use std::fmt;

use uuid::Uuid;

/// A request field that failed validation, named the way the admin panel sends it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// An email address, trimmed and lower-cased, checked for a plausible shape and length.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    pub const MAX_LEN: usize = 254;
    const MAX_LOCAL_LEN: usize = 64;

    pub fn parse(raw: &str) -> Result<Self, String> {
        // ASCII lower-casing only: Unicode's would turn the Kelvin sign (U+212A) into `k` and
        // pass a look-alike as the plain address, where the shape check below refuses it.
        let email = raw.trim().to_ascii_lowercase();
        if email.is_empty() {
            return Err("is required".into());
        }
        if email.len() > Self::MAX_LEN {
            return Err(format!("must be at most {} characters", Self::MAX_LEN));
        }
        let Some((local, domain)) = email.split_once('@') else {
            return Err("must be an email address like name@example.com".into());
        };
        let local_ok = !local.is_empty()
            && local.len() <= Self::MAX_LOCAL_LEN
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c));
        let domain_ok = domain.contains('.')
            && domain.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        if !local_ok || !domain_ok {
            return Err("must be an email address like name@example.com".into());
        }
        Ok(Self(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// For logs: enough to correlate, never the whole address.
    pub fn redacted(&self) -> String {
        redact_email(&self.0)
    }
}

/// Masks the local part of anything that looks like an email address: `j***@example.com`.
pub fn redact_email(address: &str) -> String {
    match address.split_once('@') {
        Some((local, domain)) => {
            let first = local.chars().next().unwrap_or('*');
            format!("{first}***@{domain}")
        }
        None => "***".into(),
    }
}

impl fmt::Display for Email {
    /// Display is the redacted form so an accidental `%email` in a log leaks nothing.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Owner,
    Admin,
    User,
}

impl Role {
    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw.trim().to_ascii_uppercase().as_str() {
            "OWNER" => Ok(Self::Owner),
            "ADMIN" => Ok(Self::Admin),
            "USER" => Ok(Self::User),
            _ => Err("must be one of ADMIN, USER".into()),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "OWNER",
            Self::Admin => "ADMIN",
            Self::User => "USER",
        }
    }

    pub const ALL: [Role; 3] = [Self::Owner, Self::Admin, Self::User];

    /// The role a stored value names, exactly as the `users.role` CHECK constraint spells it;
    /// anything else is an error, never a guess (a request's role goes through [`Role::parse`]).
    pub fn from_stored(raw: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|role| role.as_str() == raw)
            .ok_or_else(|| format!("not a role: {} characters", raw.chars().count()))
    }
}

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Uuid);

        impl $name {
            pub fn new(id: Uuid) -> Self {
                Self(id)
            }
            /// The hyphenated form only (any case), as every answer writes it: one id has
            /// one spelling, not also `{…}`, `urn:uuid:…` or 32 bare digits.
            pub fn parse(raw: &str) -> Result<Self, String> {
                if raw.len() != 36 {
                    return Err("must be a UUID".to_string());
                }
                Uuid::parse_str(raw)
                    .map(Self)
                    .map_err(|_| "must be a UUID".to_string())
            }
            pub fn uuid(self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

uuid_id!(TenantId);
uuid_id!(BusinessId);
uuid_id!(UserId);
uuid_id!(PageId);
uuid_id!(EmployeeId);
uuid_id!(
    /// A SCIM client's bearer token, as its row names it (never the token itself).
    ScimTokenId
);

/// The id Auth0 gives a user, `provider|id`, e.g. `auth0|65f0c0ffee…`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Auth0UserId(String);

impl Auth0UserId {
    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw.split_once('|') {
            Some((provider, id)) if !provider.is_empty() && !id.is_empty() => {
                Ok(Self(raw.to_string()))
            }
            // Not the value: it comes from an answer that may carry anything, and is logged.
            _ => Err(format!(
                "not an Auth0 user id (`provider|id`): {} characters",
                raw.chars().count()
            )),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Auth0UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a user row stands with Auth0. Its `auth0_sub` column holds `pending_<row id>` while
/// the row's create-user is in flight (cleanup removes such rows when they linger), then the
/// Auth0 user's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth0Link {
    Pending,
    Linked(Auth0UserId),
}

impl Auth0Link {
    const PENDING_PREFIX: &str = "pending_";

    /// The column's value for a row whose Auth0 user does not exist yet: unique, like the ids.
    pub fn pending_column(id: UserId) -> String {
        format!("{}{id}", Self::PENDING_PREFIX)
    }

    pub fn from_stored(raw: &str) -> Result<Self, String> {
        if raw.starts_with(Self::PENDING_PREFIX) {
            return Ok(Self::Pending);
        }
        Auth0UserId::parse(raw).map(Self::Linked)
    }

    /// The Auth0 user, once there is one.
    pub fn auth0_user_id(&self) -> Option<&Auth0UserId> {
        match self {
            Self::Pending => None,
            Self::Linked(id) => Some(id),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PagePermission {
    pub page_id: PageId,
    pub can_read: bool,
    pub can_write: bool,
    pub can_edit: bool,
    pub can_delete: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmploymentType {
    FullTime,
    PartTime,
    Contractor,
    Temporary,
    Intern,
}

impl EmploymentType {
    /// Accepts the spellings admin panels use: `FULL_TIME`, `full-time`, `Full time`.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let normalised: String = raw
            .trim()
            .chars()
            .map(|c| match c {
                '-' | ' ' => '_',
                c => c.to_ascii_uppercase(),
            })
            .collect();
        match normalised.as_str() {
            "FULL_TIME" | "FULLTIME" => Ok(Self::FullTime),
            "PART_TIME" | "PARTTIME" => Ok(Self::PartTime),
            "CONTRACTOR" | "CONTRACT" => Ok(Self::Contractor),
            "TEMPORARY" => Ok(Self::Temporary),
            "INTERN" => Ok(Self::Intern),
            _ => Err("must be one of FULL_TIME, PART_TIME, CONTRACTOR, TEMPORARY, INTERN".into()),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::FullTime => "FULL_TIME",
            Self::PartTime => "PART_TIME",
            Self::Contractor => "CONTRACTOR",
            Self::Temporary => "TEMPORARY",
            Self::Intern => "INTERN",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEmployee {
    pub first_name: String,
    pub last_name: String,
    pub department: Option<String>,
    pub job_title: Option<String>,
    pub employment_type: Option<EmploymentType>,
}

/// A one-line name shown in the admin panel: a line break, an escape sequence (`ESC[31m`) or a
/// text-direction override (U+202E, which shows "txt.exe" as "exe.txt") has no place in it.
pub fn refuse_controls(field: &str, raw: &str) -> Result<(), FieldError> {
    // Besides C0 and C1: the line and paragraph separators (line breaks all the same) and
    // every text-direction control, the overrides and isolates and the implicit marks.
    let is_format_control = |c: char| {
        matches!(
            c,
            '\u{2028}' | '\u{2029}'
                | '\u{200E}' | '\u{200F}' | '\u{061C}'
                | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        )
    };
    if raw.chars().any(|c| c.is_control() || is_format_control(c)) {
        return Err(FieldError::new(
            field,
            "must not contain control characters (line breaks, tabs, escape sequences or \
             text-direction marks and overrides)",
        ));
    }
    Ok(())
}

/// Shows nothing: white space, and the zero-width and soft-hyphen characters. A required name
/// made only of these is missing.
pub fn is_invisible(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '\u{00AD}' | '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}'
        )
}

/// Postgres cannot store U+0000 in text: refused here with the field's name, not at the
/// insert as a 500.
pub fn refuse_nul(field: &str, raw: &str) -> Result<(), FieldError> {
    if raw.contains('\0') {
        return Err(FieldError::new(
            field,
            "must not contain a NUL character (U+0000)",
        ));
    }
    Ok(())
}

/// A person's name, as the employee record keeps it: both parts, each a visible line of text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonName {
    pub given: String,
    pub family: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmployeeRequest {
    None,
    Create(NewEmployee),
    Link(EmployeeId),
}

/// A create-user request after every field has been checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    pub email: Email,
    pub role: Role,
    pub permissions: Vec<PagePermission>,
    pub employee: EmployeeRequest,
    /// What an identity provider calls the user (SCIM's `externalId`).
    pub external_id: Option<String>,
}

/// The admin panel's `Idempotency-Key` header: 1 to 255 visible ASCII characters (a UUID,
/// typically).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub const MAX_LEN: usize = 255;

    pub fn parse(raw: &str) -> Result<Self, String> {
        let key = raw.trim();
        if key.is_empty() || key.len() > Self::MAX_LEN {
            return Err(format!("must be 1 to {} characters", Self::MAX_LEN));
        }
        if !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("must be visible ASCII characters (a UUID, for example)".into());
        }
        Ok(Self(key.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The admin calling us, as identified by the JWT `sub` claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerSub(String);

impl CallerSub {
    /// The reason is the 401's message. A control character cannot be in a user id we stored,
    /// and Postgres refuses a NUL in text outright: refused here, the lookup never runs.
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let sub = raw.trim();
        if sub.is_empty() {
            return Err("No caller identity: the JWT `sub` claim is empty.");
        }
        if sub.chars().any(char::is_control) {
            return Err("The JWT `sub` claim is not a user id: it contains control characters.");
        }
        Ok(Self(sub.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth0_user_id_needs_provider_and_id_and_its_error_never_repeats_the_value() {
        assert_eq!(
            Auth0UserId::parse("auth0|65f0c0ffee").unwrap().as_str(),
            "auth0|65f0c0ffee"
        );
        for bad in ["ann@example.com", "|65f0", "auth0|", ""] {
            let err = Auth0UserId::parse(bad).unwrap_err();
            assert!(err.starts_with("not an Auth0 user id"), "{err}");
            assert!(bad.is_empty() || !err.contains(bad), "{err} repeats {bad}");
        }
    }

    #[test]
    fn email_is_trimmed_and_lower_cased() {
        assert_eq!(
            Email::parse("  Jane.Doe@Example.COM ").unwrap().as_str(),
            "jane.doe@example.com"
        );
    }

    #[test]
    fn email_rejects_bad_shapes_with_a_reason() {
        for bad in [
            "",
            "plain",
            "a@b",
            "@example.com",
            "a@@example.com",
            "a b@example.com",
            "a..b@example.com",
            "a@-example.com",
            "\u{212a}elvin@example.com",
            "j\u{0430}ne@example.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert_eq!(
            Email::parse(&long).unwrap_err(),
            "must be at most 254 characters"
        );
    }

    #[test]
    fn redacted_email_keeps_only_the_first_letter_and_domain() {
        let email = Email::parse("jane@example.com").unwrap();
        assert_eq!(email.redacted(), "j***@example.com");
        assert_eq!(email.to_string(), "j***@example.com");
    }

    #[test]
    fn a_stored_role_is_read_exactly_and_an_unknown_one_is_an_error() {
        assert_eq!(Role::from_stored("OWNER"), Ok(Role::Owner));
        assert_eq!(Role::from_stored("USER"), Ok(Role::User));
        for unknown in ["user", " ADMIN", "SUPERUSER", ""] {
            assert!(Role::from_stored(unknown).is_err(), "{unknown:?}");
        }
    }

    #[test]
    fn a_pending_link_is_told_from_a_linked_one() {
        let id = UserId::new(Uuid::new_v4());
        let pending = Auth0Link::pending_column(id);
        assert_eq!(pending, format!("pending_{id}"));
        assert_eq!(Auth0Link::from_stored(&pending), Ok(Auth0Link::Pending));
        let linked = Auth0Link::from_stored("auth0|65f0c0ffee").unwrap();
        assert_eq!(linked.auth0_user_id().unwrap().as_str(), "auth0|65f0c0ffee");
        assert!(Auth0Link::from_stored("no-provider").is_err());
    }

    #[test]
    fn employment_type_accepts_common_spellings() {
        assert_eq!(
            EmploymentType::parse("full-time"),
            Ok(EmploymentType::FullTime)
        );
        assert_eq!(
            EmploymentType::parse("Part Time"),
            Ok(EmploymentType::PartTime)
        );
        assert!(EmploymentType::parse("gig").is_err());
    }
}
