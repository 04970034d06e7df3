//! Password-setup tokens: 32 bytes for the link, only their SHA-256 in the database.
//!
//! create-user derives its token from the Auth0 user id under a key from the app secret
//! (as Django derives reset tokens from the user's state under its secret key), so a retry
//! that adopts the Auth0 user of a crashed attempt makes the same token: the link that attempt
//! already emailed starts working when the retry commits. resend-invitation draws a fresh
//! random token. `rand::rng()` is a CSPRNG (ChaCha, seeded from the OS).

use hmac::{Hmac, Mac};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use crate::domain::Auth0UserId;
use crate::secrets::AppSecret;

pub struct ResetToken {
    raw: SecretString,
    hash: [u8; 32],
}

impl ResetToken {
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        Self::from_bytes(&bytes)
    }

    /// The setup token of this Auth0 user: the same for every attempt that holds the user.
    pub fn derive(key: &SetupTokenKey, auth0_id: &Auth0UserId) -> Self {
        let mut mac = key.mac();
        mac.update(b"setup-token\0");
        mac.update(auth0_id.as_str().as_bytes());
        Self::from_bytes(&mac.finalize().into_bytes().into())
    }

    fn from_bytes(bytes: &[u8; 32]) -> Self {
        let raw = hex::encode(bytes);
        let hash = hash_token(&raw);
        Self {
            raw: SecretString::from(raw),
            hash,
        }
    }

    /// The value that goes into the email link (hex, 64 characters).
    pub fn expose(&self) -> &str {
        self.raw.expose_secret()
    }

    pub fn hash(&self) -> &[u8; 32] {
        &self.hash
    }
}

/// The key setup tokens are derived under: HMAC-SHA256 of a fixed label under the Auth0
/// client secret. Whoever holds that secret can already set any user's password through the
/// Management API, so the derived tokens reveal nothing new to them; without it a token
/// cannot be computed. Rotating the client secret changes the tokens of later creations only:
/// links already sent keep working, since their hashes are stored.
#[derive(Clone)]
pub struct SetupTokenKey([u8; 32]);

impl SetupTokenKey {
    pub fn from_app_secret(secret: &AppSecret) -> Self {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(secret.auth0.client_secret.expose_secret().as_bytes())
                .expect("HMAC takes a key of any length");
        mac.update(b"atomic-user-provisioning/setup-token-key/v1");
        Self(mac.finalize().into_bytes().into())
    }

    fn mac(&self) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes a key of any length")
    }
}

/// What the set-password page computes from the link to find the stored row.
pub fn hash_token(raw: &str) -> [u8; 32] {
    Sha256::digest(raw.as_bytes()).into()
}

/// A throwaway Auth0 password nobody ever learns: the user sets their own through the link.
pub fn temporary_password() -> SecretString {
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    // The suffix guarantees every character class Auth0's password policies ask for.
    SecretString::from(format!("{}aA1!", hex::encode(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(secret: &str) -> SetupTokenKey {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(b"test");
        SetupTokenKey(mac.finalize().into_bytes().into())
    }

    #[test]
    fn tokens_are_unique_and_hash_to_what_is_stored() {
        let a = ResetToken::generate();
        let b = ResetToken::generate();
        assert_eq!(a.expose().len(), 64);
        assert_ne!(a.expose(), b.expose());
        assert_eq!(&hash_token(a.expose()), a.hash());
    }

    #[test]
    fn a_derived_token_depends_on_the_user_and_the_key_only() {
        let ann = Auth0UserId::parse("auth0|ann").unwrap();
        let bob = Auth0UserId::parse("auth0|bob").unwrap();
        let one = ResetToken::derive(&key("one"), &ann);
        assert_eq!(one.expose(), ResetToken::derive(&key("one"), &ann).expose());
        assert_eq!(one.expose().len(), 64);
        assert_eq!(&hash_token(one.expose()), one.hash());
        assert_ne!(one.expose(), ResetToken::derive(&key("one"), &bob).expose());
        assert_ne!(one.expose(), ResetToken::derive(&key("two"), &ann).expose());
    }
}
