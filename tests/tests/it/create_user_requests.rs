//! Requests refused before anything is written: each with its status and field, and no change
//! in either system.

use serde_json::{Value, json};
use testkit::harness::{CREATE_PATH, TestStack, api_event, create_event, seed};

async fn assert_refused(
    stack: &TestStack,
    event: Value,
    status: u16,
    code: &str,
    field: Option<&str>,
    label: &str,
) {
    let auth0_before = stack.auth0.users().len();
    let emails_before = stack.email.emails().len();
    let response = stack.call(event).await;
    assert_eq!(
        (response.status, response.code()),
        (status, code),
        "{label}: {:?}",
        response.body
    );
    assert_eq!(
        response.body["field"].as_str(),
        field,
        "{label}: {:?}",
        response.body
    );
    assert!(
        response.body["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{label}"
    );
    assert!(response.body["error"].as_str().is_some(), "{label}");
    assert_eq!(
        stack.auth0.users().len(),
        auth0_before,
        "{label}: Auth0 unchanged"
    );
    assert_eq!(
        stack.email.emails().len(),
        emails_before,
        "{label}: no email"
    );
}

async fn user_count(stack: &TestStack) -> i64 {
    stack
        .sql()
        .await
        .query_one("SELECT count(*) FROM users", &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn bad_requests_are_refused_with_the_field_named_and_change_nothing() {
    let stack = TestStack::start().await;
    let users_before = user_count(&stack).await;
    let admin = seed::ACME_ADMIN_SUB;
    let raw = |body: &str| api_event("POST", CREATE_PATH, Some(admin), Some(body));
    let with_content_type = |media_type: &str| {
        let mut event = create_event(admin, &json!({"email": "typed@example.com"}));
        event["headers"]["content-type"] = json!(media_type);
        event
    };
    let cases: Vec<(&str, Value, u16, &str, Option<&str>)> = vec![
        (
            "malformed JSON",
            raw("{\"email\": "),
            400,
            "INVALID_JSON",
            Some("body"),
        ),
        (
            // serde_json alone keeps the last: a check upstream that keeps the first would see
            // another request than the one carried out.
            "a key twice",
            raw(r#"{"email":"dupa@example.com","role":"USER","role":"ADMIN"}"#),
            400,
            "INVALID_JSON",
            Some("body"),
        ),
        (
            "a key twice inside a permission",
            create_event(
                admin,
                &json!({"email": "dupb@example.com", "permissions": "[{\"pageId\":\"x\",\"pageId\":\"y\"}]"}),
            ),
            400,
            "VALIDATION_ERROR",
            Some("permissions"),
        ),
        (
            // What a browser may post across sites without a CORS preflight.
            "text/plain instead of JSON",
            with_content_type("text/plain;charset=UTF-8"),
            415,
            "UNSUPPORTED_MEDIA_TYPE",
            Some("Content-Type"),
        ),
        (
            "multipart instead of JSON",
            with_content_type("multipart/form-data; boundary=x"),
            415,
            "UNSUPPORTED_MEDIA_TYPE",
            Some("Content-Type"),
        ),
        (
            "empty body",
            api_event("POST", CREATE_PATH, Some(admin), None),
            400,
            "INVALID_JSON",
            Some("body"),
        ),
        (
            "array body",
            raw("[]"),
            400,
            "VALIDATION_ERROR",
            Some("body"),
        ),
        (
            "email missing",
            create_event(admin, &json!({"role": "USER"})),
            400,
            "VALIDATION_ERROR",
            Some("email"),
        ),
        (
            "email a number",
            create_event(admin, &json!({"email": 42})),
            400,
            "VALIDATION_ERROR",
            Some("email"),
        ),
        (
            "email malformed",
            create_event(admin, &json!({"email": "not an email"})),
            400,
            "VALIDATION_ERROR",
            Some("email"),
        ),
        (
            "email too long",
            create_event(
                admin,
                &json!({"email": format!("{}@example.com", "a".repeat(250))}),
            ),
            400,
            "VALIDATION_ERROR",
            Some("email"),
        ),
        (
            "role unknown",
            create_event(admin, &json!({"email": "r@example.com", "role": "ROOT"})),
            400,
            "VALIDATION_ERROR",
            Some("role"),
        ),
        (
            "permissions an object",
            create_event(admin, &json!({"email": "p@example.com", "permissions": {}})),
            400,
            "VALIDATION_ERROR",
            Some("permissions"),
        ),
        (
            "pageId not a uuid",
            create_event(
                admin,
                &json!({"email": "p@example.com", "permissions": [{"pageId": 7}]}),
            ),
            400,
            "VALIDATION_ERROR",
            Some("permissions[0].pageId"),
        ),
        (
            "canRead not a bool",
            create_event(
                admin,
                &json!({"email": "p@example.com", "permissions": [{"pageId": seed::PAGE_DASHBOARD, "canRead": 1}]}),
            ),
            400,
            "VALIDATION_ERROR",
            Some("permissions[0].canRead"),
        ),
        (
            "unknown page",
            create_event(
                admin,
                &json!({"email": "p@example.com", "permissions": [{"pageId": "c0000000-0000-4000-8000-0000000000ff", "canRead": true}]}),
            ),
            400,
            "UNKNOWN_PAGE",
            Some("permissions"),
        ),
        (
            "employee_data missing",
            create_event(
                admin,
                &json!({"email": "e@example.com", "create_employee": true}),
            ),
            400,
            "VALIDATION_ERROR",
            Some("employee_data"),
        ),
        (
            "employee_data bad JSON string",
            create_event(
                admin,
                &json!({"email": "e@example.com", "create_employee": true, "employee_data": "{"}),
            ),
            400,
            "VALIDATION_ERROR",
            Some("employee_data"),
        ),
        (
            "an escape sequence in a name",
            create_event(
                admin,
                &json!({"email": "e@example.com", "create_employee": true,
                        "employee_data": {"firstName": "\u{1b}[31mNia", "lastName": "Hire"}}),
            ),
            400,
            "VALIDATION_ERROR",
            Some("employee_data.firstName"),
        ),
        (
            "a required name of zero-width spaces",
            create_event(
                admin,
                &json!({"email": "e@example.com", "create_employee": true,
                        "employee_data": {"firstName": "Nia", "lastName": "\u{200b}\u{200b}"}}),
            ),
            400,
            "VALIDATION_ERROR",
            Some("employee_data.lastName"),
        ),
        (
            "employee other tenant",
            create_event(
                admin,
                &json!({"email": "e@example.com", "link_employee": true, "employee_id": seed::EMPLOYEE_OTHER_TENANT}),
            ),
            404,
            "EMPLOYEE_NOT_FOUND",
            Some("employee_id"),
        ),
        (
            "employee other business",
            create_event(
                admin,
                &json!({"email": "e@example.com", "link_employee": true, "employee_id": seed::EMPLOYEE_OTHER_BUSINESS}),
            ),
            404,
            "EMPLOYEE_NOT_FOUND",
            Some("employee_id"),
        ),
        (
            "employee already linked",
            create_event(
                admin,
                &json!({"email": "e@example.com", "link_employee": true, "employee_id": seed::EMPLOYEE_LINKED}),
            ),
            409,
            "EMPLOYEE_ALREADY_LINKED",
            Some("employee_id"),
        ),
        (
            "duplicate in this tenant",
            create_event(admin, &json!({"email": "staff@acme.test"})),
            409,
            "USER_ALREADY_EXISTS",
            Some("email"),
        ),
        (
            "duplicate in another tenant",
            create_event(admin, &json!({"email": "Admin@Globex.test"})),
            409,
            "USER_ALREADY_EXISTS",
            Some("email"),
        ),
        (
            "admin creating an owner",
            create_event(admin, &json!({"email": "o@example.com", "role": "OWNER"})),
            403,
            "ROLE_NOT_ALLOWED",
            Some("role"),
        ),
        (
            "caller is a plain user",
            create_event(seed::ACME_USER_SUB, &json!({"email": "u@example.com"})),
            403,
            "NOT_AN_ADMIN",
            None,
        ),
        (
            "caller is inactive",
            create_event(
                seed::ACME_INACTIVE_ADMIN_SUB,
                &json!({"email": "u@example.com"}),
            ),
            403,
            "CALLER_INACTIVE",
            None,
        ),
        (
            "caller unknown",
            create_event("auth0|nobody", &json!({"email": "u@example.com"})),
            403,
            "CALLER_NOT_FOUND",
            None,
        ),
        (
            "no claims",
            api_event(
                "POST",
                CREATE_PATH,
                None,
                Some(r#"{"email":"u@example.com"}"#),
            ),
            401,
            "UNAUTHENTICATED",
            None,
        ),
        (
            // Postgres refuses a NUL in text: the lookup must not run (it was a 500).
            "NUL in the sub claim",
            create_event(&format!("{admin}\u{0}"), &json!({"email": "u@example.com"})),
            401,
            "UNAUTHENTICATED",
            None,
        ),
        (
            "control character in the sub claim",
            create_event(
                &format!("{admin}\u{1b}"),
                &json!({"email": "u@example.com"}),
            ),
            401,
            "UNAUTHENTICATED",
            None,
        ),
        (
            "unknown path",
            api_event(
                "POST",
                "/api/direct-users/42/explode",
                Some(admin),
                Some("{}"),
            ),
            404,
            "NOT_FOUND",
            None,
        ),
        (
            "wrong method",
            api_event("GET", CREATE_PATH, Some(admin), None),
            405,
            "METHOD_NOT_ALLOWED",
            None,
        ),
        (
            "body too large",
            raw(&format!(
                "{{\"email\":\"big@example.com\",\"pad\":\"{}\"}}",
                "x".repeat(70_000)
            )),
            413,
            "PAYLOAD_TOO_LARGE",
            Some("body"),
        ),
    ];
    for (label, event, status, code, field) in cases {
        assert_refused(&stack, event, status, code, field, label).await;
    }
    assert_eq!(
        user_count(&stack).await,
        users_before,
        "no user row was added by any refused request"
    );
    let linked: i64 = stack
        .sql()
        .await
        .query_one(
            "SELECT count(*) FROM employees WHERE user_id IS NOT NULL",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(linked, 1, "only the seeded link exists");
}

#[tokio::test]
async fn json_is_taken_with_any_parameters_a_json_suffix_or_no_content_type_at_all() {
    let stack = TestStack::start().await;
    let media_types = [
        Some("application/json"),
        Some("Application/JSON; charset=utf-8"),
        Some("application/merge-patch+json"),
        None,
    ];
    for (i, media_type) in media_types.into_iter().enumerate() {
        let email = format!("typed{i}@example.com");
        let mut event = create_event(seed::ACME_ADMIN_SUB, &json!({"email": email}));
        let headers = event["headers"].as_object_mut().unwrap();
        match media_type {
            Some(media_type) => headers.insert("content-type".into(), json!(media_type)),
            None => headers.remove("content-type"),
        };
        let response = stack.call(event).await;
        assert_eq!(response.status, 201, "{media_type:?}: {:?}", response.body);
        assert_eq!(
            stack.auth0.users_with_email(&email).len(),
            1,
            "{media_type:?}"
        );
    }
}

#[tokio::test]
async fn the_duplicate_email_answer_carries_the_admin_panels_friendly_message() {
    let stack = TestStack::start().await;
    let response = stack
        .call(create_event(
            seed::ACME_ADMIN_SUB,
            &json!({"email": "STAFF@acme.test"}),
        ))
        .await;
    assert_eq!(response.status, 409);
    assert_eq!(
        response.body["userFriendly"],
        "A user with this email address already exists. Use a different email address."
    );
    assert_eq!(response.headers["content-type"], "application/json");
}

#[tokio::test]
async fn a_405_says_which_method_is_allowed() {
    let stack = TestStack::start().await;
    let response = stack
        .call(api_event(
            "DELETE",
            CREATE_PATH,
            Some(seed::ACME_ADMIN_SUB),
            None,
        ))
        .await;
    assert_eq!(response.status, 405);
    assert_eq!(response.headers["allow"], "POST");
}

#[tokio::test]
async fn a_base64_encoded_body_is_decoded() {
    use base64::Engine;
    let stack = TestStack::start().await;
    let mut event = create_event(seed::ACME_ADMIN_SUB, &json!({}));
    event["body"] =
        json!(base64::engine::general_purpose::STANDARD.encode(r#"{"email":"b64@example.com"}"#));
    event["isBase64Encoded"] = json!(true);
    let response = stack.call(event).await;
    assert_eq!(response.status, 201, "{:?}", response.body);
}
