//! The HTTP edge every API function shares: reading and answering API Gateway proxy events,
//! the error catalogue ([`catalogue`]), routing on method and path ([`router`]), the one
//! mapping from a dependency's failure to 502/503 ([`dependency`]), and the admin panel's
//! error body. An API with an error body of its own passes it to [`serve`].

mod catalogue;
pub mod dependency;
pub mod router;

pub use catalogue::ErrorCode;
pub use router::{Matched, Route, route};

use aws_lambda_events::apigw::{
    ApiGatewayProxyRequest, ApiGatewayProxyResponse, ApiGatewayV2httpRequest,
    ApiGatewayV2httpResponse,
};
use aws_lambda_events::encodings::Body;
use base64::Engine;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use lambda_runtime::LambdaEvent;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use tracing::Instrument;

use crate::deadline::Deadline;
use crate::domain::FieldError;
pub use crate::telemetry::error_chain;

/// Headers an answer carries besides Content-Type and Cache-Control.
pub type Headers = Vec<(http::header::HeaderName, HeaderValue)>;

/// An error as the admin panel sees it: `{error, message, code, requestId, field?, userFriendly?}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub message: String,
    pub field: Option<String>,
    pub user_friendly: Option<&'static str>,
    /// Seconds after which a retry makes sense (`Retry-After`).
    pub retry_after: Option<u32>,
    /// The methods a 405's path takes (`Allow`).
    pub allow: Option<String>,
    /// SCIM's finer kind of a 400 or 409 (`scimType`: `invalidFilter`, `uniqueness`, …), for
    /// the API that answers in SCIM's error shape.
    pub scim_type: Option<&'static str>,
    /// A 401 that asks for a bearer token (`WWW-Authenticate: Bearer`, RFC 6750).
    pub bearer_challenge: bool,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status: code.status(),
            code,
            message: message.into(),
            field: None,
            user_friendly: None,
            retry_after: None,
            allow: None,
            scim_type: None,
            bearer_challenge: false,
        }
    }

    pub fn scim_type(mut self, scim_type: &'static str) -> Self {
        self.scim_type = Some(scim_type);
        self
    }

    /// The headers the answer carries besides the JSON ones.
    pub fn headers(&self) -> Headers {
        let mut headers = Headers::new();
        if let Some(allow) = self
            .allow
            .as_deref()
            .and_then(|a| HeaderValue::from_str(a).ok())
        {
            headers.push((http::header::ALLOW, allow));
        }
        if let Some(seconds) = self.retry_after {
            headers.push((http::header::RETRY_AFTER, HeaderValue::from(seconds)));
        }
        if self.bearer_challenge {
            headers.push((
                http::header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer"),
            ));
        }
        headers
    }

    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn friendly(mut self, text: &'static str) -> Self {
        self.user_friendly = Some(text);
        self
    }
}

impl From<FieldError> for ApiError {
    fn from(err: FieldError) -> Self {
        ApiError::new(
            ErrorCode::ValidationError,
            format!("{}: {}", err.field, err.message),
        )
        .field(err.field)
    }
}

/// An API Gateway proxy event of either kind: an HTTP API's (payload 2.0, what the template
/// deploys) or a REST API's (payload 1.0). Both are answered in their own response shape, so
/// the functions also work behind a REST API (or when invoked with one's event) instead of
/// failing to read the event.
///
/// Why not `lambda_http`: it would take this over, but 1.3 decodes a base64 body with an
/// `expect`, so a malformed body would crash the invocation instead of getting a 400.
#[derive(Debug, Clone)]
pub enum ApiRequest {
    Http(Box<ApiGatewayV2httpRequest>),
    Rest(Box<ApiGatewayProxyRequest>),
}

/// What the runtime hands an API function: the event's JSON text. [`ApiRequest::parse`] reads
/// it once, straight into the request's own type, with no `serde_json::Value` tree between.
pub type ApiEvent = LambdaEvent<Box<RawValue>>;

/// The event is no API Gateway proxy event at all: the invocation fails (there is no HTTP
/// caller to answer).
#[derive(Debug, thiserror::Error)]
#[error("not an API Gateway proxy event (payload 2.0 or 1.0): {0}")]
pub struct NotAnApiEvent(String);

impl From<NotAnApiEvent> for lambda_runtime::Diagnostic {
    fn from(err: NotAnApiEvent) -> Self {
        lambda_runtime::Diagnostic {
            error_type: "NotAnApiEvent".into(),
            error_message: err.to_string(),
        }
    }
}

impl ApiRequest {
    pub fn parse(event: &RawValue) -> Result<Self, NotAnApiEvent> {
        let json = event.get();
        let shape = |e: serde_json::Error| NotAnApiEvent(crate::telemetry::json_error_reason(&e));
        match PayloadVersion::of(json) {
            Some(PayloadVersion::Http) => serde_json::from_str(json)
                .map(|r| Self::Http(Box::new(r)))
                .map_err(shape),
            Some(PayloadVersion::Rest) => serde_json::from_str(json)
                .map(|r| Self::Rest(Box::new(r)))
                .map_err(shape),
            None => Err(NotAnApiEvent(
                "it has neither `version: \"2.0\"` nor `httpMethod`".into(),
            )),
        }
    }

    pub fn method(&self) -> &Method {
        match self {
            Self::Http(r) => &r.request_context.http.method,
            Self::Rest(r) => &r.http_method,
        }
    }

    pub fn path(&self) -> &str {
        match self {
            Self::Http(r) => r
                .raw_path
                .as_deref()
                .or(r.request_context.http.path.as_deref()),
            Self::Rest(r) => r.path.as_deref(),
        }
        .unwrap_or("/")
    }

    /// The query string's value for `name` (API Gateway joins a repeated key's values with
    /// commas in payload 2.0).
    pub fn query(&self, name: &str) -> Option<&str> {
        match self {
            Self::Http(r) => r.query_string_parameters.first(name),
            Self::Rest(r) => r.query_string_parameters.first(name),
        }
    }

    /// All of the query string's values for `name`, joined by commas: a value that itself
    /// holds commas (a SCIM filter, an attribute list) arrives whole, since API Gateway's
    /// payload 2.0 gives repeated keys as one comma-joined value and the event's map splits it.
    pub fn query_joined(&self, name: &str) -> Option<String> {
        match self {
            Self::Http(r) => r.query_string_parameters.all(name),
            Self::Rest(r) => r
                .multi_value_query_string_parameters
                .all(name)
                .or_else(|| r.query_string_parameters.all(name)),
        }
        .map(|values| values.join(","))
    }

    /// Whether the request carries a body at all.
    pub fn has_body(&self) -> bool {
        !self.raw_body().0.trim().is_empty()
    }

    pub fn headers(&self) -> &HeaderMap {
        match self {
            Self::Http(r) => &r.headers,
            Self::Rest(r) => &r.headers,
        }
    }

    /// The raw body and whether API Gateway base64-encoded it.
    fn raw_body(&self) -> (&str, bool) {
        match self {
            Self::Http(r) => (r.body.as_deref().unwrap_or(""), r.is_base64_encoded),
            Self::Rest(r) => (r.body.as_deref().unwrap_or(""), r.is_base64_encoded),
        }
    }

    /// The `sub` claim the authorizer verified: an HTTP API's JWT authorizer, or a REST API's
    /// JWT or Cognito authorizer (its claims under `authorizer.claims`).
    pub fn jwt_sub(&self) -> Option<&str> {
        match self {
            Self::Http(r) => r
                .request_context
                .authorizer
                .as_ref()
                .and_then(|a| a.jwt.as_ref())
                .and_then(|jwt| jwt.claims.get("sub"))
                .map(String::as_str),
            Self::Rest(r) => {
                let authorizer = &r.request_context.authorizer;
                authorizer
                    .jwt
                    .as_ref()
                    .and_then(|jwt| jwt.claims.get("sub"))
                    .map(String::as_str)
                    .or_else(|| {
                        authorizer
                            .fields
                            .get("claims")
                            .and_then(|claims| claims.get("sub"))
                            .and_then(Value::as_str)
                    })
            }
        }
    }

    /// A JSON answer in the shape this event's API expects.
    pub fn respond(
        &self,
        status: StatusCode,
        body: &JsonBody,
        media_type: &'static str,
        extra: Headers,
    ) -> ApiResponse {
        let mut headers = HeaderMap::new();
        if *body != JsonBody::Empty {
            headers.insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static(media_type),
            );
        }
        headers.insert(
            http::header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        );
        for (name, value) in extra {
            headers.insert(name, value);
        }
        let status_code = i64::from(status.as_u16());
        let body = match body {
            JsonBody::Value(value) => Some(Body::Text(value.to_string())),
            JsonBody::Text(text) => Some(Body::Text(text.clone())),
            JsonBody::Empty => None,
        };
        match self {
            Self::Http(_) => {
                let mut response = ApiGatewayV2httpResponse::default();
                response.status_code = status_code;
                response.headers = headers;
                response.body = body;
                ApiResponse::Http(response)
            }
            Self::Rest(_) => {
                let mut response = ApiGatewayProxyResponse::default();
                response.status_code = status_code;
                response.headers = headers;
                response.body = body;
                ApiResponse::Rest(response)
            }
        }
    }
}

/// Which proxy payload an event is, told by its top-level fields alone: `version: "2.0"` for
/// an HTTP API's, an `httpMethod` (whatever its value) for a REST API's.
enum PayloadVersion {
    Http,
    Rest,
}

impl PayloadVersion {
    /// `None` for anything else, a JSON object without either field or no object at all.
    fn of(json: &str) -> Option<Self> {
        /// The two fields; the rest of the event is skipped unread.
        #[derive(Deserialize)]
        struct Marks {
            #[serde(default)]
            version: Option<Value>,
            #[serde(rename = "httpMethod", default, deserialize_with = "present")]
            has_http_method: bool,
        }
        fn present<'de, D: serde::Deserializer<'de>>(field: D) -> Result<bool, D::Error> {
            serde::de::IgnoredAny::deserialize(field).map(|_| true)
        }
        // Only an object (a derived struct would also take an array, field by position).
        if !json.trim_start().starts_with('{') {
            return None;
        }
        let marks: Marks = serde_json::from_str(json).ok()?;
        if marks.version.as_ref().and_then(Value::as_str) == Some("2.0") {
            Some(Self::Http)
        } else if marks.has_http_method {
            Some(Self::Rest)
        } else {
            None
        }
    }
}

/// The answer to an [`ApiRequest`], in its API's shape.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(untagged)]
pub enum ApiResponse {
    Http(ApiGatewayV2httpResponse),
    Rest(ApiGatewayProxyResponse),
}

/// What a dispatch answers: status, JSON body, and headers beyond the JSON ones.
pub type Answer = (StatusCode, JsonBody, Headers);

/// An answer's JSON: a value, or text already written (a large page, serialized straight from
/// its types rather than through a `Value` tree).
#[derive(Debug, Clone, PartialEq)]
pub enum JsonBody {
    Value(Value),
    Text(String),
    /// No body at all (a 204).
    Empty,
}

impl From<Value> for JsonBody {
    fn from(value: Value) -> Self {
        Self::Value(value)
    }
}

/// How an API writes an error: `(error, request id) → body`. [`error_body`] is the admin
/// panel's shape.
pub type ErrorBody = fn(&ApiError, &str) -> Value;

/// What sets one API's answers apart from another's: its error body and its media type.
#[derive(Debug, Clone, Copy)]
pub struct ApiShape {
    pub error_body: ErrorBody,
    /// The `Content-Type` of every answer with a body.
    pub media_type: &'static str,
}

/// The admin API's and the set-password page's: `application/json`, [`error_body`].
pub const JSON_API: ApiShape = ApiShape {
    error_body,
    media_type: "application/json",
};

/// The Lambda handler every API shares: reads the event (an event that is no API Gateway proxy
/// event fails the invocation), opens the request's span, hands the request, the deadline
/// and the request id to `dispatch`, and answers its result, or its error written by the
/// API's `shape`, in the event's own response shape.
pub async fn serve(
    event: ApiEvent,
    shape: &ApiShape,
    dispatch: impl AsyncFnOnce(&ApiRequest, &Deadline, &str) -> Result<Answer, ApiError>,
) -> Result<ApiResponse, NotAnApiEvent> {
    let request = ApiRequest::parse(&event.payload)
        .inspect_err(|err| tracing::warn!(error = %err, "event refused"))?;
    let request_id = event.context.request_id;
    let deadline = Deadline::from_epoch_millis(event.context.deadline);
    let span = tracing::info_span!("request", request_id = %request_id);
    let response = async {
        let (status, body, headers) = match dispatch(&request, &deadline, &request_id).await {
            Ok(answer) => answer,
            Err(err) => {
                tracing::info!(
                    status = err.status.as_u16(),
                    code = err.code.as_str(),
                    "request refused"
                );
                (
                    err.status,
                    (shape.error_body)(&err, &request_id).into(),
                    err.headers(),
                )
            }
        };
        request.respond(status, &body, shape.media_type, headers)
    }
    .instrument(span)
    .await;
    Ok(response)
}

/// A server error's full cause chain goes to the log; the caller gets the opaque message.
pub fn log_server_error(api: &ApiError, err: &(dyn std::error::Error + 'static), what: &str) {
    if api.status.is_server_error() {
        tracing::error!(error = %error_chain(err), code = api.code.as_str(), "{what} failed");
    }
}

/// The request's JSON body: 415 when it is declared as something else, 413 above `limit` bytes
/// (decoded), 400 when it is not JSON or has a key twice in one object.
pub fn read_json_body_within(request: &ApiRequest, limit: usize) -> Result<Value, ApiError> {
    refuse_other_media_types(request.headers())?;
    let (raw, base64_encoded) = request.raw_body();
    // Base64 is 4/3 of the payload: check the decoded size, but refuse absurd input early.
    if raw.len() > limit * 4 / 3 + 4 {
        return Err(too_large(limit));
    }
    let bytes = if base64_encoded {
        base64::engine::general_purpose::STANDARD
            .decode(raw)
            .map_err(|_| {
                ApiError::new(ErrorCode::InvalidBody, "body: not valid base64.").field("body")
            })?
    } else {
        raw.as_bytes().to_vec()
    };
    if bytes.len() > limit {
        return Err(too_large(limit));
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(
            ApiError::new(ErrorCode::InvalidJson, "body: a JSON object is required.").field("body"),
        );
    }
    crate::json::from_slice_unique_keys(&bytes).map_err(|e| {
        let reason = if crate::json::is_duplicate_key(&e) {
            crate::json::reason(&e)
        } else {
            "malformed JSON".to_string()
        };
        ApiError::new(
            ErrorCode::InvalidJson,
            format!("body: {reason} at line {} column {}.", e.line(), e.column()),
        )
        .field("body")
    })
}

/// A body declared as something other than JSON is refused before it is read: a form or
/// `text/plain` post is what a browser sends across sites without asking first (no CORS
/// preflight), and no client of ours sends one. No Content-Type at all is taken as JSON.
fn refuse_other_media_types(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(http::header::CONTENT_TYPE) else {
        return Ok(());
    };
    let media_type = value
        .to_str()
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let is_json = media_type == "application/json"
        || media_type
            .strip_prefix("application/")
            .is_some_and(|subtype| subtype.ends_with("+json"));
    if is_json {
        return Ok(());
    }
    // Not repeated: a header is caller data like any other.
    Err(ApiError::new(
        ErrorCode::UnsupportedMediaType,
        "Content-Type: the body must be JSON, sent as application/json.",
    )
    .field("Content-Type"))
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        format!("body: larger than {limit} bytes."),
    )
    .field("body")
}

pub fn timestamp(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The admin panel's error shape: `{error, message, code, requestId, field?, userFriendly?}`.
pub fn error_body(err: &ApiError, request_id: &str) -> Value {
    let mut body = json!({
        "error": err.status.canonical_reason().unwrap_or("Error"),
        "message": err.message,
        "code": err.code.as_str(),
        "requestId": request_id,
    });
    if let Some(field) = &err.field {
        body["field"] = json!(field);
    }
    if let Some(text) = err.user_friendly {
        body["userFriendly"] = json!(text);
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version_of(json: &str) -> Option<&'static str> {
        PayloadVersion::of(json).map(|version| match version {
            PayloadVersion::Http => "2.0",
            PayloadVersion::Rest => "1.0",
        })
    }

    #[test]
    fn the_payload_version_is_told_by_the_top_level_fields_alone() {
        assert_eq!(
            version_of(r#"{"version":"2.0","httpMethod":"GET"}"#),
            Some("2.0")
        );
        assert_eq!(
            version_of(r#"{"version":"1.0","httpMethod":"GET"}"#),
            Some("1.0")
        );
        // Present is enough, whatever the value: the REST shape then says what is wrong.
        assert_eq!(
            version_of(r#"{"version":2,"httpMethod":null}"#),
            Some("1.0")
        );
        assert_eq!(version_of(r#"{"requestContext":{"version":"2.0"}}"#), None);
        assert_eq!(version_of(r#"{"source":"aws.events","detail":{}}"#), None);
        assert_eq!(version_of(r#"["version","2.0"]"#), None);
        assert_eq!(version_of(r#""2.0""#), None);
    }

    #[test]
    fn an_event_of_neither_payload_says_what_it_lacks() {
        let event = RawValue::from_string(r#"{"source":"aws.events"}"#.into()).unwrap();
        let err = ApiRequest::parse(&event).unwrap_err();
        assert!(
            err.to_string()
                .contains("neither `version: \"2.0\"` nor `httpMethod`"),
            "{err}"
        );
        let broken = RawValue::from_string(r#"{"version":"2.0","headers":7}"#.into()).unwrap();
        let err = ApiRequest::parse(&broken).unwrap_err();
        assert!(err.to_string().contains("invalid type"), "{err}");
        // What the sender put where it does not belong is not repeated (it goes to the log).
        let leaky = r#"{"version":"2.0","rawPath":"jane.doe@example.com","isBase64Encoded":"jane.doe@example.com"}"#;
        let err = ApiRequest::parse(&RawValue::from_string(leaky.into()).unwrap()).unwrap_err();
        assert!(err.to_string().contains("invalid type"), "{err}");
        assert!(!err.to_string().contains("jane.doe"), "{err}");
    }
}
