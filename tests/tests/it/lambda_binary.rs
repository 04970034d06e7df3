//! The real `create-user` binary, driven through the Lambda Runtime API as AWS would.

use serde_json::json;
use testkit::doubles::Fault;
use testkit::harness::{
    CHECK_PATH, Response, SCIM_USERS_PATH, SET_PASSWORD_PATH, TestStack, VERIFY_PATH, api_event,
    create_event, scim_event, seed,
};
use testkit::lambda_process::LambdaProcess;

#[tokio::test]
async fn the_create_user_binary_serves_events_from_the_runtime_api_and_logs_no_secrets() {
    let stack = TestStack::start().await;
    let mut vars = stack.vars.clone();
    vars.insert("RUST_LOG".into(), "info".into());
    let function = LambdaProcess::start("create-user", &vars)
        .await
        .expect("`cargo build --bins` ran before the tests");

    let invoke = |event| function.invoke(event);
    let created = invoke(create_event(
        seed::ACME_ADMIN_SUB,
        &json!({"email": "Binary.User@Example.com", "role": "USER"}),
    ))
    .await
    .unwrap();
    let response = Response::of(&created);
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
    assert_eq!(Response::of(&check).body["exists"], true);

    let refused = invoke(create_event(
        seed::ACME_ADMIN_SUB,
        &json!({"email": "binary.user@example.com"}),
    ))
    .await
    .unwrap();
    let refused_response = Response::of(&refused);
    assert_eq!(refused_response.status, 409);
    assert_eq!(
        refused_response.body["requestId"],
        refused.request_id.as_str()
    );

    // A rollback: the email API fails (and its one retry), the Auth0 user is deleted again.
    stack
        .email
        .inject(Fault::status("send_email", 500).times(2));
    let rolled_back = invoke(create_event(
        seed::ACME_ADMIN_SUB,
        &json!({"email": "rollback@example.com"}),
    ))
    .await
    .unwrap();
    assert_eq!(Response::of(&rolled_back).status, 502);

    // The instance kept its state: one Auth0 token for all four invocations.
    assert_eq!(stack.auth0.token_requests(), 1);

    let logs = function.kill().await;

    // JSON lines. At info a create logs two: its request and its outcome (the steps are
    // debug), both with the invocation's request id.
    let lines = logs.json_lines();
    assert!(
        !lines.is_empty(),
        "JSON log lines expected, got:\n{}",
        logs.text
    );
    let of_created: Vec<_> = lines
        .iter()
        .filter(|l| l["requestId"] == created.request_id.as_str())
        .collect();
    let messages: Vec<_> = of_created.iter().map(|l| l["message"].clone()).collect();
    // The instance's first create also fetched the Auth0 token, and says so.
    assert_eq!(
        messages,
        [
            json!("create-user request"),
            json!("auth0 management token fetched"),
            json!("user created")
        ],
        "{}",
        logs.text
    );
    let outcome = of_created[2];
    assert_eq!(outcome["step"], "commit");
    assert_eq!(outcome["email"], "b***@example.com");
    assert_eq!(outcome["adopted"], false);
    assert!(outcome["user_id"].is_string(), "{outcome}");
    // The rollback says which step failed, with its request id.
    assert!(
        lines
            .iter()
            .any(|l| l["requestId"] == rolled_back.request_id.as_str()
                && l["step"] == "rollback"
                && l["level"] == "WARN"),
        "{}",
        logs.text
    );
    // Every line logged while serving a request carries its id, also from inside client spans
    // (the email client's retry warning), and no list of open spans.
    let in_requests: Vec<_> = lines.iter().filter(|l| l.get("span").is_some()).collect();
    assert!(in_requests.len() > 4, "{}", logs.text);
    assert!(
        in_requests.iter().any(|l| l["span"]["op"] == "send_email"),
        "{}",
        logs.text
    );
    for line in in_requests {
        assert!(line["requestId"].is_string(), "no request id on {line}");
        assert!(line.get("spans").is_none(), "a span list on {line}");
    }
    // Metrics as CloudWatch Embedded Metric Format lines, one per event that counts.
    let emf = |metric: &str| logs.metric(metric);
    let created = emf("UsersCreated");
    assert_eq!(created.len(), 1, "{}", logs.text);
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
    assert_eq!(rollbacks.len(), 1, "{}", logs.text);
    assert_eq!(
        (
            rollbacks[0]["Step"].as_str(),
            rollbacks[0]["Rollbacks"].as_u64()
        ),
        (Some("send_email"), Some(1))
    );
    assert_eq!(
        rollbacks[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        json!([["Function"], ["Function", "Step"]])
    );
    assert_eq!(emf("CompensatingDeletes").len(), 1, "{}", logs.text);
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
        assert!(!logs.text.contains(secret), "the logs contain {secret:?}");
    }
    assert!(
        logs.text.contains("b***@example.com"),
        "the redacted email is logged for correlation"
    );
}

#[tokio::test]
async fn the_set_password_binary_completes_an_invitation_and_logs_neither_token_nor_password() {
    let stack = TestStack::start().await;
    let created = stack
        .call(create_event(
            seed::ACME_ADMIN_SUB,
            &json!({"email": "Invited.Binary@Example.com"}),
        ))
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let (token, email) = stack.email.emails()[0]
        .setup_token_and_email()
        .expect("the invitation carries the link");

    let mut vars = stack.vars.clone();
    vars.insert("RUST_LOG".into(), "debug".into());
    let function = LambdaProcess::start("set-password", &vars)
        .await
        .expect("`cargo build --bins` ran before the tests");
    let password = "Binary-Passw0rd-42";
    let call = |path: &str, body: serde_json::Value| {
        function.invoke(testkit::harness::public_event(path, &body))
    };
    let verified = call(VERIFY_PATH, json!({"token": token, "email": email}))
        .await
        .unwrap();
    assert_eq!(Response::of(&verified).status, 200);
    let weak = call(
        SET_PASSWORD_PATH,
        json!({"token": token, "email": email, "password": "weak"}),
    )
    .await
    .unwrap();
    assert_eq!(Response::of(&weak).code(), "WEAK_PASSWORD");
    let set = call(
        SET_PASSWORD_PATH,
        json!({"token": token, "email": email, "password": password}),
    )
    .await
    .unwrap();
    let set = Response::of(&set);
    assert_eq!(set.status, 200, "{}", set.body);
    let again = call(
        SET_PASSWORD_PATH,
        json!({"token": token, "email": email, "password": password}),
    )
    .await
    .unwrap();
    assert_eq!(Response::of(&again).code(), "INVALID_LINK");

    let logs = function.kill().await;
    assert!(!logs.json_lines().is_empty(), "{}", logs.text);
    let passwords_set = logs.metric("PasswordsSet");
    assert_eq!(passwords_set.len(), 1, "{}", logs.text);
    assert_eq!(passwords_set[0]["Function"], "set-password");
    // Even at debug level: never the token, the password or the full address.
    for secret in [
        token.as_str(),
        password,
        "invited.binary@example.com",
        "test-client-secret",
    ] {
        assert!(
            !logs.text.to_lowercase().contains(&secret.to_lowercase()),
            "{secret} appears in the log:\n{}",
            logs.text
        );
    }
}

#[tokio::test]
async fn the_scim_binary_serves_an_identity_provider_and_logs_no_token_password_or_address() {
    let stack = TestStack::start().await;
    let token = stack.scim_token(seed::ACME_ADMIN_SUB).await;
    let mut vars = stack.vars.clone();
    vars.insert("RUST_LOG".into(), "debug".into());
    let function = LambdaProcess::start("scim", &vars)
        .await
        .expect("`cargo build --bins` ran before the tests");
    let email = "Scim.Binary@Example.com";
    let password = "Binary-Passw0rd-42";
    let user = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": email,
        "name": {"givenName": "Scim", "familyName": "Binary"},
        "password": password,
    });

    let invoke =
        |method: &str, path: &str, body: Option<&serde_json::Value>, query: &[(&str, &str)]| {
            function.invoke(scim_event(method, path, Some(&token), body, query))
        };
    let created = Response::of(
        &invoke("POST", SCIM_USERS_PATH, Some(&user), &[])
            .await
            .unwrap(),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.headers["content-type"], "application/scim+json");
    let filter = format!("userName eq \"{email}\"");
    let found = Response::of(
        &invoke("GET", SCIM_USERS_PATH, None, &[("filter", &filter)])
            .await
            .unwrap(),
    );
    assert_eq!(found.body["totalResults"], 1, "{}", found.body);
    let id = created.body["id"].as_str().unwrap();
    let deleted = invoke("DELETE", &format!("{SCIM_USERS_PATH}/{id}"), None, &[])
        .await
        .unwrap();
    assert_eq!(Response::of(&deleted).status, 204);

    let logs = function.kill().await;
    assert!(!logs.json_lines().is_empty(), "{}", logs.text);
    for secret in [token.as_str(), password, "scim.binary@example.com"] {
        assert!(
            !logs.text.to_lowercase().contains(&secret.to_lowercase()),
            "{secret} appears in the log:\n{}",
            logs.text
        );
    }
}
