//! A local API Gateway (HTTP API) for the template's routes, like `sam local start-api` without
//! Docker: every route of every `AWS::Serverless::HttpApi` on one loopback port. For each
//! request it does what API Gateway does, in its order:
//!
//! 1. a CORS preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) on a path
//!    of an API with a `CorsConfiguration` is answered `204` by the gateway itself, without the
//!    authorizer: the configured headers when the origin is allowed, none when it is not (the
//!    browser then refuses the call);
//! 2. the route: the most specific one of the method (or `ANY`) and path, literal segments
//!    before `{parameters}`; none is `404 {"message":"Not Found"}`;
//! 3. the route's JWT authorizer, if it has one ([`super::authorizer`]): no token or a bad one
//!    is `401 {"message":"Unauthorized"}` (with `www-authenticate` saying why), a token
//!    without the route's scopes `403 {"message":"Forbidden"}`;
//! 4. a payload 2.0 event (route key, raw path and query, path and query parameters, headers
//!    with `cookies` apart, a body in base64 unless its type is text or JSON, the request
//!    context with the verified claims) sent to the route's function within the route's
//!    `TimeoutInMillis`: a function error is `500 {"message":"Internal Server Error"}`, no
//!    answer in time `503 {"message":"Service Unavailable"}`;
//! 5. the function's answer in the 2.0 response format (or any JSON without `statusCode` as a
//!    `200`), the integration's own CORS headers replaced by the API's.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, CONTENT_TYPE, COOKIE, HOST,
    ORIGIN, SET_COOKIE, USER_AGENT, VARY, WWW_AUTHENTICATE,
};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::Utc;
use serde_json::{Map, Value, json};

use super::authorizer::{Denied, Verifier, www_authenticate};
use super::functions::{Functions, InvokeError};
use super::template::{Cors, HttpApi, Route, Template};
use crate::doubles::server::RunningServer;

/// API Gateway's largest request body (HTTP APIs: 10 MB).
const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;
const ACCOUNT_ID: &str = "123456789012";

/// A running gateway; stops when dropped.
pub struct Gateway {
    server: RunningServer,
}

struct Shared {
    template: Template,
    functions: Arc<dyn Functions>,
    verifier: Verifier,
    port: u16,
}

impl Gateway {
    /// Serves `template`'s routes on `addr`, sending events to `functions`.
    pub async fn start(
        template: Template,
        functions: Arc<dyn Functions>,
        addr: SocketAddr,
    ) -> std::io::Result<Gateway> {
        let listening = RunningServer::listen(addr).await?;
        let port = listening
            .base_url()
            .rsplit(':')
            .next()
            .and_then(|port| port.parse().ok())
            .unwrap_or(addr.port());
        let shared = Arc::new(Shared {
            template,
            functions,
            verifier: Verifier::default(),
            port,
        });
        let router = Router::new().fallback(handle).with_state(shared);
        Ok(Gateway {
            server: listening.serve(router),
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> &str {
        self.server.base_url()
    }
}

/// One line per route, for the stack's start-up message.
pub fn describe_routes(template: &Template) -> Vec<String> {
    let mut lines: Vec<String> = template
        .routes
        .iter()
        .map(|route| {
            let auth = route
                .authorizer
                .as_deref()
                .map_or_else(|| "public".to_string(), |name| format!("JWT {name}"));
            format!(
                "{:<45} → {} ({}, {})",
                route.key(),
                route.function,
                route.api,
                auth
            )
        })
        .collect();
    lines.sort();
    lines
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let method = parts.method.clone();
    let path = parts.uri.path().to_string();
    let body = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(body) => body,
        Err(_) => return message(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large"),
    };
    let (response, note) = answer(&shared, &parts, &path, body).await;
    let mut response = response;
    let request_id = request_id();
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("apigw-requestid", value);
    }
    // The path only: a query string may hold an address.
    println!(
        "{method} {path} → {}{note} ({} ms)",
        response.status().as_u16(),
        started.elapsed().as_millis()
    );
    response
}

async fn answer(
    shared: &Shared,
    parts: &axum::http::request::Parts,
    path: &str,
    body: Bytes,
) -> (Response, String) {
    let template = &shared.template;
    let headers = &parts.headers;

    // 1. The preflight, answered by the API whose routes have this path.
    let is_preflight = parts.method == Method::OPTIONS
        && headers.contains_key(ORIGIN)
        && headers.contains_key(ACCESS_CONTROL_REQUEST_METHOD);
    if is_preflight
        && let Some(cors) = api_of_path(template, path).and_then(|api| api.cors.as_ref())
    {
        return (preflight(cors, headers), " preflight".into());
    }

    // 2. The route.
    let Some((route, parameters)) = match_route(&template.routes, parts.method.as_str(), path)
    else {
        let mut response = message(StatusCode::NOT_FOUND, "Not Found");
        if let Some(cors) = api_of_path(template, path).and_then(|api| api.cors.as_ref()) {
            add_cors(cors, headers, &mut response);
        }
        return (response, " no route".into());
    };
    let api = template
        .api(&route.api)
        .expect("the template checked every route's API");
    let cors = api.cors.as_ref();
    let with_cors = |mut response: Response| {
        if let Some(cors) = cors {
            add_cors(cors, headers, &mut response);
        }
        response
    };

    // 3. The authorizer.
    let now = Utc::now().timestamp();
    let claims = match &route.authorizer {
        None => None,
        Some(name) => {
            let authorizer = &api.authorizers[name];
            let token = headers
                .get(authorizer.header.as_str())
                .and_then(|v| v.to_str().ok());
            match shared
                .verifier
                .verify(authorizer, token, &route.scopes, now)
                .await
            {
                Ok(claims) => Some(claims),
                Err(denied) => {
                    let (status, text) = match denied {
                        Denied::Scope(_) => (StatusCode::FORBIDDEN, "Forbidden"),
                        _ => (StatusCode::UNAUTHORIZED, "Unauthorized"),
                    };
                    let mut response = message(status, text);
                    if let Some(value) =
                        www_authenticate(&denied).and_then(|v| HeaderValue::from_str(&v).ok())
                    {
                        response.headers_mut().insert(WWW_AUTHENTICATE, value);
                    }
                    let note = match &denied {
                        Denied::NoToken => " (no token)".to_string(),
                        Denied::Invalid(why) => format!(" ({why})"),
                        Denied::Scope(_) => " (scopes)".to_string(),
                    };
                    return (with_cors(response), note);
                }
            }
        }
    };

    // 4. The event, to the function.
    let event = event(shared, parts, path, route, api, &parameters, claims, &body);
    let invoked = shared
        .functions
        .invoke(&route.function, event, route.timeout)
        .await;
    let note = format!(" {}", route.function);
    match invoked {
        Ok(result) => match lambda_response(result) {
            Ok(response) => (with_cors(response), note),
            Err(why) => {
                eprintln!(
                    "gateway: {} answered a malformed response: {why}",
                    route.function
                );
                let response = message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
                (with_cors(response), format!("{note} (malformed response)"))
            }
        },
        Err(InvokeError::TimedOut) => {
            let response = message(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable");
            (
                with_cors(response),
                format!("{note} (no answer within {:?})", route.timeout),
            )
        }
        Err(InvokeError::Function(why) | InvokeError::Unreachable(why)) => {
            eprintln!("gateway: {} failed: {why}", route.function);
            let response = message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
            (with_cors(response), format!("{note} (failed)"))
        }
    }
}

/// `{"message": text}`, as API Gateway's own answers are.
fn message(status: StatusCode, text: &str) -> Response {
    let mut response = (status, json!({ "message": text }).to_string()).into_response();
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// The API one of whose routes has `path` (any method).
fn api_of_path<'t>(template: &'t Template, path: &str) -> Option<&'t HttpApi> {
    let route = template
        .routes
        .iter()
        .find(|route| path_parameters(&route.path, path).is_some())?;
    template.api(&route.api)
}

/// The most specific route for `method` and `path`, and its path parameters.
fn match_route<'t>(
    routes: &'t [Route],
    method: &str,
    path: &str,
) -> Option<(&'t Route, BTreeMap<String, String>)> {
    routes
        .iter()
        .filter(|route| route.method == method || route.method == "ANY")
        .filter_map(|route| path_parameters(&route.path, path).map(|params| (route, params)))
        .max_by_key(|(route, _)| (specificity(&route.path), route.method != "ANY"))
}

/// Per segment: a literal (2) before a parameter (1) before a greedy `{name+}` (0).
fn specificity(template: &str) -> Vec<u8> {
    segments(template)
        .map(|segment| match segment {
            s if s.ends_with("+}") => 0,
            s if s.starts_with('{') => 1,
            _ => 2,
        })
        .collect()
}

fn segments(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|segment| !segment.is_empty())
}

/// `path`'s parameters if it matches `template`, percent-decoded.
fn path_parameters(template: &str, path: &str) -> Option<BTreeMap<String, String>> {
    let wanted: Vec<&str> = segments(template).collect();
    let got: Vec<&str> = segments(path).collect();
    let mut parameters = BTreeMap::new();
    for (i, want) in wanted.iter().enumerate() {
        if let Some(name) = want
            .strip_prefix('{')
            .and_then(|rest| rest.strip_suffix("+}"))
        {
            if got.len() <= i {
                return None;
            }
            parameters.insert(name.to_string(), decode(&got[i..].join("/")));
            return Some(parameters);
        }
        let segment = got.get(i)?;
        match want
            .strip_prefix('{')
            .and_then(|rest| rest.strip_suffix('}'))
        {
            Some(name) => {
                parameters.insert(name.to_string(), decode(segment));
            }
            None if want == segment => {}
            None => return None,
        }
    }
    (got.len() == wanted.len()).then_some(parameters)
}

fn decode(segment: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", segment.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default()
}

/// Whether API Gateway passes a body of this type as text (else it is base64).
fn is_text(headers: &HeaderMap) -> bool {
    let Some(content_type) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let media = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    media.starts_with("text/")
        || matches!(
            media.as_str(),
            "application/json" | "application/xml" | "application/javascript"
        )
}

#[allow(clippy::too_many_arguments)]
fn event(
    shared: &Shared,
    parts: &axum::http::request::Parts,
    path: &str,
    route: &Route,
    api: &HttpApi,
    parameters: &BTreeMap<String, String>,
    claims: Option<Map<String, Value>>,
    body: &Bytes,
) -> Value {
    // Header values joined with commas; the cookies apart.
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    let mut cookies: Vec<String> = Vec::new();
    for (name, value) in &parts.headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        if name == COOKIE {
            cookies.extend(
                value
                    .split(';')
                    .map(|c| c.trim().to_string())
                    .filter(|c| !c.is_empty()),
            );
            continue;
        }
        headers
            .entry(name.as_str().to_string())
            .and_modify(|joined| {
                joined.push(',');
                joined.push_str(&value);
            })
            .or_insert(value);
    }
    let source_ip = "127.0.0.1";
    headers.insert("x-forwarded-for".into(), source_ip.into());
    headers.insert("x-forwarded-port".into(), shared.port.to_string());
    headers.insert("x-forwarded-proto".into(), "http".into());
    let trace = format!(
        "Root=1-{:08x}-{}",
        Utc::now().timestamp(),
        hex::encode(rand::random::<[u8; 12]>())
    );
    headers.insert("x-amzn-trace-id".into(), trace);

    let raw_query = parts.uri.query().unwrap_or("").to_string();
    let mut query: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in url::form_urlencoded::parse(raw_query.as_bytes()) {
        query
            .entry(name.into_owned())
            .and_modify(|joined| {
                joined.push(',');
                joined.push_str(&value);
            })
            .or_insert_with(|| value.into_owned());
    }

    let host = parts
        .headers
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1");
    let domain = host.rsplit_once(':').map_or(host, |(name, _)| name);
    let now = Utc::now();
    let mut context = json!({
        "accountId": ACCOUNT_ID,
        "apiId": api.id.to_ascii_lowercase(),
        "domainName": domain,
        "domainPrefix": domain.split('.').next().unwrap_or(domain),
        "http": {
            "method": parts.method.as_str(),
            "path": path,
            "protocol": format!("{:?}", parts.version),
            "sourceIp": source_ip,
            "userAgent": parts.headers.get(USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or(""),
        },
        "requestId": request_id(),
        "routeKey": route.key(),
        "stage": "$default",
        "time": now.format("%d/%b/%Y:%H:%M:%S +0000").to_string(),
        "timeEpoch": now.timestamp_millis(),
    });
    if let Some(claims) = claims {
        context["authorizer"] = json!({ "jwt": { "claims": claims, "scopes": null } });
    }

    let mut event = json!({
        "version": "2.0",
        "routeKey": route.key(),
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": context,
        "isBase64Encoded": false,
    });
    if !cookies.is_empty() {
        event["cookies"] = json!(cookies);
    }
    if !query.is_empty() {
        event["queryStringParameters"] = json!(query);
    }
    if !parameters.is_empty() {
        event["pathParameters"] = json!(parameters);
    }
    if !body.is_empty() {
        match std::str::from_utf8(body) {
            Ok(text) if is_text(&parts.headers) => event["body"] = json!(text),
            _ => {
                event["body"] = json!(STANDARD.encode(body));
                event["isBase64Encoded"] = json!(true);
            }
        }
    }
    event
}

/// An id shaped like API Gateway's (16 characters of base64).
fn request_id() -> String {
    STANDARD.encode(rand::random::<[u8; 11]>())
}

/// The function's answer in the payload 2.0 response format.
fn lambda_response(result: Value) -> Result<Response, String> {
    let Some(status) = result.get("statusCode") else {
        // Valid JSON without a statusCode: a 200 with the JSON as its body.
        let mut response = (StatusCode::OK, result.to_string()).into_response();
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        return Ok(response);
    };
    let status = status
        .as_u64()
        .or_else(|| status.as_str().and_then(|s| s.parse().ok()))
        .and_then(|code| u16::try_from(code).ok())
        .and_then(|code| StatusCode::from_u16(code).ok())
        .ok_or_else(|| format!("statusCode {status}"))?;
    let body = match result.get("body") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(text)) if result["isBase64Encoded"] == json!(true) => STANDARD
            .decode(text)
            .map_err(|_| "a body marked base64 that is not".to_string())?,
        Some(Value::String(text)) => text.clone().into_bytes(),
        Some(other) => other.to_string().into_bytes(),
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if let Some(given) = result.get("headers").and_then(Value::as_object) {
        for (name, value) in given {
            let value = match value {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            let name =
                HeaderName::from_bytes(name.as_bytes()).map_err(|_| format!("header {name}"))?;
            let value = HeaderValue::from_str(&value).map_err(|_| format!("header {name}"))?;
            headers.insert(name, value);
        }
    }
    for cookie in result
        .get("cookies")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if let Ok(value) = HeaderValue::from_str(cookie) {
            headers.append(SET_COOKIE, value);
        }
    }
    Ok(response)
}

fn origin_allowed<'h>(cors: &Cors, headers: &'h HeaderMap) -> Option<&'h str> {
    let origin = headers.get(ORIGIN)?.to_str().ok()?;
    cors.allow_origins
        .iter()
        .any(|allowed| allowed == "*" || allowed.eq_ignore_ascii_case(origin))
        .then_some(origin)
}

/// `Access-Control-Allow-Origin`: the origin itself, or `*` when every origin is allowed and
/// no credentials are.
fn allow_origin_value(cors: &Cors, origin: &str) -> HeaderValue {
    if cors.allow_origins.iter().any(|o| o == "*") && !cors.allow_credentials {
        HeaderValue::from_static("*")
    } else {
        HeaderValue::from_str(origin).unwrap_or(HeaderValue::from_static("null"))
    }
}

fn preflight(cors: &Cors, headers: &HeaderMap) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    let Some(origin) = origin_allowed(cors, headers) else {
        return response;
    };
    let echo = |name: HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let list = |items: &[String], requested: String| {
        if items.iter().any(|item| item == "*") {
            requested
        } else {
            items.join(",")
        }
    };
    let out = response.headers_mut();
    out.insert(
        ACCESS_CONTROL_ALLOW_ORIGIN,
        allow_origin_value(cors, origin),
    );
    let methods = list(&cors.allow_methods, echo(ACCESS_CONTROL_REQUEST_METHOD));
    let allowed_headers = list(&cors.allow_headers, echo(ACCESS_CONTROL_REQUEST_HEADERS));
    for (name, value) in [
        (ACCESS_CONTROL_ALLOW_METHODS, methods),
        (ACCESS_CONTROL_ALLOW_HEADERS, allowed_headers),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value)
            && !value.is_empty()
        {
            out.insert(name, value);
        }
    }
    if let Some(max_age) = cors.max_age {
        out.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from(max_age));
    }
    if cors.allow_credentials {
        out.insert(
            ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
    out.insert(VARY, HeaderValue::from_static("Origin"));
    response
}

/// The API's CORS headers on an answer, in place of any the integration set.
fn add_cors(cors: &Cors, request: &HeaderMap, response: &mut Response) {
    let out = response.headers_mut();
    let theirs: Vec<HeaderName> = out
        .keys()
        .filter(|name| name.as_str().starts_with("access-control-"))
        .cloned()
        .collect();
    for name in theirs {
        out.remove(name);
    }
    let Some(origin) = origin_allowed(cors, request) else {
        return;
    };
    out.insert(
        ACCESS_CONTROL_ALLOW_ORIGIN,
        allow_origin_value(cors, origin),
    );
    if !cors.expose_headers.is_empty()
        && let Ok(value) = HeaderValue::from_str(&cors.expose_headers.join(","))
    {
        out.insert(ACCESS_CONTROL_EXPOSE_HEADERS, value);
    }
    if cors.allow_credentials {
        out.insert(
            ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
    out.append(VARY, HeaderValue::from_static("Origin"));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn route(method: &str, path: &str) -> Route {
        Route {
            api: "Api".into(),
            method: method.into(),
            path: path.into(),
            function: "f".into(),
            payload_version: "2.0".into(),
            timeout: Duration::from_secs(1),
            authorizer: None,
            scopes: Vec::new(),
        }
    }

    #[test]
    fn the_most_specific_route_wins_and_parameters_are_decoded() {
        let routes = [
            route("GET", "/api/direct-users/{id}"),
            route("POST", "/api/direct-users/check-exists"),
            route("POST", "/api/direct-users/{id}/deactivate"),
            route("ANY", "/api/{proxy+}"),
            route("GET", "/api/direct-users"),
        ];
        let matched = |method: &str, path: &str| {
            match_route(&routes, method, path).map(|(route, params)| (route.key(), params))
        };
        let params = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert_eq!(
            matched("GET", "/api/direct-users/a%20b"),
            Some((
                "GET /api/direct-users/{id}".into(),
                params(&[("id", "a b")])
            ))
        );
        assert_eq!(
            matched("POST", "/api/direct-users/check-exists"),
            Some(("POST /api/direct-users/check-exists".into(), params(&[])))
        );
        assert_eq!(
            matched("POST", "/api/direct-users/x/deactivate"),
            Some((
                "POST /api/direct-users/{id}/deactivate".into(),
                params(&[("id", "x")])
            ))
        );
        // No POST route for the path: the greedy ANY route takes it.
        assert_eq!(
            matched("POST", "/api/direct-users/x"),
            Some((
                "ANY /api/{proxy+}".into(),
                params(&[("proxy", "direct-users/x")])
            ))
        );
        assert_eq!(matched("GET", "/other"), None);
        assert_eq!(
            matched("GET", "/api/direct-users"),
            Some(("GET /api/direct-users".into(), params(&[])))
        );
    }

    #[test]
    fn a_body_is_text_only_for_text_json_xml_and_javascript() {
        let with = |content_type: Option<&str>| {
            let mut headers = HeaderMap::new();
            if let Some(value) = content_type {
                headers.insert(CONTENT_TYPE, HeaderValue::from_str(value).unwrap());
            }
            is_text(&headers)
        };
        assert!(with(Some("application/json; charset=utf-8")));
        assert!(with(Some("text/plain")));
        assert!(!with(Some("application/x-www-form-urlencoded")));
        assert!(!with(Some("application/octet-stream")));
        assert!(!with(None));
    }

    #[test]
    fn a_response_without_status_code_is_a_200_with_the_json() {
        let response = lambda_response(json!({"ok": true})).unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let response = lambda_response(json!({
            "statusCode": 201,
            "headers": {"idempotent-replayed": "true", "access-control-allow-origin": "*"},
            "cookies": ["a=1"],
            "body": "e30=",
            "isBase64Encoded": true,
        }))
        .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        assert_eq!(response.headers()["idempotent-replayed"], "true");
        assert_eq!(response.headers()[SET_COOKIE], "a=1");
        assert!(lambda_response(json!({"statusCode": "nope"})).is_err());
    }
}
