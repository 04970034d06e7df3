//! The set-password page's requests, checked once at the edge. The token and the address come
//! from the emailed link; the password from the person.

use secrecy::SecretString;
use serde_json::{Map, Value};

use crate::domain::{Email, FieldError};
use crate::reset_token::hash_token;

/// The emailed link, parsed: only the hash of its token is kept, so nothing past the edge
/// holds the raw token (it cannot reach a log line), and the lookup goes through the hash.
#[derive(Clone)]
pub struct SetupLink {
    token_hash: [u8; 32],
    pub email: Email,
}

impl SetupLink {
    pub fn token_hash(&self) -> &[u8; 32] {
        &self.token_hash
    }
}

impl std::fmt::Debug for SetupLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SetupLink")
            .field("email", &self.email.redacted())
            .finish_non_exhaustive()
    }
}

/// The new password; never logged, only handed to Auth0.
#[derive(Debug)]
pub struct NewPassword(SecretString);

impl NewPassword {
    /// Auth0 refuses longer passwords on database connections anyway.
    pub const MAX_CHARS: usize = 128;

    pub fn secret(&self) -> &SecretString {
        &self.0
    }
}

/// Why a request was refused before anything was looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    /// The link itself is broken (token or address malformed or missing).
    Link(FieldError),
    /// Anything else the page sent (the password, the body's shape).
    Field(FieldError),
}

/// `{token, email}`: the body of verify.
pub fn parse_link(body: &Value) -> Result<SetupLink, RequestError> {
    let object = as_object(body)?;
    let token = parse_token(object.get("token")).map_err(RequestError::Link)?;
    let email = match object.get("email") {
        Some(Value::String(raw)) => Email::parse(raw).map_err(|m| FieldError::new("email", m)),
        None | Some(Value::Null) => Err(FieldError::new("email", "is required")),
        Some(_) => Err(FieldError::new("email", "must be a string")),
    }
    .map_err(RequestError::Link)?;
    Ok(SetupLink {
        token_hash: hash_token(&token),
        email,
    })
}

/// `{token, email, password}`: the body of set-password.
pub fn parse_set_password(body: &Value) -> Result<(SetupLink, NewPassword), RequestError> {
    let link = parse_link(body)?;
    let password = match as_object(body)?.get("password") {
        Some(Value::String(raw)) => check_password(raw).map(|()| raw.clone()),
        None | Some(Value::Null) => Err("is required".to_string()),
        Some(_) => Err("must be a string".to_string()),
    }
    .map_err(|m| RequestError::Field(FieldError::new("password", m)))?;
    Ok((link, NewPassword(SecretString::from(password))))
}

fn as_object(body: &Value) -> Result<&Map<String, Value>, RequestError> {
    body.as_object()
        .ok_or_else(|| RequestError::Field(FieldError::new("body", "must be a JSON object")))
}

/// 64 hexadecimal characters (the link carries 32 random bytes); checked before any query.
fn parse_token(raw: Option<&Value>) -> Result<String, FieldError> {
    let token = match raw {
        Some(Value::String(token)) => token.trim(),
        None | Some(Value::Null) => return Err(FieldError::new("token", "is required")),
        Some(_) => return Err(FieldError::new("token", "must be a string")),
    };
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(FieldError::new(
            "token",
            "must be the 64 hexadecimal characters of the emailed link",
        ));
    }
    Ok(token.to_ascii_lowercase())
}

fn check_password(raw: &str) -> Result<(), String> {
    if raw.is_empty() {
        return Err("is required".into());
    }
    if raw.chars().count() > NewPassword::MAX_CHARS {
        return Err(format!(
            "must be at most {} characters",
            NewPassword::MAX_CHARS
        ));
    }
    if raw.contains('\0') {
        return Err("must not contain a NUL character".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const TOKEN: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn a_link_keeps_only_the_hash_of_its_token_and_normalises_case() {
        let link =
            parse_link(&json!({"token": TOKEN.to_uppercase(), "email": " A@Acme.Test"})).unwrap();
        assert_eq!(link.token_hash(), &hash_token(TOKEN));
        assert_eq!(link.email.as_str(), "a@acme.test");
        assert!(!format!("{link:?}").contains(TOKEN));
    }

    #[test]
    fn a_malformed_link_is_refused_naming_the_part_that_is_wrong() {
        let cases = [
            (json!({"email": "a@acme.test"}), "token"),
            (json!({"token": "abc", "email": "a@acme.test"}), "token"),
            (
                json!({"token": format!("{}g", &TOKEN[1..]), "email": "a@acme.test"}),
                "token",
            ),
            (json!({"token": 5, "email": "a@acme.test"}), "token"),
            (json!({"token": TOKEN}), "email"),
            (json!({"token": TOKEN, "email": "not-an-address"}), "email"),
        ];
        for (body, field) in cases {
            match parse_link(&body) {
                Err(RequestError::Link(err)) => assert_eq!(err.field, field, "{body}"),
                other => panic!("{body} gave {other:?}"),
            }
        }
    }

    #[test]
    fn the_password_must_be_a_non_empty_string_without_nul_of_bounded_length() {
        for (password, expected) in [
            (json!(null), "is required"),
            (json!(""), "is required"),
            (json!(12345678), "must be a string"),
            (json!("a\u{0}b"), "must not contain a NUL character"),
            (json!("x".repeat(129)), "must be at most 128 characters"),
        ] {
            let body = json!({"token": TOKEN, "email": "a@acme.test", "password": password});
            match parse_set_password(&body) {
                Err(RequestError::Field(err)) => {
                    assert_eq!(
                        (err.field.as_str(), err.message.as_str()),
                        ("password", expected)
                    )
                }
                other => panic!("{body} gave {other:?}"),
            }
        }
    }
}
