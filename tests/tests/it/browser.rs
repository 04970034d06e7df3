//! The set-password page (`web/set-password/`) in a real browser: Debian's headless Chromium,
//! driven through ChromeDriver (`testkit::browser`), on the page the local stack serves at
//! `FRONTEND_URL/auth/set-password`, calling the real `set-password` binary through the local
//! gateway, cross-origin (the page on `localhost`, the API on `127.0.0.1`) so the browser
//! enforces CORS. What is checked is what a person sees and can do, then the rows and the Auth0
//! double's login.

use std::time::Duration;

use serde_json::{Value, json};
use testkit::browser::Browser;
use testkit::local::stack::LocalStack;

const WAIT: Duration = Duration::from_secs(15);
const PASSWORD: &str = "Corr3ct-Horse-Battery";

/// Creates `email` through the gateway as the seeded admin (what the admin panel does).
async fn invite(stack: &LocalStack, email: &str) -> String {
    let token = stack.token("admin@acme.test").await;
    let response = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(format!("{}/api/direct-users/create", stack.api()))
        .bearer_auth(token)
        .json(&json!({ "email": email }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    let link = stack.newest_link(email);
    assert!(
        link.starts_with(&format!("{}/auth/set-password?", stack.frontend_url)),
        "{link}"
    );
    link
}

async fn shown(browser: &Browser, selector: &str) -> String {
    let element = browser.wait_displayed(selector, WAIT).await.unwrap();
    browser.text(&element).await.unwrap()
}

async fn fill(browser: &Browser, password: &str, confirm: &str) {
    for (id, text) in [("#password", password), ("#confirm", confirm)] {
        let field = browser.find(id).await.unwrap();
        browser.clear(&field).await.unwrap();
        browser.type_into(&field, text).await.unwrap();
    }
    let submit = browser.find("#submit").await.unwrap();
    browser.click(&submit).await.unwrap();
}

#[tokio::test]
async fn a_person_opens_the_emailed_link_sets_a_password_and_logs_in_with_it() {
    let stack = LocalStack::start().await;
    let browser = Browser::start().await.expect("headless Chromium starts");
    let link = invite(&stack, "invited@acme.test").await;

    // The link is checked on load; the form names the person and the company, and the focus is
    // on its heading.
    browser.goto(&link).await.unwrap();
    let form = shown(&browser, "#form-screen").await;
    assert!(form.contains("Set your password"), "{form}");
    assert!(
        form.contains("Choose the password for invited@acme.test at Acme Corp."),
        "{form}"
    );
    assert_eq!(browser.focused_id().await.unwrap(), "form-title");
    for (field, label) in [
        ("password", "New password"),
        ("confirm", "Repeat the new password"),
    ] {
        let label_element = browser.find(&format!("label[for={field}]")).await.unwrap();
        assert_eq!(browser.text(&label_element).await.unwrap(), label);
    }

    // Two different passwords: said under the second field, which takes the focus.
    fill(&browser, PASSWORD, "something else").await;
    let mismatch = shown(&browser, "#confirm-error").await;
    assert_eq!(mismatch, "The two passwords are not the same.");
    assert_eq!(browser.focused_id().await.unwrap(), "confirm");

    // A weak password: Auth0's policy message, on the field, which is marked invalid and
    // focused (its description, read with it, is the message).
    fill(&browser, "weak", "weak").await;
    let refused = shown(&browser, "#password-error").await;
    assert_eq!(
        refused,
        "This password is not accepted: Password is too weak"
    );
    assert_eq!(browser.focused_id().await.unwrap(), "password");
    let field = browser.find("#password").await.unwrap();
    assert_eq!(
        browser
            .attribute(&field, "aria-invalid")
            .await
            .unwrap()
            .as_deref(),
        Some("true")
    );
    let described = browser.attribute(&field, "aria-describedby").await.unwrap();
    assert!(described.unwrap_or_default().contains("password-error"));
    assert!(
        stack
            .auth0
            .log_in("invited@acme.test", "weak", "openid")
            .await
            .0
            != 200
    );

    // A good one: done, and the person can log in with it.
    fill(&browser, PASSWORD, PASSWORD).await;
    let done = shown(&browser, "#done-screen").await;
    assert!(done.contains("Your password is set"), "{done}");
    assert!(
        done.contains("Sign in with invited@acme.test and your new password."),
        "{done}"
    );
    assert_eq!(browser.focused_id().await.unwrap(), "done-title");
    let (status, tokens) = stack
        .auth0
        .log_in("invited@acme.test", PASSWORD, "openid")
        .await;
    assert_eq!(status, 200, "{tokens}");
    assert!(tokens["access_token"].is_string());
    let row = stack
        .sql()
        .await
        .query_one(
            "SELECT setup_completed_at IS NOT NULL FROM users WHERE email = 'invited@acme.test'",
            &[],
        )
        .await
        .unwrap();
    assert!(row.get::<_, bool>(0));

    // The page's calls went across origins, to the gateway, and passed CORS.
    let calls = browser
        .execute(
            "return performance.getEntriesByType('resource').map(e => e.name);",
            vec![],
        )
        .await
        .unwrap();
    let calls: Vec<&str> = calls
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let verify = format!("{}/api/auth/set-password/verify", stack.api());
    assert!(calls.contains(&verify.as_str()), "{calls:?}");
    assert!(!stack.api().contains("localhost") && stack.frontend_url.contains("localhost"));

    // The same link again: used up.
    browser.goto(&link).await.unwrap();
    let used = shown(&browser, "#invalid-screen").await;
    assert!(used.contains("This link does not work"), "{used}");
    assert!(used.contains("Open the newest invitation email"), "{used}");
    assert_eq!(browser.focused_id().await.unwrap(), "invalid-title");

    browser.quit().await;
}

#[tokio::test]
async fn an_expired_link_shows_its_screen_and_a_page_from_another_origin_is_refused_by_cors() {
    let stack = LocalStack::start().await;
    let browser = Browser::start().await.expect("headless Chromium starts");
    let link = invite(&stack, "late@acme.test").await;
    stack
        .sql()
        .await
        .batch_execute(
            "UPDATE password_reset_tokens SET created_at = now() - interval '3 days',
                    expires_at = now() - interval '1 day'",
        )
        .await
        .unwrap();

    browser.goto(&link).await.unwrap();
    let expired = shown(&browser, "#expired-screen").await;
    assert!(expired.contains("This link has expired"), "{expired}");
    assert!(
        expired.contains("Ask your administrator to send you a new invitation."),
        "{expired}"
    );
    assert_eq!(browser.focused_id().await.unwrap(), "expired-title");

    // The same page served from an origin the public API's CORS does not allow (127.0.0.1
    // instead of localhost): the browser refuses the call, and the page says it could not
    // reach the server.
    let elsewhere = link.replacen("http://localhost:", "http://127.0.0.1:", 1);
    assert_ne!(elsewhere, link);
    browser.console().await.unwrap();
    browser.goto(&elsewhere).await.unwrap();
    let refused = shown(&browser, "#error-screen").await;
    assert!(
        refused.contains("We could not reach the server"),
        "{refused}"
    );
    let console = browser.console().await.unwrap().join("\n");
    assert!(console.contains("CORS policy"), "{console}");

    browser.quit().await;
}
