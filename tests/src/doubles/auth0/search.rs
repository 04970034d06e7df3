//! `GET /api/v2/users`: user search with the v3 engine, sorted and paged as Auth0 does.

use std::collections::HashMap;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::errors::{bad_request, invalid_query};
use super::lucene;
use super::state::{App, Tenant};
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

impl Tenant {
    fn search(&self, params: &HashMap<String, String>) -> Answer {
        let query = SearchQuery::parse(params)?;
        let mut found: Vec<&Value> = (self.users.iter())
            .map(|user| &user.profile)
            .filter(|profile| lucene::matches_all(&query.clauses, profile))
            .collect();
        let sort_key = |profile: &Value| {
            lucene::field_values(profile, &query.sort_field)
                .into_iter()
                .next()
        };
        found.sort_by_cached_key(|profile| sort_key(profile));
        if query.descending {
            found.reverse();
        }
        let total = found.len();
        let page: Vec<&Value> = found
            .into_iter()
            .skip(usize::try_from(query.page * query.per_page).unwrap_or(usize::MAX))
            .take(usize::try_from(query.per_page).unwrap_or(usize::MAX))
            .collect();
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
