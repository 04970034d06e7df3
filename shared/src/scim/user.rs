//! What a SCIM request asks of a user, parsed once at the edge: a new user from `POST`, and the
//! user as `PUT` or `PATCH` wants it ([`UserState`]), compared with the user as it is into the
//! core's [`UserChanges`]. Attribute names are case-insensitive; what identity providers send
//! beyond what is served is accepted and not stored (the rest of the core User schema, the
//! enterprise extension, an extension of the client's own, the read-only `displayName` and
//! `emails`); a name nobody defines is `invalidPath`, and so is any name under the SCIM
//! standard's URNs or ours that is not an attribute of them (a mistyped
//! `urn:…:core:2.0:Users:active` must not turn a deactivation into a silent 200).

use secrecy::SecretString;
use serde_json::{Map, Value};

use super::ScimFault;
use super::schema::{APP_USER, CORE_USER, ENTERPRISE_USER, PATCH_OP, strip_core};
use crate::db::user_views::UserView;
use crate::domain::{
    Email, EmployeeRequest, NewEmployee, NewUser, PersonName, Role, is_invisible, refuse_controls,
};
use crate::lifecycle::UserChanges;

const MAX_NAME_LEN: usize = 100;
const MAX_EXTERNAL_ID_LEN: usize = 255;
/// Auth0's own limit is lower; this only keeps absurd input out.
const MAX_PASSWORD_LEN: usize = 1024;
/// More operations than any identity provider sends in one PATCH.
const MAX_OPERATIONS: usize = 100;

/// A user as SCIM can set it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserState {
    /// Lower case, as stored.
    pub user_name: String,
    pub external_id: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub active: bool,
    pub role: Role,
    /// What a PUT or PATCH set or removed, whatever the value (none for a user as it is).
    pub named: Named,
}

/// The attributes a request names: a change it makes asks for each of them, not only for those
/// that differ from the user as it was read before the change began, so that it lands whole
/// when another change of the user commits in between ("the later wins, each whole").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Named {
    pub external_id: bool,
    pub name: bool,
    pub active: bool,
    pub role: bool,
}

impl UserState {
    pub fn of(view: &UserView) -> Self {
        let user = &view.user;
        let employee = view.employee.as_ref();
        Self {
            user_name: user.email.to_ascii_lowercase(),
            external_id: user.external_id.clone(),
            given_name: employee.map(|e| e.first_name.clone()),
            family_name: employee.map(|e| e.last_name.clone()),
            active: user.is_active,
            role: user.role,
            named: Named::default(),
        }
    }

    /// What makes `self` (the user as it was read) into `wanted`: nothing when it is `wanted`
    /// already; else every attribute the request named, at its wanted value, so that one that
    /// equalled the read but was changed since by another request is set too. (The change
    /// compares the role and the activity with the user it locks, so one that is what was asked
    /// costs no Auth0 call.)
    pub fn changes_to(&self, wanted: &UserState) -> Result<UserChanges, ScimFault> {
        let name = match (&wanted.given_name, &wanted.family_name) {
            (Some(given), Some(family)) => Some(PersonName {
                given: given.clone(),
                family: family.clone(),
            }),
            (None, None) if self.given_name.is_some() => {
                return Err(ScimFault::mutability(
                    "name: the name is the user's employee record's; it can be changed, not removed.",
                ));
            }
            (None, None) => None,
            _ => {
                return Err(ScimFault::invalid_value(
                    "name: givenName and familyName go together (the employee record keeps both).",
                ));
            }
        };
        let differs = |a: &Option<String>, b: &Option<String>| a != b;
        let diff = UserChanges {
            role: (wanted.role != self.role).then_some(wanted.role),
            permissions: None,
            active: (wanted.active != self.active).then_some(wanted.active),
            name: name.clone().filter(|_| {
                differs(&wanted.given_name, &self.given_name)
                    || differs(&wanted.family_name, &self.family_name)
            }),
            external_id: differs(&wanted.external_id, &self.external_id)
                .then(|| wanted.external_id.clone()),
        };
        if diff == UserChanges::default() {
            return Ok(diff);
        }
        let named = wanted.named;
        Ok(UserChanges {
            role: diff.role.or(named.role.then_some(wanted.role)),
            permissions: None,
            active: diff.active.or(named.active.then_some(wanted.active)),
            name: diff.name.or(name.filter(|_| named.name)),
            external_id: diff
                .external_id
                .or_else(|| named.external_id.then(|| wanted.external_id.clone())),
        })
    }
}

/// A `POST /Users`: the user to create, whether it starts active, and the person's own
/// password when the identity provider syncs it.
pub struct NewScimUser {
    pub user: NewUser,
    pub active: bool,
    pub password: Option<SecretString>,
}

/// The body's object, with its `schemas` checked to name `schema`.
fn resource<'a>(body: &'a Value, schema: &str) -> Result<&'a Map<String, Value>, ScimFault> {
    let object = body
        .as_object()
        .ok_or_else(|| ScimFault::invalid_syntax("body: a JSON object is required."))?;
    refuse_case_twins(body)?;
    let named = get(object, "schemas")
        .and_then(Value::as_array)
        .is_some_and(|schemas| {
            schemas
                .iter()
                .any(|s| s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(schema)))
        });
    if !named {
        return Err(ScimFault::invalid_syntax(format!(
            "schemas: must list {schema}."
        )));
    }
    Ok(object)
}

pub fn parse_new(body: &Value) -> Result<NewScimUser, ScimFault> {
    let object = resource(body, CORE_USER)?;
    let mut state = UserState {
        user_name: String::new(),
        external_id: None,
        given_name: None,
        family_name: None,
        active: true,
        role: Role::User,
        named: Named::default(),
    };
    let user_name = match get(object, "userName") {
        Some(Value::String(raw)) => parse_user_name(raw)?,
        None | Some(Value::Null) => {
            return Err(ScimFault::invalid_value("userName: is required."));
        }
        Some(_) => return Err(ScimFault::invalid_value("userName: must be a string.")),
    };
    let mut password = None;
    for (key, value) in object {
        match key.to_ascii_lowercase().as_str() {
            "username" => {}
            "password" => password = Some(parse_password(value)?),
            _ => state.set(key, value, Source::Resource)?,
        }
    }
    let employee = match (state.given_name, state.family_name) {
        (Some(first_name), Some(last_name)) => EmployeeRequest::Create(NewEmployee {
            first_name,
            last_name,
            department: None,
            job_title: None,
            employment_type: None,
        }),
        (None, None) => EmployeeRequest::None,
        _ => {
            return Err(ScimFault::invalid_value(
                "name: givenName and familyName go together (the employee record keeps both).",
            ));
        }
    };
    Ok(NewScimUser {
        user: NewUser {
            email: user_name,
            role: state.role,
            permissions: Vec::new(),
            employee,
            external_id: state.external_id,
        },
        active: state.active,
        password,
    })
}

/// A `PUT`: the attributes it carries replace the user's; one it leaves out keeps its value
/// (an identity provider that does not map an attribute must not clear it), and `null` clears
/// `externalId`. `userName` must stay what it is.
pub fn parse_replacement(body: &Value, current: &UserState) -> Result<UserState, ScimFault> {
    let object = resource(body, CORE_USER)?;
    let mut wanted = current.clone();
    if get(object, "userName").is_none() {
        return Err(ScimFault::invalid_value("userName: is required."));
    }
    for (key, value) in object {
        // Okta sends the password again with every PUT when it syncs passwords; changing a
        // password is not supported (`changePassword`), and the one at creation stays.
        if key.eq_ignore_ascii_case("password") {
            continue;
        }
        wanted.set(key, value, Source::Resource)?;
    }
    Ok(wanted)
}

/// A `PATCH` (RFC 7644 §3.5.2) applied to `current`.
pub fn apply_patch(body: &Value, current: &UserState) -> Result<UserState, ScimFault> {
    let object = resource(body, PATCH_OP)?;
    let operations = get(object, "Operations")
        .and_then(Value::as_array)
        .ok_or_else(|| ScimFault::invalid_syntax("Operations: an array is required."))?;
    if operations.is_empty() {
        return Err(ScimFault::invalid_syntax(
            "Operations: at least one operation is required (RFC 7644 §3.5.2).",
        ));
    }
    if operations.len() > MAX_OPERATIONS {
        return Err(ScimFault::invalid_syntax(format!(
            "Operations: at most {MAX_OPERATIONS}."
        )));
    }
    let mut wanted = current.clone();
    for (i, operation) in operations.iter().enumerate() {
        let operation = operation.as_object().ok_or_else(|| {
            ScimFault::invalid_syntax(format!("Operations[{i}]: must be an object."))
        })?;
        let op = get(operation, "op").and_then(Value::as_str).unwrap_or("");
        let op = match op.to_ascii_lowercase().as_str() {
            "add" => Op::Add,
            "replace" => Op::Replace,
            "remove" => Op::Remove,
            _ => {
                return Err(ScimFault::invalid_syntax(format!(
                    "Operations[{i}].op: must be add, replace or remove."
                )));
            }
        };
        let path = match get(operation, "path") {
            None | Some(Value::Null) => None,
            Some(Value::String(path)) if !path.trim().is_empty() => Some(path.trim()),
            Some(_) => {
                return Err(ScimFault::invalid_path(format!(
                    "Operations[{i}].path: must be an attribute path."
                )));
            }
        };
        let value = get(operation, "value");
        match (op, path) {
            (Op::Remove, None) => {
                return Err(ScimFault::no_target(format!(
                    "Operations[{i}]: remove needs a path."
                )));
            }
            (Op::Remove, Some(path)) => wanted.remove(path)?,
            (_, None) => match value {
                Some(Value::Object(values)) => {
                    for (key, value) in values {
                        wanted.set(key, value, Source::Patch)?;
                    }
                }
                _ => {
                    return Err(ScimFault::invalid_value(format!(
                        "Operations[{i}].value: an add or replace without a path takes an object."
                    )));
                }
            },
            (_, Some(path)) => {
                let value = value.ok_or_else(|| {
                    ScimFault::invalid_value(format!("Operations[{i}].value: is required."))
                })?;
                wanted.set(path, value, Source::Patch)?;
            }
        }
    }
    Ok(wanted)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Add,
    Replace,
    Remove,
}

/// Where a value comes from: a whole resource (`POST`, `PUT`) or a PATCH operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Resource,
    Patch,
}

/// The attribute a path names.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    UserName,
    ExternalId,
    Active,
    /// `name`, or one of its sub-attributes (lower case).
    Name(Option<String>),
    Role,
    /// The app extension as a whole: `{"role": …}`.
    App,
    /// Read-only here (`displayName`, `emails…`, `id`, `meta`, `schemas`): accepted and not
    /// stored in a whole resource, since identity providers send them with everything else;
    /// a PATCH may not set `id` or `meta`.
    ReadOnly(&'static str),
    /// The person's password: only at creation.
    Password,
    /// An attribute of the core schema or the enterprise extension this service does not keep.
    NotKept,
}

/// What `path` names: `name.givenName`, `urn:…:core:2.0:User:active`, `emails[type eq
/// "work"].value`, `urn:…:enterprise:2.0:User:employeeNumber`, the app extension's `role`.
fn target(path: &str) -> Result<Target, ScimFault> {
    let lower = path.to_ascii_lowercase();
    let app = APP_USER.to_ascii_lowercase();
    if lower == app {
        return Ok(Target::App);
    }
    if let Some(rest) = lower.strip_prefix(&app).and_then(|r| r.strip_prefix(':')) {
        return match rest {
            "role" => Ok(Target::Role),
            _ => Err(unknown(path)),
        };
    }
    let bare = match strip_core(&lower) {
        Some(bare) => bare,
        None if lower.starts_with("urn:") => return urn_target(&lower, path),
        None => &lower,
    };
    // A value filter only selects among the work address's entries (there is one).
    let (attribute, rest) = match bare.split_once('[') {
        Some((attribute, rest)) => {
            let Some((inner, after)) = rest.split_once(']') else {
                return Err(ScimFault::invalid_path("a `[` in the path is not closed."));
            };
            if attribute != "emails" {
                return Err(unknown(path));
            }
            super::filter::check_emails_value_filter(inner).map_err(|err| {
                ScimFault::invalid_filter(format!("the path's `emails[…]`: {}.", err.0))
            })?;
            if after.is_empty() || after.starts_with('.') {
                (attribute, after.strip_prefix('.'))
            } else {
                return Err(unknown(path));
            }
        }
        None => match bare.split_once('.') {
            Some((attribute, sub)) => (attribute, Some(sub)),
            None => (bare, None),
        },
    };
    let filtered = bare.contains('[');
    match (attribute, rest) {
        ("username", None) if !filtered => Ok(Target::UserName),
        ("externalid", None) if !filtered => Ok(Target::ExternalId),
        ("active", None) if !filtered => Ok(Target::Active),
        ("name", None) if !filtered => Ok(Target::Name(None)),
        ("name", Some(sub)) if !filtered && NAME_PARTS.contains(&sub) => {
            Ok(Target::Name(Some(sub.to_string())))
        }
        ("displayname", None) if !filtered => Ok(Target::ReadOnly("displayName")),
        ("emails", None | Some("value" | "type" | "primary" | "display")) => {
            Ok(Target::ReadOnly("emails"))
        }
        ("id", None) if !filtered => Ok(Target::ReadOnly("id")),
        ("meta", _) if !filtered => Ok(Target::ReadOnly("meta")),
        ("schemas", None) if !filtered => Ok(Target::ReadOnly("schemas")),
        ("password", None) if !filtered => Ok(Target::Password),
        (attribute, _) if CORE_NOT_KEPT.contains(&attribute) => Ok(Target::NotKept),
        _ => Err(unknown(path)),
    }
}

/// A path under a schema URN other than the core User's: the enterprise extension's
/// attributes, or an extension of the client's own (Okta's custom app attributes), are
/// accepted and not kept; a name under the SCIM standard's URNs or ours that is none of these
/// (a mistyped core or app URN) is refused.
fn urn_target(lower: &str, path: &str) -> Result<Target, ScimFault> {
    let enterprise = ENTERPRISE_USER.to_ascii_lowercase();
    if lower == enterprise || lower.starts_with(&format!("{enterprise}:")) {
        return Ok(Target::NotKept);
    }
    let app_namespace = APP_USER
        .split(":scim:")
        .next()
        .unwrap_or(APP_USER)
        .to_ascii_lowercase();
    if lower.starts_with("urn:ietf:params:scim:") || lower.starts_with(&app_namespace) {
        return Err(unknown(path));
    }
    Ok(Target::NotKept)
}

const NAME_PARTS: &[&str] = &[
    "givenname",
    "familyname",
    "formatted",
    "middlename",
    "honorificprefix",
    "honorificsuffix",
];

/// The rest of RFC 7643's User (§4.1), lower case: accepted, not kept.
const CORE_NOT_KEPT: &[&str] = &[
    "nickname",
    "profileurl",
    "title",
    "usertype",
    "preferredlanguage",
    "locale",
    "timezone",
    "phonenumbers",
    "ims",
    "photos",
    "addresses",
    "groups",
    "entitlements",
    "roles",
    "x509certificates",
];

fn unknown(path: &str) -> ScimFault {
    // The path is the caller's text: named only when it is short and plain.
    let shown = if path.len() <= 100 && path.chars().all(|c| c.is_ascii_graphic()) {
        format!("`{path}`")
    } else {
        "the path".to_string()
    };
    ScimFault::invalid_path(format!(
        "{shown}: not an attribute of the User resource (see /Schemas)."
    ))
}

impl UserState {
    /// Sets what `key` names to `value` (for a complex attribute, the sub-attributes it has).
    fn set(&mut self, key: &str, value: &Value, source: Source) -> Result<(), ScimFault> {
        match target(key)? {
            Target::UserName => {
                let Value::String(raw) = value else {
                    return Err(ScimFault::invalid_value("userName: must be a string."));
                };
                let email = parse_user_name(raw)?;
                if email.as_str() != self.user_name {
                    return Err(ScimFault::mutability(
                        "userName: the address is the login's and cannot be changed.",
                    ));
                }
            }
            Target::ExternalId => {
                self.external_id = match value {
                    Value::Null => None,
                    Value::String(raw) => exact_text("externalId", raw, MAX_EXTERNAL_ID_LEN)?,
                    _ => return Err(ScimFault::invalid_value("externalId: must be a string.")),
                };
                self.named.external_id = true;
            }
            Target::Active => {
                self.active = parse_bool("active", value)?;
                self.named.active = true;
            }
            Target::Name(None) => match value {
                Value::Object(parts) => {
                    // In a whole resource (PUT) the object is the whole name: a part it leaves
                    // out is gone (and then refused: the parts go together); a PATCH's object
                    // changes only the parts it names (RFC 7644 §3.5.2.3).
                    if source == Source::Resource {
                        self.given_name = None;
                        self.family_name = None;
                    }
                    for (part, value) in parts {
                        self.set_name_part(&part.to_ascii_lowercase(), value)?;
                    }
                }
                // A whole resource without a name keeps it (see `parse_replacement`); a PATCH
                // that sets it to null removes it, as `remove` would.
                Value::Null if source == Source::Resource => {}
                Value::Null => {
                    self.given_name = None;
                    self.family_name = None;
                    self.named.name = true;
                }
                _ => return Err(ScimFault::invalid_value("name: must be an object.")),
            },
            Target::Name(Some(part)) => self.set_name_part(&part, value)?,
            Target::Role => {
                self.role = parse_role(value)?;
                self.named.role = true;
            }
            Target::App => match value {
                Value::Object(values) => {
                    for (key, value) in values {
                        // The extension's object may name its own schema, as scim2-models (and
                        // so scim2-tester) writes it: `{"schemas": [APP_USER], "role": …}`. Not
                        // an attribute; accepted when it names this extension and nothing else.
                        if key.eq_ignore_ascii_case("schemas") && names_only_app(value) {
                            continue;
                        }
                        if !key.eq_ignore_ascii_case("role") {
                            return Err(unknown(key));
                        }
                        self.role = parse_role(value)?;
                        self.named.role = true;
                    }
                }
                _ => {
                    return Err(ScimFault::invalid_value(
                        "the app extension: must be an object.",
                    ));
                }
            },
            Target::Password => {
                return Err(ScimFault::mutability(
                    "password: set only when the user is created (changePassword is not supported).",
                ));
            }
            Target::ReadOnly(name @ ("id" | "meta")) if source == Source::Patch => {
                return Err(ScimFault::mutability(format!("{name}: is read-only.")));
            }
            Target::ReadOnly(_) | Target::NotKept => {}
        }
        Ok(())
    }

    fn set_name_part(&mut self, part: &str, value: &Value) -> Result<(), ScimFault> {
        let slot = match part {
            "givenname" => &mut self.given_name,
            "familyname" => &mut self.family_name,
            _ if NAME_PARTS.contains(&part) => return Ok(()),
            _ => return Err(unknown(&format!("name.{part}"))),
        };
        let field = if part == "givenname" {
            "name.givenName"
        } else {
            "name.familyName"
        };
        *slot = match value {
            Value::Null => None,
            Value::String(raw) => text(field, raw, MAX_NAME_LEN)?,
            _ => {
                return Err(ScimFault::invalid_value(format!(
                    "{field}: must be a string."
                )));
            }
        };
        self.named.name = true;
        Ok(())
    }

    fn remove(&mut self, path: &str) -> Result<(), ScimFault> {
        match target(path)? {
            Target::UserName => Err(ScimFault::mutability("userName: is required.")),
            Target::Active => Err(ScimFault::mutability(
                "active: cannot be removed; set it to false to deactivate.",
            )),
            Target::ExternalId => {
                self.external_id = None;
                self.named.external_id = true;
                Ok(())
            }
            Target::Name(None) => {
                self.given_name = None;
                self.family_name = None;
                self.named.name = true;
                Ok(())
            }
            Target::Name(Some(part)) => self.set_name_part(&part, &Value::Null),
            Target::Role | Target::App => {
                self.role = Role::User;
                self.named.role = true;
                Ok(())
            }
            Target::ReadOnly(name) => Err(ScimFault::mutability(format!(
                "{name}: is read-only{}.",
                match name {
                    "emails" => " (the work address is userName)",
                    "displayName" => " (it is made from name)",
                    _ => "",
                }
            ))),
            Target::Password => Err(ScimFault::mutability("password: cannot be removed.")),
            Target::NotKept => Ok(()),
        }
    }
}

/// Attribute names are case-insensitive (RFC 7643 §2.1), so `userName` and `USERNAME` in one
/// object are one attribute given twice, as a key twice is: refused, at any depth, rather
/// than letting one of them win by the map's order.
fn refuse_case_twins(body: &Value) -> Result<(), ScimFault> {
    let mut pending = vec![body];
    while let Some(value) = pending.pop() {
        match value {
            Value::Object(object) => {
                let mut seen = std::collections::HashSet::with_capacity(object.len());
                for (key, value) in object {
                    if !seen.insert(key.to_ascii_lowercase()) {
                        let shown = if crate::json::looks_like_a_field_name(key) {
                            format!("`{key}`")
                        } else {
                            "an attribute".to_string()
                        };
                        return Err(ScimFault::invalid_syntax(format!(
                            "{shown}: given twice (attribute names are case-insensitive)."
                        )));
                    }
                    pending.push(value);
                }
            }
            Value::Array(items) => pending.extend(items),
            _ => {}
        }
    }
    Ok(())
}

/// `["urn:…:app:2.0:User"]`: a `schemas` list naming the app extension alone.
fn names_only_app(value: &Value) -> bool {
    value.as_array().is_some_and(|schemas| {
        !schemas.is_empty()
            && schemas
                .iter()
                .all(|s| s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(APP_USER)))
    })
}

/// The value of `key` in `object`, its name compared case-insensitively.
fn get<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    object
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

fn parse_user_name(raw: &str) -> Result<Email, ScimFault> {
    if raw.contains('\0') {
        return Err(ScimFault::invalid_value(
            "userName: must not contain a NUL character.",
        ));
    }
    Email::parse(raw).map_err(|m| ScimFault::invalid_value(format!("userName: {m}.")))
}

/// `true`, `false`, or Entra's `"True"` and `"False"`.
fn parse_bool(field: &str, value: &Value) -> Result<bool, ScimFault> {
    match value {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        _ => Err(ScimFault::invalid_value(format!(
            "{field}: must be true or false."
        ))),
    }
}

fn parse_role(value: &Value) -> Result<Role, ScimFault> {
    match value {
        Value::String(raw) => {
            Role::parse(raw).map_err(|_| ScimFault::invalid_value("role: must be USER or ADMIN."))
        }
        Value::Null => Ok(Role::User),
        _ => Err(ScimFault::invalid_value("role: must be a string.")),
    }
}

fn parse_password(value: &Value) -> Result<SecretString, ScimFault> {
    match value {
        Value::String(raw) if !raw.is_empty() && raw.len() <= MAX_PASSWORD_LEN => {
            if raw.contains('\0') {
                return Err(ScimFault::invalid_value(
                    "password: must not contain a NUL character.",
                ));
            }
            Ok(SecretString::from(raw.clone()))
        }
        Value::String(_) => Err(ScimFault::invalid_value(format!(
            "password: must be 1 to {MAX_PASSWORD_LEN} characters."
        ))),
        _ => Err(ScimFault::invalid_value("password: must be a string.")),
    }
}

/// A one-line text of at most `max` characters; blank is none.
/// A name's part: white space around it dropped, nothing but invisible characters no value.
fn text(field: &str, raw: &str, max: usize) -> Result<Option<String>, ScimFault> {
    if raw.chars().all(is_invisible) {
        return Ok(None);
    }
    checked(field, raw, raw.trim(), max).map(Some)
}

/// A client's own identifier (`externalId`, case-exact in RFC 7643 §3.1): kept exactly as
/// sent, so that a filter with the same text finds it; "" is no value.
fn exact_text(field: &str, raw: &str, max: usize) -> Result<Option<String>, ScimFault> {
    if raw.is_empty() {
        return Ok(None);
    }
    checked(field, raw, raw, max).map(Some)
}

/// `kept` (all or part of `raw`), once `raw` has no control character, not even around what
/// is kept, and `kept` at most `max` characters.
fn checked(field: &str, raw: &str, kept: &str, max: usize) -> Result<String, ScimFault> {
    refuse_controls(field, raw)
        .map_err(|e| ScimFault::invalid_value(format!("{}: {}.", e.field, e.message)))?;
    if kept.chars().count() > max {
        return Err(ScimFault::invalid_value(format!(
            "{field}: must be at most {max} characters."
        )));
    }
    Ok(kept.to_string())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn jane() -> UserState {
        UserState {
            user_name: "jane@example.com".into(),
            external_id: Some("00u1".into()),
            given_name: Some("Jane".into()),
            family_name: Some("Doe".into()),
            active: true,
            role: Role::User,
            named: Named::default(),
        }
    }

    fn patch(operations: Value) -> Value {
        json!({"schemas": [PATCH_OP], "Operations": operations})
    }

    fn scim_type(result: Result<UserState, ScimFault>) -> &'static str {
        result.unwrap_err().scim_type
    }

    #[test]
    fn entra_deactivates_with_a_capitalised_op_and_a_string() {
        let wanted = apply_patch(
            &patch(json!([{"op": "Replace", "path": "active", "value": "False"}])),
            &jane(),
        )
        .unwrap();
        assert!(!wanted.active);
        let changes = jane().changes_to(&wanted).unwrap();
        assert_eq!(changes.active, Some(false));
        assert_eq!(
            (changes.role, changes.name, changes.external_id),
            (None, None, None)
        );
    }

    #[test]
    fn okta_deactivates_with_a_pathless_replace() {
        let wanted = apply_patch(
            &patch(json!([{"op": "replace", "value": {"active": false}}])),
            &jane(),
        )
        .unwrap();
        assert!(!wanted.active);
    }

    #[test]
    fn dotted_and_urn_keys_of_a_pathless_replace_go_to_their_attributes() {
        let wanted = apply_patch(
            &patch(json!([{"op": "replace", "value": {
                "name.givenName": "Janet",
                "urn:ietf:params:scim:schemas:core:2.0:User:name.familyName": "Dough",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "42",
                "displayName": "Janet Dough",
                APP_USER: {"role": "ADMIN"},
            }}])),
            &jane(),
        )
        .unwrap();
        assert_eq!(wanted.given_name.as_deref(), Some("Janet"));
        assert_eq!(wanted.family_name.as_deref(), Some("Dough"));
        assert_eq!(wanted.role, Role::Admin);
        let changes = jane().changes_to(&wanted).unwrap();
        assert_eq!(
            changes.name,
            Some(PersonName {
                given: "Janet".into(),
                family: "Dough".into()
            })
        );
    }

    #[test]
    fn a_filtered_email_path_is_accepted_and_the_address_stays() {
        let wanted = apply_patch(
            &patch(json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "jane@example.com"}])),
            &jane(),
        )
        .unwrap();
        assert_eq!(wanted, jane());
    }

    #[test]
    fn what_cannot_be_done_says_why_in_scim_terms() {
        let j = jane();
        assert_eq!(
            scim_type(apply_patch(&patch(json!([{"op": "remove"}])), &j)),
            "noTarget"
        );
        assert_eq!(
            scim_type(apply_patch(
                &patch(json!([{"op": "replace", "path": "userName", "value": "x@example.com"}])),
                &j
            )),
            "mutability"
        );
        assert_eq!(
            scim_type(apply_patch(
                &patch(json!([{"op": "replace", "path": "favouriteColour", "value": "red"}])),
                &j
            )),
            "invalidPath"
        );
        assert_eq!(
            scim_type(apply_patch(
                &patch(json!([{"op": "replace", "path": "active", "value": "maybe"}])),
                &j
            )),
            "invalidValue"
        );
        assert_eq!(
            scim_type(apply_patch(
                &patch(json!([{"op": "copy", "path": "active", "value": true}])),
                &j
            )),
            "invalidSyntax"
        );
        assert_eq!(
            scim_type(apply_patch(&json!({"Operations": []}), &j)),
            "invalidSyntax"
        );
        assert_eq!(
            scim_type(apply_patch(
                &patch(json!([{"op": "replace", "path": "externalId", "value": "a\u{0}b"}])),
                &j
            )),
            "invalidValue"
        );
    }

    #[test]
    fn a_name_goes_whole_or_not_at_all() {
        let mut nameless = jane();
        nameless.given_name = None;
        nameless.family_name = None;
        let half = apply_patch(
            &patch(json!([{"op": "add", "path": "name.givenName", "value": "Jane"}])),
            &nameless,
        )
        .unwrap();
        assert_eq!(
            nameless.changes_to(&half).unwrap_err().scim_type,
            "invalidValue"
        );
        let removed =
            apply_patch(&patch(json!([{"op": "remove", "path": "name"}])), &jane()).unwrap();
        assert_eq!(
            jane().changes_to(&removed).unwrap_err().scim_type,
            "mutability"
        );
        let nulled = apply_patch(
            &patch(json!([{"op": "replace", "path": "name", "value": null}])),
            &jane(),
        )
        .unwrap();
        assert_eq!(nulled, removed);
    }

    #[test]
    fn a_post_parses_with_okta_s_password_and_defaults() {
        let new = parse_new(&json!({
            "schemas": [CORE_USER],
            "userName": "Jane@Example.com",
            "name": {"givenName": "Jane", "familyName": "Doe"},
            "emails": [{"value": "jane@example.com", "type": "work", "primary": true}],
            "externalId": "00u1",
            "password": "correct horse",
            "active": true,
            "id": "ignored",
        }))
        .unwrap();
        assert_eq!(new.user.email.as_str(), "jane@example.com");
        assert_eq!(new.user.role, Role::User);
        assert!(new.password.is_some() && new.active);
        assert!(matches!(new.user.employee, EmployeeRequest::Create(_)));
        let name = json!({"givenName": "A", "familyName": "B"});
        let inactive = parse_new(&json!({
            "schemas": [CORE_USER], "userName": "a@example.com", "name": name, "active": "False",
        }))
        .unwrap();
        assert!(!inactive.active);
        // Neither a name nor `active` is needed: no employee record, active.
        let bare =
            parse_new(&json!({"schemas": [CORE_USER], "userName": "a@example.com"})).unwrap();
        assert!(bare.active);
        assert!(matches!(bare.user.employee, EmployeeRequest::None));
        for (body, kind) in [
            (json!({"userName": "a@example.com"}), "invalidSyntax"),
            (json!({"schemas": [CORE_USER]}), "invalidValue"),
            (
                json!({"schemas": [CORE_USER], "userName": "not an address"}),
                "invalidValue",
            ),
            (
                json!({"schemas": [CORE_USER], "userName": "a@example.com", "active": true, "name": {"givenName": "A"}}),
                "invalidValue",
            ),
            (
                json!({"schemas": [CORE_USER], "userName": "a@example.com", "active": true, "name": name, APP_USER: {"role": "GOD"}}),
                "invalidValue",
            ),
        ] {
            assert_eq!(
                parse_new(&body).err().map(|e| e.scim_type),
                Some(kind),
                "{body}"
            );
        }
    }

    /// Found by `make chaos` (two PUTs on one user): a PUT read the user as ADMIN, asked for
    /// ADMIN and a new name, and another change made the user a USER before this one locked
    /// it. Only the name was asked for, so the PUT answered 200 with the role USER: neither
    /// request won whole. Everything the request names is asked for once anything differs.
    #[test]
    fn a_change_asks_for_every_attribute_it_names_not_only_what_differs_from_the_read() {
        let read = UserState {
            role: Role::Admin,
            ..jane()
        };
        let wanted = parse_replacement(
            &json!({
                "schemas": [CORE_USER],
                "userName": "jane@example.com",
                "name": {"givenName": "Janet", "familyName": "Doe"},
                "externalId": "00u1",
                "active": true,
                APP_USER: {"role": "ADMIN"},
            }),
            &read,
        )
        .unwrap();
        let changes = read.changes_to(&wanted).unwrap();
        assert_eq!(changes.role, Some(Role::Admin));
        assert_eq!(changes.active, Some(true));
        assert_eq!(changes.external_id, Some(Some("00u1".into())));
        assert_eq!(changes.name.map(|n| n.given), Some("Janet".into()));
        // A PATCH asks for what its operations name, and nothing else: the activity it did not
        // name stays whatever another change made it meanwhile.
        let renamed = apply_patch(
            &patch(json!([{"op": "replace", "path": "name.givenName", "value": "Janet"}])),
            &read,
        )
        .unwrap();
        let changes = read.changes_to(&renamed).unwrap();
        assert!(changes.name.is_some());
        assert_eq!(
            (changes.role, changes.active, changes.external_id),
            (None, None, None)
        );
        // Asking for what the user is changes nothing.
        let same = apply_patch(
            &patch(
                json!([{"op": "replace", "value": {"active": true, APP_USER: {"role": "ADMIN"}}}]),
            ),
            &read,
        )
        .unwrap();
        assert_eq!(read.changes_to(&same).unwrap(), UserChanges::default());
    }

    #[test]
    fn the_app_extension_may_name_its_own_schema() {
        // As scim2-models writes an extension's object, in a PATCH and in a whole resource.
        let value = json!({"schemas": [APP_USER], "role": "ADMIN"});
        let patched = apply_patch(
            &patch(json!([{"op": "add", "path": APP_USER, "value": value}])),
            &jane(),
        )
        .unwrap();
        assert_eq!(patched.role, Role::Admin);
        let put = parse_replacement(
            &json!({"schemas": [CORE_USER, APP_USER], "userName": "jane@example.com", APP_USER: value}),
            &jane(),
        )
        .unwrap();
        assert_eq!(put.role, Role::Admin);
        // Another schema there is no part of this extension.
        let other = json!({"schemas": [CORE_USER], "role": "ADMIN"});
        assert_eq!(
            scim_type(apply_patch(
                &patch(json!([{"op": "add", "path": APP_USER, "value": other}])),
                &jane()
            )),
            "invalidPath"
        );
    }

    #[test]
    fn a_put_s_name_is_the_whole_name_and_a_patch_s_changes_its_parts() {
        let put = parse_replacement(
            &json!({"schemas": [CORE_USER], "userName": "jane@example.com", "name": {"givenName": "Janet"}}),
            &jane(),
        )
        .unwrap();
        assert_eq!(
            (put.given_name.as_deref(), put.family_name.as_deref()),
            (Some("Janet"), None)
        );
        assert_eq!(
            jane().changes_to(&put).unwrap_err().scim_type,
            "invalidValue"
        );
        let patched = apply_patch(
            &patch(json!([{"op": "replace", "path": "name", "value": {"givenName": "Janet"}}])),
            &jane(),
        )
        .unwrap();
        assert_eq!(
            (
                patched.given_name.as_deref(),
                patched.family_name.as_deref()
            ),
            (Some("Janet"), Some("Doe"))
        );
    }

    #[test]
    fn a_put_keeps_what_it_leaves_out() {
        let wanted = parse_replacement(
            &json!({"schemas": [CORE_USER], "userName": "JANE@example.com", "active": false, "password": "x"}),
            &jane(),
        )
        .unwrap();
        assert_eq!(
            wanted,
            UserState {
                active: false,
                named: Named {
                    active: true,
                    ..Named::default()
                },
                ..jane()
            }
        );
        let moved = parse_replacement(
            &json!({"schemas": [CORE_USER], "userName": "other@example.com"}),
            &jane(),
        );
        assert_eq!(moved.unwrap_err().scim_type, "mutability");
    }

    /// Found by a hostile-request probe: a path under the SCIM standard's URNs or ours that
    /// names no attribute was accepted and dropped, so a mistyped deactivation answered 200.
    #[test]
    fn a_mistyped_schema_urn_is_invalid_path_and_other_extensions_are_not_kept() {
        for path in [
            "urn:ietf:params:scim:schemas:core:2.0:Users:active",
            "urn:ietf:params:scim:schemas:core:2.0:User.active",
            "urn:ietf:params:scim:schemas:core:2.0:User",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.1:User:department",
            "urn:atomic-user-provisioning:scim:schemas:extension:app:2.1:User:role",
        ] {
            let op = json!([{"op": "replace", "path": path, "value": false}]);
            assert_eq!(
                scim_type(apply_patch(&patch(op), &jane())),
                "invalidPath",
                "{path}"
            );
        }
        for path in [
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber",
            "urn:IETF:params:scim:schemas:extension:enterprise:2.0:User:department",
            "urn:okta:custom:1.0:User:costCenter",
        ] {
            let op = json!([{"op": "replace", "path": path, "value": "42"}]);
            assert_eq!(apply_patch(&patch(op), &jane()).unwrap(), jane(), "{path}");
        }
    }

    #[test]
    fn an_attribute_twice_in_two_cases_is_invalid_syntax_at_any_depth() {
        for body in [
            json!({"schemas": [CORE_USER], "userName": "a@example.com", "USERNAME": "b@example.com"}),
            json!({"schemas": [CORE_USER], "userName": "a@example.com", "name": {"givenName": "A", "GivenName": "B", "familyName": "C"}}),
        ] {
            assert_eq!(parse_new(&body).err().unwrap().scim_type, "invalidSyntax");
        }
        let twice = patch(json!([{"op": "replace", "value": {"active": true, "Active": false}}]));
        assert_eq!(scim_type(apply_patch(&twice, &jane())), "invalidSyntax");
        assert_eq!(
            scim_type(apply_patch(&patch(json!([])), &jane())),
            "invalidSyntax"
        );
    }

    #[test]
    fn a_path_filters_the_addresses_only_with_what_identity_providers_send() {
        for path in [
            r#"emails[type eq "work"].value"#,
            r#"emails[Type EQ "work"].value"#,
            r#"emails[primary eq true]"#,
            r#"emails[type eq "work" and primary eq true].value"#,
            r#"emails[value eq "jane@example.com"].value"#,
        ] {
            let op = json!([{"op": "replace", "path": path, "value": "jane@example.com"}]);
            assert!(apply_patch(&patch(op), &jane()).is_ok(), "{path}");
        }
        for path in [
            r#"emails[(((garbage].value"#,
            r#"emails[type eq work].value"#,
            r#"emails[type ne "work"].value"#,
            r#"emails[type eq "work" or primary eq true].value"#,
            r#"emails[type eq "work].value"#,
            r#"emails[].value"#,
        ] {
            let op = json!([{"op": "replace", "path": path, "value": "x@example.com"}]);
            assert_eq!(
                scim_type(apply_patch(&patch(op), &jane())),
                "invalidFilter",
                "{path}"
            );
        }
        for path in [r#"meta[x eq 1].foo"#, r#"name[givenName eq "x"]"#] {
            let op = json!([{"op": "replace", "path": path, "value": "x"}]);
            assert_eq!(
                scim_type(apply_patch(&patch(op), &jane())),
                "invalidPath",
                "{path}"
            );
        }
    }

    #[test]
    fn a_patch_may_not_set_the_id_or_meta_and_a_refusal_names_what_it_refuses() {
        for (path, named) in [("id", "id"), ("meta.created", "meta"), ("META", "meta")] {
            let op = json!([{"op": "replace", "path": path, "value": "x"}]);
            let refused = apply_patch(&patch(op), &jane()).unwrap_err();
            assert_eq!(refused.scim_type, "mutability");
            assert!(
                refused.detail.starts_with(&format!("{named}:")),
                "{}",
                refused.detail
            );
        }
        let removed = apply_patch(
            &patch(json!([{"op": "remove", "path": "schemas"}])),
            &jane(),
        );
        assert!(removed.unwrap_err().detail.starts_with("schemas:"));
        // Identity providers send these with the rest: a whole resource and a PATCH of the
        // display name or the addresses change nothing.
        let shown = patch(json!([{"op": "replace", "path": "displayName", "value": "J"}]));
        assert_eq!(apply_patch(&shown, &jane()).unwrap(), jane());
        let typed = patch(json!([{"op": "replace", "path": "name.givenName", "value": 7}]));
        let refused = apply_patch(&typed, &jane()).unwrap_err();
        assert_eq!(refused.detail, "name.givenName: must be a string.");
    }

    #[test]
    fn an_external_id_is_kept_exactly_as_sent() {
        let op = json!([{"op": "replace", "path": "externalId", "value": "  padded  "}]);
        let wanted = apply_patch(&patch(op), &jane()).unwrap();
        assert_eq!(wanted.external_id.as_deref(), Some("  padded  "));
        let op = json!([{"op": "replace", "path": "externalId", "value": ""}]);
        assert_eq!(apply_patch(&patch(op), &jane()).unwrap().external_id, None);
        let op = json!([{"op": "replace", "path": "externalId", "value": "a\u{2028}b"}]);
        assert_eq!(scim_type(apply_patch(&patch(op), &jane())), "invalidValue");
    }

    #[test]
    fn a_control_character_is_refused_even_where_white_space_is_trimmed() {
        for value in ["Jane\n", "\tJane", "Jane\u{2028}"] {
            let op = json!([{"op": "replace", "path": "name.givenName", "value": value}]);
            assert_eq!(
                scim_type(apply_patch(&patch(op), &jane())),
                "invalidValue",
                "{value:?}"
            );
        }
        let op = json!([{"op": "replace", "path": "name.givenName", "value": "  Janet  "}]);
        let wanted = apply_patch(&patch(op), &jane()).unwrap();
        assert_eq!(wanted.given_name.as_deref(), Some("Janet"));
    }
}
