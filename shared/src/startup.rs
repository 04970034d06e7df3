//! Start-up failures, told to Lambda. Without this a bad configuration only exits, and the
//! caller sees "Runtime exited" instead of the message that names the variable or secret.

use std::future::Future;
use std::time::Duration;

use lambda_runtime::service_fn;

use crate::http_api::{ApiEvent, ApiResponse, NotAnApiEvent};
use crate::state::{AppState, InitError};
use crate::telemetry::error_chain;

/// The report must not itself hang the init phase (Lambda allows it 10 s in all).
const REPORT_TIMEOUT: Duration = Duration::from_secs(2);

/// The whole `main` of an API function (create-user, set-password): logging named `function`,
/// the state built once per Lambda instance and borrowed by every invocation for the process's
/// life (a failure is reported to Lambda, `/init/error`, and ends the process), and `handle`
/// served one event at a time.
pub async fn serve_api<H, F>(function: &'static str, handle: H) -> Result<(), lambda_runtime::Error>
where
    H: Fn(&'static AppState, ApiEvent) -> F + Send + 'static,
    F: Future<Output = Result<ApiResponse, NotAnApiEvent>> + Send + 'static,
{
    crate::telemetry::init(function);
    let state: &'static AppState =
        Box::leak(Box::new(ready_or_exit(AppState::from_env().await).await));
    // Served from a spawned task, not from `block_on`'s own future: every wake-up of that one
    // costs a current-thread runtime an extra turn of its driver.
    tokio::spawn(lambda_runtime::run(service_fn(move |event| {
        handle(state, event)
    })))
    .await?
}

/// The state, or (when it could not be built) the init error reported and the process ended.
/// Every `main` calls this, the API functions' through [`serve_api`].
pub async fn ready_or_exit(state: Result<AppState, InitError>) -> AppState {
    match state {
        Ok(state) => state,
        Err(err) => exit_with_init_error(err.error_type(), &err).await,
    }
}

/// Logs the error, posts it to the Runtime API's `/init/error` (when there is one: not in
/// a plain local run) and exits with status 1.
pub async fn exit_with_init_error(error_type: &str, err: &(dyn std::error::Error + 'static)) -> ! {
    let message = error_chain(err);
    tracing::error!(error = %message, error_type, "start-up failed");
    if let Ok(api) = std::env::var("AWS_LAMBDA_RUNTIME_API")
        && let Err(report) = report_init_error(&api, error_type, &message).await
    {
        tracing::error!(error = %report, "could not report the start-up failure to Lambda");
    }
    std::process::exit(1)
}

/// `POST /2018-06-01/runtime/init/error` with `{"errorMessage", "errorType"}`.
pub async fn report_init_error(api: &str, error_type: &str, message: &str) -> Result<(), String> {
    let body = serde_json::json!({ "errorMessage": message, "errorType": error_type });
    let response = reqwest::Client::new()
        .post(format!("http://{api}/2018-06-01/runtime/init/error"))
        .header("Lambda-Runtime-Function-Error-Type", "Runtime.InitError")
        .json(&body)
        .timeout(REPORT_TIMEOUT)
        .send()
        .await
        .map_err(|e| e.without_url().to_string())?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!("the Runtime API answered {}", response.status()))
    }
}
