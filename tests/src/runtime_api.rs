//! In-process emulator of the AWS Lambda Runtime API (`2018-06-01`).
//!
//! It lets tests drive the real, compiled Lambda binaries (built with the
//! `lambda_runtime` crate) exactly like the Lambda service does: start a
//! [`RuntimeApi`], spawn the binary with [`RuntimeApi::lambda_env`], wait for it
//! to poll with [`RuntimeApi::wait_ready`], then call [`RuntimeApi::invoke`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use testkit::runtime_api::{RuntimeApi, workspace_binary};
//!
//! let api = RuntimeApi::start().await?;
//! let mut child = tokio::process::Command::new(workspace_binary("cleanup")?)
//!     .envs(api.lambda_env("cleanup"))
//!     .kill_on_drop(true)
//!     .spawn()?;
//! api.wait_ready(Duration::from_secs(10)).await?;
//! let invocation = api
//!     .invoke(serde_json::json!({}), Duration::from_secs(30), Duration::from_secs(10))
//!     .await?;
//! println!("{:?}", invocation.outcome);
//! child.kill().await?;
//! # Ok(())
//! # }
//! ```
//!
//! Endpoints served (as documented at
//! <https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html>):
//!
//! * `GET  /2018-06-01/runtime/invocation/next`
//! * `POST /2018-06-01/runtime/invocation/{AwsRequestId}/response`
//! * `POST /2018-06-01/runtime/invocation/{AwsRequestId}/error`
//! * `POST /2018-06-01/runtime/init/error`

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot, watch};

const API_PREFIX: &str = "/2018-06-01/runtime";
/// Default function name used in the invoked-function ARN until
/// [`RuntimeApi::lambda_env`] names the function.
const DEFAULT_FUNCTION_NAME: &str = "function";
const ACCOUNT_ID: &str = "123456789012";
const REGION: &str = "us-east-1";
/// Maximum synchronous response payload accepted by Lambda (6 MB).
const MAX_RESPONSE_BYTES: usize = 6 * 1024 * 1024;

/// The result of one invocation, as reported by the function.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// The `Lambda-Runtime-Aws-Request-Id` given to the function.
    pub request_id: String,
    pub outcome: Outcome,
}

/// What the function reported for an invocation (or for its initialisation).
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Body POSTed to `/invocation/{id}/response`, parsed as JSON. An empty body
    /// becomes `Value::Null`, a non-JSON body becomes `Value::String`.
    Response(Value),
    /// POSTed to `/invocation/{id}/error`.
    Error {
        error_type: String,
        error_message: String,
    },
    /// POSTed to `/init/error`.
    InitError {
        error_type: String,
        error_message: String,
    },
}

/// A running Runtime API emulator. Serving stops when it is dropped.
pub struct RuntimeApi {
    addr: std::net::SocketAddr,
    shared: Arc<Shared>,
}

struct Shared {
    function_name: Mutex<String>,
    /// Request ids in invocation order; consumed by `GET /next`.
    queue_tx: mpsc::UnboundedSender<String>,
    queue_rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<String>>,
    /// Invocations that have been queued and not yet answered.
    pending: Mutex<HashMap<String, Pending>>,
    status: watch::Sender<Status>,
    shutdown: watch::Sender<bool>,
}

struct Pending {
    event: Value,
    function_timeout: Duration,
    dispatched: bool,
    tx: oneshot::Sender<Outcome>,
}

#[derive(Default)]
struct Status {
    next_calls: usize,
    init_error: Option<Outcome>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    fn function_name(&self) -> String {
        lock(&self.function_name).clone()
    }

    /// Removes a dispatched invocation and hands its outcome to `invoke`.
    /// Returns false when the id is unknown (never issued, not yet handed out by
    /// `GET /next`, already answered, or abandoned by a timed-out `invoke`).
    fn complete(&self, request_id: &str, outcome: Outcome) -> bool {
        let mut pending = lock(&self.pending);
        match pending.get(request_id) {
            Some(p) if p.dispatched => {
                let p = pending.remove(request_id).expect("present");
                // The receiver is gone only if `invoke` was cancelled; ignore.
                let _ = p.tx.send(outcome);
                true
            }
            _ => false,
        }
    }
}

impl RuntimeApi {
    /// Binds 127.0.0.1:0 and serves the Runtime API on a tokio task; stops on Drop.
    pub async fn start() -> std::io::Result<RuntimeApi> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let (queue_tx, queue_rx) = mpsc::unbounded_channel();
        let (status, _) = watch::channel(Status::default());
        let (shutdown, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            function_name: Mutex::new(DEFAULT_FUNCTION_NAME.to_owned()),
            queue_tx,
            queue_rx: tokio::sync::Mutex::new(queue_rx),
            pending: Mutex::new(HashMap::new()),
            status,
            shutdown,
        });

        let app = Router::new()
            .route(&format!("{API_PREFIX}/invocation/next"), get(next_handler))
            .route(
                &format!("{API_PREFIX}/invocation/{{id}}/response"),
                post(response_handler),
            )
            .route(
                &format!("{API_PREFIX}/invocation/{{id}}/error"),
                post(error_handler),
            )
            .route(
                &format!("{API_PREFIX}/init/error"),
                post(init_error_handler),
            )
            // Lambda itself enforces the payload limit (see `response_handler`).
            .layer(DefaultBodyLimit::disable())
            .with_state(shared.clone());

        let mut stop = shared.shutdown.subscribe();
        tokio::spawn(async move {
            let signal = async move {
                // Err means the sender (RuntimeApi) is gone: stop as well.
                let _ = stop.wait_for(|stopped| *stopped).await;
            };
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(signal)
                .await
            {
                eprintln!("runtime_api: server error: {e}");
            }
        });

        Ok(RuntimeApi { addr, shared })
    }

    /// "127.0.0.1:PORT" — the value for AWS_LAMBDA_RUNTIME_API.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// Queues `event`, waits until the function posts a response/error for it
    /// (or `wait` elapses → Err). The deadline given to the function is
    /// now + `function_timeout`, "now" being the moment the function receives
    /// the event from `GET /next` (as on AWS).
    ///
    /// If the function reports `/init/error` while the invocation is
    /// outstanding, the invocation completes with [`Outcome::InitError`].
    pub async fn invoke(
        &self,
        event: Value,
        function_timeout: Duration,
        wait: Duration,
    ) -> Result<Invocation, String> {
        let request_id = uuid::Uuid::new_v4().to_string();
        let (tx, rx) = oneshot::channel();
        lock(&self.shared.pending).insert(
            request_id.clone(),
            Pending {
                event,
                function_timeout,
                dispatched: false,
                tx,
            },
        );
        // Guard removes the pending entry if this future is dropped or times out,
        // so an abandoned event is never handed to the function later.
        let guard = PendingGuard {
            shared: &self.shared,
            request_id: &request_id,
        };
        if self.shared.queue_tx.send(request_id.clone()).is_err() {
            return Err("runtime_api: event queue closed".to_owned());
        }

        match tokio::time::timeout(wait, rx).await {
            Ok(Ok(outcome)) => {
                drop(guard);
                Ok(Invocation {
                    request_id,
                    outcome,
                })
            }
            Ok(Err(_)) => Err(format!(
                "runtime_api: invocation {request_id} was abandoned without an outcome"
            )),
            Err(_) => {
                let dispatched = lock(&self.shared.pending)
                    .get(&request_id)
                    .is_some_and(|p| p.dispatched);
                drop(guard);
                let (next_calls, init_error) = {
                    let s = self.shared.status.borrow();
                    (s.next_calls, s.init_error.clone())
                };
                let mut msg = format!(
                    "runtime_api: invocation {request_id} got no response within {wait:?}: "
                );
                if dispatched {
                    msg.push_str(
                        "the function received the event (GET /next) but never POSTed \
                         /response or /error",
                    );
                } else {
                    msg.push_str(&format!(
                        "the function never picked up the event (GET /next calls so far: \
                         {next_calls}); is the Lambda process running, still busy or crashed?"
                    ));
                }
                if let Some(e) = init_error {
                    msg.push_str(&format!("; the function reported an init error: {e:?}"));
                }
                Err(msg)
            }
        }
    }

    /// Environment a Lambda binary needs, as pairs. Also makes `function_name`
    /// the name used in the `Lambda-Runtime-Invoked-Function-Arn` header.
    pub fn lambda_env(&self, function_name: &str) -> Vec<(String, String)> {
        *lock(&self.shared.function_name) = function_name.to_owned();
        let today = chrono::Utc::now().format("%Y/%m/%d");
        let stream_id = uuid::Uuid::new_v4().simple();
        [
            ("AWS_LAMBDA_RUNTIME_API", self.address()),
            ("AWS_LAMBDA_FUNCTION_NAME", function_name.to_owned()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256".to_owned()),
            (
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{function_name}"),
            ),
            (
                "AWS_LAMBDA_LOG_STREAM_NAME",
                format!("{today}/[$LATEST]{stream_id}"),
            ),
            ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".to_owned()),
            ("AWS_EXECUTION_ENV", "AWS_Lambda_provided.al2023".to_owned()),
            ("AWS_REGION", REGION.to_owned()),
            ("AWS_DEFAULT_REGION", REGION.to_owned()),
            ("_HANDLER", "bootstrap".to_owned()),
            ("TZ", ":UTC".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// Number of GET /next calls seen (lets a test know the function is ready and waiting).
    pub fn next_calls(&self) -> usize {
        self.shared.status.borrow().next_calls
    }

    /// Waits until the function has called GET /next at least once (ready for
    /// the first event) or times out. Fails early if the function reports an
    /// init error.
    pub async fn wait_ready(&self, wait: Duration) -> Result<(), String> {
        let mut rx = self.shared.status.subscribe();
        let res = tokio::time::timeout(
            wait,
            rx.wait_for(|s| s.next_calls > 0 || s.init_error.is_some()),
        )
        .await;
        match res {
            Ok(Ok(status)) => match &status.init_error {
                Some(e) => Err(format!(
                    "runtime_api: the function reported an init error: {e:?}"
                )),
                None => Ok(()),
            },
            Ok(Err(_)) => Err("runtime_api: server state dropped".to_owned()),
            Err(_) => Err(format!(
                "runtime_api: the function did not call GET {API_PREFIX}/invocation/next within \
                 {wait:?}; is the Lambda process running with `lambda_env()` (AWS_LAMBDA_RUNTIME_API={})?",
                self.address()
            )),
        }
    }

    /// If the function posted /runtime/init/error, returns it.
    pub fn init_error(&self) -> Option<Outcome> {
        self.shared.status.borrow().init_error.clone()
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        // Stops accepting connections and ends any long-polling GET /next.
        self.shared.shutdown.send_replace(true);
    }
}

struct PendingGuard<'a> {
    shared: &'a Shared,
    request_id: &'a str,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        lock(&self.shared.pending).remove(self.request_id);
    }
}

fn epoch_ms(t: SystemTime) -> u128 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis()
}

fn trace_id() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let root = uuid::Uuid::new_v4().simple().to_string();
    let parent = uuid::Uuid::new_v4().simple().to_string();
    format!(
        "Root=1-{secs:08x}-{};Parent={};Sampled=0",
        &root[..24],
        &parent[..16]
    )
}

fn api_error(status: StatusCode, error_type: &str, message: impl Into<String>) -> Response {
    let body = json!({ "errorMessage": message.into(), "errorType": error_type });
    (status, axum::Json(body)).into_response()
}

fn accepted() -> Response {
    (StatusCode::ACCEPTED, axum::Json(json!({ "status": "OK" }))).into_response()
}

fn invalid_request_id(id: &str) -> Response {
    api_error(
        StatusCode::BAD_REQUEST,
        "InvalidRequestID",
        format!("Invalid request ID: {id}"),
    )
}

async fn next_handler(State(shared): State<Arc<Shared>>) -> Response {
    shared.status.send_modify(|s| s.next_calls += 1);
    let mut stop = shared.shutdown.subscribe();
    let mut queue = tokio::select! {
        q = shared.queue_rx.lock() => q,
        _ = stop.wait_for(|s| *s) => return shutting_down(),
    };
    loop {
        let id = tokio::select! {
            id = queue.recv() => match id {
                Some(id) => id,
                None => return shutting_down(),
            },
            _ = stop.wait_for(|s| *s) => return shutting_down(),
        };
        let function_name = shared.function_name();
        let mut pending = lock(&shared.pending);
        // Ids whose `invoke` already gave up are skipped.
        let Some(p) = pending.get_mut(&id) else {
            continue;
        };
        p.dispatched = true;
        let deadline = epoch_ms(SystemTime::now() + p.function_timeout);
        let body = serde_json::to_vec(&p.event).expect("serde_json::Value serialises");
        drop(pending);

        let arn = format!("arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{function_name}");
        let mut headers = HeaderMap::new();
        let mut put = |name: &'static str, value: String| {
            if let Ok(v) = HeaderValue::from_str(&value) {
                headers.insert(name, v);
            }
        };
        put("content-type", "application/json".to_owned());
        put("lambda-runtime-aws-request-id", id);
        put("lambda-runtime-deadline-ms", deadline.to_string());
        put("lambda-runtime-invoked-function-arn", arn);
        put("lambda-runtime-trace-id", trace_id());
        return (StatusCode::OK, headers, body).into_response();
    }
}

fn shutting_down() -> Response {
    api_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "ServiceShutdown",
        "the Runtime API emulator is shutting down",
    )
}

async fn response_handler(
    State(shared): State<Arc<Shared>>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> Response {
    if body.len() > MAX_RESPONSE_BYTES {
        let msg = format!(
            "Response payload size ({} bytes) exceeded maximum allowed payload size \
             ({MAX_RESPONSE_BYTES} bytes).",
            body.len()
        );
        let outcome = Outcome::Error {
            error_type: "Function.ResponseSizeTooLarge".to_owned(),
            error_message: msg.clone(),
        };
        if !shared.complete(&id, outcome) {
            return invalid_request_id(&id);
        }
        return api_error(StatusCode::PAYLOAD_TOO_LARGE, "RequestEntityTooLarge", msg);
    }
    let value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()))
    };
    if shared.complete(&id, Outcome::Response(value)) {
        accepted()
    } else {
        invalid_request_id(&id)
    }
}

/// Reads `{errorType, errorMessage}` from the body, falling back to the
/// `Lambda-Runtime-Function-Error-Type` header and the raw body.
fn parse_error(headers: &HeaderMap, body: &[u8]) -> (String, String) {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let field = |name: &str| {
        parsed
            .as_ref()
            .and_then(|v| v.get(name))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let error_type = field("errorType")
        .or_else(|| {
            headers
                .get("lambda-runtime-function-error-type")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "Unhandled".to_owned());
    let error_message =
        field("errorMessage").unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    (error_type, error_message)
}

async fn error_handler(
    State(shared): State<Arc<Shared>>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (error_type, error_message) = parse_error(&headers, &body);
    if shared.complete(
        &id,
        Outcome::Error {
            error_type,
            error_message,
        },
    ) {
        accepted()
    } else {
        invalid_request_id(&id)
    }
}

async fn init_error_handler(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (error_type, error_message) = parse_error(&headers, &body);
    let outcome = Outcome::InitError {
        error_type,
        error_message,
    };
    shared
        .status
        .send_modify(|s| s.init_error = Some(outcome.clone()));
    // Like Lambda, an initialisation failure fails the outstanding invocations.
    for (_, p) in lock(&shared.pending).drain() {
        let _ = p.tx.send(outcome.clone());
    }
    accepted()
}

/// Locates a workspace binary built by cargo (`target/<profile>/<name>`, found
/// next to the running test executable, i.e. `current_exe()/../../<name>` from
/// a `deps` dir), honouring `CARGO_TARGET_DIR`. Returns a clear Err naming the
/// paths tried and telling to run `cargo build --bins` if missing.
pub fn workspace_binary(name: &str) -> Result<PathBuf, String> {
    let file = format!("{name}{}", std::env::consts::EXE_SUFFIX);
    let mut candidates: Vec<PathBuf> = Vec::new();
    let mut profile = "debug".to_owned();

    if let Ok(exe) = std::env::current_exe() {
        // target/<profile>/deps/<test>  |  target/<profile>/examples/<ex>  |  target/<profile>/<bin>
        if let Some(mut dir) = exe.parent().map(Path::to_path_buf) {
            if dir
                .file_name()
                .is_some_and(|n| n == "deps" || n == "examples")
                && let Some(up) = dir.parent()
            {
                dir = up.to_path_buf();
            }
            if let Some(p) = dir.file_name().and_then(|n| n.to_str()) {
                profile = p.to_owned();
            }
            candidates.push(dir.join(&file));
        }
    }

    let workspace_root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let target_dirs = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(|| option_env!("CARGO_TARGET_DIR").map(PathBuf::from));
    if let Some(target) = target_dirs {
        if target.is_absolute() {
            candidates.push(target.join(&profile).join(&file));
        } else {
            if let Ok(cwd) = std::env::current_dir() {
                candidates.push(cwd.join(&target).join(&profile).join(&file));
            }
            candidates.push(workspace_root.join(&target).join(&profile).join(&file));
        }
    }
    candidates.push(workspace_root.join("target").join(&profile).join(&file));
    candidates.dedup();

    if let Some(found) = candidates.iter().find(|p| p.is_file()) {
        return Ok(found.clone());
    }
    let tried: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
    Err(format!(
        "Lambda binary `{name}` not found (looked at: {}). Build it first with \
         `cargo build --bins` (or `cargo build -p {name}`) from the workspace root.",
        tried.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEXT: &str = "/2018-06-01/runtime/invocation/next";

    fn url(api: &RuntimeApi, path: &str) -> String {
        format!("http://{}{path}", api.address())
    }

    fn header(resp: &reqwest::Response, name: &str) -> String {
        resp.headers()
            .get(name)
            .unwrap_or_else(|| panic!("missing header {name}"))
            .to_str()
            .unwrap()
            .to_owned()
    }

    fn now_ms() -> u128 {
        epoch_ms(SystemTime::now())
    }

    #[tokio::test]
    async fn next_long_polls_and_response_completes_invocation() {
        let api = RuntimeApi::start().await.unwrap();
        let env = api.lambda_env("my-fn");
        let client = reqwest::Client::new();
        assert_eq!(api.next_calls(), 0);

        let function = async {
            let resp = client.get(url(&api, NEXT)).send().await.unwrap();
            assert_eq!(resp.status(), 200);
            let id = header(&resp, "lambda-runtime-aws-request-id");
            assert!(uuid::Uuid::parse_str(&id).is_ok(), "request id {id}");
            let deadline: u128 = header(&resp, "lambda-runtime-deadline-ms").parse().unwrap();
            let now = now_ms();
            assert!(
                deadline > now + 25_000 && deadline <= now + 30_000,
                "deadline {deadline} vs now {now}"
            );
            assert_eq!(
                header(&resp, "lambda-runtime-invoked-function-arn"),
                "arn:aws:lambda:us-east-1:123456789012:function:my-fn"
            );
            assert!(header(&resp, "lambda-runtime-trace-id").starts_with("Root=1-"));
            assert_eq!(header(&resp, "content-type"), "application/json");
            let event: Value = resp.json().await.unwrap();
            assert_eq!(event, json!({ "hello": "world" }));

            let resp = client
                .post(url(&api, &format!("{API_PREFIX}/invocation/{id}/response")))
                .body(r#"{"statusCode":201,"body":"ok"}"#)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 202);
            assert_eq!(resp.json::<Value>().await.unwrap(), json!({"status": "OK"}));

            // A second answer for the same id is rejected.
            let resp = client
                .post(url(&api, &format!("{API_PREFIX}/invocation/{id}/response")))
                .body("{}")
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 400);
            assert_eq!(
                resp.json::<Value>().await.unwrap()["errorType"],
                "InvalidRequestID"
            );
            id
        };
        let caller = async {
            // The function is long-polling before the event exists.
            api.wait_ready(Duration::from_secs(5)).await.unwrap();
            api.invoke(
                json!({ "hello": "world" }),
                Duration::from_secs(30),
                Duration::from_secs(5),
            )
            .await
            .unwrap()
        };
        let (id, invocation) = tokio::join!(function, caller);

        assert_eq!(invocation.request_id, id);
        match invocation.outcome {
            Outcome::Response(v) => assert_eq!(v, json!({"statusCode": 201, "body": "ok"})),
            other => panic!("unexpected outcome {other:?}"),
        }
        assert_eq!(api.next_calls(), 1);
        assert!(api.init_error().is_none());
        assert!(
            env.iter()
                .any(|(k, v)| k == "AWS_LAMBDA_RUNTIME_API" && *v == api.address())
        );
    }

    /// The function takes the next event and POSTs `body` to its `/error` with the error-type
    /// header; returns the (type, message) the invocation completed with.
    async fn reported_error(api: &RuntimeApi, header_type: &str, body: &str) -> (String, String) {
        let client = reqwest::Client::new();
        let function = async {
            let resp = client.get(url(api, NEXT)).send().await.unwrap();
            let id = header(&resp, "lambda-runtime-aws-request-id");
            let resp = client
                .post(url(api, &format!("{API_PREFIX}/invocation/{id}/error")))
                .header("Lambda-Runtime-Function-Error-Type", header_type)
                .body(body.to_owned())
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 202);
            assert_eq!(resp.json::<Value>().await.unwrap(), json!({"status": "OK"}));
        };
        let (_, invocation) = tokio::join!(
            function,
            api.invoke(json!({}), Duration::from_secs(3), Duration::from_secs(5))
        );
        match invocation.unwrap().outcome {
            Outcome::Error {
                error_type,
                error_message,
            } => (error_type, error_message),
            other => panic!("unexpected outcome {other:?}"),
        }
    }

    #[tokio::test]
    async fn error_post_completes_invocation_with_error() {
        let api = RuntimeApi::start().await.unwrap();
        let body = r#"{"errorType":"BadInput","errorMessage":"name is required"}"#;
        assert_eq!(
            reported_error(&api, "unhandled", body).await,
            ("BadInput".to_owned(), "name is required".to_owned())
        );
        // Non-JSON error body: type from the header, message is the raw body.
        assert_eq!(
            reported_error(&api, "Runtime.Crash", "boom").await,
            ("Runtime.Crash".to_owned(), "boom".to_owned())
        );
    }

    #[tokio::test]
    async fn unknown_request_id_is_rejected_with_400() {
        let api = RuntimeApi::start().await.unwrap();
        let client = reqwest::Client::new();
        for kind in ["response", "error"] {
            let resp = client
                .post(url(&api, &format!("{API_PREFIX}/invocation/nope/{kind}")))
                .body("{}")
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 400, "{kind}");
            let body: Value = resp.json().await.unwrap();
            assert_eq!(body["errorType"], "InvalidRequestID");
            assert!(body["errorMessage"].as_str().unwrap().contains("nope"));
        }
    }

    #[tokio::test]
    async fn invoke_times_out_and_abandoned_event_is_not_delivered() {
        let api = RuntimeApi::start().await.unwrap();
        let err = api
            .invoke(
                json!({"first": true}),
                Duration::from_secs(3),
                Duration::from_millis(100),
            )
            .await
            .unwrap_err();
        assert!(err.contains("no response within"), "{err}");
        assert!(err.contains("never picked up"), "{err}");

        // The function now picks up the event, but never answers.
        let client = reqwest::Client::new();
        let function = async {
            let resp = client.get(url(&api, NEXT)).send().await.unwrap();
            let id = header(&resp, "lambda-runtime-aws-request-id");
            let event: Value = resp.json().await.unwrap();
            (id, event)
        };
        let (picked, res) = tokio::join!(
            function,
            api.invoke(
                json!({"second": true}),
                Duration::from_secs(3),
                Duration::from_millis(300),
            )
        );
        // The first (abandoned) event was skipped.
        assert_eq!(picked.1, json!({"second": true}));
        let err = res.unwrap_err();
        assert!(err.contains("never POSTed"), "{err}");

        // A late answer for the abandoned invocation is an unknown id.
        let resp = client
            .post(url(
                &api,
                &format!("{API_PREFIX}/invocation/{}/response", picked.0),
            ))
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400);
    }

    #[tokio::test]
    async fn wait_ready_times_out_when_nobody_polls() {
        let api = RuntimeApi::start().await.unwrap();
        let err = api.wait_ready(Duration::from_millis(50)).await.unwrap_err();
        assert!(err.contains("invocation/next"), "{err}");
    }

    #[tokio::test]
    async fn init_error_is_recorded_and_fails_waiters() {
        let api = RuntimeApi::start().await.unwrap();
        let client = reqwest::Client::new();
        let report = async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let resp = client
                .post(url(&api, &format!("{API_PREFIX}/init/error")))
                .header("Lambda-Runtime-Function-Error-Type", "Runtime.InitError")
                .body(r#"{"errorType":"ConfigError","errorMessage":"DATABASE_URL missing"}"#)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 202);
        };
        let (_, ready, invoked) = tokio::join!(
            report,
            api.wait_ready(Duration::from_secs(5)),
            api.invoke(json!({}), Duration::from_secs(3), Duration::from_secs(5)),
        );
        assert!(ready.unwrap_err().contains("DATABASE_URL missing"));
        assert!(matches!(
            invoked.unwrap().outcome,
            Outcome::InitError { ref error_type, .. } if error_type == "ConfigError"
        ));
        match api.init_error() {
            Some(Outcome::InitError {
                error_type,
                error_message,
            }) => {
                assert_eq!(error_type, "ConfigError");
                assert_eq!(error_message, "DATABASE_URL missing");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[tokio::test]
    async fn drop_stops_the_server_and_ends_long_polls() {
        let api = RuntimeApi::start().await.unwrap();
        let base = url(&api, NEXT);
        let poll = tokio::spawn(async move { reqwest::get(&base).await.map(|r| r.status()) });
        api.wait_ready(Duration::from_secs(5)).await.unwrap();
        let addr = api.address();
        drop(api);
        let status = tokio::time::timeout(Duration::from_secs(5), poll)
            .await
            .expect("long poll ended")
            .unwrap()
            .unwrap();
        assert!(status.is_server_error(), "{status}");
        // The accept loop closes the listener shortly after the signal.
        let mut refused = false;
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(&addr).await.is_err() {
                refused = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(refused, "listener still accepting after drop");
    }

    #[test]
    fn lambda_env_has_what_lambda_runtime_requires() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let api = rt.block_on(RuntimeApi::start()).unwrap();
        let env: HashMap<String, String> = api.lambda_env("create-user").into_iter().collect();
        assert_eq!(env["AWS_LAMBDA_RUNTIME_API"], api.address());
        assert_eq!(env["AWS_LAMBDA_FUNCTION_NAME"], "create-user");
        assert_eq!(env["AWS_LAMBDA_FUNCTION_VERSION"], "$LATEST");
        assert_eq!(env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"], "256");
        assert_eq!(env["AWS_LAMBDA_LOG_GROUP_NAME"], "/aws/lambda/create-user");
        assert!(env["AWS_LAMBDA_LOG_STREAM_NAME"].contains("[$LATEST]"));
        assert_eq!(env["AWS_REGION"], "us-east-1");
        drop(api);
    }

    #[test]
    fn workspace_binary_reports_missing_binary_clearly() {
        let err = workspace_binary("definitely-not-a-binary-xyz").unwrap_err();
        assert!(err.contains("definitely-not-a-binary-xyz"), "{err}");
        assert!(err.contains("cargo build --bins"), "{err}");
        assert!(err.contains("target"), "{err}");
    }
}
