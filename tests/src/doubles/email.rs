//! Resend-style email API double: `POST /emails` with API-key auth, validation and
//! idempotency keys. Accepted messages are recorded instead of sent.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Serialize;
use serde_json::{Value, json};

use super::faults::{self, Fault, FaultQueue};
use super::server::{
    Answer, Control, Rejection, RunningServer, any_loopback_port, control_routes, is_valid_email,
    json_response, lock,
};

const MAX_RECIPIENTS: usize = 50;
const MAX_IDEMPOTENCY_KEY_LEN: usize = 256;
const ADDRESS_FORMAT: &str = "The email address needs to follow the `email@example.com` or `Name <email@example.com>` format.";

#[derive(Clone, Debug)]
pub struct EmailConfig {
    pub api_key: String,
}

impl Default for EmailConfig {
    fn default() -> Self {
        EmailConfig {
            api_key: "test-email-key".into(),
        }
    }
}

/// One accepted message.
#[derive(Clone, Debug, Serialize)]
pub struct SentEmail {
    pub id: String,
    pub from: String,
    pub to: Vec<String>,
    pub subject: String,
    pub html: Option<String>,
    pub text: Option<String>,
    pub idempotency_key: Option<String>,
    pub tags: Option<Value>,
}

impl SentEmail {
    /// Whether `address` is among the recipients, ignoring case and display names.
    fn is_to(&self, address: &str) -> bool {
        let address = address.to_lowercase();
        self.to
            .iter()
            .any(|entry| address_of(entry).to_lowercase() == address)
    }

    /// The password-setup link in the text body, as the person would click it.
    fn setup_link(&self) -> Option<url::Url> {
        self.text
            .as_deref()?
            .split_whitespace()
            .find(|word| word.contains("/auth/set-password?"))
            .and_then(|word| url::Url::parse(word).ok())
    }

    /// The link's `token` and `email` query parameters: what the set-password page posts.
    pub fn setup_token_and_email(&self) -> Option<(String, String)> {
        let link = self.setup_link()?;
        let param = |name: &str| {
            link.query_pairs()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.into_owned())
        };
        Some((param("token")?, param("email")?))
    }
}

/// A running email API on loopback; stops when dropped.
pub struct EmailDouble {
    app: App,
    server: RunningServer,
}

impl EmailDouble {
    pub async fn start(cfg: EmailConfig) -> std::io::Result<EmailDouble> {
        Self::start_on(cfg, any_loopback_port()).await
    }

    pub async fn start_on(cfg: EmailConfig, addr: SocketAddr) -> std::io::Result<EmailDouble> {
        let listening = RunningServer::listen(addr).await?;
        let app = App(Arc::new(Mutex::new(Outbox::new(cfg))));
        let router = Router::new()
            .route("/emails", post(send_email))
            .merge(control_routes::<App>())
            .with_state(app.clone());
        let server = listening.serve(router);
        Ok(EmailDouble { app, server })
    }

    pub fn base_url(&self) -> String {
        self.server.base_url().to_string()
    }

    pub fn emails(&self) -> Vec<SentEmail> {
        self.app.outbox().emails.clone()
    }

    pub fn emails_to(&self, address: &str) -> Vec<SentEmail> {
        let outbox = self.app.outbox();
        let matching = outbox.emails.iter().filter(|email| email.is_to(address));
        matching.cloned().collect()
    }

    pub fn calls(&self) -> usize {
        self.app.outbox().calls
    }

    pub fn inject(&self, fault: Fault) {
        self.app.inject(fault);
    }
}

#[derive(Clone)]
struct App(Arc<Mutex<Outbox>>);

struct Outbox {
    config: EmailConfig,
    emails: Vec<SentEmail>,
    calls: usize,
    faults: FaultQueue,
    /// Idempotency key → the request body it was first used with, and the answer given.
    idempotency: HashMap<String, (Value, String)>,
}

impl App {
    fn outbox(&self) -> MutexGuard<'_, Outbox> {
        lock(&self.0)
    }
}

impl Control for App {
    fn snapshot(&self) -> Value {
        let outbox = self.outbox();
        json!({
            "emails": outbox.emails,
            "calls": outbox.calls,
            "faults": outbox.faults.pending(),
        })
    }

    fn reset(&self) {
        let mut outbox = self.outbox();
        *outbox = Outbox::new(outbox.config.clone());
    }

    fn inject(&self, fault: Fault) {
        self.outbox().faults.push(fault);
    }

    fn clear_faults(&self) {
        self.outbox().faults.clear();
    }
}

/// `{"statusCode","message","name"}`, Resend's error shape.
fn email_error(status: StatusCode, name: &str, message: &str) -> Rejection {
    let body = json!({ "statusCode": status.as_u16(), "message": message, "name": name });
    Rejection { status, body }
}

fn invalid(message: &str) -> Rejection {
    email_error(
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_error",
        message,
    )
}

fn missing(field: &str) -> Rejection {
    let message = format!("Missing `{field}` field.");
    email_error(
        StatusCode::UNPROCESSABLE_ENTITY,
        "missing_required_field",
        &message,
    )
}

fn faulted(status: StatusCode) -> Response {
    let (name, message) = match status.as_u16() {
        429 => (
            "rate_limit_exceeded",
            "Too many requests. You can only make 2 requests per second. See rate limit response headers for more information. Or contact support to increase rate limit.",
        ),
        code if code >= 500 => ("internal_server_error", "An unexpected error occurred."),
        _ => ("application_error", "An unexpected error occurred."),
    };
    let mut response = email_error(status, name, message).into_response();
    if status == StatusCode::TOO_MANY_REQUESTS {
        let headers = response.headers_mut();
        headers.insert("ratelimit-limit", 2.into());
        headers.insert("ratelimit-remaining", 0.into());
        headers.insert("ratelimit-reset", 1.into());
    }
    response
}

async fn send_email(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    let fault = app.outbox().begin();
    faults::respond(fault, faulted, || {
        let answer = app.outbox().send(&headers, &body);
        answer.unwrap_or_else(IntoResponse::into_response)
    })
    .await
}

impl Outbox {
    fn new(config: EmailConfig) -> Outbox {
        Outbox {
            config,
            emails: Vec::new(),
            calls: 0,
            faults: FaultQueue::default(),
            idempotency: HashMap::new(),
        }
    }

    fn begin(&mut self) -> Option<Fault> {
        self.calls += 1;
        self.faults.take("send_email")
    }

    fn send(&mut self, headers: &HeaderMap, body: &[u8]) -> Answer {
        self.authorize(headers)?;
        let key = idempotency_key(headers)?;
        let request = serde_json::from_slice::<Value>(body)
            .map_err(|_| invalid("The request body is not valid JSON."))?;
        let message = Message::parse(&request)?;

        if let Some(key) = &key
            && let Some((first_request, id)) = self.idempotency.get(key)
        {
            if *first_request != request {
                let message = "Same idempotency key used with a different request payload";
                let status = StatusCode::CONFLICT;
                return Err(email_error(status, "invalid_idempotent_request", message));
            }
            return Ok(json_response(StatusCode::OK, &json!({ "id": id })));
        }
        let id = uuid::Uuid::new_v4().to_string();
        if let Some(key) = &key {
            self.idempotency
                .insert(key.clone(), (request.clone(), id.clone()));
        }
        self.emails.push(SentEmail {
            id: id.clone(),
            from: message.from,
            to: message.to,
            subject: message.subject,
            html: message.html,
            text: message.text,
            idempotency_key: key,
            tags: message.tags,
        });
        Ok(json_response(StatusCode::OK, &json!({ "id": id })))
    }
}

impl Outbox {
    fn authorize(&self, headers: &HeaderMap) -> Result<(), Rejection> {
        let api_key = headers
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "));
        match api_key {
            None => {
                let message = "Missing API key in the authorization header. Include the following header in the request: Authorization: Bearer YOUR_API_KEY";
                let status = StatusCode::UNAUTHORIZED;
                Err(email_error(status, "missing_api_key", message))
            }
            Some(key) if key.trim() != self.config.api_key => {
                let status = StatusCode::FORBIDDEN;
                Err(email_error(status, "invalid_api_key", "API key is invalid"))
            }
            Some(_) => Ok(()),
        }
    }
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, Rejection> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value.to_str().unwrap_or_default();
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY_LEN {
        let message = "The key must be between 1-256 chars.";
        let status = StatusCode::BAD_REQUEST;
        return Err(email_error(status, "invalid_idempotency_key", message));
    }
    Ok(Some(key.to_string()))
}

/// A validated `POST /emails` body.
struct Message {
    from: String,
    to: Vec<String>,
    subject: String,
    html: Option<String>,
    text: Option<String>,
    tags: Option<Value>,
}

impl Message {
    fn parse(request: &Value) -> Result<Message, Rejection> {
        if !request.is_object() {
            return Err(invalid("The request body must be a JSON object."));
        }
        let from = match &request["from"] {
            Value::Null => return Err(missing("from")),
            Value::String(from) if is_valid_email(address_of(from)) => from.clone(),
            _ => return Err(invalid(&format!("Invalid `from` field. {ADDRESS_FORMAT}"))),
        };
        let to = match &request["to"] {
            Value::Null => return Err(missing("to")),
            to => addresses("to", to)?,
        };
        if to.is_empty() {
            return Err(missing("to"));
        }
        let subject = match &request["subject"] {
            Value::Null => return Err(missing("subject")),
            Value::String(subject) => subject.clone(),
            _ => return Err(invalid("Invalid `subject` field. Expected a string.")),
        };
        let html = optional_text(request, "html")?;
        let text = optional_text(request, "text")?;
        if html.is_none() && text.is_none() {
            return Err(missing("html` or `text"));
        }
        let tags = request.get("tags").filter(|tags| !tags.is_null()).cloned();
        if let Some(tags) = &tags {
            check_tags(tags)?;
        }
        Ok(Message {
            from,
            to,
            subject,
            html,
            text,
            tags,
        })
    }
}

/// A recipient field: one address or a list of 1..=50.
fn addresses(field: &str, value: &Value) -> Result<Vec<String>, Rejection> {
    let entries: Vec<&Value> = match value {
        Value::Array(items) => items.iter().collect(),
        single => vec![single],
    };
    if entries.len() > MAX_RECIPIENTS {
        let message =
            format!("Invalid `{field}` field. Too many recipients, max {MAX_RECIPIENTS}.");
        return Err(invalid(&message));
    }
    let valid = |entry: &&Value| {
        entry
            .as_str()
            .is_some_and(|text| is_valid_email(address_of(text)))
    };
    if !entries.iter().all(valid) {
        return Err(invalid(&format!(
            "Invalid `{field}` field. {ADDRESS_FORMAT}"
        )));
    }
    Ok(entries
        .iter()
        .filter_map(|entry| entry.as_str())
        .map(str::to_string)
        .collect())
}

fn optional_text(request: &Value, field: &str) -> Result<Option<String>, Rejection> {
    match &request[field] {
        Value::Null => Ok(None),
        Value::String(text) => Ok(Some(text.clone())),
        _ => Err(invalid(&format!(
            "Invalid `{field}` field. Expected a string."
        ))),
    }
}

/// Tags are `[{"name","value"}]` of ASCII letters, digits, `_` and `-`.
fn check_tags(tags: &Value) -> Result<(), Rejection> {
    let allowed = |text: &str| {
        !text.is_empty()
            && text.len() <= 256
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    let valid_tag = |tag: &Value| {
        ["name", "value"]
            .iter()
            .all(|field| tag[field].as_str().is_some_and(allowed))
    };
    match tags {
        Value::Array(items) if items.iter().all(valid_tag) => Ok(()),
        _ => Err(invalid(
            "Invalid `tags` field. Tags must be a list of {name, value} with only ASCII letters, numbers, underscores, or dashes.",
        )),
    }
}

/// The bare address of `Name <address>` or `address`.
fn address_of(entry: &str) -> &str {
    let entry = entry.trim();
    match (entry.rfind('<'), entry.strip_suffix('>')) {
        (Some(open), Some(inner)) => &inner[open + 1..],
        _ => entry,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use reqwest::Client;
    use serde_json::{Value, json};

    use super::*;

    struct Mailer {
        double: EmailDouble,
        http: Client,
    }

    async fn mailer() -> Mailer {
        let double = EmailDouble::start(EmailConfig::default()).await.unwrap();
        Mailer {
            double,
            http: Client::new(),
        }
    }

    fn welcome(to: Value) -> Value {
        json!({
            "from": "Acme <no-reply@acme.test>",
            "to": to,
            "subject": "Welcome",
            "html": "<p>Hi</p>",
            "tags": [{"name": "kind", "value": "welcome"}],
        })
    }

    async fn read(response: reqwest::Response) -> (u16, Value) {
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    impl Mailer {
        fn post(&self, body: &Value) -> reqwest::RequestBuilder {
            let url = format!("{}/emails", self.double.base_url());
            self.http.post(url).bearer_auth("test-email-key").json(body)
        }

        async fn send(&self, request: reqwest::RequestBuilder) -> (u16, Value) {
            read(request.send().await.unwrap()).await
        }

        fn control(&self, path: &str) -> String {
            format!("{}/__control/{path}", self.double.base_url())
        }

        async fn state(&self) -> Value {
            let response = self.http.get(self.control("state")).send().await;
            read(response.unwrap()).await.1
        }
    }

    #[tokio::test]
    async fn a_valid_email_is_accepted_with_an_id_and_recorded() {
        let mailer = mailer().await;
        let (status, body) = mailer
            .send(mailer.post(&welcome(json!("Ann@Example.com"))))
            .await;
        assert_eq!(status, 200);
        let id = body["id"].as_str().unwrap();
        assert!(uuid::Uuid::parse_str(id).is_ok());
        let sent = mailer.double.emails_to("ann@example.com");
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].id, id);
        assert_eq!(sent[0].from, "Acme <no-reply@acme.test>");
        assert_eq!(sent[0].to, ["Ann@Example.com"]);
        assert_eq!(
            (sent[0].subject.as_str(), sent[0].html.as_deref()),
            ("Welcome", Some("<p>Hi</p>"))
        );
        assert_eq!(
            sent[0].tags,
            Some(json!([{"name": "kind", "value": "welcome"}]))
        );
        assert_eq!(mailer.double.calls(), 1);
    }

    #[tokio::test]
    async fn a_missing_api_key_is_401_and_a_wrong_one_is_403() {
        let mailer = mailer().await;
        let url = format!("{}/emails", mailer.double.base_url());
        let body = welcome(json!("ann@example.com"));
        let (status, missing) =
            read(mailer.http.post(&url).json(&body).send().await.unwrap()).await;
        assert_eq!(status, 401);
        assert_eq!(missing["name"], "missing_api_key");
        assert_eq!(missing["statusCode"], 401);
        let wrong = mailer
            .http
            .post(&url)
            .bearer_auth("nope")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            read(wrong).await,
            (
                403,
                json!({"statusCode": 403, "message": "API key is invalid", "name": "invalid_api_key"})
            )
        );
        assert!(mailer.double.emails().is_empty());
    }

    #[tokio::test]
    async fn invalid_messages_are_refused_with_422() {
        let mailer = mailer().await;
        let with = |change: &dyn Fn(&mut Value)| {
            let mut body = welcome(json!(["ann@example.com"]));
            change(&mut body);
            body
        };
        let too_many: Vec<String> = (0..51).map(|n| format!("u{n}@example.com")).collect();
        let cases = [
            with(&|body| body["to"] = json!("not-an-address")),
            with(&|body| body["to"] = json!([])),
            with(&|body| body["to"] = json!(too_many)),
            with(&|body| body["from"] = json!("Acme")),
            with(&|body| body["subject"] = json!(7)),
            with(&|body| body["tags"] = json!([{"name": "has space", "value": "x"}])),
            with(&|body| {
                body.as_object_mut().unwrap().remove("html");
            }),
            with(&|body| {
                body.as_object_mut().unwrap().remove("subject");
            }),
        ];
        for case in cases {
            let (status, body) = mailer.send(mailer.post(&case)).await;
            assert_eq!(status, 422, "{case}");
            assert_eq!(body["statusCode"], 422);
            let name = body["name"].as_str().unwrap();
            assert!(
                ["validation_error", "missing_required_field"].contains(&name),
                "{body}"
            );
        }
        assert!(mailer.double.emails().is_empty());
    }

    #[tokio::test]
    async fn text_only_messages_and_display_names_are_fine() {
        let mailer = mailer().await;
        let body = json!({"from": "no-reply@acme.test", "to": "Ann <ann@example.com>", "subject": "Hi", "text": "Hi"});
        assert_eq!(mailer.send(mailer.post(&body)).await.0, 200);
        assert_eq!(mailer.double.emails_to("ANN@example.com").len(), 1);
    }

    #[tokio::test]
    async fn the_same_idempotency_key_and_body_returns_the_first_id_without_sending_again() {
        let mailer = mailer().await;
        let body = welcome(json!("ann@example.com"));
        let send = || {
            mailer.send(
                mailer
                    .post(&body)
                    .header("Idempotency-Key", "signup-42/welcome"),
            )
        };
        let (first_status, first) = send().await;
        let (second_status, second) = send().await;
        assert_eq!((first_status, second_status), (200, 200));
        assert_eq!(first, second);
        let sent = mailer.double.emails();
        assert_eq!(sent.len(), 1);
        assert_eq!(
            sent[0].idempotency_key.as_deref(),
            Some("signup-42/welcome")
        );
        assert_eq!(mailer.double.calls(), 2);
    }

    #[tokio::test]
    async fn the_same_idempotency_key_with_another_body_is_409() {
        let mailer = mailer().await;
        let key = ("Idempotency-Key", "k1");
        let first = mailer
            .post(&welcome(json!("ann@example.com")))
            .header(key.0, key.1);
        assert_eq!(mailer.send(first).await.0, 200);
        let other = mailer
            .post(&welcome(json!("bob@example.com")))
            .header(key.0, key.1);
        assert_eq!(
            mailer.send(other).await,
            (
                409,
                json!({
                    "statusCode": 409,
                    "message": "Same idempotency key used with a different request payload",
                    "name": "invalid_idempotent_request",
                })
            )
        );
        assert_eq!(mailer.double.emails().len(), 1);
    }

    #[tokio::test]
    async fn a_status_fault_answers_resend_shaped_errors_and_sends_nothing() {
        let mailer = mailer().await;
        mailer.double.inject(Fault::status("send_email", 503));
        let body = welcome(json!("ann@example.com"));
        let (status, error) = mailer
            .send(mailer.post(&body).header("Idempotency-Key", "k"))
            .await;
        assert_eq!(status, 503);
        assert_eq!(
            (error["statusCode"].as_u64(), error["name"].as_str()),
            (Some(503), Some("internal_server_error"))
        );
        assert!(mailer.double.emails().is_empty());
        let (status, _) = mailer
            .send(mailer.post(&body).header("Idempotency-Key", "k"))
            .await;
        assert_eq!(
            status, 200,
            "a faulted call must not burn the idempotency key"
        );
    }

    #[tokio::test]
    async fn a_delayed_send_is_recorded_even_when_the_client_gives_up() {
        let mailer = mailer().await;
        mailer.double.inject(Fault::delay("send_email", 200));
        let request = mailer
            .post(&welcome(json!("ann@example.com")))
            .timeout(Duration::from_millis(40));
        assert!(request.send().await.unwrap_err().is_timeout());
        assert_eq!(mailer.double.emails().len(), 1);
    }

    #[tokio::test]
    async fn a_dropped_send_is_a_client_error_and_the_next_send_works() {
        let mailer = mailer().await;
        mailer.double.inject(Fault::drop_connection("send_email"));
        let body = welcome(json!("ann@example.com"));
        let error = mailer.post(&body).send().await.unwrap_err();
        assert!(error.status().is_none());
        assert!(mailer.double.emails().is_empty());
        assert_eq!(mailer.send(mailer.post(&body)).await.0, 200);
    }

    #[tokio::test]
    async fn the_control_api_takes_faults_reports_state_and_resets() {
        let mailer = mailer().await;
        let faults = json!({"op": "send_email", "status": 429, "times": 2});
        let added = mailer
            .http
            .post(mailer.control("faults"))
            .json(&faults)
            .send()
            .await
            .unwrap();
        assert_eq!(added.status(), 204);
        let limited = mailer
            .post(&welcome(json!("ann@example.com")))
            .send()
            .await
            .unwrap();
        assert_eq!(limited.status(), 429);
        assert_eq!(limited.headers()["retry-after"], "1");
        assert_eq!(read(limited).await.1["name"], "rate_limit_exceeded");

        let state = mailer.state().await;
        assert_eq!(state["calls"], 1);
        assert_eq!(state["emails"], json!([]));
        assert_eq!(state["faults"][0]["times"], 1);

        let cleared = mailer
            .http
            .delete(mailer.control("faults"))
            .send()
            .await
            .unwrap();
        assert_eq!(cleared.status(), 204);
        assert_eq!(
            mailer
                .send(mailer.post(&welcome(json!("ann@example.com"))))
                .await
                .0,
            200
        );
        let state = mailer.state().await;
        assert_eq!(state["emails"][0]["to"], json!(["ann@example.com"]));

        let reset = mailer
            .http
            .post(mailer.control("reset"))
            .send()
            .await
            .unwrap();
        assert_eq!(reset.status(), 204);
        assert!(mailer.double.emails().is_empty());
        assert_eq!(mailer.double.calls(), 0);
    }

    #[tokio::test]
    async fn a_malformed_fault_is_refused_by_the_control_api() {
        let mailer = mailer().await;
        let bad = json!({"status": 500});
        let response = mailer
            .http
            .post(mailer.control("faults"))
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400);
    }
}
