//! The tenant behind the double: users, issued tokens, call counters and pending faults,
//! shared by every handler behind one lock.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::Auth0Config;
use super::access::Access;
use super::bulk::{Bulk, BulkUsers};
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
    pub(super) users: Users,
    /// Issued access tokens and when they expire.
    pub(super) tokens: HashMap<String, DateTime<Utc>>,
    pub(super) calls: BTreeMap<String, usize>,
    pub(super) faults: FaultQueue,
    pub(super) window: RateWindow,
    /// Users' refresh tokens and sessions.
    pub(super) access: Access,
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

/// The users in creation order (the order search sorts from), indexed by `user_id`, by
/// email and by creation time, so a create, a lookup or a search on a `created_at` range costs
/// the same with ten users or a million; and users seeded in bulk (`bulk.rs`).
#[derive(Default)]
pub(super) struct Users {
    by_seq: BTreeMap<u64, StoredUser>,
    next_seq: u64,
    by_id: HashMap<String, u64>,
    /// Emails as stored (lower case) → the users holding them, in creation order.
    by_email: HashMap<String, BTreeSet<u64>>,
    /// (`created_at`, place in creation order) of every ordinary user.
    by_created: BTreeSet<(DateTime<Utc>, u64)>,
    pub(super) bulk: Option<Bulk>,
}

impl Users {
    /// Every user in creation order (a bulk range's profiles are all made: keep to small ones).
    pub(super) fn iter(&self) -> impl Iterator<Item = &StoredUser> {
        let mut ordinary = self
            .by_seq
            .iter()
            .map(|(seq, user)| (*seq, user))
            .peekable();
        let mut bulk = self.bulk.iter().flat_map(Bulk::iter).peekable();
        std::iter::from_fn(move || match (ordinary.peek(), bulk.peek()) {
            (Some((a, _)), Some((b, _))) if b < a => bulk.next(),
            (Some(_), _) => ordinary.next(),
            (None, _) => bulk.next(),
        })
        .map(|(_, user)| user)
    }

    /// How many users there are (a bulk user changed since is an ordinary one).
    pub(super) fn len(&self) -> usize {
        let bulk = self.bulk.as_ref().map_or(0, |b| {
            let seqs = b.seqs();
            b.count_within(&(0..seqs.end - seqs.start))
        });
        self.by_seq.len() + bulk as usize
    }

    pub(super) fn get(&self, user_id: &str) -> Option<&StoredUser> {
        match self.by_id.get(user_id) {
            Some(seq) => self.by_seq.get(seq),
            None => self.bulk.as_ref()?.get(user_id),
        }
    }

    /// For changes other than the email, which [`Users::set_email`] makes.
    pub(super) fn get_mut(&mut self, user_id: &str) -> Option<&mut StoredUser> {
        self.detach(user_id);
        self.by_seq.get_mut(self.by_id.get(user_id)?)
    }

    pub(super) fn with_email(&self, email: &str) -> impl Iterator<Item = &StoredUser> {
        self.placed_with_email(email)
            .into_iter()
            .map(|(_, user)| user)
    }

    /// The users holding `email`, with their places in creation order, in that order.
    pub(super) fn placed_with_email(&self, email: &str) -> Vec<(u64, &StoredUser)> {
        let seqs = self.by_email.get(email).into_iter().flatten();
        let mut found: Vec<(u64, &StoredUser)> = seqs
            .filter_map(|seq| Some((*seq, self.by_seq.get(seq)?)))
            .collect();
        found.extend(self.bulk.as_ref().and_then(|b| b.with_email(email)));
        found.sort_by_key(|(seq, _)| *seq);
        found
    }

    pub(super) fn push(&mut self, user: StoredUser) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.insert(seq, user);
    }

    fn insert(&mut self, seq: u64, user: StoredUser) {
        self.by_id.insert(user.id().to_string(), seq);
        self.index_email(user.email().to_string(), seq);
        if let Some(at) = created_at(&user.profile) {
            self.by_created.insert((at, seq));
        }
        self.by_seq.insert(seq, user);
    }

    pub(super) fn remove(&mut self, user_id: &str) {
        if let Some(bulk) = self.bulk.as_mut()
            && bulk.take(user_id).is_some()
        {
            return;
        }
        let Some(seq) = self.by_id.remove(user_id) else {
            return;
        };
        if let Some(user) = self.by_seq.remove(&seq) {
            self.unindex_email(user.email(), seq);
            if let Some(at) = created_at(&user.profile) {
                self.by_created.remove(&(at, seq));
            }
        }
    }

    /// Seeds `spec.count` users at once (one range a tenant).
    pub(super) fn insert_bulk(&mut self, spec: BulkUsers, connection: &str) {
        assert!(self.bulk.is_none(), "one bulk range a tenant");
        let bulk = Bulk::new(spec, connection, self.next_seq);
        self.next_seq = bulk.seqs().end;
        self.bulk = Some(bulk);
    }

    /// Ordinary users created within the bounds (each `(instant, inclusive)`, `None` open),
    /// in (`created_at`, creation) order, with their places.
    pub(super) fn created_within(
        &self,
        lower: Option<(DateTime<Utc>, bool)>,
        upper: Option<(DateTime<Utc>, bool)>,
    ) -> impl DoubleEndedIterator<Item = (DateTime<Utc>, u64, &StoredUser)> {
        use std::ops::Bound::{Excluded, Included, Unbounded};
        // An empty range (its start past its end) finds nobody, as in Auth0.
        let empty = match (lower, upper) {
            (Some((from, from_included)), Some((to, to_included))) => {
                from > to || (from == to && !(from_included && to_included))
            }
            _ => false,
        };
        let start = match lower {
            None => Unbounded,
            Some((at, true)) => Included((at, 0)),
            Some((at, false)) => Excluded((at, u64::MAX)),
        };
        let end = match upper {
            None => Unbounded,
            Some((at, true)) => Included((at, u64::MAX)),
            Some((at, false)) => Excluded((at, 0)),
        };
        let found = if empty {
            self.by_created.range(..(DateTime::<Utc>::MIN_UTC, 0))
        } else {
            self.by_created.range((start, end))
        };
        found.filter_map(|(at, seq)| Some((*at, *seq, self.by_seq.get(seq)?)))
    }

    /// A bulk user about to change becomes an ordinary one, in its place.
    fn detach(&mut self, user_id: &str) {
        if let Some((seq, user)) = self.bulk.as_mut().and_then(|b| b.take(user_id)) {
            self.insert(seq, user);
        }
    }

    pub(super) fn set_email(&mut self, user_id: &str, email: String) {
        self.detach(user_id);
        let Some(&seq) = self.by_id.get(user_id) else {
            return;
        };
        let Some(user) = self.by_seq.get_mut(&seq) else {
            return;
        };
        let old = std::mem::replace(&mut user.profile["email"], email.clone().into());
        self.unindex_email(old.as_str().unwrap_or_default(), seq);
        self.index_email(email, seq);
    }

    fn index_email(&mut self, email: String, seq: u64) {
        self.by_email.entry(email).or_default().insert(seq);
    }

    fn unindex_email(&mut self, email: &str, seq: u64) {
        if let Some(seqs) = self.by_email.get_mut(email) {
            seqs.remove(&seq);
            if seqs.is_empty() {
                self.by_email.remove(email);
            }
        }
    }
}

impl Tenant {
    pub(super) fn new(config: Auth0Config, base_url: &str) -> Tenant {
        Tenant {
            base_url: base_url.to_string(),
            initial: config.clone(),
            config,
            users: Users::default(),
            tokens: HashMap::new(),
            calls: BTreeMap::new(),
            faults: FaultQueue::default(),
            window: RateWindow::default(),
            access: Access::default(),
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
        self.users.get(user_id)
    }

    /// Exact match: emails are stored in lower case, so callers decide about case.
    pub(super) fn with_email(&self, email: &str) -> impl Iterator<Item = &StoredUser> {
        self.users.with_email(email)
    }

    /// A fresh Auth0 profile for a database-connection user.
    pub(super) fn new_profile(
        &self,
        email: &str,
        local_id: &str,
        created_at: DateTime<Utc>,
    ) -> Value {
        profile(&self.config.connection, email, local_id, created_at)
    }

    /// Seeds users in bulk (`bulk.rs`), bypassing validation.
    pub(super) fn seed_bulk(&mut self, spec: BulkUsers) {
        let connection = self.config.connection.clone();
        self.users.insert_bulk(spec, &connection);
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

/// A fresh Auth0 profile for a user of the database connection `connection`.
pub(super) fn profile(
    connection: &str,
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
            "connection": connection,
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

/// A profile's `created_at`, which never changes.
fn created_at(profile: &Value) -> Option<DateTime<Utc>> {
    let text = profile["created_at"].as_str()?;
    Some(DateTime::parse_from_rfc3339(text).ok()?.with_timezone(&Utc))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_indexes_follow_email_changes_and_removals_and_keep_creation_order() {
        let mut tenant = Tenant::new(Auth0Config::default(), "http://127.0.0.1:1");
        let mut seed = |email: &str| {
            let user = tenant.seed(email, Value::Null, Utc::now());
            user["user_id"].as_str().unwrap().to_string()
        };
        let (a, b, c) = (seed("a@x.io"), seed("b@x.io"), seed("A@x.io"));
        let ids = |users: Vec<&StoredUser>| -> Vec<String> {
            users.iter().map(|user| user.id().to_string()).collect()
        };
        assert_eq!(
            ids(tenant.with_email("a@x.io").collect()),
            [a.as_str(), c.as_str()]
        );

        tenant.users.set_email(&a, "z@x.io".into());
        assert_eq!(ids(tenant.with_email("a@x.io").collect()), [c.as_str()]);
        assert_eq!(ids(tenant.with_email("z@x.io").collect()), [a.as_str()]);
        assert_eq!(tenant.find(&a).unwrap().email(), "z@x.io");

        tenant.users.remove(&c);
        assert!(tenant.with_email("a@x.io").next().is_none());
        assert!(tenant.find(&c).is_none());
        assert_eq!(ids(tenant.users.iter().collect()), [a.as_str(), b.as_str()]);
    }
}
