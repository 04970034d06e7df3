//! Password-setup tokens: 32 random bytes for the link, only their SHA-256 in the database.
//! `rand::rng()` is a CSPRNG (ChaCha, seeded from the OS).

use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

pub struct ResetToken {
    raw: SecretString,
    hash: [u8; 32],
}

impl ResetToken {
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
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

    #[test]
    fn tokens_are_unique_and_hash_to_what_is_stored() {
        let a = ResetToken::generate();
        let b = ResetToken::generate();
        assert_eq!(a.expose().len(), 64);
        assert_ne!(a.expose(), b.expose());
        assert_eq!(&hash_token(a.expose()), a.hash());
    }
}
