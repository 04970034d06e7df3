//! Auth0's official Python SDK (`auth0-python`, pinned in requirements-dev.txt) against the Auth0
//! double: the double is only worth its tests while a real Management API client accepts its
//! answers. The SDK's side of the checks is `tests/sdk/auth0_official_sdk.py`; this test runs
//! it and then reads the double's users, their refresh tokens and sessions and its call counts
//! for what the SDK did.

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
/// SDK (and the SCIM conformance suites) there.
pub(crate) fn venv_python() -> PathBuf {
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
    // The lifecycle checks left the person unblocked, with the one refresh token issued after
    // the revocation and no session (the SDK revoked them after the last login).
    assert!(!auth0.is_blocked(kept));
    assert_eq!(auth0.refresh_tokens_of(kept), 1);
    assert_eq!(auth0.sessions_of(kept), 0);
    let merged = report["merged"].as_str().unwrap();
    let merged = auth0
        .users()
        .into_iter()
        .find(|user| user["user_id"] == merged);
    assert_eq!(merged.unwrap()["app_metadata"], serde_json::json!({}));
    let deleted = report["deleted"].as_str().unwrap();
    assert!(auth0.users().iter().all(|user| user["user_id"] != deleted));
    assert_eq!(
        auth0.users().len(),
        5,
        "the check user and four of the five paged ones"
    );
    // Two client-credentials requests (one granted, one refused for a wrong secret), so every
    // Management call carried the granted token; then the person's four logins.
    assert_eq!(auth0.token_requests(), 2 + 4);
    // Five refreshes: two granted, one refused while blocked, two refused once revoked.
    assert_eq!(auth0.calls("refresh_token"), 5);
    // For the person and for an unknown user.
    assert_eq!(auth0.calls("revoke_sessions"), 2);
    assert_eq!(auth0.calls("revoke_refresh_tokens"), 2);
}
