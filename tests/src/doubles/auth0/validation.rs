//! The create and update payload schemas, and the checks Auth0 runs on them.

use serde_json::{Map, Value};

use super::errors::{bad_request, invalid_body};
use crate::doubles::server::{Rejection, is_valid_email};

/// JSON types the payload schemas use.
#[derive(Clone, Copy)]
pub(super) enum Kind {
    Text,
    Flag,
    Object,
}

use Kind::{Flag, Object, Text};

pub(super) const CREATE_FIELDS: &[(&str, Kind)] = &[
    ("connection", Text),
    ("email", Text),
    ("password", Text),
    ("email_verified", Flag),
    ("verify_email", Flag),
    ("app_metadata", Object),
    ("user_metadata", Object),
    ("name", Text),
    ("given_name", Text),
    ("family_name", Text),
    ("nickname", Text),
    ("blocked", Flag),
    ("picture", Text),
    ("user_id", Text),
    ("username", Text),
    ("phone_number", Text),
];
pub(super) const CREATE_REQUIRED: &[&str] = &["connection", "email", "password"];

pub(super) const UPDATE_FIELDS: &[(&str, Kind)] = &[
    ("blocked", Flag),
    ("email_verified", Flag),
    ("email", Text),
    ("phone_number", Text),
    ("phone_verified", Flag),
    ("user_metadata", Object),
    ("app_metadata", Object),
    ("given_name", Text),
    ("family_name", Text),
    ("name", Text),
    ("nickname", Text),
    ("picture", Text),
    ("verify_email", Flag),
    ("verify_phone_number", Flag),
    ("password", Text),
    ("connection", Text),
    ("client_id", Text),
    ("username", Text),
];

/// Profile fields a request may set directly.
pub(super) const PROFILE_FIELDS: &[&str] = &[
    "email_verified",
    "name",
    "given_name",
    "family_name",
    "nickname",
    "blocked",
    "picture",
    "username",
    "phone_number",
    "phone_verified",
];
pub(super) const METADATA_FIELDS: [&str; 2] = ["app_metadata", "user_metadata"];

impl Kind {
    fn accepts(self, value: &Value) -> bool {
        match self {
            Text => value.is_string(),
            Flag => value.is_boolean(),
            Object => value.is_object(),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Text => "string",
            Flag => "boolean",
            Object => "object",
        }
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(number) if number.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Schema checks Auth0 runs before anything else: JSON, known fields, types, formats.
pub(super) fn validate_payload(
    body: &[u8],
    fields: &[(&str, Kind)],
    required: &[&str],
) -> Result<Map<String, Value>, Rejection> {
    let payload: Value = serde_json::from_slice(body)
        .map_err(|_| bad_request("Invalid request payload JSON format", None))?;
    let Value::Object(payload) = payload else {
        let detail = format!(
            "Expected type object but found type {}",
            type_name(&payload)
        );
        return Err(invalid_body(&detail, None));
    };
    if let Some(unknown) = payload
        .keys()
        .find(|key| !fields.iter().any(|(name, _)| name == key))
    {
        let detail = format!("Additional properties not allowed: {unknown}");
        return Err(invalid_body(&detail, None));
    }
    for (name, kind) in fields {
        if let Some(value) = payload.get(*name).filter(|value| !kind.accepts(value)) {
            let found = type_name(value);
            let detail = format!("Expected type {} but found type {found}", kind.name());
            return Err(invalid_body(&detail, Some(name)));
        }
    }
    if let Some(missing) = required.iter().find(|name| !payload.contains_key(**name)) {
        let detail = format!("Missing required property: {missing}");
        return Err(invalid_body(&detail, None));
    }
    if let Some(email) = payload.get("email").and_then(Value::as_str)
        && !is_valid_email(email)
    {
        let detail = format!("Object didn't pass validation for format email: {email}");
        return Err(invalid_body(&detail, Some("email")));
    }
    for field in METADATA_FIELDS {
        if let Some(key) = payload.get(field).and_then(forbidden_metadata_key) {
            let detail = format!("Invalid key \"{key}\": keys must not contain \".\" or \"$\"");
            return Err(invalid_body(&detail, Some(field)));
        }
    }
    Ok(payload)
}

/// Auth0 rejects metadata keys (at any depth) containing `.` or `$`.
fn forbidden_metadata_key(value: &Value) -> Option<String> {
    match value {
        Value::Object(map) => map.iter().find_map(|(key, value)| {
            if key.contains(['.', '$']) {
                Some(key.clone())
            } else {
                forbidden_metadata_key(value)
            }
        }),
        Value::Array(items) => items.iter().find_map(forbidden_metadata_key),
        _ => None,
    }
}

/// Auth0's "good" policy: 8+ characters from at least three of four character classes.
pub(super) fn is_strong_password(password: &str) -> bool {
    let has = |class: fn(&char) -> bool| password.chars().any(|c| class(&c));
    let classes = [
        has(char::is_ascii_lowercase),
        has(char::is_ascii_uppercase),
        has(char::is_ascii_digit),
        has(|c| c.is_ascii_punctuation() || *c == ' '),
    ];
    password.chars().count() >= 8 && classes.iter().filter(|&&present| present).count() >= 3
}
