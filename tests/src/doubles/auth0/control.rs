//! The double's `/__control/` API: the routes shared with every double, plus seeding users
//! and changing the config while it runs.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::AUTH0_OPS;
use super::state::{App, Tenant};
use crate::doubles::faults::Fault;
use crate::doubles::server::{Answer, Control, Rejection, control_error, json_response};

impl Control for App {
    fn snapshot(&self) -> Value {
        let tenant = self.tenant();
        let calls: Map<String, Value> = AUTH0_OPS
            .iter()
            .map(|op| (op.to_string(), tenant.calls_to(op).into()))
            .collect();
        json!({
            "users": tenant.profiles(),
            "token_requests": tenant.token_requests,
            "calls": calls,
            "faults": tenant.faults.pending(),
        })
    }

    /// Keeps issued tokens so a client's cached token survives a reset.
    fn reset(&self) {
        let mut tenant = self.tenant();
        let tokens = std::mem::take(&mut tenant.tokens);
        *tenant = Tenant {
            tokens,
            ..Tenant::new(tenant.initial.clone(), &tenant.base_url)
        };
    }

    fn inject(&self, fault: Fault) {
        self.tenant().faults.push(fault);
    }

    fn clear_faults(&self) {
        self.tenant().faults.clear();
    }
}

/// `{"email", "app_metadata"?, "created_at"?}` adds a user without the API's checks.
pub(super) async fn seed_user(State(app): State<App>, body: Bytes) -> Answer {
    let request = json_object(&body)?;
    let Some(email) = request.get("email").and_then(Value::as_str) else {
        return Err(control_error("email is required"));
    };
    let created_at = match request.get("created_at").and_then(Value::as_str) {
        None => Utc::now(),
        Some(text) => DateTime::parse_from_rfc3339(text)
            .map_err(|error| control_error(&format!("created_at: {error}")))?
            .with_timezone(&Utc),
    };
    let app_metadata = request.get("app_metadata").cloned().unwrap_or(Value::Null);
    let user = app.tenant().seed(email, app_metadata, created_at);
    Ok(json_response(StatusCode::CREATED, &user))
}

/// `{"client_secret"?, "rate_limit_per_sec"?: n|null, "token_ttl_secs"?}` changes the config.
pub(super) async fn configure(State(app): State<App>, body: Bytes) -> Answer {
    let changes = json_object(&body)?;
    let mut tenant = app.tenant();
    for (key, value) in changes {
        match (key.as_str(), value) {
            ("client_secret", Value::String(secret)) => tenant.config.client_secret = secret,
            ("rate_limit_per_sec", Value::Null) => tenant.config.rate_limit_per_sec = None,
            ("rate_limit_per_sec", Value::Number(limit)) if limit.as_u64().is_some() => {
                let limit = limit.as_u64().unwrap_or_default();
                tenant.config.rate_limit_per_sec = Some(u32::try_from(limit).unwrap_or(u32::MAX));
            }
            ("token_ttl_secs", Value::Number(ttl)) if ttl.as_u64().is_some() => {
                tenant.config.token_ttl_secs = ttl.as_u64().unwrap_or_default();
            }
            (key, _) => return Err(control_error(&format!("cannot set {key} that way"))),
        }
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn json_object(body: &[u8]) -> Result<Map<String, Value>, Rejection> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(object)) => Ok(object),
        _ => Err(control_error("expected a JSON object")),
    }
}
