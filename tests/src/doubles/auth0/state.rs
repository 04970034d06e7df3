//! The tenant behind the double: users, issued tokens, call counters and pending faults,
//! shared by every handler behind one lock.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::Auth0Config;
use super::management::RateWindow;
use crate::doubles::faults::{Fault, FaultQueue};
use crate::doubles::server::lock;

#[derive(Clone)]
pub(super) struct App(Arc<Mutex<Tenant>>);

impl App {
    pub(super) fn new(config: Auth0Config, base_url: &str) -> App {
        App(Arc::new(Mutex::new(Tenant::new(config, base_url))))
    }

    pub(super) fn tenant(&self) -> MutexGuard<'_, Tenant> {
        lock(&self.0)
    }
}

pub(super) struct Tenant {
    pub(super) base_url: String,
    /// What `reset` goes back to.
    pub(super) initial: Auth0Config,
    pub(super) config: Auth0Config,
    pub(super) users: Vec<StoredUser>,
    /// Issued access tokens and when they expire.
    pub(super) tokens: HashMap<String, DateTime<Utc>>,
    pub(super) calls: BTreeMap<String, usize>,
    pub(super) faults: FaultQueue,
    pub(super) window: RateWindow,
}

pub(super) struct StoredUser {
    /// Exactly what the API returns; always a JSON object.
    pub(super) profile: Value,
    /// SHA-256 of the password, so no response or snapshot can leak it.
    pub(super) password_digest: Option<String>,
}

impl StoredUser {
    pub(super) fn id(&self) -> &str {
        self.profile["user_id"].as_str().unwrap_or_default()
    }

    pub(super) fn email(&self) -> &str {
        self.profile["email"].as_str().unwrap_or_default()
    }
}

impl Tenant {
    pub(super) fn new(config: Auth0Config, base_url: &str) -> Tenant {
        Tenant {
            base_url: base_url.to_string(),
            initial: config.clone(),
            config,
            users: Vec::new(),
            tokens: HashMap::new(),
            calls: BTreeMap::new(),
            faults: FaultQueue::default(),
            window: RateWindow::default(),
        }
    }

    pub(super) fn audience(&self) -> String {
        format!("{}/api/v2/", self.base_url)
    }

    /// Counts a call to `op` and hands out its fault, if one is pending.
    pub(super) fn begin(&mut self, op: &str) -> Option<Fault> {
        *self.calls.entry(op.to_string()).or_default() += 1;
        self.faults.take(op)
    }

    pub(super) fn calls_to(&self, op: &str) -> usize {
        self.calls.get(op).copied().unwrap_or(0)
    }

    pub(super) fn profiles(&self) -> Vec<Value> {
        self.users.iter().map(|user| user.profile.clone()).collect()
    }

    pub(super) fn find(&self, user_id: &str) -> Option<&StoredUser> {
        self.users.iter().find(|user| user.id() == user_id)
    }

    /// Exact match: emails are stored in lower case, so callers decide about case.
    pub(super) fn with_email(&self, email: &str) -> impl Iterator<Item = &StoredUser> {
        self.users.iter().filter(move |user| user.email() == email)
    }

    /// A fresh Auth0 profile for a database-connection user.
    pub(super) fn new_profile(
        &self,
        email: &str,
        local_id: &str,
        created_at: DateTime<Utc>,
    ) -> Value {
        let stamp = timestamp(created_at);
        let nickname = email.split('@').next().unwrap_or_default();
        json!({
            "user_id": format!("auth0|{local_id}"),
            "email": email,
            "email_verified": false,
            "created_at": stamp,
            "updated_at": stamp,
            "identities": [{
                "connection": self.config.connection,
                "user_id": local_id,
                "provider": "auth0",
                "isSocial": false,
            }],
            "name": email,
            "nickname": nickname,
            "picture": picture_for(email),
            "user_metadata": {},
        })
    }

    /// Adds a user without any of the API's checks; returns its profile.
    pub(super) fn seed(
        &mut self,
        email: &str,
        app_metadata: Value,
        created_at: DateTime<Utc>,
    ) -> Value {
        let mut profile = self.new_profile(&email.to_lowercase(), &random_hex(12), created_at);
        if !app_metadata.is_null() {
            profile["app_metadata"] = app_metadata;
        }
        self.users.push(StoredUser {
            profile: profile.clone(),
            password_digest: None,
        });
        profile
    }
}

/// ISO 8601 with milliseconds and `Z`, as Auth0 writes dates.
pub(super) fn timestamp(instant: DateTime<Utc>) -> String {
    instant.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub(super) fn random_hex(bytes: usize) -> String {
    let random: Vec<u8> = (0..bytes).map(|_| rand::random::<u8>()).collect();
    hex::encode(random)
}

pub(super) fn digest(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Auth0's default picture: a Gravatar with the initials avatar as fallback.
fn picture_for(email: &str) -> String {
    let initials: String = email.chars().take(2).collect();
    format!(
        "https://s.gravatar.com/avatar/{}?s=480&r=pg&d=https%3A%2F%2Fcdn.auth0.com%2Favatars%2F{initials}.png",
        digest(email)
    )
}
