//! The API Gateway events in `events/` (what `make invoke` and `cargo lambda invoke
//! --data-file` send): each parses as an HTTP API payload 2.0 event and gets the answer
//! documented for it below (and in README, "Local development"), in the shape of openapi.yaml.

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use serde_json::Value;
use testkit::harness::{CHECK_PATH, CREATE_PATH, TestStack};

use crate::openapi::{assert_documented, repo_root};

/// What each event is documented to get: status and `code` ("" for a success).
fn expected(file: &str) -> (u16, &'static str) {
    match file {
        "create-user.json" => (201, ""),
        "create-user-link-employee.json" => (201, ""),
        "create-user-bad-email.json" => (400, "VALIDATION_ERROR"),
        "create-user-malformed.json" => (400, "INVALID_JSON"),
        "create-user-no-claims.json" => (401, "UNAUTHENTICATED"),
        "create-user-not-admin.json" => (403, "NOT_AN_ADMIN"),
        "create-user-duplicate.json" => (409, "USER_ALREADY_EXISTS"),
        "check-exists.json" => (200, ""),
        "check-exists-unknown-email.json" => (200, ""),
        other => panic!("events/{other} has no documented answer: add it to this table"),
    }
}

/// The API Gateway events: every `events/create-user*.json` and `events/check-exists*.json`.
fn api_events() -> Vec<(String, Value)> {
    let mut files: Vec<_> = std::fs::read_dir(repo_root().join("events"))
        .expect("events/ exists")
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            let name = path.file_name().unwrap().to_string_lossy();
            (name.starts_with("create-user") || name.starts_with("check-exists"))
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
        let documented_path = if path == CHECK_PATH {
            CHECK_PATH
        } else {
            assert_eq!(path, CREATE_PATH, "events/{name}");
            CREATE_PATH
        };

        let (status, code) = expected(&name);
        let response = stack.call(event).await;
        assert_eq!(
            (response.status, response.code()),
            (status, code),
            "events/{name}: {}",
            response.body
        );
        assert_documented(documented_path, &response, &name);
    }
    // The two successful creations each sent one password-setup email.
    assert_eq!(stack.email.emails().len(), 2);
}
