//! The admin panel's payloads, parsed once into domain types. Each error names its field.
//! `permissions` and `employee_data` may arrive as JSON or as a string holding JSON.

use std::collections::HashSet;

use serde_json::{Map, Value};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::db::user_views::{ListQuery, Status};
use crate::domain::{
    Email, EmployeeId, EmployeeRequest, EmploymentType, FieldError, NewEmployee, NewUser, PageId,
    PagePermission, Role, UserId, is_invisible, refuse_controls, refuse_nul,
};
use crate::lifecycle::UserChanges;

pub const MAX_PERMISSIONS: usize = 500;
const MAX_NAME_LEN: usize = 100;

/// Parses the body of `POST …/direct-users/create`.
pub fn parse_new_user(body: &Value) -> Result<NewUser, FieldError> {
    let object = as_object(body)?;
    let email = parse_email(object)?;
    let role = match object.get("role") {
        None | Some(Value::Null) => Role::User,
        Some(Value::String(raw)) if raw.trim().is_empty() => Role::User,
        Some(Value::String(raw)) => Role::parse(raw).map_err(|m| FieldError::new("role", m))?,
        Some(_) => return Err(FieldError::new("role", "must be a string: ADMIN or USER")),
    };
    let permissions = parse_permissions(object.get("permissions"))?;
    let employee = parse_employee_request(object)?;
    Ok(NewUser {
        email,
        role,
        permissions,
        employee,
        external_id: None,
    })
}

/// Parses the body of `POST …/direct-users/check-exists`.
pub fn parse_check_exists(body: &Value) -> Result<Email, FieldError> {
    parse_email(as_object(body)?)
}

/// resend-invitation names the user by address, as the admin panel's user list shows it.
pub fn parse_resend_invitation(body: &Value) -> Result<Email, FieldError> {
    parse_email(as_object(body)?)
}

/// Parses the body of `PATCH …/direct-users/{id}`: `role`, `permissions` (all of them: the
/// pages left out are taken away), at least one; any other field is refused rather than
/// ignored, so a change that cannot be made here is not answered as made.
pub fn parse_user_changes(body: &Value) -> Result<UserChanges, FieldError> {
    let object = as_object(body)?;
    if let Some(key) = object
        .keys()
        .find(|key| !["role", "permissions"].contains(&key.as_str()))
    {
        let field = if crate::json::looks_like_a_field_name(key) {
            key.as_str()
        } else {
            "body"
        };
        return Err(FieldError::new(
            field,
            "cannot be changed here; a PATCH takes role and permissions",
        ));
    }
    let role = match object.get("role") {
        None | Some(Value::Null) => None,
        Some(Value::String(raw)) => Some(
            Role::parse(raw)
                .map_err(|_| FieldError::new("role", "must be one of OWNER, ADMIN, USER"))?,
        ),
        Some(_) => {
            return Err(FieldError::new(
                "role",
                "must be a string: OWNER, ADMIN or USER",
            ));
        }
    };
    let permissions = match object.get("permissions") {
        None | Some(Value::Null) => None,
        given => Some(parse_permissions(given)?),
    };
    if role.is_none() && permissions.is_none() {
        return Err(FieldError::new("body", "must change role or permissions"));
    }
    Ok(UserChanges {
        role,
        permissions,
        ..UserChanges::default()
    })
}

/// The `{id}` of a path. Anything that cannot be an id names a user that does not exist, not a
/// malformed request: it becomes the nil UUID, which no row has, so that the caller is
/// checked first (a USER gets 403 whatever the id) and then the user is not found, as for any
/// unknown id.
pub fn parse_user_id(raw: Option<&str>) -> UserId {
    raw.and_then(|raw| Uuid::try_parse(raw).ok())
        .map_or(UserId::new(Uuid::nil()), UserId::new)
}

/// At most this many users a page; the default when `limit` is not given.
pub const MAX_PAGE: usize = 200;
pub const DEFAULT_PAGE: usize = 50;

/// The list's query string: `status`, `email` (an address prefix), `limit`, `cursor` (the
/// `nextCursor` of the page before). `joined` reads one parameter, every value it was given
/// joined by commas (as API Gateway joins a repeated one): none of these takes a comma, so a
/// parameter given twice is refused rather than read as its first value.
pub fn parse_list_query(
    joined: impl Fn(&str) -> Option<String>,
) -> Result<(ListQuery, usize), FieldError> {
    let once = |name: &str| match joined(name) {
        Some(value) if value.contains(',') => {
            Err(FieldError::new(name, "must be given once, without commas"))
        }
        value => Ok(value),
    };
    let status = once("status")?
        .map(|raw| Status::parse(&raw).map_err(|m| FieldError::new("status", m)))
        .transpose()?;
    let email_prefix = match once("email")? {
        None => None,
        Some(raw) => {
            let prefix = raw.trim().to_ascii_lowercase();
            refuse_nul("email", &prefix)?;
            if prefix.len() > Email::MAX_LEN || prefix.chars().any(char::is_control) {
                return Err(FieldError::new(
                    "email",
                    "must be the start of an address, without control characters",
                ));
            }
            Some(prefix).filter(|p| !p.is_empty())
        }
    };
    let limit = match once("limit")? {
        None => DEFAULT_PAGE,
        Some(raw) => raw
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| {
                FieldError::new(
                    "limit",
                    format!("must be a whole number from 1 to {MAX_PAGE}"),
                )
            })?,
    };
    let after = once("cursor")?.map(|raw| decode_cursor(&raw)).transpose()?;
    Ok((
        ListQuery {
            status,
            email_prefix,
            after,
            limit,
        },
        limit,
    ))
}

/// The cursor after the user created at `at` with id `id`: opaque to the caller.
pub fn encode_cursor(at: DateTime<Utc>, id: UserId) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}.{id}", at.timestamp_micros()))
}

fn decode_cursor(raw: &str) -> Result<(DateTime<Utc>, UserId), FieldError> {
    let invalid = || FieldError::new("cursor", "is not a cursor this list gave out");
    let text = URL_SAFE_NO_PAD.decode(raw.trim()).map_err(|_| invalid())?;
    let text = String::from_utf8(text).map_err(|_| invalid())?;
    let (micros, id) = text.split_once('.').ok_or_else(invalid)?;
    // A user's creation time: after 1970 and before the year 10000 (a forged one beyond what
    // Postgres holds would fail the query instead of the request).
    const YEAR_10000: i64 = 253_402_300_800_000_000;
    let at = micros
        .parse::<i64>()
        .ok()
        .filter(|micros| (0..YEAR_10000).contains(micros))
        .and_then(DateTime::from_timestamp_micros)
        .ok_or_else(invalid)?;
    let id = Uuid::try_parse(id).map_err(|_| invalid())?;
    Ok((at, UserId::new(id)))
}

fn as_object(body: &Value) -> Result<&Map<String, Value>, FieldError> {
    body.as_object()
        .ok_or_else(|| FieldError::new("body", "must be a JSON object"))
}

fn parse_email(object: &Map<String, Value>) -> Result<Email, FieldError> {
    match object.get("email") {
        None | Some(Value::Null) => Err(FieldError::new("email", "is required")),
        Some(Value::String(raw)) => {
            refuse_nul("email", raw)?;
            Email::parse(raw).map_err(|m| FieldError::new("email", m))
        }
        Some(_) => Err(FieldError::new("email", "must be a string")),
    }
}

/// JSON, or a string that holds JSON (the admin panel sends both).
fn embedded_json(field: &str, value: &Value) -> Result<Value, FieldError> {
    match value {
        Value::String(raw) if raw.trim().is_empty() => Ok(Value::Null),
        Value::String(raw) => crate::json::from_str_unique_keys(raw).map_err(|e| {
            let what = if crate::json::is_duplicate_key(&e) {
                "holds JSON with a key twice"
            } else {
                "is a string but not valid JSON"
            };
            FieldError::new(field, format!("{what} ({e})"))
        }),
        other => Ok(other.clone()),
    }
}

const PERMISSION_FIELDS: &[&str] = &["pageId", "canRead", "canWrite", "canEdit", "canDelete"];

fn parse_permissions(value: Option<&Value>) -> Result<Vec<PagePermission>, FieldError> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let items = match embedded_json("permissions", value)? {
        Value::Null => return Ok(Vec::new()),
        Value::Array(items) => items,
        _ => {
            return Err(FieldError::new(
                "permissions",
                "must be an array of {pageId, canRead, canWrite, canEdit, canDelete}",
            ));
        }
    };
    if items.len() > MAX_PERMISSIONS {
        return Err(FieldError::new(
            "permissions",
            format!("must have at most {MAX_PERMISSIONS} entries"),
        ));
    }
    let mut seen = HashSet::new();
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let field = |name: &str| format!("permissions[{i}].{name}");
            let object = item
                .as_object()
                .ok_or_else(|| FieldError::new(format!("permissions[{i}]"), "must be an object"))?;
            // A misspelt flag would be read as false: a PATCH that meant to grant would take
            // away. Only the fields a permission has.
            if let Some(key) = object.keys().find(|key| !PERMISSION_FIELDS.contains(&key.as_str())) {
                let named = if crate::json::looks_like_a_field_name(key) {
                    field(key)
                } else {
                    format!("permissions[{i}]")
                };
                return Err(FieldError::new(
                    named,
                    "is not a field of a permission (pageId, canRead, canWrite, canEdit, canDelete)",
                ));
            }
            let page_id = match object.get("pageId") {
                Some(Value::String(raw)) => {
                    PageId::parse(raw).map_err(|m| FieldError::new(field("pageId"), m))?
                }
                None | Some(Value::Null) => {
                    return Err(FieldError::new(field("pageId"), "is required"));
                }
                Some(_) => return Err(FieldError::new(field("pageId"), "must be a UUID string")),
            };
            if !seen.insert(page_id) {
                return Err(FieldError::new(field("pageId"), "appears more than once"));
            }
            let flag = |name: &str| {
                optional_bool(object.get(name), &field(name)).map(|b| b.unwrap_or(false))
            };
            Ok(PagePermission {
                page_id,
                can_read: flag("canRead")?,
                can_write: flag("canWrite")?,
                can_edit: flag("canEdit")?,
                can_delete: flag("canDelete")?,
            })
        })
        .collect()
}

fn optional_bool(value: Option<&Value>, field: &str) -> Result<Option<bool>, FieldError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) if s == "true" => Ok(Some(true)),
        Some(Value::String(s)) if s == "false" => Ok(Some(false)),
        Some(_) => Err(FieldError::new(field, "must be true or false")),
    }
}

fn parse_employee_request(object: &Map<String, Value>) -> Result<EmployeeRequest, FieldError> {
    let create = optional_bool(object.get("create_employee"), "create_employee")?.unwrap_or(false);
    let link = optional_bool(object.get("link_employee"), "link_employee")?.unwrap_or(false);
    match (create, link) {
        (true, true) => Err(FieldError::new(
            "link_employee",
            "cannot be true together with create_employee",
        )),
        (true, false) => {
            let data = match object.get("employee_data") {
                None => Value::Null,
                Some(value) => embedded_json("employee_data", value)?,
            };
            parse_new_employee(&data).map(EmployeeRequest::Create)
        }
        (false, true) => match object.get("employee_id") {
            Some(Value::String(raw)) => EmployeeId::parse(raw)
                .map(EmployeeRequest::Link)
                .map_err(|m| FieldError::new("employee_id", m)),
            None | Some(Value::Null) => Err(FieldError::new(
                "employee_id",
                "is required when link_employee is true",
            )),
            Some(_) => Err(FieldError::new("employee_id", "must be a UUID string")),
        },
        (false, false) => Ok(EmployeeRequest::None),
    }
}

fn parse_new_employee(data: &Value) -> Result<NewEmployee, FieldError> {
    let object = match data {
        Value::Object(object) => object,
        Value::Null => {
            return Err(FieldError::new(
                "employee_data",
                "is required when create_employee is true",
            ));
        }
        _ => return Err(FieldError::new("employee_data", "must be an object")),
    };
    let text = |name: &str, required: bool| -> Result<Option<String>, FieldError> {
        let field = format!("employee_data.{name}");
        match object.get(name) {
            Some(Value::String(raw)) if !raw.chars().all(is_invisible) => {
                refuse_nul(&field, raw)?;
                refuse_controls(&field, raw)?;
                let trimmed = raw.trim();
                if trimmed.chars().count() > MAX_NAME_LEN {
                    return Err(FieldError::new(
                        field,
                        format!("must be at most {MAX_NAME_LEN} characters"),
                    ));
                }
                Ok(Some(trimmed.to_string()))
            }
            None | Some(Value::Null) | Some(Value::String(_)) if required => {
                Err(FieldError::new(field, "is required"))
            }
            None | Some(Value::Null) | Some(Value::String(_)) => Ok(None),
            Some(_) => Err(FieldError::new(field, "must be a string")),
        }
    };
    let employment_type = text("employmentType", false)?
        .map(|raw| {
            EmploymentType::parse(&raw)
                .map_err(|m| FieldError::new("employee_data.employmentType", m))
        })
        .transpose()?;
    Ok(NewEmployee {
        first_name: text("firstName", true)?.unwrap_or_default(),
        last_name: text("lastName", true)?.unwrap_or_default(),
        department: text("department", false)?,
        job_title: text("jobTitle", false)?,
        employment_type,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const PAGE: &str = "6f1c2c1e-8d7e-4a8e-9a57-3f0d5d2b9c11";

    #[test]
    fn the_admin_panels_full_payload_parses() {
        let body = json!({
            "email": " New.User@Example.com ",
            "role": "ADMIN",
            "permissions": format!(r#"[{{"pageId":"{PAGE}","canRead":true,"canWrite":"true"}}]"#),
            "create_employee": true,
            "employee_data": {"firstName": "Ada", "lastName": "Lovelace", "employmentType": "full-time"},
        });
        let user = parse_new_user(&body).unwrap();
        assert_eq!(user.email.as_str(), "new.user@example.com");
        assert_eq!(user.role, Role::Admin);
        assert_eq!(user.permissions.len(), 1);
        assert!(
            user.permissions[0].can_read
                && user.permissions[0].can_write
                && !user.permissions[0].can_delete
        );
        let EmployeeRequest::Create(employee) = user.employee else {
            panic!("expected create")
        };
        assert_eq!(employee.employment_type, Some(EmploymentType::FullTime));
    }

    #[test]
    fn every_bad_field_is_named() {
        let cases = [
            (json!([]), "body"),
            (json!({}), "email"),
            (json!({"email": 5}), "email"),
            (json!({"email": "not-an-email"}), "email"),
            (json!({"email": "a@b.co", "role": "GOD"}), "role"),
            (json!({"email": "a@b.co", "role": 1}), "role"),
            (
                json!({"email": "a@b.co", "permissions": "{oops"}),
                "permissions",
            ),
            (
                json!({"email": "a@b.co", "permissions": {"pageId": PAGE}}),
                "permissions",
            ),
            (
                json!({"email": "a@b.co", "permissions": [{"pageId": "nope"}]}),
                "permissions[0].pageId",
            ),
            (
                json!({"email": "a@b.co", "permissions": [{"pageId": PAGE, "canRead": "yes"}]}),
                "permissions[0].canRead",
            ),
            (
                json!({"email": "a@b.co", "permissions": [{"pageId": PAGE}, {"pageId": PAGE}]}),
                "permissions[1].pageId",
            ),
            (
                json!({"email": "a@b.co", "create_employee": "maybe"}),
                "create_employee",
            ),
            (
                json!({"email": "a@b.co", "create_employee": true}),
                "employee_data",
            ),
            (
                json!({"email": "a@b.co", "create_employee": true, "employee_data": {"firstName": "A"}}),
                "employee_data.lastName",
            ),
            (
                json!({"email": "a@b.co", "create_employee": true, "employee_data": {"firstName": "A", "lastName": "B", "employmentType": "gig"}}),
                "employee_data.employmentType",
            ),
            (
                json!({"email": "a@b.co", "link_employee": true}),
                "employee_id",
            ),
            (
                json!({"email": "a@b.co", "link_employee": true, "employee_id": "x"}),
                "employee_id",
            ),
            (
                json!({"email": "a@b.co", "link_employee": true, "create_employee": true}),
                "link_employee",
            ),
        ];
        for (body, field) in cases {
            let err = parse_new_user(&body).expect_err(&body.to_string());
            assert_eq!(err.field, field, "{body}: {err}");
        }
    }

    #[test]
    fn a_nul_character_in_any_text_field_is_refused_naming_the_field() {
        let employee = |name: &str| {
            let mut data = json!({"firstName": "Ada", "lastName": "Lovelace"});
            data[name] = json!("Ada\u{0}Byron");
            json!({"email": "a@b.co", "create_employee": true, "employee_data": data})
        };
        let cases = [
            (json!({"email": "a\u{0}@b.co"}), "email"),
            (employee("firstName"), "employee_data.firstName"),
            (employee("lastName"), "employee_data.lastName"),
            (employee("department"), "employee_data.department"),
            (employee("jobTitle"), "employee_data.jobTitle"),
            (employee("employmentType"), "employee_data.employmentType"),
        ];
        for (body, field) in cases {
            let err = parse_new_user(&body).expect_err(&body.to_string());
            assert_eq!(err.field, field, "{body}: {err}");
            assert!(err.message.contains("NUL"), "{body}: {err}");
        }
        let err = parse_check_exists(&json!({"email": "a\u{0}@b.co"})).unwrap_err();
        assert_eq!(
            (err.field.as_str(), err.message.contains("NUL")),
            ("email", true)
        );
    }

    #[test]
    fn json_inside_a_string_with_a_key_twice_says_so() {
        let body = json!({"email": "a@b.co", "permissions": format!(r#"[{{"pageId":"{PAGE}","pageId":"{PAGE}"}}]"#)});
        let err = parse_new_user(&body).unwrap_err();
        assert_eq!(err.field, "permissions");
        assert!(
            err.message
                .starts_with("holds JSON with a key twice (the key `pageId` appears twice"),
            "{err}"
        );
    }

    fn with_employee(field: &str, value: &str) -> Value {
        let mut data = json!({"firstName": "Ada", "lastName": "Lovelace"});
        data[field] = json!(value);
        json!({"email": "a@b.co", "create_employee": true, "employee_data": data})
    }

    #[test]
    fn control_and_direction_characters_in_a_name_are_refused_naming_the_field() {
        for field in ["firstName", "lastName", "department", "jobTitle"] {
            for bad in [
                "Ada\nByron",
                "Ada\tByron",
                "\u{1b}[31mAda",
                "Ada\u{7f}",
                "Ada\u{85}",
                "Ada\u{202e}nori",
                "Ada\u{2067}",
                "Ada\u{2028}Byron",
                "Ada\u{2029}",
                "Ada\u{200f}",
                "\u{061c}Ada",
            ] {
                let body = with_employee(field, bad);
                let err = parse_new_user(&body).expect_err(&body.to_string());
                assert_eq!(err.field, format!("employee_data.{field}"), "{bad:?}");
                assert!(err.message.contains("control characters"), "{err}");
            }
        }
        // Joiners are part of how some scripts are written, and accents combine.
        for fine in [
            "Zo\u{00eb}",
            "Zoe\u{0308}",
            "\u{0645}\u{200c}\u{0631}",
            "O'Brien-Smith",
        ] {
            let user = parse_new_user(&with_employee("lastName", fine)).unwrap();
            let EmployeeRequest::Create(employee) = user.employee else {
                panic!("{fine:?}: no employee");
            };
            assert_eq!(employee.last_name, fine);
        }
    }

    #[test]
    fn a_required_name_of_only_invisible_characters_is_missing() {
        for blank in [
            "\u{200b}\u{200b}",
            " \u{feff} ",
            "\u{00ad}",
            "\u{2060}\u{3000}",
        ] {
            let err = parse_new_user(&with_employee("firstName", blank)).unwrap_err();
            assert_eq!(
                (err.field.as_str(), err.message.as_str()),
                ("employee_data.firstName", "is required"),
                "{blank:?}"
            );
        }
        let user = parse_new_user(&with_employee("department", "\u{200b}")).unwrap();
        let EmployeeRequest::Create(employee) = user.employee else {
            panic!("no employee");
        };
        assert_eq!(employee.department, None);
    }

    #[test]
    fn a_permission_takes_its_five_fields_only() {
        let misspelt = json!({"email": "a@b.co", "permissions": [
            {"pageId": "c0000000-0000-4000-8000-000000000001", "canRead": true, "can_write": true}
        ]});
        let err = parse_new_user(&misspelt).unwrap_err();
        assert_eq!(err.field, "permissions[0].can_write");
        let changes = json!({"permissions": [{"pageId": "c0000000-0000-4000-8000-000000000001", "canFly": true}]});
        assert_eq!(
            parse_user_changes(&changes).unwrap_err().field,
            "permissions[0].canFly"
        );
    }

    #[test]
    fn a_list_parameter_is_given_once_and_a_cursor_names_a_time_postgres_holds() {
        let query = |pairs: &'static [(&'static str, &'static str)]| {
            parse_list_query(move |name| {
                pairs
                    .iter()
                    .find(|(key, _)| *key == name)
                    .map(|(_, value)| value.to_string())
            })
        };
        assert_eq!(query(&[("limit", "1,2")]).unwrap_err().field, "limit");
        assert_eq!(query(&[("email", "a,b")]).unwrap_err().field, "email");
        let (_, limit) = query(&[("limit", "7")]).unwrap();
        assert_eq!(limit, 7);
        let id = UserId::new(Uuid::nil());
        let fine = encode_cursor(
            DateTime::from_timestamp_micros(1_700_000_000_000_000).unwrap(),
            id,
        );
        assert!(decode_cursor(&fine).is_ok());
        for micros in ["-8000000000000000000", "-1", "253402300800000000"] {
            let forged = URL_SAFE_NO_PAD.encode(format!("{micros}.{}", Uuid::nil()));
            assert_eq!(
                decode_cursor(&forged).unwrap_err().field,
                "cursor",
                "{micros}"
            );
        }
    }
}
