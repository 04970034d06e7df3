//! Where the local gateway's integration sends an event: the function of that name, run by
//! `cargo lambda watch` (its Lambda Invoke API, under `make dev`) or by the Runtime API
//! emulator (the real binaries, in tests).

use std::collections::HashMap;
use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::Value;

use crate::lambda_process::LambdaProcess;
use crate::runtime_api::Outcome;

/// Why an invocation gave no answer.
#[derive(Debug)]
pub enum InvokeError {
    /// The function failed the invocation (crash, init error, an `Err` from the handler).
    Function(String),
    /// No answer within the route's integration timeout.
    TimedOut,
    /// Nothing to invoke: no such function, or its runner is not there.
    Unreachable(String),
}

/// The functions the gateway's routes name, by binary name.
pub trait Functions: Send + Sync + 'static {
    fn invoke<'a>(
        &'a self,
        function: &'a str,
        event: Value,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Value, InvokeError>>;
}

/// The Lambda Invoke API (`POST /2015-03-31/functions/{name}/invocations`), as `cargo lambda
/// watch` serves it.
pub struct InvokeApi {
    base_url: String,
    http: reqwest::Client,
}

impl InvokeApi {
    pub fn new(base_url: &str) -> InvokeApi {
        InvokeApi {
            base_url: base_url.trim_end_matches('/').to_string(),
            http: reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("an HTTP client"),
        }
    }
}

impl Functions for InvokeApi {
    fn invoke<'a>(
        &'a self,
        function: &'a str,
        event: Value,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Value, InvokeError>> {
        Box::pin(async move {
            let url = format!(
                "{}/2015-03-31/functions/{function}/invocations",
                self.base_url
            );
            let sent = self.http.post(&url).json(&event).timeout(timeout).send();
            let response = match sent.await {
                Ok(response) => response,
                Err(err) if err.is_timeout() => return Err(InvokeError::TimedOut),
                Err(err) => {
                    let reason = format!("{url}: {err} (is `cargo lambda watch` running?)");
                    return Err(InvokeError::Unreachable(reason));
                }
            };
            let status = response.status();
            let function_error = response.headers().get("x-amz-function-error").cloned();
            let text = match response.text().await {
                Ok(text) => text,
                Err(err) if err.is_timeout() => return Err(InvokeError::TimedOut),
                Err(err) => return Err(InvokeError::Unreachable(err.to_string())),
            };
            if let Some(kind) = function_error {
                let kind = kind.to_str().unwrap_or("Unhandled").to_string();
                return Err(InvokeError::Function(format!("{kind}: {text}")));
            }
            if !status.is_success() {
                return Err(InvokeError::Function(format!("{status}: {text}")));
            }
            serde_json::from_str(&text)
                .map_err(|_| InvokeError::Function(format!("not JSON: {text}")))
        })
    }
}

/// The real binaries, each its own process driven through the Runtime API emulator.
#[derive(Default)]
pub struct Processes(HashMap<String, LambdaProcess>);

impl Processes {
    pub fn with(mut self, name: &str, process: LambdaProcess) -> Processes {
        self.0.insert(name.to_string(), process);
        self
    }
}

impl Functions for Processes {
    fn invoke<'a>(
        &'a self,
        function: &'a str,
        event: Value,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Value, InvokeError>> {
        Box::pin(async move {
            let Some(process) = self.0.get(function) else {
                return Err(InvokeError::Unreachable(format!("no function {function}")));
            };
            match process.invoke_within(event, timeout).await {
                Ok(invocation) => match invocation.outcome {
                    Outcome::Response(value) => Ok(value),
                    Outcome::Error {
                        error_type,
                        error_message,
                    }
                    | Outcome::InitError {
                        error_type,
                        error_message,
                    } => Err(InvokeError::Function(format!(
                        "{error_type}: {error_message}"
                    ))),
                },
                Err(_) => Err(InvokeError::TimedOut),
            }
        })
    }
}
