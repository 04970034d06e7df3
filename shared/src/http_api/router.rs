//! Routing on method and path, with path parameters (`/direct-users/{id}/deactivate`). A
//! pattern is matched against the end of the request's path, so any stage or base path in front
//! (`/prod/api/…`) keeps working. Where several patterns match, the one with the most literal
//! segments wins (`/direct-users/create` over `/direct-users/{id}`); a path it matches under
//! another method is 405 with the methods it takes in `Allow`, any other path 404.

use http::Method;
use percent_encoding::percent_decode_str;

use super::{ApiError, ErrorCode};

/// One route: a method, a pattern of `/`-separated segments (`{name}` is a parameter), and
/// what the API calls it.
pub type Route<R> = (Method, &'static str, R);

/// The route a request matched, with its path parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched<R> {
    pub route: R,
    params: Vec<(&'static str, String)>,
}

impl<R> Matched<R> {
    /// The parameter `name` of the pattern, percent-decoded.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(param, _)| *param == name)
            .map(|(_, value)| value.as_str())
    }
}

/// The route of `routes` that `method` and `path` name.
pub fn route<R: Copy>(
    routes: &[Route<R>],
    method: &Method,
    path: &str,
) -> Result<Matched<R>, ApiError> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let matching = routes
        .iter()
        .filter_map(|route| Some((route, match_pattern(route.1, &segments)?)));
    let Some(best) = matching.clone().map(|(route, _)| literals(route.1)).max() else {
        return Err(ApiError::new(ErrorCode::NotFound, "No such endpoint."));
    };
    let mut best = matching.filter(|(route, _)| literals(route.1) == best);
    let mut allowed = Vec::new();
    for ((route_method, _, route), params) in best.by_ref() {
        if route_method == method {
            return Ok(Matched {
                route: *route,
                params,
            });
        }
        allowed.push(route_method.as_str());
    }
    let allow = allowed.join(", ");
    Err(ApiError {
        allow: Some(allow.clone()),
        ..ApiError::new(
            ErrorCode::MethodNotAllowed,
            format!(
                "{method} is not allowed here; use {}.",
                allowed.join(" or ")
            ),
        )
    })
}

/// The parameters of `pattern` if it matches the last segments of the path.
fn match_pattern(pattern: &'static str, path: &[&str]) -> Option<Vec<(&'static str, String)>> {
    let wanted: Vec<&'static str> = pattern.split('/').filter(|s| !s.is_empty()).collect();
    let tail = path.get(path.len().checked_sub(wanted.len())?..)?;
    let mut params = Vec::new();
    for (want, got) in wanted.iter().zip(tail) {
        match want.strip_prefix('{').and_then(|w| w.strip_suffix('}')) {
            Some(name) => {
                let value = percent_decode_str(got).decode_utf8().ok()?;
                params.push((name, value.into_owned()));
            }
            None if want == got => {}
            None => return None,
        }
    }
    Some(params)
}

fn literals(pattern: &str) -> usize {
    pattern
        .split('/')
        .filter(|s| !s.is_empty() && !s.starts_with('{'))
        .count()
}

#[cfg(test)]
mod tests {
    use http::StatusCode;

    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum R {
        Create,
        Get,
        Delete,
        Deactivate,
    }

    const ROUTES: &[Route<R>] = &[
        (Method::POST, "/direct-users/create", R::Create),
        (Method::GET, "/direct-users/{id}", R::Get),
        (Method::DELETE, "/direct-users/{id}", R::Delete),
        (Method::POST, "/direct-users/{id}/deactivate", R::Deactivate),
    ];

    #[test]
    fn a_pattern_matches_the_end_of_the_path_and_names_its_parameters() {
        let matched = route(ROUTES, &Method::POST, "/prod/api/direct-users/create/").unwrap();
        assert_eq!(matched.route, R::Create);
        let matched = route(ROUTES, &Method::GET, "/api/direct-users/a%7Cb").unwrap();
        assert_eq!((matched.route, matched.param("id")), (R::Get, Some("a|b")));
        let matched = route(ROUTES, &Method::DELETE, "/direct-users/42").unwrap();
        assert_eq!(matched.route, R::Delete);
        let matched = route(ROUTES, &Method::POST, "/direct-users/42/deactivate").unwrap();
        assert_eq!(
            (matched.route, matched.param("id")),
            (R::Deactivate, Some("42"))
        );
    }

    #[test]
    fn the_most_literal_pattern_decides_between_405_and_a_parameter() {
        // `create` is the literal route's, not an id: GET on it is 405, with POST allowed.
        let refused = route(ROUTES, &Method::GET, "/direct-users/create").unwrap_err();
        assert_eq!(refused.status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(refused.allow.as_deref(), Some("POST"));
        let refused = route(ROUTES, &Method::PUT, "/direct-users/42").unwrap_err();
        assert_eq!(refused.allow.as_deref(), Some("GET, DELETE"));
        for path in [
            "/direct-users",
            "/direct-users/42/promote",
            "/",
            "/users/42",
        ] {
            let refused = route(ROUTES, &Method::GET, path).unwrap_err();
            assert_eq!(refused.status, StatusCode::NOT_FOUND, "{path}");
        }
    }
}
