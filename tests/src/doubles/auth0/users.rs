//! `/api/v2/users` create, get, patch and delete, `/api/v2/users-by-email`, and the revocation
//! of a user's sessions and refresh tokens.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::errors::{
    bad_request, inexistent_connection, invalid_query, management_error, user_not_found,
    weak_password,
};
use super::state::{App, StoredUser, Tenant, digest, random_hex, timestamp};
use super::validation::{
    CREATE_FIELDS, CREATE_REQUIRED, METADATA_FIELDS, PROFILE_FIELDS, UPDATE_FIELDS,
    is_strong_password, validate_payload,
};
use crate::doubles::server::{Answer, json_response};

pub(super) async fn create_user(
    State(app): State<App>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let work = |tenant: &mut Tenant, now| tenant.create_user(&body, now);
    app.management("create_user", &headers, work).await
}

pub(super) async fn get_user(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let work = |tenant: &mut Tenant, _| {
        let user = tenant.find(&id).ok_or_else(user_not_found)?;
        Ok(json_response(StatusCode::OK, &user.profile))
    };
    app.management("get_user", &headers, work).await
}

pub(super) async fn update_user(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let work = |tenant: &mut Tenant, now| tenant.update_user(&id, &body, now);
    app.management("update_user", &headers, work).await
}

pub(super) async fn delete_user(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let work = |tenant: &mut Tenant, _| {
        tenant.users.remove(&id);
        tenant.access.forget(&id);
        Ok(StatusCode::NO_CONTENT.into_response())
    };
    app.management("delete_user", &headers, work).await
}

/// `DELETE /api/v2/users/{id}/sessions`: 202 with no body (Auth0 ends them asynchronously,
/// the double at once); 404 `inexistent_user` for an unknown user.
pub(super) async fn revoke_sessions(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let work = |tenant: &mut Tenant, _| {
        tenant.find(&id).ok_or_else(user_not_found)?;
        tenant.access.end_sessions(&id);
        Ok(StatusCode::ACCEPTED.into_response())
    };
    app.management("revoke_sessions", &headers, work).await
}

/// `DELETE /api/v2/users/{id}/refresh-tokens`: 202 with no body (asynchronous on Auth0, at
/// once here); 404 `inexistent_user` for an unknown user.
pub(super) async fn revoke_refresh_tokens(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let work = |tenant: &mut Tenant, _| {
        tenant.find(&id).ok_or_else(user_not_found)?;
        tenant.access.revoke_refresh_tokens(&id);
        Ok(StatusCode::ACCEPTED.into_response())
    };
    app.management("revoke_refresh_tokens", &headers, work)
        .await
}

pub(super) async fn users_by_email(
    State(app): State<App>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let work = |tenant: &mut Tenant, _| {
        let params = query_params(query.as_deref());
        let Some(email) = params.get("email") else {
            return Err(invalid_query("Missing required property: email", None));
        };
        // Case-sensitive on purpose: Auth0 stores lower case and compares exactly.
        let found: Vec<&Value> = tenant.with_email(email).map(|user| &user.profile).collect();
        Ok(json_response(StatusCode::OK, &json!(found)))
    };
    app.management("users_by_email", &headers, work).await
}

pub(super) fn query_params(query: Option<&str>) -> HashMap<String, String> {
    let query = query.unwrap_or_default().as_bytes();
    url::form_urlencoded::parse(query).into_owned().collect()
}

impl Tenant {
    fn create_user(&mut self, body: &[u8], now: DateTime<Utc>) -> Answer {
        let payload = validate_payload(body, CREATE_FIELDS, CREATE_REQUIRED)?;
        let text = |name: &str| payload.get(name).and_then(Value::as_str);
        if text("connection") != Some(&self.config.connection) {
            return Err(inexistent_connection());
        }
        let password = text("password").unwrap_or_default();
        if !is_strong_password(password) {
            return Err(weak_password());
        }
        let email = text("email").unwrap_or_default().to_lowercase();
        let local_id = text("user_id").map_or_else(|| random_hex(12), str::to_string);
        let user_id = format!("auth0|{local_id}");
        if self.with_email(&email).next().is_some() || self.find(&user_id).is_some() {
            let status = StatusCode::CONFLICT;
            let message = "The user already exists.";
            return Err(management_error(status, message, Some("auth0_idp_error")));
        }

        let mut profile = self.new_profile(&email, &local_id, now);
        copy_fields(
            &mut profile,
            &payload,
            PROFILE_FIELDS.iter().chain(&METADATA_FIELDS),
        );
        self.users.push(StoredUser {
            profile: profile.clone(),
            password_digest: Some(digest(password)),
        });
        Ok(json_response(StatusCode::CREATED, &profile))
    }

    pub(super) fn update_user(&mut self, user_id: &str, body: &[u8], now: DateTime<Utc>) -> Answer {
        let payload = validate_payload(body, UPDATE_FIELDS, &[])?;
        let text = |name: &str| payload.get(name).and_then(Value::as_str);
        self.find(user_id).ok_or_else(user_not_found)?;
        if text("connection").is_some_and(|connection| connection != self.config.connection) {
            return Err(inexistent_connection());
        }
        if text("password").is_some_and(|password| !is_strong_password(password)) {
            return Err(weak_password());
        }
        let new_email = text("email").map(str::to_lowercase);
        if let Some(email) = &new_email
            && self.with_email(email).any(|user| user.id() != user_id)
        {
            let message = "The specified new email already exists";
            return Err(bad_request(message, Some("auth0_idp_error")));
        }

        if let Some(email) = new_email {
            self.users.set_email(user_id, email);
        }
        let user = self.users.get_mut(user_id).ok_or_else(user_not_found)?;
        let profile = &mut user.profile;
        copy_fields(profile, &payload, PROFILE_FIELDS);
        for field in METADATA_FIELDS {
            if let Some(Value::Object(changes)) = payload.get(field) {
                merge_top_level(&mut profile[field], changes);
            }
        }
        if let Some(password) = text("password") {
            user.password_digest = Some(digest(password));
        }
        user.profile["updated_at"] = timestamp(now).into();
        let profile = json_response(StatusCode::OK, &user.profile);
        // A new password, email or phone number ends the user's sessions; refresh tokens stay.
        if ["password", "email", "phone_number"]
            .iter()
            .any(|field| payload.contains_key(*field))
        {
            self.access.end_sessions(user_id);
        }
        Ok(profile)
    }
}

/// Sets each of `fields` the payload has on the profile, replacing what was there.
fn copy_fields<'a>(
    profile: &mut Value,
    payload: &Map<String, Value>,
    fields: impl IntoIterator<Item = &'a &'a str>,
) {
    for field in fields {
        if let Some(value) = payload.get(*field) {
            profile[*field] = value.clone();
        }
    }
}

/// Merges metadata as Auth0 does: key by key at the first level only (a nested object is
/// replaced whole), a `null` value removes its key, and an empty object removes every key.
fn merge_top_level(target: &mut Value, changes: &Map<String, Value>) {
    if !target.is_object() || changes.is_empty() {
        *target = json!({});
    }
    let Value::Object(target) = target else {
        return;
    };
    for (key, value) in changes {
        if value.is_null() {
            target.remove(key);
        } else {
            target.insert(key.clone(), value.clone());
        }
    }
}
