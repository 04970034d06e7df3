//! The v3 search operations: eventually consistent, at most 1,000 results a query.

use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::StatusCode;
use serde::Deserialize;

use super::client::{Budget, endpoint, expect_json};
use super::{Auth0Client, Auth0Error, Auth0User, Op, SEARCH_PAGE_SIZE};
use crate::deadline::Deadline;

impl Auth0Client {
    // --- used by the cleanup reconciler ---

    /// One page (at most [`SEARCH_PAGE_SIZE`]) of users carrying `app_metadata.created_by == created_by`,
    /// created in `[from, before)`, oldest first, via v3 search. Search is eventually
    /// consistent and never pages past 1,000 results: callers narrow `from` instead of paging.
    /// `from: None` is open.
    #[tracing::instrument(skip_all, fields(op = "search_users", page = page))]
    pub async fn search_users_created_between(
        &self,
        created_by: &str,
        from: Option<DateTime<Utc>>,
        before: DateTime<Utc>,
        page: u32,
        deadline: &Deadline,
    ) -> Result<Vec<Auth0User>, Auth0Error> {
        // Auth0 writes its timestamps with milliseconds and `Z`; the range uses the same form.
        let stamp = |at: DateTime<Utc>| quoted(&at.to_rfc3339_opts(SecondsFormat::Millis, true));
        let query = format!(
            "app_metadata.created_by:{} AND created_at:[{} TO {}}}",
            quoted(created_by),
            from.map_or_else(|| "*".to_string(), stamp),
            stamp(before),
        );
        self.search(&query, page, Some("created_at:1"), deadline)
            .await
    }

    /// One page (at most [`SEARCH_PAGE_SIZE`]) of the users with any of `emails`, through v3
    /// search: one call for many addresses where `users-by-email` takes one each. Search is
    /// eventually consistent, so callers ask only about users old enough to be indexed and
    /// re-read a user before they change it.
    #[tracing::instrument(skip_all, fields(op = "search_users", emails = emails.len(), page = page))]
    pub async fn search_users_with_emails(
        &self,
        emails: &[&str],
        page: u32,
        deadline: &Deadline,
    ) -> Result<Vec<Auth0User>, Auth0Error> {
        let any_of: Vec<String> = emails
            .iter()
            .map(|email| format!("email:{}", quoted(email)))
            .collect();
        let query = format!("({})", any_of.join(" OR "));
        self.search(&query, page, None, deadline).await
    }

    /// One page of a v3 search (`q` in Lucene syntax), at most [`SEARCH_PAGE_SIZE`] users.
    async fn search(
        &self,
        query: &str,
        page: u32,
        sort: Option<&str>,
        deadline: &Deadline,
    ) -> Result<Vec<Auth0User>, Auth0Error> {
        #[derive(Deserialize)]
        struct SearchPage {
            users: Vec<Auth0User>,
        }
        let page = page.to_string();
        let per_page = SEARCH_PAGE_SIZE.to_string();
        let response = self
            .call(Op::SearchUsers, deadline, Budget::Cleanup, |http, base| {
                let request = http.get(endpoint(base, &["api", "v2", "users"])).query(&[
                    ("q", query),
                    ("search_engine", "v3"),
                    ("per_page", per_page.as_str()),
                    ("page", page.as_str()),
                    ("include_totals", "true"),
                ]);
                match sort {
                    Some(sort) => request.query(&[("sort", sort)]),
                    None => request,
                }
            })
            .await?;
        let found: SearchPage = expect_json(Op::SearchUsers, StatusCode::OK, response).await?;
        Ok(found.users)
    }
}

/// A Lucene phrase: quoted, with `\` and `"` escaped.
fn quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}
