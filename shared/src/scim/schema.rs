//! What the SCIM service says about itself (RFC 7643 §5–7, RFC 7644 §4): the schemas' URNs,
//! `/ServiceProviderConfig`, `/ResourceTypes` and `/Schemas`, describing exactly the attributes
//! the service serves. Conformance tools generate their requests from these documents, so
//! what is advertised here and what [`super::resource`] and [`super::user`] do must agree.

use serde_json::{Value, json};

pub const CORE_USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// The app's own attributes of a user: its role.
pub const APP_USER: &str = "urn:atomic-user-provisioning:scim:schemas:extension:app:2.0:User";
/// RFC 7643's enterprise extension (Entra sends `employeeNumber`, `department`, `manager`):
/// accepted, not kept.
pub const ENTERPRISE_USER: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const LIST_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
pub const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
const SERVICE_PROVIDER_CONFIG: &str = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
const RESOURCE_TYPE: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
const SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";

/// The most users one answer holds (`count` above it is capped), and a page's size when the
/// request names none.
pub const MAX_RESULTS: usize = 200;

/// `path` (lower case) without the core User schema's URN in front, if it has it.
pub fn strip_core(path: &str) -> Option<&str> {
    let head = path.get(..CORE_USER.len())?;
    let rest = path.get(CORE_USER.len()..)?.strip_prefix(':')?;
    (head.eq_ignore_ascii_case(CORE_USER) && !rest.is_empty()).then_some(rest)
}

/// `GET /ServiceProviderConfig`.
pub fn service_provider_config(base: &str) -> Value {
    json!({
        "schemas": [SERVICE_PROVIDER_CONFIG],
        "patch": {"supported": true},
        "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": true, "maxResults": MAX_RESULTS},
        "changePassword": {"supported": false},
        "sort": {"supported": false},
        "etag": {"supported": false},
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "Bearer token",
            "description": "A SCIM token an OWNER or ADMIN made in the admin panel, sent as `Authorization: Bearer <token>`.",
            "primary": true,
        }],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": format!("{base}/ServiceProviderConfig"),
        },
    })
}

/// The one resource type, `User`.
pub fn user_resource_type(base: &str) -> Value {
    json!({
        "schemas": [RESOURCE_TYPE],
        "id": "User",
        "name": "User",
        "endpoint": "/Users",
        "description": "A user of the app: a row in its database and a login in Auth0, changed together.",
        "schema": CORE_USER,
        "schemaExtensions": [{"schema": APP_USER, "required": false}],
        "meta": {"resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/User")},
    })
}

/// Both schemas, each with its `meta`.
pub fn schemas(base: &str) -> Vec<Value> {
    [core_user_schema(), app_user_schema()]
        .into_iter()
        .map(|mut schema| {
            let id = schema["id"].as_str().unwrap_or_default().to_string();
            schema["schemas"] = json!([SCHEMA]);
            schema["meta"] = json!({
                "resourceType": "Schema",
                "location": format!("{base}/Schemas/{id}"),
            });
            schema
        })
        .collect()
}

/// One attribute's definition, with RFC 7643's defaults for what it does not say.
fn attribute(name: &str, kind: &str, properties: Value) -> Value {
    let mut attribute = json!({
        "name": name,
        "type": kind,
        "multiValued": false,
        "required": false,
        "caseExact": false,
        "mutability": "readWrite",
        "returned": "default",
        "uniqueness": "none",
    });
    if let (Some(attribute), Value::Object(properties)) = (attribute.as_object_mut(), properties) {
        attribute.extend(properties);
    }
    attribute
}

fn core_user_schema() -> Value {
    json!({
        "id": CORE_USER,
        "name": "User",
        "description": "User Account",
        "attributes": [
            attribute("userName", "string", json!({
                "required": true,
                "uniqueness": "server",
                // The login's address: Auth0 identifies the person by it, so it is not changed.
                "mutability": "immutable",
                "description": "The user's email address, unique across the service.",
            })),
            // Optional, as in RFC 7643: a person without a name in the identity provider is
            // created without an employee record. Once given, a name is changed, not removed
            // (the employee record needs both parts).
            attribute("name", "complex", json!({
                "description": "The user's name, kept by the user's employee record: given and family name go together.",
                "subAttributes": [
                    attribute("givenName", "string", json!({"description": "Given name."})),
                    attribute("familyName", "string", json!({"description": "Family name."})),
                ],
            })),
            attribute("displayName", "string", json!({
                "mutability": "readOnly",
                "description": "The given and the family name.",
            })),
            attribute("emails", "complex", json!({
                "multiValued": true,
                // The work address is userName; there is no other.
                "mutability": "readOnly",
                "description": "The work address, which is userName.",
                "subAttributes": [
                    attribute("value", "string", json!({"mutability": "readOnly"})),
                    attribute("type", "string", json!({"mutability": "readOnly", "canonicalValues": ["work"]})),
                    attribute("primary", "boolean", json!({"mutability": "readOnly"})),
                ],
            })),
            // Optional on create (a user starts active); set to false, never removed.
            attribute("active", "boolean", json!({
                "description": "False blocks the login and ends its sessions; true lets it in again.",
            })),
            attribute("password", "string", json!({
                "mutability": "writeOnly",
                "returned": "never",
                "caseExact": true,
                "description": "Only when creating a user (password sync): the login gets it and no invitation is sent.",
            })),
        ],
    })
}

fn app_user_schema() -> Value {
    json!({
        "id": APP_USER,
        "name": "AppUser",
        "description": "The app's own attributes of a user.",
        "attributes": [
            attribute("role", "string", json!({
                "canonicalValues": ["USER", "ADMIN"],
                "description": "The user's role in the app: USER (the default) or ADMIN. OWNER is given in the admin panel only.",
            })),
        ],
    })
}

/// Every `/Schemas` entry's id, for `GET /Schemas/{id}`.
pub fn schema(base: &str, id: &str) -> Option<Value> {
    schemas(base)
        .into_iter()
        .find(|schema| schema["id"].as_str() == Some(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_core_urn_is_stripped_case_insensitively() {
        assert_eq!(
            strip_core("urn:ietf:params:scim:schemas:core:2.0:user:name.givenname"),
            Some("name.givenname")
        );
        assert_eq!(strip_core("username"), None);
        assert_eq!(strip_core(CORE_USER), None);
    }

    #[test]
    fn the_schemas_describe_every_attribute_fully() {
        for schema in schemas("https://x.test/scim/v2") {
            for attribute in schema["attributes"].as_array().unwrap() {
                for key in ["name", "type", "multiValued", "mutability", "returned"] {
                    assert!(attribute.get(key).is_some(), "{attribute}: {key}");
                }
            }
        }
    }
}
