//! The tenant's signing key, as Auth0 has one: every token the double issues is an RS256 JWT
//! signed with it, and `GET /.well-known/jwks.json` publishes its public half (with the OpenID
//! discovery document pointing there), so a verifier such as API Gateway's JWT authorizer, or
//! the local gateway (`crate::local::gateway`), can check the double's tokens as it would
//! Auth0's.
//!
//! One key per process, made on first use: an RSA key takes a moment to generate, and a test
//! process starts hundreds of doubles.

use std::sync::OnceLock;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::state::App;
use crate::doubles::server::json_response;

pub(super) struct SigningKey {
    pair: RsaKeyPair,
    /// The key's id (`kid`): derived from its public half, so it names this key alone.
    kid: String,
    /// The public key's modulus and exponent, big-endian without leading zeros.
    n: Vec<u8>,
    e: Vec<u8>,
}

pub(super) fn signing_key() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| {
        let pair = RsaKeyPair::generate(KeySize::Rsa2048).expect("an RSA key can be generated");
        let public = pair.public_key().as_ref();
        let (n, e) = rsa_public_components(public).expect("aws-lc-rs writes RFC 8017 DER");
        let kid = URL_SAFE_NO_PAD.encode(&Sha256::digest(public)[..12]);
        SigningKey { pair, kid, n, e }
    })
}

impl SigningKey {
    /// `header.claims.signature`, RS256 with this key.
    pub(super) fn sign(&self, claims: &Value) -> String {
        let header = json!({ "alg": "RS256", "typ": "JWT", "kid": self.kid });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut signature = vec![0; self.pair.public_modulus_len()];
        self.pair
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                signing_input.as_bytes(),
                &mut signature,
            )
            .expect("RS256 signing with a valid key");
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    /// The JSON Web Key of the public half, as Auth0's JWKS lists it (less the certificate).
    fn jwk(&self) -> Value {
        json!({
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": self.kid,
            "n": URL_SAFE_NO_PAD.encode(&self.n),
            "e": URL_SAFE_NO_PAD.encode(&self.e),
        })
    }
}

/// `GET /.well-known/jwks.json`.
pub(super) async fn jwks() -> Response {
    json_response(StatusCode::OK, &json!({ "keys": [signing_key().jwk()] }))
}

/// `GET /.well-known/openid-configuration`: the part of Auth0's discovery document a token
/// verifier reads (the issuer and where its keys are).
pub(super) async fn openid_configuration(State(app): State<App>) -> Response {
    let base = app.tenant().base_url.clone();
    json_response(
        StatusCode::OK,
        &json!({
            "issuer": format!("{base}/"),
            "authorization_endpoint": format!("{base}/authorize"),
            "token_endpoint": format!("{base}/oauth/token"),
            "jwks_uri": format!("{base}/.well-known/jwks.json"),
            "response_types_supported": ["code", "token", "id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "grant_types_supported": [
                "client_credentials",
                "refresh_token",
                super::token::PASSWORD_REALM_GRANT,
            ],
        }),
    )
}

/// The modulus and exponent of a DER `RSAPublicKey` (RFC 8017: a SEQUENCE of two INTEGERs).
fn rsa_public_components(der: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let (sequence, _) = der_element(der, 0x30)?;
    let (n, rest) = der_element(sequence, 0x02)?;
    let (e, _) = der_element(rest, 0x02)?;
    let unsigned = |int: &[u8]| {
        let start = int.iter().position(|&b| b != 0).unwrap_or(int.len());
        int[start..].to_vec()
    };
    Some((unsigned(n), unsigned(e)))
}

/// One DER element of type `tag` at the start of `input`: its content and what follows it.
fn der_element(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&found, rest) = input.split_first()?;
    if found != tag {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let octets = usize::from(first & 0x7f);
        if octets == 0 || octets > 4 || rest.len() < octets {
            return None;
        }
        let len = rest[..octets]
            .iter()
            .fold(0usize, |len, &b| (len << 8) | usize::from(b));
        (len, &rest[octets..])
    };
    (rest.len() >= len).then(|| rest.split_at(len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents};

    #[test]
    fn a_token_verifies_against_the_published_key_and_not_once_changed() {
        let key = signing_key();
        let token = key.sign(&json!({"sub": "auth0|someone"}));
        let (signing_input, signature) = token.rsplit_once('.').unwrap();
        let jwk = key.jwk();
        let decode = |field: &str| {
            URL_SAFE_NO_PAD
                .decode(jwk[field].as_str().unwrap())
                .unwrap()
        };
        let public = RsaPublicKeyComponents {
            n: decode("n"),
            e: decode("e"),
        };
        let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
        let verify = |input: &str| {
            public
                .verify(&RSA_PKCS1_2048_8192_SHA256, input.as_bytes(), &signature)
                .is_ok()
        };
        assert!(verify(signing_input));
        assert!(!verify(&signing_input.replace('e', "f")));
        assert_eq!(decode("e"), [1, 0, 1]);
        assert_eq!(decode("n").len(), 256);
    }
}
