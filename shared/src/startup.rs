//! Start-up failures, told to Lambda. Without this a bad configuration only exits, and the
//! caller sees "Runtime exited" instead of the message that names the variable or secret.

use std::time::Duration;

use crate::state::{AppState, InitError};
use crate::telemetry::error_chain;

/// The report must not itself hang the init phase (Lambda allows it 10 s in all).
const REPORT_TIMEOUT: Duration = Duration::from_secs(2);

/// The state, or (when it could not be built) the init error reported and the process ended.
/// Every `main` calls this: `let state = shared::startup::ready_or_exit(AppState::from_env().await).await;`
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
