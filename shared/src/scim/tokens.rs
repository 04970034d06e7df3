//! SCIM tokens: what a tenant's identity provider authenticates with. An OWNER or ADMIN makes
//! one through the admin API (it is shown once), lists them (never the token: its hint, its
//! maker, its last use) and revokes them. Only the SHA-256 of a token is stored; a token has a
//! prefix of its own (`aup_scim_`) so that secret scanners recognise a leaked one.

use rand::RngCore;
use secrecy::SecretString;
use sha2::{Digest, Sha256};

use crate::access::Credential;
use crate::db::Bound;
use crate::db::scim_tokens::{self, NewToken, TokenRecord};
use crate::deadline::Deadline;
use crate::domain::{FieldError, ScimTokenId};
use crate::flow::{self, Failure, Step, connection};
use crate::lifecycle::LifecycleError;
use crate::state::AppState;

/// Every token starts with this.
pub const PREFIX: &str = "aup_scim_";
/// How many characters of a token (the prefix and a few after it) its hint shows.
const HINT_LEN: usize = PREFIX.len() + 4;
const MAX_NAME_LEN: usize = 100;

const STORE: Step = Step::local("scim_token", "storing the SCIM token");
const READ: Step = Step::local("scim_tokens", "reading the SCIM tokens");

/// A new token, before it is stored: the token itself is in the answer only.
pub struct FreshToken {
    pub token: SecretString,
    pub hash: [u8; 32],
    pub hint: String,
}

impl FreshToken {
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let token = format!("{PREFIX}{}", hex::encode(bytes));
        Self {
            hash: hash(&token),
            hint: format!("{}…", &token[..HINT_LEN]),
            token: SecretString::from(token),
        }
    }
}

/// What is stored of a token, and looked up with.
pub fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The credential of an `Authorization: Bearer …` header's token. Anything else (no header,
/// another scheme, a malformed token) is `None`: the caller answers every such case the same.
pub fn credential(authorization: Option<&str>) -> Option<Credential> {
    let (scheme, token) = authorization?.trim().split_once(' ')?;
    let token = token.trim();
    let well_formed = token.len() == PREFIX.len() + 64
        && token.starts_with(PREFIX)
        && token[PREFIX.len()..].bytes().all(|b| b.is_ascii_hexdigit());
    (scheme.eq_ignore_ascii_case("bearer") && well_formed)
        .then(|| Credential::ScimToken(hash(token)))
}

/// A token's name, as its tenant's admins tell tokens apart: "Okta production".
pub fn parse_name(raw: Option<&str>) -> Result<String, FieldError> {
    let raw = raw.ok_or_else(|| FieldError::new("name", "is required"))?;
    crate::domain::refuse_controls("name", raw)?;
    let name = raw.trim();
    // Only white space or zero-width characters: a name nobody could read in the list.
    if name.chars().all(crate::domain::is_invisible) || name.chars().count() > MAX_NAME_LEN {
        return Err(FieldError::new(
            "name",
            format!("must be 1 to {MAX_NAME_LEN} characters"),
        ));
    }
    Ok(name.to_string())
}

/// Makes a token for the principal's tenant; the answer is the only place the token appears.
pub async fn create(
    state: &AppState,
    credential: &Credential,
    name: &str,
    deadline: &Deadline,
) -> Result<(TokenRecord, SecretString), LifecycleError> {
    let fresh = FreshToken::generate();
    let db = Bound::until(*deadline, &state.config.timeouts);
    let mut attempts = connection::Attempts::new(state, db);
    let record = loop {
        let client = attempts.connection().await?;
        let result = async {
            let principal = flow::authorize::<LifecycleError>(&client, db, credential).await?;
            let token = NewToken {
                tenant_id: principal.tenant_id,
                business_id: principal.business_id,
                name,
                hash: &fresh.hash,
                hint: &fresh.hint,
                created_by: principal.acting_user,
            };
            db.on(scim_tokens::insert(&client, &token))
                .await
                .map_err(|err| LifecycleError::from(Failure::database(STORE)(err)))
        }
        .await;
        if !attempts.again(client, &result) {
            break result?;
        }
    };
    tracing::info!(token_id = %record.id, hint = %record.hint, "scim token made");
    Ok((record, fresh.token))
}

/// The principal's tenant's tokens, newest first.
pub async fn list(
    state: &AppState,
    credential: &Credential,
    deadline: &Deadline,
) -> Result<Vec<TokenRecord>, LifecycleError> {
    let db = Bound::until(*deadline, &state.config.timeouts);
    let mut attempts = connection::Attempts::new(state, db);
    loop {
        let client = attempts.connection().await?;
        let result = async {
            let principal = flow::authorize::<LifecycleError>(&client, db, credential).await?;
            db.on(scim_tokens::list(&client, principal.tenant_id))
                .await
                .map_err(|err| LifecycleError::from(Failure::database(READ)(err)))
        }
        .await;
        if !attempts.again(client, &result) {
            return result;
        }
    }
}

/// Revokes a token of the principal's tenant: it never works again.
pub async fn revoke(
    state: &AppState,
    credential: &Credential,
    id: ScimTokenId,
    deadline: &Deadline,
) -> Result<TokenRecord, LifecycleError> {
    let db = Bound::until(*deadline, &state.config.timeouts);
    let mut attempts = connection::Attempts::new(state, db);
    let record = loop {
        let client = attempts.connection().await?;
        let result = async {
            let principal = flow::authorize::<LifecycleError>(&client, db, credential).await?;
            db.on(scim_tokens::revoke(&client, principal.tenant_id, id))
                .await
                .map_err(|err| LifecycleError::from(Failure::database(STORE)(err)))?
                .ok_or(LifecycleError::TokenNotFound)
        }
        .await;
        if !attempts.again(client, &result) {
            break result?;
        }
    };
    tracing::info!(token_id = %record.id, "scim token revoked");
    Ok(record)
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn a_token_is_recognisable_random_and_stored_only_as_its_hash() {
        let (a, b) = (FreshToken::generate(), FreshToken::generate());
        let token = a.token.expose_secret();
        assert!(token.starts_with(PREFIX) && token.len() == PREFIX.len() + 64);
        assert_ne!(token, b.token.expose_secret());
        assert_eq!(a.hash, hash(token));
        assert!(a.hint.starts_with(PREFIX) && a.hint.chars().count() == HINT_LEN + 1);
        assert_eq!(
            credential(Some(&format!("Bearer {token}"))),
            Some(Credential::ScimToken(a.hash))
        );
        assert_eq!(
            credential(Some(&format!("bearer  {token} "))),
            Some(Credential::ScimToken(a.hash))
        );
    }

    #[test]
    fn anything_but_a_bearer_token_of_ours_is_no_credential() {
        let token = FreshToken::generate();
        let token = token.token.expose_secret();
        for header in [
            None,
            Some(""),
            Some("Bearer"),
            Some("Basic dXNlcjpwYXNz"),
            Some(&format!("Token {token}")),
            Some("Bearer aup_scim_short"),
            Some(&format!("Bearer {}", &token.replace("aup_", "xyz_"))),
        ] {
            assert_eq!(credential(header), None, "{header:?}");
        }
    }

    #[test]
    fn a_name_is_a_short_line() {
        assert_eq!(
            parse_name(Some("  Okta production ")).unwrap(),
            "Okta production"
        );
        assert!(parse_name(None).is_err());
        assert!(parse_name(Some("  ")).is_err());
        assert!(parse_name(Some("a\nb")).is_err());
        assert!(parse_name(Some(&"x".repeat(101))).is_err());
    }
}
