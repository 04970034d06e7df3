//! Both API Gateway payload versions get an HTTP answer in their own shape: the HTTP API's
//! (2.0, what the template deploys) and a REST API's (1.0). Anything else fails the
//! invocation with a clear error instead of a deserialisation failure deep in the runtime.

use lambda_runtime::Context;
use serde_json::{Value, json};
use testkit::harness::{Response, TestStack, epoch_millis, handler_event, seed};
use testkit::lambda_process::LambdaProcess;
use testkit::runtime_api::Outcome;

/// A REST API (payload 1.0) proxy event, with a Cognito/JWT authorizer's claims if `sub`.
fn rest_event(path: &str, sub: Option<&str>, body: &Value) -> Value {
    let authorizer = match sub {
        Some(sub) => json!({"claims": {"sub": sub, "iss": "https://acme.eu.auth0.com/"}}),
        None => json!({}),
    };
    json!({
        "resource": path,
        "path": path,
        "httpMethod": "POST",
        "headers": {"content-type": "application/json", "host": "api.acme.test"},
        "multiValueHeaders": {},
        "queryStringParameters": null,
        "multiValueQueryStringParameters": null,
        "pathParameters": null,
        "stageVariables": null,
        "requestContext": {
            "accountId": "123456789012",
            "resourceId": "abc123",
            "stage": "prod",
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "identity": {"sourceIp": "203.0.113.7"},
            "resourcePath": path,
            "httpMethod": "POST",
            "apiId": "1234567890",
            "authorizer": authorizer
        },
        "body": body.to_string(),
        "isBase64Encoded": false
    })
}

fn context() -> Context {
    let mut context = Context::default();
    context.request_id = uuid::Uuid::new_v4().to_string();
    context.deadline = epoch_millis() + 25_000;
    context
}

#[tokio::test]
async fn a_rest_api_event_is_served_and_answered_in_the_rest_shape() {
    let stack = TestStack::start().await;
    let event = rest_event(
        "/api/direct-users/create",
        Some(seed::ACME_ADMIN_SUB),
        &json!({"email": "rest@acme.test"}),
    );
    let answer = shared::admin_api::handle(&stack.state, handler_event(&event, context()))
        .await
        .expect("a REST API event is an API event");
    let raw = serde_json::to_value(answer).unwrap();
    // The REST response shape: no HTTP API-only fields such as `cookies`.
    assert!(raw.get("cookies").is_none(), "{raw}");
    let response = Response::from_lambda(raw);
    assert_eq!(response.status, 201, "{}", response.body);
    assert_eq!(response.body["user"]["email"], "rest@acme.test");
    assert_eq!(stack.rows_for("rest@acme.test").await.users, 1);

    // No claims from the authorizer: the same 401 as through the HTTP API.
    let anonymous = rest_event(
        "/api/direct-users/create",
        None,
        &json!({"email": "x@acme.test"}),
    );
    let answer = shared::admin_api::handle(&stack.state, handler_event(&anonymous, context()))
        .await
        .unwrap();
    let response = Response::from_lambda(serde_json::to_value(answer).unwrap());
    response.assert_answer(401, "UNAUTHENTICATED");
}

#[tokio::test]
async fn the_binaries_answer_a_rest_event_and_fail_clearly_on_an_event_that_is_no_api_event() {
    let stack = TestStack::start().await;
    for function in ["create-user", "set-password"] {
        let process = LambdaProcess::start(function, &stack.vars)
            .await
            .expect("`cargo build --bins` ran before the tests");
        let path = if function == "create-user" {
            "/api/direct-users/create"
        } else {
            "/api/auth/set-password/verify"
        };
        let rest = process
            .invoke(rest_event(
                path,
                None,
                &json!({"token": "ab", "email": "a@acme.test"}),
            ))
            .await
            .unwrap();
        let response = Response::of(&rest);
        let expected = if function == "create-user" { 401 } else { 400 };
        assert_eq!(response.status, expected, "{function}: {}", response.body);

        let scheduled = process
            .invoke(json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}))
            .await
            .unwrap();
        match &scheduled.outcome {
            Outcome::Error {
                error_type,
                error_message: message,
            } => {
                assert_eq!(error_type, "NotAnApiEvent", "{function}");
                assert!(
                    message.contains("payload 2.0 or 1.0"),
                    "{function}: {message}"
                );
            }
            other => panic!("{function}: expected an invocation error, got {other:?}"),
        }
        process.kill().await;
    }
}
