//! The real `create-user` binary, driven through the Lambda Runtime API as AWS would.

use std::process::Stdio;
use std::time::Duration;

use serde_json::json;
use testkit::harness::{CHECK_PATH, Response, TestStack, api_event, create_event, seed};
use testkit::runtime_api::{Outcome, RuntimeApi, workspace_binary};
use tokio::io::AsyncReadExt;

#[tokio::test]
async fn the_create_user_binary_serves_events_from_the_runtime_api_and_logs_no_secrets() {
    let stack = TestStack::start().await;
    let runtime = RuntimeApi::start().await.unwrap();
    let binary =
        workspace_binary("create-user").expect("`cargo build --bins` ran before the tests");
    let mut child = tokio::process::Command::new(binary)
        .env_clear()
        .envs(stack.vars.iter())
        .envs(runtime.lambda_env("create-user"))
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    runtime
        .wait_ready(Duration::from_secs(20))
        .await
        .expect("the function reaches /next");

    let invoke = |event| runtime.invoke(event, Duration::from_secs(20), Duration::from_secs(30));
    let created = invoke(create_event(
        seed::ACME_ADMIN_SUB,
        &json!({"email": "Binary.User@Example.com", "role": "USER"}),
    ))
    .await
    .unwrap();
    let Outcome::Response(raw) = created.outcome else {
        panic!("{:?}", created.outcome)
    };
    let response = Response::from_lambda(raw);
    assert_eq!(response.status, 201, "{:?}", response.body);
    assert_eq!(response.body["user"]["email"], "binary.user@example.com");

    let check = invoke(api_event(
        "POST",
        CHECK_PATH,
        Some(seed::ACME_ADMIN_SUB),
        Some(r#"{"email":"binary.user@example.com"}"#),
    ))
    .await
    .unwrap();
    let Outcome::Response(raw) = check.outcome else {
        panic!("{:?}", check.outcome)
    };
    assert_eq!(Response::from_lambda(raw).body["exists"], true);

    let refused = invoke(create_event(
        seed::ACME_ADMIN_SUB,
        &json!({"email": "binary.user@example.com"}),
    ))
    .await
    .unwrap();
    let Outcome::Response(raw) = refused.outcome else {
        panic!("{:?}", refused.outcome)
    };
    let refused_response = Response::from_lambda(raw);
    assert_eq!(refused_response.status, 409);
    assert_eq!(
        refused_response.body["requestId"],
        refused.request_id.as_str()
    );

    // A rollback: the email API fails (and its one retry), the Auth0 user is deleted again.
    stack.email.inject(
        serde_json::from_value(json!({"op": "send_email", "status": 500, "times": 2})).unwrap(),
    );
    let rolled_back = invoke(create_event(
        seed::ACME_ADMIN_SUB,
        &json!({"email": "rollback@example.com"}),
    ))
    .await
    .unwrap();
    let Outcome::Response(raw) = rolled_back.outcome else {
        panic!("{:?}", rolled_back.outcome)
    };
    assert_eq!(Response::from_lambda(raw).status, 502);

    // The instance kept its state: one Auth0 token for all four invocations.
    assert_eq!(stack.auth0.token_requests(), 1);

    child.kill().await.unwrap();
    let mut logs = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .await
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .await
        .unwrap();

    // JSON lines, each step logged with the request id.
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(!lines.is_empty(), "JSON log lines expected, got:\n{logs}");
    for step in [
        "insert_user",
        "permissions",
        "auth0_create",
        "store_auth0_id",
        "reset_token",
        "send_email",
        "commit",
    ] {
        assert!(
            lines.iter().any(
                |l| l["step"] == step && l["span"]["request_id"] == created.request_id.as_str()
            ),
            "no `{step}` line with the request id in:\n{logs}"
        );
    }
    // Metrics as CloudWatch Embedded Metric Format lines, one per event that counts.
    let emf = |metric: &str| -> Vec<serde_json::Value> {
        lines
            .iter()
            .filter(|l| l["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"] == metric)
            .cloned()
            .collect()
    };
    let created = emf("UsersCreated");
    assert_eq!(created.len(), 1, "{logs}");
    assert_eq!(created[0]["Function"], "create-user");
    assert_eq!(created[0]["UsersCreated"], 1);
    assert_eq!(
        created[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"],
        "AtomicUserProvisioning"
    );
    assert_eq!(
        created[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        json!([["Function"]])
    );
    let rollbacks = emf("Rollbacks");
    assert_eq!(rollbacks.len(), 1, "{logs}");
    assert_eq!(
        (
            rollbacks[0]["Step"].as_str(),
            rollbacks[0]["Rollbacks"].as_u64()
        ),
        (Some("send_email"), Some(1))
    );
    assert_eq!(
        rollbacks[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        json!([["Function", "Step"]])
    );
    assert_eq!(emf("CompensatingDeletes").len(), 1, "{logs}");
    assert!(emf("CompensatingDeleteFailures").is_empty());

    // Never a secret, a password, a reset token or a full email address.
    let token = stack.email.emails()[0].text.clone().unwrap();
    let token = token
        .split("token=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_string();
    for secret in [
        "binary.user@example.com",
        "test-client-secret",
        "test-email-key",
        token.as_str(),
        "aA1!",
    ] {
        assert!(!logs.contains(secret), "the logs contain {secret:?}");
    }
    assert!(
        logs.contains("b***@example.com"),
        "the redacted email is logged for correlation"
    );
}
