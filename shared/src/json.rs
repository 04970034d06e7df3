//! Request bodies parsed as JSON that means one thing.
//!
//! serde_json keeps the last of two equal keys in one object, other parsers (a WAF, a proxy,
//! the admin panel's own checks) may keep the first: `{"role":"USER","role":"ADMIN"}` could
//! pass a check as USER and be created as ADMIN. A body with a key twice is refused instead.

use std::fmt;

use serde::Deserializer as _;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// A JSON document as a [`Value`], refusing an object that has a key twice. Depth, numbers and
/// syntax are serde_json's (128 levels at most, no NaN, UTF-8 only).
pub fn from_slice_unique_keys(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = deserializer.deserialize_any(UniqueKeys)?;
    deserializer.end()?;
    Ok(value)
}

/// [`from_slice_unique_keys`] for JSON held in a string.
pub fn from_str_unique_keys(text: &str) -> Result<Value, serde_json::Error> {
    from_slice_unique_keys(text.as_bytes())
}

/// Whether serde_json's error is the duplicate key (its other errors are syntax or input).
pub fn is_duplicate_key(err: &serde_json::Error) -> bool {
    err.classify() == serde_json::error::Category::Data
}

/// The error's reason without serde_json's " at line L column C".
pub fn reason(err: &serde_json::Error) -> String {
    let text = err.to_string();
    match text.rsplit_once(" at line ") {
        Some((reason, _)) => reason.to_string(),
        None => text,
    }
}

/// Builds a [`Value`] as serde_json's own visitor does, and fails on a repeated key.
struct UniqueKeys;

impl<'de> DeserializeSeed<'de> for UniqueKeys {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for UniqueKeys {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        // JSON has no NaN or infinity, so this is always a number.
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(item) = seq.next_element_seed(UniqueKeys)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(de::Error::custom(duplicate_key(&key)));
            }
            let value = map.next_value_seed(UniqueKeys)?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

/// Whether a key may be repeated in an error or a log: a key is caller data like any value, and
/// one such as `"jane@example.com"` must not be. Field names are short ASCII words.
pub fn looks_like_a_field_name(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 40
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn duplicate_key(key: &str) -> String {
    if looks_like_a_field_name(key) {
        format!("the key `{key}` appears twice in one object")
    } else {
        "a key appears twice in one object".to_string()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn parses_what_serde_json_parses_into_the_same_value() {
        let text =
            r#"{"a":[1,-2,3.5,1e3,true,null,"é\u0041"],"b":{"c":{}},"d":18446744073709551615}"#;
        assert_eq!(
            from_str_unique_keys(text).unwrap(),
            serde_json::from_str::<Value>(text).unwrap()
        );
        assert_eq!(from_str_unique_keys("  7 ").unwrap(), json!(7));
    }

    #[test]
    fn a_key_twice_in_one_object_is_refused_at_any_depth() {
        for text in [
            r#"{"email":"a@x.test","email":"b@x.test"}"#,
            r#"{"permissions":[{"pageId":"p","pageId":"q"}]}"#,
            r#"{"a":{"b":1,"b":1}}"#,
        ] {
            let err = from_str_unique_keys(text).unwrap_err();
            assert!(is_duplicate_key(&err), "{text}: {err}");
            assert!(reason(&err).contains("appears twice"), "{err}");
        }
        // The same key in two different objects is fine.
        assert!(from_str_unique_keys(r#"[{"a":1},{"a":2}]"#).is_ok());
    }

    #[test]
    fn a_duplicate_key_is_named_only_when_it_looks_like_a_field_name() {
        let err = from_str_unique_keys(r#"{"role":1,"role":2}"#).unwrap_err();
        assert_eq!(reason(&err), "the key `role` appears twice in one object");
        let err =
            from_str_unique_keys(r#"{"jane@example.com":1,"jane@example.com":2}"#).unwrap_err();
        assert_eq!(reason(&err), "a key appears twice in one object");
    }

    #[test]
    fn syntax_errors_and_trailing_input_stay_syntax_errors() {
        for text in ["{", r#"{"a":1} x"#, "[1,]", "{\"a\":1e400}", ""] {
            let err = from_str_unique_keys(text).unwrap_err();
            assert!(!is_duplicate_key(&err), "{text}: {err}");
        }
    }

    #[test]
    fn nesting_is_bounded_as_serde_json_bounds_it() {
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(from_str_unique_keys(&deep).is_err());
        let fine = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert!(from_str_unique_keys(&fine).is_ok());
    }
}
