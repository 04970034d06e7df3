//! The API Gateway events in `events/` (what `make invoke` and `cargo lambda invoke
//! --data-file` send): each parses as an HTTP API payload 2.0 event and gets the answer
//! documented for it below (and in README, "Local development"), in the shape of openapi.yaml.

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use serde_json::Value;
use testkit::harness::{
    CHECK_PATH, CREATE_PATH, RESEND_PATH, SET_PASSWORD_PATH, TestStack, VERIFY_PATH,
};

use crate::openapi::{assert_documented_at, repo_root};

/// Every API event, in the order they run (each builds on the ones before, as in the
/// README's walk through `make invoke`), with what it is documented to get: status and `code`
/// ("" for a success).
const EVENTS: &[(&str, u16, &str)] = &[
    ("create-user.json", 201, ""),
    ("create-user-link-employee.json", 201, ""),
    ("create-user-idempotent.json", 201, ""),
    ("create-user-bad-email.json", 400, "VALIDATION_ERROR"),
    ("create-user-malformed.json", 400, "INVALID_JSON"),
    ("create-user-no-claims.json", 401, "UNAUTHENTICATED"),
    ("create-user-not-admin.json", 403, "NOT_AN_ADMIN"),
    ("create-user-duplicate.json", 409, "USER_ALREADY_EXISTS"),
    ("check-exists.json", 200, ""),
    ("check-exists-unknown-email.json", 200, ""),
    // After create-user.json made new.hire@acme.test.
    ("resend-invitation.json", 200, ""),
    ("set-password-verify.json", 200, ""),
    ("set-password-weak.json", 400, "WEAK_PASSWORD"),
    ("set-password.json", 200, ""),
    // new.hire@acme.test's life after the invitation; `USER_PLACEHOLDER` is its id.
    ("users-list.json", 200, ""),
    ("user-get.json", 200, ""),
    ("user-update.json", 200, ""),
    ("user-deactivate.json", 200, ""),
    ("user-reactivate.json", 200, ""),
    ("user-delete.json", 200, ""),
];

/// The placeholder token of the set-password events: `make invoke` and this test put the
/// token of the newest emailed link in its place, as the person's browser would.
pub const PLACEHOLDER_TOKEN: &str =
    "0000000000000000000000000000000000000000000000000000000000000000";

/// The placeholder user id of the `user-*` events: `make invoke` and this test put the id of
/// new.hire@acme.test in its place (it changes with every create).
pub const USER_PLACEHOLDER: &str = "00000000-0000-4000-8000-00000000cafe";

/// The routes of openapi.yaml the events use, as `(method, template)`.
const ROUTES: &[(&str, &str)] = &[
    ("POST", CREATE_PATH),
    ("POST", CHECK_PATH),
    ("POST", RESEND_PATH),
    ("POST", VERIFY_PATH),
    ("POST", SET_PASSWORD_PATH),
    ("GET", "/api/direct-users"),
    ("GET", "/api/direct-users/{id}"),
    ("PATCH", "/api/direct-users/{id}"),
    ("DELETE", "/api/direct-users/{id}"),
    ("POST", "/api/direct-users/{id}/deactivate"),
    ("POST", "/api/direct-users/{id}/reactivate"),
];

/// The API Gateway events of the HTTP API's routes: every JSON file of `events/` but the
/// cleanup function's.
fn api_events() -> Vec<(String, Value)> {
    let mut found: Vec<String> = std::fs::read_dir(repo_root().join("events"))
        .expect("events/ exists")
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".json") && !name.starts_with("cleanup"))
        .collect();
    found.sort();
    let mut listed: Vec<String> = EVENTS.iter().map(|(name, ..)| name.to_string()).collect();
    listed.sort();
    assert_eq!(
        found, listed,
        "every API event in events/ has its line in EVENTS"
    );
    EVENTS
        .iter()
        .map(|(name, ..)| {
            let text = std::fs::read_to_string(repo_root().join("events").join(name)).unwrap();
            let event = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("events/{name} is not JSON: {e}"));
            (name.to_string(), event)
        })
        .collect()
}

#[tokio::test]
async fn every_api_event_parses_and_gets_its_documented_answer() {
    let events = api_events();
    let stack = TestStack::start().await;
    for ((name, event), (_, status, code)) in events.into_iter().zip(EVENTS) {
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
        let method = request.request_context.http.method.as_str().to_string();
        let (_, template) = ROUTES
            .iter()
            .find(|(m, template)| *m == method && matches_template(template, &path))
            .unwrap_or_else(|| {
                panic!("events/{name}: {method} {path} is not a route of openapi.yaml")
            });
        assert_eq!(
            request.route_key.as_deref(),
            Some(format!("{method} {template}").as_str()),
            "events/{name}: the routeKey is one of template.yaml's routes"
        );
        let public = path.contains("/auth/set-password");
        if public {
            assert!(
                request.request_context.authorizer.is_none(),
                "events/{name}: the public routes have no JWT authorizer"
            );
        }
        let mut event = event;
        let response = if public {
            let (token, _) = stack
                .email
                .emails_to("new.hire@acme.test")
                .last()
                .and_then(|email| email.setup_token_and_email())
                .expect("an invitation to new.hire@acme.test was emailed");
            let body = event["body"]
                .as_str()
                .unwrap()
                .replace(PLACEHOLDER_TOKEN, &token);
            event["body"] = body.into();
            stack.call_public(event).await
        } else {
            if event.to_string().contains(USER_PLACEHOLDER) {
                let id = stack.auth0.users_with_email("new.hire@acme.test")[0]["app_metadata"]
                    ["db_user_id"]
                    .as_str()
                    .expect("new.hire@acme.test was created")
                    .to_string();
                event = serde_json::from_str(&event.to_string().replace(USER_PLACEHOLDER, &id))
                    .unwrap();
            }
            stack.call(event).await
        };
        assert_eq!(
            (response.status, response.code()),
            (*status, *code),
            "events/{name}: {}",
            response.body
        );
        assert_documented_at(&method, template, &response, &name);
    }
    // The three successful creations and the resend each sent one password-setup email.
    assert_eq!(stack.email.emails().len(), 4);
    // And the last event deleted new.hire@acme.test from both systems.
    assert!(
        stack
            .auth0
            .users_with_email("new.hire@acme.test")
            .is_empty()
    );
}

/// Whether `path` is one of `template`'s (`{…}` stands for one segment).
fn matches_template(template: &str, path: &str) -> bool {
    let (template, path): (Vec<_>, Vec<_>) =
        (template.split('/').collect(), path.split('/').collect());
    template.len() == path.len()
        && template
            .iter()
            .zip(&path)
            .all(|(t, p)| t.starts_with('{') || t == p)
}
