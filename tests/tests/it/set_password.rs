//! set-password and resend-invitation: the invited person verifies the emailed link, sets a
//! password (all or nothing), and logs in with it; admins send a new link. Real Postgres, the
//! doubles over HTTP.

use serde_json::{Value, json};
use testkit::doubles::Fault;
use testkit::harness::{
    RESEND_PATH, Response, SET_PASSWORD_PATH, TestStack, VERIFY_PATH, create_event, public_event,
    resend_event, seed,
};

use crate::cleanup::{cleanup, scheduled_event};
use crate::openapi::{assert_documented, request_errors};

const NEW_PASSWORD: &str = "Corr3ct-Horse-Battery";

/// The link's token and address, from the newest password-setup email to `email`.
struct Link {
    token: String,
    email: String,
}

fn newest_link(stack: &TestStack, email: &str) -> Link {
    let sent = stack.email.emails_to(email);
    let (token, email) = sent
        .last()
        .and_then(|e| e.setup_token_and_email())
        .unwrap_or_else(|| panic!("no password-setup link was emailed to {email}"));
    Link { token, email }
}

/// Creates `email` in Acme as the admin panel would and returns the emailed link.
async fn invite(stack: &TestStack, email: &str) -> Link {
    let created = stack
        .call(create_event(
            seed::ACME_ADMIN_SUB,
            &json!({ "email": email }),
        ))
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["user"]["setupCompletedAt"], Value::Null);
    newest_link(stack, email)
}

/// A public call; every answer must be the one openapi.yaml documents for its status.
async fn call_public(stack: &TestStack, path: &str, body: &Value) -> Response {
    let response = stack.call_public(public_event(path, body)).await;
    assert_documented(path, &response, &format!("{path} {}", response.code()));
    response
}

async fn verify(stack: &TestStack, link: &Link) -> Response {
    let body = json!({"token": link.token, "email": link.email});
    call_public(stack, VERIFY_PATH, &body).await
}

async fn set_password(stack: &TestStack, link: &Link, password: &str) -> Response {
    let body = json!({"token": link.token, "email": link.email, "password": password});
    call_public(stack, SET_PASSWORD_PATH, &body).await
}

async fn resend(stack: &TestStack, caller: &str, email: &str) -> Response {
    let response = stack.call(resend_event(caller, email)).await;
    assert_documented(
        RESEND_PATH,
        &response,
        &format!("resend {}", response.code()),
    );
    response
}

/// Logs in to the Auth0 double as the admin app's login form would.
async fn logs_in(stack: &TestStack, email: &str, password: &str) -> bool {
    let response = reqwest::Client::new()
        .post(format!("{}/oauth/token", stack.auth0.base_url()))
        .json(&stack.auth0.login_request(email, password))
        .send()
        .await
        .unwrap();
    match response.status().as_u16() {
        200 => true,
        403 => false,
        other => panic!("unexpected login answer {other}"),
    }
}

/// (open tokens, used tokens, set-up completed) of the user with `email`.
async fn token_state(stack: &TestStack, email: &str) -> (i64, i64, bool) {
    let row = stack
        .sql()
        .await
        .query_one(
            "SELECT count(*) FILTER (WHERE t.used_at IS NULL),
                    count(*) FILTER (WHERE t.used_at IS NOT NULL),
                    bool_and(u.setup_completed_at IS NOT NULL)
               FROM users u LEFT JOIN password_reset_tokens t ON t.user_id = u.id
              WHERE u.email = $1",
            &[&email],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1), row.get(2))
}

const STILL_INVITED: (i64, i64, bool) = (1, 0, false);

/// The answer without its request id, to compare answers of different requests.
fn without_request_id(response: &Response) -> (u16, Value) {
    let mut body = response.body.clone();
    body.as_object_mut().unwrap().remove("requestId");
    (response.status, body)
}

#[tokio::test]
async fn an_invited_user_verifies_the_link_sets_a_password_and_logs_in_with_it() {
    let stack = TestStack::start().await;
    let link = invite(&stack, "New.Person@Acme.test").await;
    assert_eq!(link.email, "new.person@acme.test");
    assert!(!logs_in(&stack, "new.person@acme.test", NEW_PASSWORD).await);

    // Verifying twice consumes nothing.
    for _ in 0..2 {
        let verified = verify(&stack, &link).await;
        assert_eq!(verified.status, 200, "{}", verified.body);
        assert_eq!(verified.body["email"], "new.person@acme.test");
        assert_eq!(verified.body["tenantName"], "Acme Corp");
        assert_eq!(verified.body["role"], "USER");
        assert!(verified.body["expiresAt"].as_str().unwrap().ends_with('Z'));
    }
    assert_eq!(
        token_state(&stack, "new.person@acme.test").await,
        STILL_INVITED
    );

    let set = set_password(&stack, &link, NEW_PASSWORD).await;
    assert_eq!(set.status, 200, "{}", set.body);
    assert_eq!(set.body["email"], "new.person@acme.test");
    assert!(logs_in(&stack, "new.person@acme.test", NEW_PASSWORD).await);
    assert_eq!(
        token_state(&stack, "new.person@acme.test").await,
        (0, 1, true)
    );

    // The link is used up: both calls now get the generic answer, and nothing changes.
    for second in [
        set_password(&stack, &link, "An0ther-Passw0rd!").await,
        verify(&stack, &link).await,
    ] {
        second.assert_answer(400, "INVALID_LINK");
    }
    assert!(logs_in(&stack, "new.person@acme.test", NEW_PASSWORD).await);
    assert!(!logs_in(&stack, "new.person@acme.test", "An0ther-Passw0rd!").await);
}

#[tokio::test]
async fn unknown_used_and_mismatched_links_all_get_one_generic_answer_and_change_nothing() {
    let stack = TestStack::start().await;
    let link = invite(&stack, "ann@acme.test").await;
    let used = invite(&stack, "bob@acme.test").await;
    assert_eq!(set_password(&stack, &used, NEW_PASSWORD).await.status, 200);
    let updates = stack.auth0.calls("update_user");

    let unknown = Link {
        token: "ab".repeat(32),
        email: "ann@acme.test".into(),
    };
    let other_address = Link {
        token: link.token.clone(),
        email: "bob@acme.test".into(),
    };
    let mut answers = Vec::new();
    for probe in [&unknown, &other_address, &used] {
        for response in [
            verify(&stack, probe).await,
            set_password(&stack, probe, "Guess3d-Passw0rd").await,
        ] {
            assert_eq!(response.code(), "INVALID_LINK", "{}", response.body);
            answers.push(without_request_id(&response));
        }
    }
    assert!(
        answers.windows(2).all(|pair| pair[0] == pair[1]),
        "the answers tell the cases apart: {answers:?}"
    );
    assert_eq!(
        stack.auth0.calls("update_user"),
        updates,
        "Auth0 was called"
    );
    assert_eq!(token_state(&stack, "ann@acme.test").await, STILL_INVITED);
    assert_eq!(set_password(&stack, &link, NEW_PASSWORD).await.status, 200);
}

#[tokio::test]
async fn an_expired_link_is_410_telling_the_person_to_ask_for_a_new_invitation() {
    let stack = TestStack::start().await;
    let link = invite(&stack, "late@acme.test").await;
    stack
        .execute(
            "UPDATE password_reset_tokens SET created_at = now() - interval '3 days',
                    expires_at = now() - interval '1 day'",
        )
        .await;
    for response in [
        verify(&stack, &link).await,
        set_password(&stack, &link, NEW_PASSWORD).await,
    ] {
        response.assert_answer(410, "LINK_EXPIRED");
        assert!(
            response.body["message"]
                .as_str()
                .unwrap()
                .contains("new invitation"),
            "{}",
            response.body
        );
    }
    assert_eq!(stack.auth0.calls("update_user"), 0);
    assert!(!logs_in(&stack, "late@acme.test", NEW_PASSWORD).await);
}

#[tokio::test]
async fn malformed_requests_are_refused_before_any_query_runs() {
    let stack = TestStack::start().await;
    let link = invite(&stack, "ann@acme.test").await;
    // Any query would now wait for the lock and fail: a 4xx proves none ran.
    let mut locker = stack.sql().await;
    let lock = locker.transaction().await.unwrap();
    lock.batch_execute("LOCK TABLE password_reset_tokens, users IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();

    let token = link.token.as_str();
    let cases = [
        (
            VERIFY_PATH,
            json!({"email": "ann@acme.test"}),
            400,
            "INVALID_LINK",
            "token",
        ),
        (
            VERIFY_PATH,
            json!({"token": "abc", "email": "ann@acme.test"}),
            400,
            "INVALID_LINK",
            "token",
        ),
        (
            VERIFY_PATH,
            json!({"token": format!("{}z", &token[1..]), "email": "ann@acme.test"}),
            400,
            "INVALID_LINK",
            "token",
        ),
        (
            VERIFY_PATH,
            json!({"token": format!("{}\u{0}", &token[1..]), "email": "ann@acme.test"}),
            400,
            "INVALID_LINK",
            "token",
        ),
        (
            VERIFY_PATH,
            json!({"token": token, "email": "ann"}),
            400,
            "INVALID_LINK",
            "email",
        ),
        (VERIFY_PATH, json!([token]), 400, "VALIDATION_ERROR", "body"),
        (
            SET_PASSWORD_PATH,
            json!({"token": token, "email": "ann@acme.test"}),
            400,
            "VALIDATION_ERROR",
            "password",
        ),
        (
            SET_PASSWORD_PATH,
            json!({"token": token, "email": "ann@acme.test", "password": "x".repeat(129)}),
            400,
            "VALIDATION_ERROR",
            "password",
        ),
        (
            SET_PASSWORD_PATH,
            json!({"token": token, "email": "ann@acme.test", "password": "Go\u{0}od-Passw0rd"}),
            400,
            "VALIDATION_ERROR",
            "password",
        ),
        (
            SET_PASSWORD_PATH,
            json!({"token": token, "email": "ann@acme.test", "password": "x".repeat(5_000)}),
            413,
            "PAYLOAD_TOO_LARGE",
            "body",
        ),
    ];
    for (path, body, status, code, field) in cases {
        let response = call_public(&stack, path, &body).await;
        assert_eq!(
            (
                response.status,
                response.code(),
                response.body["field"].as_str()
            ),
            (status, code, Some(field)),
            "{path} {body}: {}",
            response.body
        );
    }
    let not_json = public_event(SET_PASSWORD_PATH, &json!(null));
    let mut not_json = not_json;
    not_json["body"] = json!("{\"token\": ");
    assert_eq!(stack.call_public(not_json).await.code(), "INVALID_JSON");
    let mut form = public_event(
        SET_PASSWORD_PATH,
        &json!({"token": token, "password": "Correct-Horse-9"}),
    );
    form["headers"]["content-type"] = json!("text/plain");
    let answer = stack.call_public(form).await;
    assert_eq!(
        (answer.status, answer.code(), answer.body["field"].as_str()),
        (415, "UNSUPPORTED_MEDIA_TYPE", Some("Content-Type"))
    );
    // The real token second: a parser keeping the last key would have taken it.
    let mut twice = public_event(SET_PASSWORD_PATH, &json!(null));
    twice["body"] = json!(format!(
        r#"{{"token":"{}","token":"{token}","password":"Correct-Horse-9"}}"#,
        "0".repeat(64)
    ));
    let answer = stack.call_public(twice).await;
    assert_eq!((answer.status, answer.code()), (400, "INVALID_JSON"));
    let message = answer.body["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("body: the key `token` appears twice in one object at line 1 column "),
        "{message}"
    );
    lock.rollback().await.unwrap();
    assert_eq!(stack.auth0.calls("update_user"), 0);
    assert_eq!(token_state(&stack, "ann@acme.test").await, STILL_INVITED);
}

#[tokio::test]
async fn a_password_auth0_refuses_is_400_with_auth0s_message_and_the_link_still_works() {
    let stack = TestStack::start().await;
    let link = invite(&stack, "ann@acme.test").await;
    let weak = set_password(&stack, &link, "short").await;
    assert_eq!(
        (weak.status, weak.code(), weak.body["field"].as_str()),
        (400, "WEAK_PASSWORD", Some("password"))
    );
    assert!(
        weak.body["message"]
            .as_str()
            .unwrap()
            .contains("PasswordStrengthError")
    );

    // Other rules of Auth0's policy come back the same way, with Auth0's own words.
    let history = Fault::status("update_user", 400).with_body(json!({
        "statusCode": 400,
        "error": "Bad Request",
        "message": "PasswordHistoryError: Password has previously been used",
    }));
    stack.auth0.inject(history);
    let reused = set_password(&stack, &link, NEW_PASSWORD).await;
    reused.assert_answer(400, "WEAK_PASSWORD");
    assert!(
        reused.body["message"]
            .as_str()
            .unwrap()
            .contains("previously been used")
    );

    assert_eq!(token_state(&stack, "ann@acme.test").await, STILL_INVITED);
    assert_eq!(set_password(&stack, &link, NEW_PASSWORD).await.status, 200);
    assert!(logs_in(&stack, "ann@acme.test", NEW_PASSWORD).await);
}

#[tokio::test]
async fn every_failing_step_keeps_the_link_working_and_a_retry_succeeds() {
    let stack = TestStack::start().await;
    // (label, how to break it, expected status and code, whether it is a database sabotage)
    let auth0_cases: Vec<(&str, Vec<Fault>, u16, &str)> = vec![
        (
            "auth0 error",
            vec![Fault::status("update_user", 500)],
            502,
            "AUTH0_FAILED",
        ),
        (
            "auth0 connection dropped",
            vec![Fault::drop_connection("update_user")],
            503,
            "AUTH0_UNAVAILABLE",
        ),
        (
            "auth0 keeps answering 429",
            vec![Fault::status("update_user", 429).times(3)],
            503,
            "AUTH0_UNAVAILABLE",
        ),
        (
            "auth0 slower than the timeout",
            vec![Fault::delay("update_user", 2_500)],
            503,
            "AUTH0_UNAVAILABLE",
        ),
    ];
    for (n, (label, faults, status, code)) in auth0_cases.into_iter().enumerate() {
        let email = format!("auth0.case{n}@acme.test");
        let link = invite(&stack, &email).await;
        for fault in faults {
            stack.auth0.inject(fault);
        }
        let failed = set_password(&stack, &link, NEW_PASSWORD).await;
        assert_eq!(
            (failed.status, failed.code()),
            (status, code),
            "{label}: {}",
            failed.body
        );
        assert!(
            failed.body["message"]
                .as_str()
                .unwrap()
                .contains("link still works"),
            "{label}"
        );
        assert_eq!(token_state(&stack, &email).await, STILL_INVITED, "{label}");
        let retried = set_password(&stack, &link, NEW_PASSWORD).await;
        assert_eq!(retried.status, 200, "{label}: retry {}", retried.body);
        assert!(logs_in(&stack, &email, NEW_PASSWORD).await, "{label}");
    }

    // Database steps after Auth0 took the password: the rollback keeps the link, and Auth0
    // setting a password again is harmless, so the retry (even with another password) works.
    let database_cases = [
        (
            "marking the token used",
            ("password_reset_tokens", "BEFORE UPDATE"),
        ),
        ("COMMIT", ("users", "COMMIT AFTER UPDATE")),
    ];
    for (n, (label, (table, timing))) in database_cases.into_iter().enumerate() {
        let email = format!("db.case{n}@acme.test");
        let link = invite(&stack, &email).await;
        stack.sabotage(table, timing).await;
        let failed = set_password(&stack, &link, "F1rst-Passw0rd!").await;
        assert_eq!(
            (failed.status, failed.code()),
            (500, "INTERNAL_ERROR"),
            "{label}: {}",
            failed.body
        );
        assert!(
            !failed.body["message"]
                .as_str()
                .unwrap()
                .contains("sabotaged"),
            "{label}"
        );
        stack.repair().await;
        assert_eq!(token_state(&stack, &email).await, STILL_INVITED, "{label}");
        assert_eq!(verify(&stack, &link).await.status, 200, "{label}");
        let retried = set_password(&stack, &link, NEW_PASSWORD).await;
        assert_eq!(retried.status, 200, "{label}: retry {}", retried.body);
        assert!(logs_in(&stack, &email, NEW_PASSWORD).await, "{label}");
        assert!(!logs_in(&stack, &email, "F1rst-Passw0rd!").await, "{label}");
    }

    // The token lookup itself: the table is locked by someone else past the lock timeout.
    let email = "locked@acme.test";
    let link = invite(&stack, email).await;
    let mut locker = stack.sql().await;
    let lock = locker.transaction().await.unwrap();
    lock.batch_execute("LOCK TABLE password_reset_tokens IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let failed = set_password(&stack, &link, NEW_PASSWORD).await;
    failed.assert_answer(503, "DATABASE_BUSY");
    lock.rollback().await.unwrap();
    assert_eq!(token_state(&stack, email).await, STILL_INVITED);
    assert_eq!(set_password(&stack, &link, NEW_PASSWORD).await.status, 200);
}

#[tokio::test]
async fn two_concurrent_requests_with_one_link_give_one_success_and_one_invalid_link() {
    let stack = TestStack::start().await;
    let link = invite(&stack, "twice@acme.test").await;
    // The first holds the token's lock while Auth0 takes its time.
    stack.auth0.inject(Fault::delay("update_user", 300));
    let (a, b) = tokio::join!(
        set_password(&stack, &link, NEW_PASSWORD),
        set_password(&stack, &link, "Other-Passw0rd!")
    );
    let mut outcomes = vec![
        (a.status, a.code().to_string()),
        (b.status, b.code().to_string()),
    ];
    outcomes.sort();
    assert_eq!(
        outcomes,
        vec![(200, String::new()), (400, "INVALID_LINK".to_string())]
    );
    assert_eq!(stack.auth0.calls("update_user"), 1);
    assert_eq!(token_state(&stack, "twice@acme.test").await, (0, 1, true));
}

#[tokio::test]
async fn a_resent_invitation_replaces_the_old_link_which_stops_working() {
    let stack = TestStack::start().await;
    let old = invite(&stack, "ann@acme.test").await;
    let resent = resend(&stack, seed::ACME_ADMIN_SUB, "Ann@Acme.test").await;
    assert_eq!(resent.status, 200, "{}", resent.body);
    assert_eq!(resent.body["user"]["email"], "ann@acme.test");
    assert_eq!(resent.body["user"]["setupCompletedAt"], Value::Null);
    assert!(resent.body["expiresAt"].is_string());

    let emails = stack.email.emails_to("ann@acme.test");
    assert_eq!(emails.len(), 2, "one new email");
    assert_ne!(emails[0].idempotency_key, emails[1].idempotency_key);
    let new = newest_link(&stack, "ann@acme.test");
    assert_ne!(new.token, old.token);
    assert_eq!(token_state(&stack, "ann@acme.test").await, (1, 1, false));

    assert_eq!(verify(&stack, &old).await.code(), "INVALID_LINK");
    assert_eq!(
        set_password(&stack, &old, NEW_PASSWORD).await.code(),
        "INVALID_LINK"
    );
    assert_eq!(set_password(&stack, &new, NEW_PASSWORD).await.status, 200);
    assert!(logs_in(&stack, "ann@acme.test", NEW_PASSWORD).await);

    // Once the password is set there is nothing to resend.
    let again = resend(&stack, seed::ACME_ADMIN_SUB, "ann@acme.test").await;
    again.assert_answer(409, "ALREADY_ACTIVATED");
    assert_eq!(stack.email.emails_to("ann@acme.test").len(), 2);
}

#[tokio::test]
async fn a_resend_whose_email_fails_changes_nothing_and_the_old_link_still_works() {
    let stack = TestStack::start().await;
    let old = invite(&stack, "ann@acme.test").await;
    // The sender retries once with the same key: both attempts fail.
    stack
        .email
        .inject(Fault::status("send_email", 500).times(2));
    let resent = resend(&stack, seed::ACME_ADMIN_SUB, "ann@acme.test").await;
    resent.assert_answer(502, "EMAIL_FAILED");
    assert_eq!(token_state(&stack, "ann@acme.test").await, STILL_INVITED);
    assert_eq!(stack.email.emails_to("ann@acme.test").len(), 1);
    assert_eq!(verify(&stack, &old).await.status, 200);
    assert_eq!(set_password(&stack, &old, NEW_PASSWORD).await.status, 200);
}

#[tokio::test]
async fn a_resend_is_refused_for_other_tenants_unknown_users_and_non_admins_changing_nothing() {
    let stack = TestStack::start().await;
    let link = invite(&stack, "ann@acme.test").await;
    let cases = [
        (
            seed::GLOBEX_ADMIN_SUB,
            "ann@acme.test",
            404,
            "USER_NOT_FOUND",
        ),
        (
            seed::ACME_ADMIN_SUB,
            "nobody@acme.test",
            404,
            "USER_NOT_FOUND",
        ),
        (seed::ACME_USER_SUB, "ann@acme.test", 403, "NOT_AN_ADMIN"),
        (
            seed::ACME_INACTIVE_ADMIN_SUB,
            "ann@acme.test",
            403,
            "CALLER_INACTIVE",
        ),
        (
            seed::ACME_ADMIN_SUB,
            "staff@acme.test",
            409,
            "ALREADY_ACTIVATED",
        ),
        (
            seed::ACME_ADMIN_SUB,
            "not an address",
            400,
            "VALIDATION_ERROR",
        ),
    ];
    for (caller, email, status, code) in cases {
        let response = resend(&stack, caller, email).await;
        assert_eq!(
            (response.status, response.code()),
            (status, code),
            "{email}: {}",
            response.body
        );
    }
    assert_eq!(
        stack.email.emails().len(),
        1,
        "only the first invitation was sent"
    );
    assert_eq!(token_state(&stack, "ann@acme.test").await, STILL_INVITED);
    assert_eq!(verify(&stack, &link).await.status, 200);
}

#[tokio::test]
async fn cleanups_token_purge_keeps_the_open_token_of_a_user_still_in_set_up() {
    let stack = TestStack::start().await;
    let link = invite(&stack, "slow@acme.test").await;
    // Expired long past the retention period, and never used.
    stack
        .execute(
            "UPDATE password_reset_tokens SET created_at = now() - interval '60 days',
                    expires_at = now() - interval '59 days'",
        )
        .await;
    let summary = cleanup(&stack, scheduled_event()).await;
    assert_eq!(summary.removed.reset_tokens, 0, "{summary:?}");
    assert_eq!(token_state(&stack, "slow@acme.test").await, STILL_INVITED);
    // So the person is told to ask for a new invitation, not that the link is wrong.
    assert_eq!(verify(&stack, &link).await.code(), "LINK_EXPIRED");
}

#[test]
fn the_public_request_schemas_refuse_what_the_handler_refuses() {
    use shared::set_password::request::{parse_link, parse_set_password};
    let token = "0123456789abcdef".repeat(4);
    let accepted = [
        json!({"token": token, "email": "a@acme.test", "password": "x"}),
        json!({"token": token.to_uppercase(), "email": " A@Acme.TEST ", "password": "Passw0rd!", "extra": 1}),
    ];
    for body in accepted {
        assert!(
            request_errors(SET_PASSWORD_PATH, &body).is_empty(),
            "{body}"
        );
        assert!(parse_set_password(&body).is_ok(), "{body}");
    }
    let refused = [
        json!({"token": token, "email": "a@acme.test"}),
        json!({"token": &token[1..], "email": "a@acme.test", "password": "x"}),
        json!({"token": token, "email": "nope", "password": "x"}),
        json!({"token": token, "email": "a@acme.test", "password": ""}),
        json!({"token": token, "email": "a@acme.test", "password": "x".repeat(129)}),
        json!({"email": "a@acme.test", "password": "x"}),
    ];
    for body in refused {
        assert!(
            !request_errors(SET_PASSWORD_PATH, &body).is_empty(),
            "{body}"
        );
        assert!(parse_set_password(&body).is_err(), "{body}");
    }
    let link = json!({"token": token, "email": "a@acme.test"});
    assert!(request_errors(VERIFY_PATH, &link).is_empty());
    assert!(parse_link(&link).is_ok());
    assert!(!request_errors(VERIFY_PATH, &json!({"token": token})).is_empty());
}
