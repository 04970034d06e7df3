//! `GET /api/v2/users`: user search with the v3 engine, sorted and paged as Auth0 does.
//!
//! Two kinds of query are answered from indexes, so they cost the same with a million users
//! as with ten: one sorted on `created_at` with a range on it (cleanup's sweep; the index of
//! creation times also counts the total), and one that pins `email` to exact addresses
//! (cleanup's lookups). Any other query reads every user. All three answer the same.

use std::borrow::Cow;
use std::collections::HashMap;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::errors::{bad_request, invalid_query};
use super::lucene;
use super::state::{App, StoredUser, Tenant};
use super::users::query_params;
use crate::doubles::server::{Answer, Rejection, json_response};

/// v3 search never pages past this many results.
const SEARCH_WINDOW: u64 = 1000;

pub(super) async fn search_users(
    State(app): State<App>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let work = |tenant: &mut Tenant, _| tenant.search(&query_params(query.as_deref()));
    app.management("search_users", &headers, work).await
}

/// What a query found: how many users match, and the page asked for.
struct Found<'a> {
    total: usize,
    page: Vec<Cow<'a, Value>>,
}

impl Tenant {
    fn search(&self, params: &HashMap<String, String>) -> Answer {
        let query = SearchQuery::parse(params)?;
        let Found { total, page } = self
            .by_created_at(&query)
            .or_else(|| self.by_email(&query))
            .unwrap_or_else(|| self.every_user(&query));
        let body = if query.include_totals {
            json!({
                "start": query.page * query.per_page,
                "limit": query.per_page,
                "length": page.len(),
                "users": page,
                "total": total,
            })
        } else {
            json!(page)
        };
        Ok(json_response(StatusCode::OK, &body))
    }

    fn every_user(&self, query: &SearchQuery) -> Found<'_> {
        let matching = (self.users.iter())
            .map(|user| &user.profile)
            .filter(|profile| lucene::matches_all(&query.clauses, profile));
        query.sort_and_page(matching.collect())
    }

    /// A query that pins `email` to exact addresses reads only the users holding them.
    fn by_email(&self, query: &SearchQuery) -> Option<Found<'_>> {
        let emails = query.clauses.iter().find_map(exact_emails)?;
        let mut found: Vec<(u64, &StoredUser)> = (emails.iter())
            .flat_map(|email| self.users.placed_with_email(&email.to_lowercase()))
            .collect();
        // In creation order, as every user would be read.
        found.sort_by_key(|(seq, _)| *seq);
        found.dedup_by_key(|(seq, _)| *seq);
        let matching = (found.into_iter())
            .map(|(_, user)| &user.profile)
            .filter(|profile| lucene::matches_all(&query.clauses, profile));
        Some(query.sort_and_page(matching.collect()))
    }

    /// A query sorted on `created_at` with a range on it walks the index of creation times
    /// (and a bulk range by arithmetic) from the page's first user: the sweep's query.
    fn by_created_at(&self, query: &SearchQuery) -> Option<Found<'_>> {
        if query.sort_field != "created_at" {
            return None;
        }
        let at = query.clauses.iter().position(
            |clause| matches!(clause, lucene::Clause::Range { field, .. } if field == "created_at"),
        )?;
        let lucene::Clause::Range { lower, upper, .. } = &query.clauses[at] else {
            return None;
        };
        let (lower, upper) = (lower.instant().ok()?, upper.instant().ok()?);
        let others: Vec<&lucene::Clause> = (query.clauses.iter().enumerate())
            .filter(|(index, _)| *index != at)
            .map(|(_, clause)| clause)
            .collect();
        let matches_others =
            |profile: &Value| (others.iter()).all(|clause| lucene::matches(clause, profile));

        // Ordered by (created_at, creation order), as sorting every match would order them.
        let mut ordinary: Vec<(DateTime<Utc>, u64, &Value)> = (self.users)
            .created_within(lower, upper)
            .map(|(at, seq, user)| (at, seq, &user.profile))
            .filter(|(_, _, profile)| matches_others(profile))
            .collect();
        if query.descending {
            ordinary.reverse();
        }
        let (bulk_total, bulk_users): (usize, Vec<u64>) = match &self.users.bulk {
            None => (0, Vec::new()),
            Some(bulk) => {
                let range = bulk.within(lower, upper);
                match bulk.all_alike(&others) {
                    Some(false) => (0, Vec::new()),
                    // The page needs at most a window's worth of them.
                    Some(true) => (
                        bulk.count_within(&range) as usize,
                        bulk.live_within(range, query.descending)
                            .take(SEARCH_WINDOW as usize)
                            .collect(),
                    ),
                    // A query on a field that differs between them: each one checked.
                    None => {
                        let ns: Vec<u64> = bulk
                            .live_within(range, query.descending)
                            .filter(|n| matches_others(&bulk.profile(*n)))
                            .collect();
                        (ns.len(), ns)
                    }
                }
            }
        };
        let total = ordinary.len() + bulk_total;

        let (offset, per_page) = query.window();
        let mut ordinary = ordinary.into_iter().peekable();
        let bulk = self.users.bulk.as_ref();
        let mut bulk_users = (bulk_users.into_iter())
            .filter_map(|n| bulk.map(|b| (b.created_at(n), b.seq(n), n)))
            .peekable();
        let mut page = Vec::new();
        let mut skipped = 0;
        while page.len() < per_page {
            let ordinary_first = match (ordinary.peek(), bulk_users.peek()) {
                (Some(a), Some(b)) => ((a.0, a.1) < (b.0, b.1)) != query.descending,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            let user = if ordinary_first {
                ordinary
                    .next()
                    .map(|(_, _, profile)| Cow::Borrowed(profile))
            } else {
                let made = bulk_users.next().zip(bulk);
                made.map(|((_, _, n), bulk)| Cow::Owned(bulk.profile(n)))
            };
            if skipped < offset {
                skipped += 1;
                continue;
            }
            page.extend(user);
        }
        Some(Found { total, page })
    }
}

/// The addresses a clause pins `email` to: `email:"a"`, or `(email:"a" OR email:"b" …)`.
fn exact_emails(clause: &lucene::Clause) -> Option<Vec<String>> {
    let exact = |clause: &lucene::Clause| match clause {
        lucene::Clause::Matches {
            field,
            pattern: lucene::Pattern::Exact(email),
        } if field == "email" => Some(email.clone()),
        _ => None,
    };
    match clause {
        lucene::Clause::AnyOf(any) => any.iter().map(exact).collect(),
        clause => exact(clause).map(|email| vec![email]),
    }
}

impl SearchQuery {
    /// Where the page starts among the matches, and how many it holds.
    fn window(&self) -> (usize, usize) {
        let offset = usize::try_from(self.page * self.per_page).unwrap_or(usize::MAX);
        (offset, usize::try_from(self.per_page).unwrap_or(usize::MAX))
    }

    /// Sorts `matching` (in creation order) as asked, and cuts the page.
    fn sort_and_page<'a>(&self, mut matching: Vec<&'a Value>) -> Found<'a> {
        let sort_key = |profile: &Value| {
            lucene::field_values(profile, &self.sort_field)
                .into_iter()
                .next()
        };
        matching.sort_by_cached_key(|profile| sort_key(profile));
        if self.descending {
            matching.reverse();
        }
        let total = matching.len();
        let (offset, per_page) = self.window();
        let page = (matching.into_iter().skip(offset).take(per_page))
            .map(Cow::Borrowed)
            .collect();
        Found { total, page }
    }
}

/// The parameters of `GET /api/v2/users`, validated as Auth0 does.
struct SearchQuery {
    clauses: Vec<lucene::Clause>,
    page: u64,
    per_page: u64,
    include_totals: bool,
    sort_field: String,
    descending: bool,
}

impl SearchQuery {
    fn parse(params: &HashMap<String, String>) -> Result<SearchQuery, Rejection> {
        if let Some(engine) = params.get("search_engine").filter(|engine| *engine != "v3") {
            let message = format!(
                "You are not allowed to use search_engine={engine}. Use search_engine=v3 instead."
            );
            return Err(bad_request(&message, Some("operation_not_supported")));
        }
        let number = |name: &str, default: u64| match params.get(name) {
            None => Ok(default),
            Some(text) => text.parse::<u64>().map_err(|_| {
                let detail = "Expected type integer but found type string";
                invalid_query(detail, Some(name))
            }),
        };
        let page = number("page", 0)?;
        let per_page = number("per_page", 50)?;
        if per_page > 100 {
            let detail = format!("Value {per_page} is greater than maximum 100");
            return Err(invalid_query(&detail, Some("per_page")));
        }
        if page.saturating_add(1).saturating_mul(per_page) > SEARCH_WINDOW {
            let message = "You can only page through the first 1000 records. See \
                 https://auth0.com/docs/users/search/v3/view-search-results-by-page#limitation";
            return Err(bad_request(message, Some("invalid_paging")));
        }
        let (sort_field, descending) = match params.get("sort").map(|sort| sort.rsplit_once(':')) {
            None => ("created_at".to_string(), false),
            Some(Some((field, "1"))) if !field.is_empty() => (field.to_string(), false),
            Some(Some((field, "-1"))) if !field.is_empty() => (field.to_string(), true),
            Some(_) => {
                let detail = "String does not match pattern ^(([a-zA-Z0-9_\\.]+))\\:(1|-1)$";
                return Err(invalid_query(detail, Some("sort")));
            }
        };
        let query = params.get("q").map(|q| q.trim()).unwrap_or_default();
        let clauses = lucene::parse(query).map_err(|detail| {
            let message = format!("Invalid query: {detail}");
            bad_request(&message, Some("invalid_query"))
        })?;
        Ok(SearchQuery {
            clauses,
            page,
            per_page,
            include_totals: params
                .get("include_totals")
                .is_some_and(|flag| flag == "true"),
            sort_field,
            descending,
        })
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::doubles::Auth0Config;
    use crate::doubles::auth0::bulk::BulkUsers;

    fn ids(found: &Found<'_>) -> Vec<String> {
        (found.page.iter())
            .map(|user| user["user_id"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// Ordinary users around and among a bulk range, some sharing a millisecond, some tagged
    /// otherwise, some deleted or changed.
    fn tenant() -> Tenant {
        let mut tenant = Tenant::new(Auth0Config::default(), "http://127.0.0.1:1");
        let start = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
        let mut seeded = Vec::new();
        for i in 0..300i64 {
            let tags = match i % 3 {
                0 => json!({"created_by": "us", "db_user_id": format!("{i}")}),
                1 => json!({"created_by": "them"}),
                _ => Value::Null,
            };
            // Ten users a minute, three at a time in one millisecond.
            let at = start + chrono::Duration::seconds(6 * (i / 3));
            let user = tenant.seed(&format!("user{i}@acme.test"), tags, at);
            seeded.push(user["user_id"].as_str().unwrap().to_string());
        }
        tenant.seed_bulk(BulkUsers {
            count: 400,
            first_created_at: start + chrono::Duration::seconds(3),
            spacing: chrono::Duration::seconds(12),
            email_prefix: "bulk".into(),
            email_domain: "acme.test".into(),
            app_metadata: json!({"created_by": "us", "db_user_id": null}),
        });
        for i in (0..300).step_by(7) {
            tenant.users.remove(&seeded[i]);
        }
        for n in [0, 5, 399] {
            tenant.users.remove(&super::super::bulk::bulk_user_id(n));
        }
        tenant.users.set_email(
            &super::super::bulk::bulk_user_id(9),
            "moved@acme.test".into(),
        );
        tenant
    }

    fn query(q: &str, extra: &[(&str, &str)]) -> SearchQuery {
        let mut params: HashMap<String, String> = HashMap::from([("q".to_string(), q.to_string())]);
        params.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        SearchQuery::parse(&params).unwrap()
    }

    #[test]
    fn the_indexed_searches_answer_what_reading_every_user_answers() {
        let tenant = tenant();
        let ranges = [
            "created_at:[* TO *]",
            r#"created_at:["2025-01-01T00:03:00.000Z" TO "2025-01-01T00:40:00.000Z"}"#,
            r#"created_at:{"2025-01-01T00:03:00.000Z" TO "2025-01-01T00:40:03.000Z"]"#,
            r#"created_at:["2025-01-01T00:00:03.000Z" TO *]"#,
            "created_at:[2025-01-01 TO 2025-01-02]",
            r#"created_at:["2025-01-01T00:10:00.0005Z" TO *]"#,
        ];
        let mut compared = 0;
        let ranges = ranges.into_iter().chain([
            r#"created_at:["2025-01-01T00:40:00.000Z" TO "2025-01-01T00:03:00.000Z"}"#,
            r#"created_at:["2025-01-01T00:40:00.000Z" TO "2025-01-01T00:40:00.000Z"}"#,
            r#"created_at:["2025-01-01T00:40:00.000Z" TO "2025-01-01T00:40:00.000Z"]"#,
        ]);
        for range in ranges {
            for tag in [
                "",
                r#"app_metadata.created_by:"us" AND "#,
                r#"app_metadata.created_by:"them" AND "#,
                r#"app_metadata.db_user_id:3* AND "#,
            ] {
                let q = format!("{tag}{range}");
                for sort in ["created_at:1", "created_at:-1"] {
                    for page in ["0", "1", "3", "9"] {
                        let query =
                            query(&q, &[("sort", sort), ("page", page), ("per_page", "100")]);
                        let indexed = tenant.by_created_at(&query).expect("indexed");
                        let scanned = tenant.every_user(&query);
                        assert_eq!(indexed.total, scanned.total, "{q} {sort} {page}");
                        assert_eq!(ids(&indexed), ids(&scanned), "{q} {sort} {page}");
                        compared += indexed.page.len();
                    }
                }
            }
        }
        assert!(compared > 5_000, "{compared}");
        // A sort on another field, or a range that is not a date: read every user.
        assert!(
            tenant
                .by_created_at(&query("created_at:[* TO *]", &[("sort", "email:1")]))
                .is_none()
        );
        assert!(
            tenant
                .by_created_at(&query("created_at:[a TO b]", &[]))
                .is_none()
        );

        for q in [
            r#"email:"bulk7@acme.test""#,
            r#"(email:"BULK7@acme.test" OR email:"user1@acme.test" OR email:"moved@acme.test" OR email:"bulk9@acme.test" OR email:"bulk0@acme.test")"#,
            r#"(email:"user3@acme.test" OR email:"user3@acme.test") AND app_metadata.created_by:"us""#,
        ] {
            let query = query(q, &[]);
            let indexed = tenant.by_email(&query).expect("indexed");
            let scanned = tenant.every_user(&query);
            assert_eq!(indexed.total, scanned.total, "{q}");
            assert_eq!(ids(&indexed), ids(&scanned), "{q}");
            assert!(indexed.total > 0, "{q}");
        }
        assert!(tenant.by_email(&query("email:bulk7*", &[])).is_none());
    }
}
