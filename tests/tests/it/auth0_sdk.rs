//! Auth0's official Python SDK (`auth0-python`, pinned in requirements-dev.txt) against the Auth0
//! double: the double is only worth its tests while a real Management API client accepts its
//! answers. The SDK's side of the checks is `tests/sdk/auth0_official_sdk.py`; this test runs
//! it and then reads the double's users for what the SDK did.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;
use testkit::doubles::{Auth0Config, Auth0Double};
use tokio::process::Command;

use crate::openapi::repo_root;

/// The SDK's imports and one 429 retry (`Retry-After: 1`) take about two seconds; the bound
/// turns a run that hangs into a failure.
const SDK_RUN_LIMIT: Duration = Duration::from_secs(120);

/// The project venv's interpreter: `scripts/venv.sh` (which `make test` runs) installs the
/// SDK there.
fn venv_python() -> PathBuf {
    let python = repo_root().join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/venv.sh (`make test` does)",
        python.display()
    );
    python
}

#[tokio::test]
async fn auth0s_own_sdk_accepts_every_answer_of_the_double() {
    let config = Auth0Config::default();
    let (client_id, client_secret) = (config.client_id.clone(), config.client_secret.clone());
    let auth0 = Auth0Double::start(config).await.unwrap();
    let script = repo_root().join("tests/sdk/auth0_official_sdk.py");

    let run = Command::new(venv_python())
        .arg(&script)
        .args([auth0.base_url(), client_id, client_secret])
        // The double is on loopback: never through a proxy the machine may set.
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(SDK_RUN_LIMIT, run)
        .await
        .expect("the SDK checks finish")
        .expect("the venv's python runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the SDK refused an answer of the double:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_str(stdout.trim()).expect("one JSON line");

    // What the SDK created, updated and deleted is so in the double.
    let kept = report["kept"].as_str().unwrap();
    let stored = auth0.users_with_email("sdk.check@example.test");
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(stored[0]["user_id"], kept);
    assert_eq!(stored[0]["app_metadata"]["db_user_id"], "sdk-1");
    assert!(auth0.password_matches(kept, "Another-Good-Pass-7"));
    let deleted = report["deleted"].as_str().unwrap();
    assert!(auth0.users().iter().all(|user| user["user_id"] != deleted));
    assert_eq!(
        auth0.users().len(),
        5,
        "the check user and four of the five paged ones"
    );
    // Two token requests (one granted, one refused for a wrong secret): every Management call
    // carried the granted token.
    assert_eq!(auth0.token_requests(), 2);
}
