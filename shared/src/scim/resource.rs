//! A user as SCIM shows it (RFC 7643 §4.1): written straight from the user view, and cut to the
//! request's `attributes` or `excludedAttributes` (RFC 7644 §3.9) when it names them.

use serde::Serialize;
use serde_json::{Map, Value};

use super::schema::{APP_USER, CORE_USER, LIST_RESPONSE, strip_core};
use crate::db::user_views::UserView;
use crate::http_api::timestamp;

/// The SCIM User of `view`; `base` is the service's URL up to `/scim/v2`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserResource<'a> {
    schemas: [&'static str; 2],
    id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    external_id: Option<&'a str>,
    user_name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<NameJson<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    display_name: Option<String>,
    emails: [EmailJson<'a>; 1],
    active: bool,
    #[serde(rename = "urn:atomic-user-provisioning:scim:schemas:extension:app:2.0:User")]
    app: AppJson,
    meta: MetaJson,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NameJson<'a> {
    given_name: &'a str,
    family_name: &'a str,
}

#[derive(Serialize)]
struct EmailJson<'a> {
    value: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    primary: bool,
}

#[derive(Serialize)]
struct AppJson {
    role: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MetaJson {
    resource_type: &'static str,
    created: String,
    last_modified: String,
    location: String,
}

impl<'a> UserResource<'a> {
    pub fn of(view: &'a UserView, base: &str) -> Self {
        let user = &view.user;
        let employee = view.employee.as_ref();
        Self {
            schemas: [CORE_USER, APP_USER],
            id: user.id.to_string(),
            external_id: user.external_id.as_deref(),
            user_name: &user.email,
            name: employee.map(|e| NameJson {
                given_name: &e.first_name,
                family_name: &e.last_name,
            }),
            display_name: employee.map(|e| format!("{} {}", e.first_name, e.last_name)),
            emails: [EmailJson {
                value: &user.email,
                kind: "work",
                primary: true,
            }],
            active: user.is_active,
            app: AppJson {
                role: user.role.as_str(),
            },
            meta: MetaJson {
                resource_type: "User",
                created: timestamp(user.created_at),
                last_modified: timestamp(user.updated_at),
                location: location(base, view),
            },
        }
    }
}

/// Where the user lives: `Location` of a 201 and `meta.location`.
pub fn location(base: &str, view: &UserView) -> String {
    format!("{base}/Users/{}", view.user.id)
}

/// Which attributes an answer shows (RFC 7644 §3.9): all by default, only `attributes` when
/// given, all but `excludedAttributes` when given. `id` and `schemas` are always shown.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Projection {
    only: Option<Vec<AttributePath>>,
    except: Vec<AttributePath>,
}

/// An attribute (a top-level key, lower case) and maybe one of its sub-attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct AttributePath {
    top: String,
    sub: Option<String>,
}

impl Projection {
    /// From the query's `attributes` and `excludedAttributes` (comma-separated paths).
    pub fn parse(attributes: Option<&str>, excluded: Option<&str>) -> Self {
        let paths = |list: &str| -> Vec<AttributePath> {
            list.split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(AttributePath::parse)
                .collect()
        };
        let only = attributes.map(paths).filter(|p| !p.is_empty());
        let except = excluded.map(paths).unwrap_or_default();
        Self { only, except }
    }

    pub fn is_all(&self) -> bool {
        self.only.is_none() && self.except.is_empty()
    }

    /// `resource` cut to what is asked.
    pub fn apply(&self, resource: Value) -> Value {
        let Value::Object(mut object) = resource else {
            return resource;
        };
        if let Some(only) = &self.only {
            object = object
                .into_iter()
                .filter_map(|(key, value)| {
                    let top = key.to_ascii_lowercase();
                    if top == "id" || top == "schemas" {
                        return Some((key, value));
                    }
                    let asked: Vec<&AttributePath> = only.iter().filter(|p| p.top == top).collect();
                    if asked.is_empty() {
                        return None;
                    }
                    if asked.iter().any(|p| p.sub.is_none()) {
                        return Some((key, value));
                    }
                    let subs: Vec<&str> = asked.iter().filter_map(|p| p.sub.as_deref()).collect();
                    Some((key, keep_subs(value, &subs)))
                })
                .collect();
        }
        for path in &self.except {
            let Some(key) = object
                .keys()
                .find(|k| k.eq_ignore_ascii_case(&path.top))
                .cloned()
            else {
                continue;
            };
            if key == "id" || key == "schemas" {
                continue;
            }
            match &path.sub {
                None => {
                    object.remove(&key);
                }
                Some(sub) => {
                    if let Some(value) = object.get_mut(&key) {
                        drop_sub(value, sub);
                    }
                }
            }
        }
        Value::Object(object)
    }
}

impl AttributePath {
    fn parse(raw: &str) -> Self {
        let lower = raw.to_ascii_lowercase();
        let app = APP_USER.to_ascii_lowercase();
        // `urn:…:app:2.0:User:role` is the extension's `role`; `urn:…:app:2.0:User` all of it.
        if let Some(rest) = lower.strip_prefix(&app) {
            let sub = rest.strip_prefix(':').filter(|s| !s.is_empty());
            return Self {
                top: app,
                sub: sub.map(str::to_string),
            };
        }
        let bare = strip_core(&lower).unwrap_or(&lower);
        match bare.split_once('.') {
            Some((top, sub)) => Self {
                top: top.to_string(),
                sub: Some(sub.to_string()),
            },
            None => Self {
                top: bare.to_string(),
                sub: None,
            },
        }
    }
}

/// An object (or each object of an array) with only the sub-attributes `subs`.
fn keep_subs(value: Value, subs: &[&str]) -> Value {
    let keep = |object: Map<String, Value>| -> Map<String, Value> {
        object
            .into_iter()
            .filter(|(k, _)| subs.iter().any(|s| k.eq_ignore_ascii_case(s)))
            .collect()
    };
    match value {
        Value::Object(object) => Value::Object(keep(object)),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|item| match item {
                    Value::Object(object) => Value::Object(keep(object)),
                    other => other,
                })
                .collect(),
        ),
        other => other,
    }
}

fn drop_sub(value: &mut Value, sub: &str) {
    let drop = |object: &mut Map<String, Value>| object.retain(|k, _| !k.eq_ignore_ascii_case(sub));
    match value {
        Value::Object(object) => drop(object),
        Value::Array(items) => items.iter_mut().for_each(|item| {
            if let Value::Object(object) = item {
                drop(object);
            }
        }),
        _ => {}
    }
}

/// One user, cut to `projection`, as JSON text.
pub fn user_json(view: &UserView, base: &str, projection: &Projection) -> String {
    let resource = UserResource::of(view, base);
    if projection.is_all() {
        return serde_json::to_string(&resource).expect("a user serializes");
    }
    let value = serde_json::to_value(&resource).expect("a user serializes");
    projection.apply(value).to_string()
}

/// A `ListResponse` of users (RFC 7644 §3.4.2), written straight to text.
pub fn list_json(
    total: u64,
    start_index: usize,
    users: &[UserView],
    base: &str,
    projection: &Projection,
) -> String {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct ListResponse<T> {
        schemas: [&'static str; 1],
        total_results: u64,
        start_index: usize,
        items_per_page: usize,
        #[serde(rename = "Resources")]
        resources: Vec<T>,
    }
    fn list<T: Serialize>(total: u64, start_index: usize, resources: Vec<T>) -> String {
        let list = ListResponse {
            schemas: [LIST_RESPONSE],
            total_results: total,
            start_index,
            items_per_page: resources.len(),
            resources,
        };
        serde_json::to_string(&list).expect("a list serializes")
    }
    let resources = users.iter().map(|view| UserResource::of(view, base));
    if projection.is_all() {
        list(total, start_index, resources.collect())
    } else {
        let cut: Vec<Value> = resources
            .map(|r| projection.apply(serde_json::to_value(&r).expect("a user serializes")))
            .collect();
        list(total, start_index, cut)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn resource() -> Value {
        json!({
            "schemas": [CORE_USER, APP_USER],
            "id": "1",
            "userName": "a@example.com",
            "name": {"givenName": "Ada", "familyName": "Lovelace"},
            "emails": [{"value": "a@example.com", "type": "work", "primary": true}],
            "active": true,
            APP_USER: {"role": "USER"},
            "meta": {"resourceType": "User"},
        })
    }

    #[test]
    fn attributes_keep_only_what_is_asked_and_the_id() {
        let cut =
            Projection::parse(Some("userName,name.givenName,emails.value"), None).apply(resource());
        assert_eq!(
            cut,
            json!({
                "schemas": [CORE_USER, APP_USER],
                "id": "1",
                "userName": "a@example.com",
                "name": {"givenName": "Ada"},
                "emails": [{"value": "a@example.com"}],
            })
        );
        let urn = Projection::parse(Some(&format!("{CORE_USER}:userName,{APP_USER}:role")), None)
            .apply(resource());
        assert_eq!(urn["userName"], "a@example.com");
        assert_eq!(urn[APP_USER], json!({"role": "USER"}));
        assert!(urn.get("active").is_none());
    }

    #[test]
    fn excluded_attributes_drop_what_is_named_but_never_the_id() {
        let cut =
            Projection::parse(None, Some("ACTIVE, name.familyName, id, meta")).apply(resource());
        assert!(cut.get("active").is_none() && cut.get("meta").is_none());
        assert_eq!(cut["name"], json!({"givenName": "Ada"}));
        assert_eq!(cut["id"], "1");
        assert!(Projection::parse(Some(""), Some(" ")).is_all());
    }
}
