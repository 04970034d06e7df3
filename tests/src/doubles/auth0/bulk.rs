//! Users in bulk, for tests at a real tenant's size (a million tagged users seeded in
//! milliseconds): a range of users that exist as a rule, user `n`'s id, address, creation time
//! and tags derived from `n`, until one is changed or deleted (it then becomes an ordinary user,
//! or is gone). A read by id or address makes that user's profile once; a search on a
//! `created_at` range makes only its page's. Otherwise they are what `POST /api/v2/users`
//! makes (without a password): every answer shows them the same.

use std::collections::BTreeSet;
use std::ops::Range;
use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::lucene::Clause;
use super::state::{StoredUser, profile};

/// Users seeded at once: user `n` (from 0) is `{email_prefix}{n}@{email_domain}`, created
/// `spacing` × `n` after `first_created_at`, with id [`bulk_user_id`]`(n)` and `app_metadata`
/// (whose `db_user_id`, if it has one, is [`bulk_db_user_id`]`(n)`).
#[derive(Clone, Debug)]
pub struct BulkUsers {
    pub count: u64,
    /// Taken to the millisecond, as Auth0 writes it.
    pub first_created_at: DateTime<Utc>,
    /// At least a millisecond.
    pub spacing: chrono::Duration,
    pub email_prefix: String,
    pub email_domain: String,
    pub app_metadata: Value,
}

impl BulkUsers {
    pub fn email(&self, n: u64) -> String {
        format!("{}{n}@{}", self.email_prefix, self.email_domain).to_lowercase()
    }

    pub fn created_at(&self, n: u64) -> DateTime<Utc> {
        let step = self.spacing_ms().num_milliseconds();
        self.first() + chrono::Duration::milliseconds(step.saturating_mul(n as i64))
    }

    fn first(&self) -> DateTime<Utc> {
        let ms = self.first_created_at.timestamp_millis();
        DateTime::from_timestamp_millis(ms).unwrap_or(self.first_created_at)
    }

    fn spacing_ms(&self) -> chrono::Duration {
        chrono::Duration::milliseconds(self.spacing.num_milliseconds().max(1))
    }
}

/// The Auth0 id of bulk user `n`: `auth0|b0` and `n` in 22 hex digits.
pub fn bulk_user_id(n: u64) -> String {
    format!("auth0|{}", local_id(n))
}

fn local_id(n: u64) -> String {
    format!("b0{n:022x}")
}

/// The `db_user_id` tag of bulk user `n`.
pub fn bulk_db_user_id(n: u64) -> Uuid {
    Uuid::parse_str(&format!("b0000000-0000-4000-8000-{n:012x}")).expect("a valid uuid")
}

/// [`bulk_user_id`] in SQL, for the rows that hold these users: `n` is an SQL expression.
pub fn bulk_user_id_sql(n: &str) -> String {
    format!("('auth0|b0' || lpad(to_hex({n}), 22, '0'))")
}

/// [`bulk_db_user_id`] in SQL.
pub fn bulk_db_user_id_sql(n: &str) -> String {
    format!("(('b0000000-0000-4000-8000-' || lpad(to_hex({n}), 12, '0'))::uuid)")
}

/// Profiles made for reads by id or address, a chunk at a time, so a reference to one can be
/// handed out from `&self`.
const CHUNK: u64 = 1_024;

/// Profile fields that differ from one bulk user to the next; a query on any other field
/// matches all of them or none.
const VARYING_FIELDS: [&str; 9] = [
    "user_id",
    "email",
    "name",
    "nickname",
    "picture",
    "created_at",
    "updated_at",
    "identities",
    "app_metadata.db_user_id",
];

pub(super) struct Bulk {
    spec: BulkUsers,
    connection: String,
    /// User n's place in creation order is `first_seq + n`.
    first_seq: u64,
    /// Users taken out of the range: deleted, or changed into ordinary users.
    gone: BTreeSet<u64>,
    made: Vec<OnceLock<Box<[OnceLock<StoredUser>]>>>,
}

impl Bulk {
    pub(super) fn new(spec: BulkUsers, connection: &str, first_seq: u64) -> Bulk {
        let chunks = spec.count.div_ceil(CHUNK) as usize;
        Bulk {
            spec,
            connection: connection.to_string(),
            first_seq,
            gone: BTreeSet::new(),
            made: (0..chunks).map(|_| OnceLock::new()).collect(),
        }
    }

    /// The places in creation order the range holds.
    pub(super) fn seqs(&self) -> Range<u64> {
        self.first_seq..self.first_seq + self.spec.count
    }

    pub(super) fn seq(&self, n: u64) -> u64 {
        self.first_seq + n
    }

    pub(super) fn created_at(&self, n: u64) -> DateTime<Utc> {
        self.spec.created_at(n)
    }

    /// User `n`'s profile, made afresh.
    pub(super) fn profile(&self, n: u64) -> Value {
        let email = self.spec.email(n);
        let mut user = profile(&self.connection, &email, &local_id(n), self.created_at(n));
        let mut tags = self.spec.app_metadata.clone();
        if let Some(tags) = tags.as_object_mut()
            && tags.contains_key("db_user_id")
        {
            tags.insert("db_user_id".into(), bulk_db_user_id(n).to_string().into());
        }
        if !tags.is_null() {
            user["app_metadata"] = tags;
        }
        user
    }

    fn live(&self, n: u64) -> Option<u64> {
        (n < self.spec.count && !self.gone.contains(&n)).then_some(n)
    }

    fn n_of_id(&self, user_id: &str) -> Option<u64> {
        let hex = user_id.strip_prefix("auth0|b0")?;
        let n = u64::from_str_radix(hex, 16).ok()?;
        (bulk_user_id(n) == user_id)
            .then_some(n)
            .and_then(|n| self.live(n))
    }

    fn n_of_email(&self, email: &str) -> Option<u64> {
        let prefix = self.spec.email_prefix.to_lowercase();
        let suffix = format!("@{}", self.spec.email_domain.to_lowercase());
        let digits = email.strip_prefix(&prefix)?.strip_suffix(&suffix)?;
        let n: u64 = digits.parse().ok()?;
        (n.to_string() == digits)
            .then_some(n)
            .and_then(|n| self.live(n))
    }

    fn stored(&self, n: u64) -> &StoredUser {
        let chunk = self.made[(n / CHUNK) as usize]
            .get_or_init(|| (0..CHUNK).map(|_| OnceLock::new()).collect());
        chunk[(n % CHUNK) as usize].get_or_init(|| StoredUser {
            profile: self.profile(n),
            password_digest: None,
        })
    }

    pub(super) fn get(&self, user_id: &str) -> Option<&StoredUser> {
        self.n_of_id(user_id).map(|n| self.stored(n))
    }

    /// The user holding `email` (stored lower case, compared exactly), with its place.
    pub(super) fn with_email(&self, email: &str) -> Option<(u64, &StoredUser)> {
        self.n_of_email(email)
            .map(|n| (self.seq(n), self.stored(n)))
    }

    /// Takes a user out of the range, to change it as an ordinary user or to delete it.
    pub(super) fn take(&mut self, user_id: &str) -> Option<(u64, StoredUser)> {
        let n = self.n_of_id(user_id)?;
        self.gone.insert(n);
        let made = self.made[(n / CHUNK) as usize]
            .get_mut()
            .and_then(|chunk| chunk[(n % CHUNK) as usize].take());
        let user = made.unwrap_or_else(|| StoredUser {
            profile: self.profile(n),
            password_digest: None,
        });
        Some((self.seq(n), user))
    }

    /// Every user of the range, in creation order; each one's profile is made and kept.
    pub(super) fn iter(&self) -> impl Iterator<Item = (u64, &StoredUser)> {
        (0..self.spec.count)
            .filter(|n| !self.gone.contains(n))
            .map(|n| (self.seq(n), self.stored(n)))
    }

    /// The users created within the bounds (each `(instant, inclusive)`, `None` open), as a
    /// range of `n` (some of them may be gone).
    pub(super) fn within(
        &self,
        lower: Option<(DateTime<Utc>, bool)>,
        upper: Option<(DateTime<Utc>, bool)>,
    ) -> Range<u64> {
        let count = self.spec.count;
        // The first n whose creation is past the bound (or at it, when inclusive).
        let first_after = |(at, inclusive): (DateTime<Utc>, bool)| -> u64 {
            let after = |n: u64| {
                let created = self.created_at(n);
                created > at || (inclusive && created == at)
            };
            let step = self.spec.spacing_ms().num_milliseconds();
            let guess = (at - self.spec.first()).num_milliseconds().div_euclid(step);
            let mut n = guess.clamp(0, count as i64) as u64;
            while n > 0 && after(n - 1) {
                n -= 1;
            }
            while n < count && !after(n) {
                n += 1;
            }
            n
        };
        let start = lower.map_or(0, first_after);
        let end = upper.map_or(count, |(at, inclusive)| first_after((at, !inclusive)));
        start..end.max(start)
    }

    /// The live users of `ns`, in order (`descending`: newest first).
    pub(super) fn live_within(
        &self,
        ns: Range<u64>,
        descending: bool,
    ) -> Box<dyn Iterator<Item = u64> + '_> {
        let live = move |n: &u64| !self.gone.contains(n);
        if descending {
            Box::new(ns.rev().filter(live))
        } else {
            Box::new(ns.filter(live))
        }
    }

    pub(super) fn count_within(&self, ns: &Range<u64>) -> u64 {
        let gone = self.gone.range(ns.clone()).count() as u64;
        (ns.end - ns.start) - gone
    }

    /// Whether all the range's users match `clauses` (true) or none (false), when none of the
    /// clauses names a field that differs between them; `None` otherwise.
    pub(super) fn all_alike(&self, clauses: &[&Clause]) -> Option<bool> {
        let alike = clauses.iter().all(|clause| {
            clause.fields().iter().all(|field| {
                !VARYING_FIELDS
                    .iter()
                    .any(|varying| field == varying || field.starts_with(&format!("{varying}.")))
            })
        });
        let first = self.profile(0);
        alike.then(|| (clauses.iter()).all(|clause| super::lucene::matches(clause, &first)))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::doubles::{Auth0Config, Auth0Double};

    fn spec(count: u64) -> BulkUsers {
        BulkUsers {
            count,
            first_created_at: DateTime::parse_from_rfc3339("2025-01-01T00:00:00.000Z")
                .unwrap()
                .with_timezone(&Utc),
            spacing: chrono::Duration::seconds(10),
            email_prefix: "bulk".into(),
            email_domain: "acme.test".into(),
            app_metadata: json!({"created_by": "us", "db_user_id": null}),
        }
    }

    #[tokio::test]
    async fn a_bulk_user_is_read_by_id_and_address_changed_and_deleted_like_any_other() {
        let double = Auth0Double::start(Auth0Config::default()).await.unwrap();
        let before = double.insert_user("first@acme.test", Value::Null);
        double.insert_bulk(spec(3_000));
        let after = double.insert_user("last@acme.test", Value::Null);
        assert_eq!(double.user_count(), 3_002);

        let user = double.user(&bulk_user_id(2_500)).unwrap();
        assert_eq!(user["email"], "bulk2500@acme.test");
        assert_eq!(user["created_at"], "2025-01-01T06:56:40.000Z");
        assert_eq!(
            user["app_metadata"],
            json!({"created_by": "us", "db_user_id": bulk_db_user_id(2_500).to_string()})
        );
        let local = bulk_user_id(2_500).replace("auth0|", "");
        assert_eq!(user["identities"][0]["user_id"], local.as_str());
        assert_eq!(local.len(), 24);
        assert_eq!(
            double.users_with_email("Bulk2500@ACME.test"),
            std::slice::from_ref(&user)
        );
        assert!(double.users_with_email("bulk02500@acme.test").is_empty());
        assert!(double.user(&bulk_user_id(3_000)).is_none());

        double.app.tenant().users.remove(&bulk_user_id(7));
        assert!(double.user(&bulk_user_id(7)).is_none());
        assert!(double.users_with_email("bulk7@acme.test").is_empty());
        double
            .app
            .tenant()
            .users
            .set_email(&bulk_user_id(8), "moved@acme.test".into());
        assert!(double.users_with_email("bulk8@acme.test").is_empty());
        assert_eq!(
            double.users_with_email("moved@acme.test")[0]["user_id"],
            bulk_user_id(8)
        );
        assert_eq!(double.user_count(), 3_001);
        // Creation order holds, the changed user in its place.
        let ids: Vec<String> = double
            .users()
            .iter()
            .map(|u| u["user_id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(ids.len(), 3_001);
        assert_eq!(
            (&ids[0], &ids[7], &ids[8], &ids[3_000]),
            (&before, &bulk_user_id(6), &bulk_user_id(8), &after)
        );
    }

    #[test]
    fn the_sql_forms_name_the_same_ids() {
        for n in [0, 1, 255, 999_999, 1 << 40] {
            let hex = format!("{n:x}");
            assert_eq!(
                bulk_user_id(n),
                format!("auth0|b0{}{hex}", "0".repeat(22 - hex.len()))
            );
            assert!(bulk_db_user_id(n).to_string().ends_with(&hex));
        }
        assert_eq!(
            bulk_user_id_sql("g"),
            "('auth0|b0' || lpad(to_hex(g), 22, '0'))"
        );
    }

    #[test]
    fn a_range_of_creation_times_maps_to_the_users_created_in_it() {
        let bulk = Bulk::new(spec(100), "c", 0);
        let at = |n: u64| bulk.created_at(n);
        let half = chrono::Duration::seconds(5);
        assert_eq!(bulk.within(None, None), 0..100);
        assert_eq!(
            bulk.within(Some((at(10), true)), Some((at(20), false))),
            10..20
        );
        assert_eq!(
            bulk.within(Some((at(10), false)), Some((at(20), true))),
            11..21
        );
        assert_eq!(
            bulk.within(Some((at(10) - half, true)), Some((at(20) + half, false))),
            10..21
        );
        assert_eq!(bulk.within(Some((at(0) - half * 100, true)), None), 0..100);
        assert_eq!(bulk.within(Some((at(99) + half, true)), None), 100..100);
        assert_eq!(bulk.within(None, Some((at(0), false))), 0..0);
        assert_eq!(
            bulk.within(Some((at(50), true)), Some((at(40), true))),
            50..50
        );
    }
}
