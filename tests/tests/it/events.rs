//! The API Gateway events in `events/` (what `make invoke` and `cargo lambda invoke
//! --data-file` send): each parses as an HTTP API payload 2.0 event and gets the answer
//! documented for it below (and in README, "Local development"), in the shape of openapi.yaml.

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use serde_json::Value;
use testkit::harness::{
    CHECK_PATH, CREATE_PATH, RESEND_PATH, SET_PASSWORD_PATH, TestStack, VERIFY_PATH,
};

use crate::openapi::{assert_documented, repo_root};

/// What each event is documented to get: status and `code` ("" for a success).
fn expected(file: &str) -> (u16, &'static str) {
    match file {
        "create-user.json" => (201, ""),
        "create-user-link-employee.json" => (201, ""),
        "create-user-idempotent.json" => (201, ""),
        "create-user-bad-email.json" => (400, "VALIDATION_ERROR"),
        "create-user-malformed.json" => (400, "INVALID_JSON"),
        "create-user-no-claims.json" => (401, "UNAUTHENTICATED"),
        "create-user-not-admin.json" => (403, "NOT_AN_ADMIN"),
        "create-user-duplicate.json" => (409, "USER_ALREADY_EXISTS"),
        "check-exists.json" => (200, ""),
        "check-exists-unknown-email.json" => (200, ""),
        // Run after create-user.json made new.hire@acme.test (files go in name order).
        "resend-invitation.json" => (200, ""),
        "set-password-verify.json" => (200, ""),
        "set-password-weak.json" => (400, "WEAK_PASSWORD"),
        "set-password.json" => (200, ""),
        other => panic!("events/{other} has no documented answer: add it to this table"),
    }
}

/// The placeholder token of the set-password events: `make invoke` and this test put the
/// token of the newest emailed link in its place, as the person's browser would.
pub const PLACEHOLDER_TOKEN: &str =
    "0000000000000000000000000000000000000000000000000000000000000000";

/// The API Gateway events of the HTTP API's routes, in name order.
fn api_events() -> Vec<(String, Value)> {
    let mut files: Vec<_> = std::fs::read_dir(repo_root().join("events"))
        .expect("events/ exists")
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            let name = path.file_name().unwrap().to_string_lossy();
            [
                "create-user",
                "check-exists",
                "resend-invitation",
                "set-password",
            ]
            .iter()
            .any(|prefix| name.starts_with(prefix))
                && name.ends_with(".json")
        })
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).unwrap();
            let event = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("events/{name} is not JSON: {e}"));
            (name, event)
        })
        .collect()
}

#[tokio::test]
async fn every_api_event_parses_and_gets_its_documented_answer() {
    let events = api_events();
    assert!(events.len() >= 9, "only {} events found", events.len());
    let stack = TestStack::start().await;
    for (name, event) in events {
        let request: ApiGatewayV2httpRequest = serde_json::from_value(event.clone())
            .unwrap_or_else(|e| panic!("events/{name} is not an API Gateway v2 event: {e}"));
        assert_eq!(request.version.as_deref(), Some("2.0"), "events/{name}");
        let path = request
            .raw_path
            .clone()
            .unwrap_or_else(|| panic!("events/{name} has no rawPath"));
        assert_eq!(
            request.request_context.http.path.as_deref(),
            Some(path.as_str()),
            "events/{name}: rawPath and requestContext.http.path agree"
        );
        assert_eq!(
            request.route_key.as_deref(),
            Some(format!("POST {path}").as_str()),
            "events/{name}: the routeKey is one of template.yaml's routes"
        );
        let documented_path = [
            CHECK_PATH,
            CREATE_PATH,
            RESEND_PATH,
            VERIFY_PATH,
            SET_PASSWORD_PATH,
        ]
        .into_iter()
        .find(|documented| *documented == path)
        .unwrap_or_else(|| panic!("events/{name}: {path} is not a route of openapi.yaml"));
        let (status, code) = expected(&name);
        let public = path.contains("/auth/set-password");
        if public {
            assert!(
                request.request_context.authorizer.is_none(),
                "events/{name}: the public routes have no JWT authorizer"
            );
        }
        let response = if public {
            let (token, _) = stack
                .email
                .emails_to("new.hire@acme.test")
                .last()
                .and_then(|email| email.setup_token_and_email())
                .expect("an invitation to new.hire@acme.test was emailed");
            let mut event = event;
            let body = event["body"]
                .as_str()
                .unwrap()
                .replace(PLACEHOLDER_TOKEN, &token);
            event["body"] = body.into();
            stack.call_public(event).await
        } else {
            stack.call(event).await
        };
        assert_eq!(
            (response.status, response.code()),
            (status, code),
            "events/{name}: {}",
            response.body
        );
        assert_documented(documented_path, &response, &name);
    }
    // The three successful creations and the resend each sent one password-setup email.
    assert_eq!(stack.email.emails().len(), 4);
}
