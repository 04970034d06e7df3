use std::time::Duration;

use reqwest::Client;
use serde_json::{Value, json};

use super::token::SCOPE;
use super::*;

const STRONG_PASSWORD: &str = "Str0ng-passw0rd";

/// A running double, an HTTP client and a valid Management API token.
struct Session {
    double: Auth0Double,
    http: Client,
    token: String,
}

async fn tenant_with(config: Auth0Config) -> Session {
    let double = Auth0Double::start(config).await.unwrap();
    let http = Client::new();
    let token = fetch_token(&double, &http).await;
    Session {
        double,
        http,
        token,
    }
}

async fn tenant() -> Session {
    tenant_with(Auth0Config::default()).await
}

fn token_request(double: &Auth0Double) -> Value {
    json!({
        "grant_type": "client_credentials",
        "client_id": "test-client-id",
        "client_secret": "test-client-secret",
        "audience": double.audience(),
    })
}

async fn post_token(double: &Auth0Double, http: &Client, body: &Value) -> (u16, Value) {
    let url = format!("{}/oauth/token", double.base_url());
    read(http.post(url).json(body).send().await.unwrap()).await
}

async fn fetch_token(double: &Auth0Double, http: &Client) -> String {
    let (status, body) = post_token(double, http, &token_request(double)).await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_string()
}

async fn read(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn new_user(email: &str) -> Value {
    json!({
        "connection": "Username-Password-Authentication",
        "email": email,
        "password": STRONG_PASSWORD,
        "verify_email": false,
        "app_metadata": { "created_by": "signup-api" },
    })
}

impl Session {
    fn url(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.double.base_url())
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.url(path))
            .bearer_auth(&self.token)
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> (u16, Value) {
        read(request.send().await.unwrap()).await
    }

    async fn create(&self, body: &Value) -> (u16, Value) {
        let request = self
            .request(reqwest::Method::POST, "/api/v2/users")
            .json(body);
        self.send(request).await
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.send(self.request(reqwest::Method::GET, path)).await
    }

    async fn patch(&self, user_id: &str, body: &Value) -> (u16, Value) {
        let path = user_path(user_id);
        self.send(self.request(reqwest::Method::PATCH, &path).json(body))
            .await
    }

    async fn search(&self, params: &[(&str, &str)]) -> (u16, Value) {
        let url = url::Url::parse_with_params(&self.url("/api/v2/users"), params).unwrap();
        let request = self.http.get(url).bearer_auth(&self.token);
        self.send(request).await
    }
}

fn user_path(user_id: &str) -> String {
    let encoded: String = url::form_urlencoded::byte_serialize(user_id.as_bytes()).collect();
    format!("/api/v2/users/{encoded}")
}

// --- token ---

#[tokio::test]
async fn a_token_is_issued_for_the_right_client_and_audience() {
    let double = Auth0Double::start(Auth0Config::default()).await.unwrap();
    let http = Client::new();
    let url = format!("{}/oauth/token", double.base_url());
    let response = http
        .post(url)
        .json(&token_request(&double))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["content-type"],
        "application/json; charset=utf-8"
    );
    assert_eq!(response.headers()["cache-control"], "no-store");
    let (status, body) = read(response).await;
    assert_eq!(status, 200);
    assert!(body["access_token"].as_str().unwrap().starts_with("eyJ"));
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 86_400);
    assert_eq!(body["scope"], SCOPE);
    assert_eq!(double.token_requests(), 1);
}

#[tokio::test]
async fn a_form_encoded_token_request_works_like_a_json_one() {
    let double = Auth0Double::start(Auth0Config::default()).await.unwrap();
    let audience = double.audience();
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", "test-client-id"),
        ("client_secret", "test-client-secret"),
        ("audience", audience.as_str()),
    ];
    let url = format!("{}/oauth/token", double.base_url());
    let response = Client::new().post(url).form(&form).send().await.unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_wrong_client_secret_is_refused_with_401_access_denied() {
    let double = Auth0Double::start(Auth0Config::default()).await.unwrap();
    let mut request = token_request(&double);
    request["client_secret"] = "nope".into();
    let (status, body) = post_token(&double, &Client::new(), &request).await;
    assert_eq!(status, 401);
    assert_eq!(
        body,
        json!({"error": "access_denied", "error_description": "Unauthorized"})
    );
    assert_eq!(double.token_requests(), 1);
}

#[tokio::test]
async fn a_foreign_audience_is_refused_with_403_and_the_client_grant_hint() {
    let double = Auth0Double::start(Auth0Config::default()).await.unwrap();
    let mut request = token_request(&double);
    request["audience"] = "https://elsewhere.example/api/v2/".into();
    let (status, body) = post_token(&double, &Client::new(), &request).await;
    assert_eq!(status, 403);
    assert_eq!(body["error"], "access_denied");
    let description = body["error_description"].as_str().unwrap();
    assert!(description.starts_with(
        "Client is not authorized to access \"https://elsewhere.example/api/v2/\". You need to create a \"client-grant\""
    ));
}

#[tokio::test]
async fn a_grant_other_than_client_credentials_is_refused_with_400() {
    let double = Auth0Double::start(Auth0Config::default()).await.unwrap();
    let mut request = token_request(&double);
    request["grant_type"] = "password".into();
    let (status, body) = post_token(&double, &Client::new(), &request).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "unsupported_grant_type");
}

#[tokio::test]
async fn a_rotated_secret_refuses_the_old_one_but_keeps_issued_tokens_valid() {
    let tenant = tenant().await;
    tenant.double.set_client_secret("rotated");
    let (status, _) =
        post_token(&tenant.double, &tenant.http, &token_request(&tenant.double)).await;
    assert_eq!(status, 401);
    assert_eq!(
        tenant.get("/api/v2/users-by-email?email=a%40b.io").await.0,
        200
    );
}

// --- bearer tokens ---

#[tokio::test]
async fn management_calls_without_an_issued_token_get_401_invalid_token() {
    let tenant = tenant().await;
    let url = tenant.url("/api/v2/users/auth0%7Cabc");
    let expected = json!({
        "statusCode": 401,
        "error": "Unauthorized",
        "message": "Invalid token",
        "attributes": { "error": "Invalid token" },
    });
    let missing = read(tenant.http.get(&url).send().await.unwrap()).await;
    assert_eq!(missing, (401, expected.clone()));
    let forged = read(
        tenant
            .http
            .get(&url)
            .bearer_auth("eyJforged")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(forged, (401, expected));
}

#[tokio::test]
async fn an_expired_token_gets_the_expired_token_message() {
    let tenant = tenant().await;
    tenant.double.expire_tokens();
    let (status, body) = tenant.get("/api/v2/users/auth0%7Cabc").await;
    assert_eq!(status, 401);
    let message = "Expired token received for JSON Web Token validation";
    assert_eq!(body["message"], message);
    assert_eq!(body["attributes"]["error"], message);
}

// --- create ---

#[tokio::test]
async fn creating_a_user_answers_201_with_the_auth0_user_shape() {
    let tenant = tenant().await;
    let (status, user) = tenant.create(&new_user("Ann.Lee@Example.COM")).await;
    assert_eq!(status, 201, "{user}");
    let user_id = user["user_id"].as_str().unwrap();
    let local_id = user_id.strip_prefix("auth0|").unwrap();
    assert_eq!(local_id.len(), 24);
    assert!(
        local_id
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    );
    assert_eq!(user["email"], "ann.lee@example.com");
    assert_eq!(user["email_verified"], false);
    assert_eq!(user["name"], "ann.lee@example.com");
    assert_eq!(user["nickname"], "ann.lee");
    assert_eq!(user["app_metadata"], json!({"created_by": "signup-api"}));
    assert_eq!(user["user_metadata"], json!({}));
    assert_eq!(
        user["identities"],
        json!([{
            "connection": "Username-Password-Authentication",
            "user_id": local_id,
            "provider": "auth0",
            "isSocial": false,
        }])
    );
    let created_at = user["created_at"].as_str().unwrap();
    assert!(DateTime::parse_from_rfc3339(created_at).is_ok());
    assert!(created_at.ends_with('Z') && created_at.len() == "2024-01-01T00:00:00.000Z".len());
    assert_eq!(user["updated_at"], created_at);
    assert!(user["picture"].as_str().unwrap().starts_with("https://"));
    assert!(tenant.double.password_matches(user_id, STRONG_PASSWORD));
}

#[tokio::test]
async fn the_password_never_appears_in_answers_or_control_state() {
    let tenant = tenant().await;
    let (_, user) = tenant.create(&new_user("ann@example.com")).await;
    let (_, found) = tenant
        .get(&user_path(user["user_id"].as_str().unwrap()))
        .await;
    let state = tenant.double.app.snapshot();
    for shown in [user, found, state, json!(tenant.double.users())] {
        assert!(!shown.to_string().contains(STRONG_PASSWORD));
        assert!(!shown.to_string().contains("password"));
    }
}

#[tokio::test]
async fn creating_an_existing_email_in_another_case_conflicts_with_409() {
    let tenant = tenant().await;
    assert_eq!(tenant.create(&new_user("ann@example.com")).await.0, 201);
    let (status, body) = tenant.create(&new_user("ANN@example.com")).await;
    assert_eq!(status, 409);
    assert_eq!(
        body,
        json!({
            "statusCode": 409,
            "error": "Conflict",
            "message": "The user already exists.",
            "errorCode": "auth0_idp_error",
        })
    );
    assert_eq!(tenant.double.users_with_email("Ann@Example.com").len(), 1);
}

#[tokio::test]
async fn a_weak_password_is_refused_with_password_strength_error() {
    let tenant = tenant().await;
    for weak in ["Sh0rt!", "alllowercase1", "NoDigitsOrSymbols"] {
        let mut body = new_user("ann@example.com");
        body["password"] = weak.into();
        let (status, answer) = tenant.create(&body).await;
        assert_eq!(status, 400, "{weak}");
        assert_eq!(
            answer,
            json!({
                "statusCode": 400,
                "error": "Bad Request",
                "message": "PasswordStrengthError: Password is too weak",
            })
        );
    }
    assert!(tenant.double.users().is_empty());
}

#[tokio::test]
async fn malformed_create_payloads_are_refused_as_invalid_body() {
    let tenant = tenant().await;
    let with = |change: &dyn Fn(&mut Value)| {
        let mut body = new_user("ann@example.com");
        change(&mut body);
        body
    };
    let cases = [
        with(&|body| body["favourite_colour"] = "blue".into()),
        with(&|body| body["email_verified"] = "yes".into()),
        with(&|body| body["app_metadata"] = json!(["not", "an", "object"])),
        with(&|body| {
            body.as_object_mut()
                .unwrap()
                .remove("password")
                .map(drop)
                .unwrap_or(())
        }),
        with(&|body| body["email"] = "not-an-email".into()),
        with(&|body| body["app_metadata"] = json!({"created.by": "x"})),
        with(&|body| body["app_metadata"] = json!({"nested": {"$set": 1}})),
    ];
    for case in cases {
        let (status, body) = tenant.create(&case).await;
        assert_eq!(status, 400, "{case}");
        assert_eq!(body["errorCode"], "invalid_body", "{case}");
        assert_eq!(body["error"], "Bad Request");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .starts_with("Payload validation error: '")
        );
    }
    assert!(tenant.double.users().is_empty());
}

#[tokio::test]
async fn an_unknown_connection_is_refused_with_inexistent_connection() {
    let tenant = tenant().await;
    let mut body = new_user("ann@example.com");
    body["connection"] = "google-oauth2".into();
    let (status, answer) = tenant.create(&body).await;
    assert_eq!(status, 400);
    assert_eq!(answer["message"], "The connection does not exist.");
    assert_eq!(answer["errorCode"], "inexistent_connection");
}

// --- read, update, delete ---

#[tokio::test]
async fn users_by_email_matches_the_stored_lower_case_email_exactly() {
    let tenant = tenant().await;
    tenant.create(&new_user("Ann@Example.com")).await;
    let (status, found) = tenant
        .get("/api/v2/users-by-email?email=ann%40example.com")
        .await;
    assert_eq!(status, 200);
    assert_eq!(found.as_array().unwrap().len(), 1);
    let (_, mixed_case) = tenant
        .get("/api/v2/users-by-email?email=Ann%40Example.com")
        .await;
    assert_eq!(mixed_case, json!([]));
    let (status, missing) = tenant.get("/api/v2/users-by-email").await;
    assert_eq!(status, 400);
    assert_eq!(missing["errorCode"], "invalid_query_string");
}

#[tokio::test]
async fn a_user_is_found_by_url_encoded_id_and_an_unknown_id_is_404() {
    let tenant = tenant().await;
    let (_, user) = tenant.create(&new_user("ann@example.com")).await;
    let (status, found) = tenant
        .get(&user_path(user["user_id"].as_str().unwrap()))
        .await;
    assert_eq!((status, &found), (200, &user));
    let (status, body) = tenant
        .get("/api/v2/users/auth0%7C000000000000000000000000")
        .await;
    assert_eq!(status, 404);
    assert_eq!(
        body,
        json!({
            "statusCode": 404,
            "error": "Not Found",
            "message": "The user does not exist.",
            "errorCode": "inexistent_user",
        })
    );
}

#[tokio::test]
async fn patch_merges_app_metadata_at_the_top_level_and_drops_null_keys() {
    let tenant = tenant().await;
    let mut body = new_user("ann@example.com");
    body["app_metadata"] = json!({"created_by": "signup-api", "tenant": "t1", "plan": {"tier": 1}});
    let (_, user) = tenant.create(&body).await;
    let path = user_path(user["user_id"].as_str().unwrap());
    let change = json!({"app_metadata": {"tenant": null, "plan": {"seats": 5}, "synced": true}, "blocked": true});
    let (status, updated) = tenant
        .send(tenant.request(reqwest::Method::PATCH, &path).json(&change))
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(
        updated["app_metadata"],
        json!({"created_by": "signup-api", "plan": {"seats": 5}, "synced": true})
    );
    assert_eq!(updated["blocked"], true);
    assert_eq!(tenant.get(&path).await.1, updated);
}

#[tokio::test]
async fn patch_metadata_merges_key_by_key_and_an_empty_object_clears_it() {
    let tenant = tenant().await;
    let mut body = new_user("ann@example.com");
    body["app_metadata"] =
        json!({"created_by": "signup-api", "role": "admin", "plan": {"tier": 1, "seats": 3}});
    let (_, user) = tenant.create(&body).await;
    let user_id = user["user_id"].as_str().unwrap();
    let metadata = |answer: (u16, Value)| {
        assert_eq!(answer.0, 200, "{}", answer.1);
        answer.1["app_metadata"].clone()
    };

    let change = json!({"app_metadata": {"role": null, "plan": {"tier": 2}}});
    assert_eq!(
        metadata(tenant.patch(user_id, &change).await),
        json!({"created_by": "signup-api", "plan": {"tier": 2}}),
        "null removes a key; a nested object is replaced whole"
    );
    let unrelated = json!({"user_metadata": {"colour": "teal"}});
    assert_eq!(
        metadata(tenant.patch(user_id, &unrelated).await),
        json!({"created_by": "signup-api", "plan": {"tier": 2}}),
        "a PATCH without app_metadata leaves it"
    );
    let absent = json!({"app_metadata": {"never_set": null}});
    assert_eq!(
        metadata(tenant.patch(user_id, &absent).await)["created_by"],
        "signup-api"
    );
    let (_, cleared) = tenant.patch(user_id, &json!({"app_metadata": {}})).await;
    assert_eq!(cleared["app_metadata"], json!({}));
    assert_eq!(
        cleared["user_metadata"],
        json!({"colour": "teal"}),
        "only the one sent"
    );
    let (_, stored) = tenant.get(&user_path(user_id)).await;
    assert_eq!(stored["app_metadata"], json!({}));
}

#[tokio::test]
async fn patch_checks_a_new_password_against_the_policy() {
    let tenant = tenant().await;
    let (_, user) = tenant.create(&new_user("ann@example.com")).await;
    let user_id = user["user_id"].as_str().unwrap();
    let patch = |password: &str| {
        let body = json!({"password": password, "connection": "Username-Password-Authentication"});
        tenant
            .request(reqwest::Method::PATCH, &user_path(user_id))
            .json(&body)
    };
    let (status, body) = tenant.send(patch("weak")).await;
    assert_eq!(
        (status, body["message"].as_str()),
        (400, Some("PasswordStrengthError: Password is too weak"))
    );
    assert_eq!(tenant.send(patch("N3w-Passw0rd")).await.0, 200);
    assert!(tenant.double.password_matches(user_id, "N3w-Passw0rd"));
}

#[tokio::test]
async fn the_password_realm_grant_logs_in_with_the_current_password_only() {
    let tenant = tenant().await;
    let (_, user) = tenant.create(&new_user("ann@example.com")).await;
    let user_id = user["user_id"].as_str().unwrap();
    let login = |email: &'static str, password: &'static str| {
        let request = tenant.double.login_request(email, password);
        let (double, http) = (&tenant.double, &tenant.http);
        async move { post_token(double, http, &request).await }
    };
    let (status, body) = login("Ann@Example.com", STRONG_PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["access_token"].is_string() && body["id_token"].is_string());

    let body =
        json!({"password": "N3w-Passw0rd", "connection": "Username-Password-Authentication"});
    let patch = tenant
        .request(reqwest::Method::PATCH, &user_path(user_id))
        .json(&body);
    assert_eq!(tenant.send(patch).await.0, 200);
    assert_eq!(login("ann@example.com", "N3w-Passw0rd").await.0, 200);
    for (email, password) in [
        ("ann@example.com", STRONG_PASSWORD),
        ("bob@example.com", "N3w-Passw0rd"),
    ] {
        let (status, body) = login(email, password).await;
        assert_eq!(
            (
                status,
                body["error"].as_str(),
                body["error_description"].as_str()
            ),
            (403, Some("invalid_grant"), Some("Wrong email or password.")),
            "{email}"
        );
    }
}

#[tokio::test]
async fn the_password_realm_grant_refuses_a_blocked_user_an_unknown_realm_and_missing_fields() {
    let tenant = tenant().await;
    let (_, user) = tenant.create(&new_user("ann@example.com")).await;
    let user_id = user["user_id"].as_str().unwrap();
    let mut other_realm = tenant
        .double
        .login_request("ann@example.com", STRONG_PASSWORD);
    other_realm["realm"] = "google-oauth2".into();
    let mut no_password = tenant
        .double
        .login_request("ann@example.com", STRONG_PASSWORD);
    no_password.as_object_mut().unwrap().remove("password");
    let mut wrong_client = tenant
        .double
        .login_request("ann@example.com", STRONG_PASSWORD);
    wrong_client["client_id"] = "someone-else".into();
    for (request, expected) in [
        (other_realm, (400, "invalid_request")),
        (no_password, (400, "invalid_request")),
        (wrong_client, (401, "access_denied")),
    ] {
        let (status, body) = post_token(&tenant.double, &tenant.http, &request).await;
        assert_eq!(
            (status, body["error"].as_str().unwrap()),
            expected,
            "{body}"
        );
    }
    let block = tenant
        .request(reqwest::Method::PATCH, &user_path(user_id))
        .json(&json!({"blocked": true}));
    assert_eq!(tenant.send(block).await.0, 200);
    let request = tenant
        .double
        .login_request("ann@example.com", STRONG_PASSWORD);
    let (status, body) = post_token(&tenant.double, &tenant.http, &request).await;
    assert_eq!(
        (status, body),
        (
            403,
            json!({"error": "invalid_grant", "error_description": "user is blocked"})
        )
    );
}

#[tokio::test]
async fn patching_an_unknown_user_is_404() {
    let tenant = tenant().await;
    let request = tenant
        .request(reqwest::Method::PATCH, "/api/v2/users/auth0%7Cmissing")
        .json(&json!({"blocked": true}));
    let (status, body) = tenant.send(request).await;
    assert_eq!(
        (status, body["errorCode"].as_str()),
        (404, Some("inexistent_user"))
    );
}

#[tokio::test]
async fn delete_answers_204_whether_or_not_the_user_exists() {
    let tenant = tenant().await;
    let (_, user) = tenant.create(&new_user("ann@example.com")).await;
    let path = user_path(user["user_id"].as_str().unwrap());
    for _ in 0..2 {
        let response = tenant
            .request(reqwest::Method::DELETE, &path)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 204);
        assert!(response.text().await.unwrap().is_empty());
    }
    assert!(tenant.double.users().is_empty());
}

// --- the user lifecycle: blocking, refresh tokens, sessions ---

const OFFLINE: &str = "openid offline_access";

fn user_is_blocked() -> Value {
    json!({"error": "invalid_grant", "error_description": "user is blocked"})
}

fn unknown_refresh_token() -> Value {
    json!({"error": "invalid_grant", "error_description": "Unknown or invalid refresh token."})
}

fn inexistent_user() -> Value {
    json!({
        "statusCode": 404,
        "error": "Not Found",
        "message": "The user does not exist.",
        "errorCode": "inexistent_user",
    })
}

impl Session {
    /// A user created through the API, so it has a password to log in with.
    async fn created_user(&self, email: &str) -> String {
        let (status, user) = self.create(&new_user(email)).await;
        assert_eq!(status, 201, "{user}");
        user["user_id"].as_str().unwrap().to_string()
    }

    /// `DELETE` of `path`: the status, the raw body and the response's headers.
    async fn delete(&self, path: &str) -> (u16, String, reqwest::header::HeaderMap) {
        let response = self
            .request(reqwest::Method::DELETE, path)
            .send()
            .await
            .unwrap();
        let (status, headers) = (response.status().as_u16(), response.headers().clone());
        (status, response.text().await.unwrap(), headers)
    }

    /// A login asking for a refresh token; answers the refresh token.
    async fn offline_login(&self, email: &str) -> String {
        let (status, body) = self.double.log_in(email, STRONG_PASSWORD, OFFLINE).await;
        assert_eq!(status, 200, "{body}");
        body["refresh_token"].as_str().unwrap().to_string()
    }
}

fn sessions_path(user_id: &str) -> String {
    format!("{}/sessions", user_path(user_id))
}

fn refresh_tokens_path(user_id: &str) -> String {
    format!("{}/refresh-tokens", user_path(user_id))
}

fn assert_rate_limit_headers(headers: &reqwest::header::HeaderMap) {
    for header in [
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
    ] {
        assert!(headers.contains_key(header), "{header}");
    }
}

#[tokio::test]
async fn a_login_with_offline_access_answers_a_refresh_token_that_gets_new_tokens() {
    let tenant = tenant().await;
    let user_id = tenant.created_user("ann@example.com").await;
    let (status, login) = (tenant.double)
        .log_in("ann@example.com", STRONG_PASSWORD, OFFLINE)
        .await;
    assert_eq!(status, 200, "{login}");
    assert_eq!(login["scope"], OFFLINE);
    assert!(login["id_token"].is_string() && login["access_token"].is_string());
    let refresh_token = login["refresh_token"].as_str().unwrap();
    assert!(!refresh_token.is_empty() && !refresh_token.contains(&user_id));

    let (status, refreshed) = tenant.double.refresh(refresh_token).await;
    assert_eq!(status, 200, "{refreshed}");
    assert_eq!(
        (
            &refreshed["token_type"],
            &refreshed["expires_in"],
            &refreshed["scope"]
        ),
        (&json!("Bearer"), &json!(86_400), &json!(OFFLINE))
    );
    assert!(refreshed["access_token"].is_string() && refreshed["id_token"].is_string());
    assert_ne!(refreshed["access_token"], login["access_token"]);
    assert!(refreshed.get("refresh_token").is_none(), "no rotation");
    // Usable again: without rotation a refresh token lasts until it is revoked.
    assert_eq!(tenant.double.refresh(refresh_token).await.0, 200);

    let (_, no_offline) = tenant
        .double
        .log_in("ann@example.com", STRONG_PASSWORD, "openid")
        .await;
    assert!(no_offline.get("refresh_token").is_none(), "{no_offline}");
    assert_eq!(tenant.double.refresh_tokens_of(&user_id), 1);
    assert_eq!(tenant.double.sessions_of(&user_id), 2, "one per login");
    // Every grant but the refresh is the `token` op: the two logins and the M2M token.
    assert_eq!(
        (
            tenant.double.calls("token"),
            tenant.double.calls("refresh_token")
        ),
        (3, 2)
    );
}

#[tokio::test]
async fn the_refresh_grant_refuses_an_unknown_token_a_missing_one_and_a_wrong_secret() {
    let tenant = tenant().await;
    tenant.created_user("ann@example.com").await;
    let refresh_token = tenant.offline_login("ann@example.com").await;
    assert_eq!(
        tenant.double.refresh("not-a-refresh-token").await,
        (403, unknown_refresh_token())
    );
    let request = |change: &dyn Fn(&mut Value)| {
        let mut body = json!({
            "grant_type": "refresh_token",
            "client_id": "test-client-id",
            "client_secret": "test-client-secret",
            "refresh_token": refresh_token,
        });
        change(&mut body);
        body
    };
    let cases = [
        (
            request(&|body| drop(body.as_object_mut().unwrap().remove("refresh_token"))),
            (400, "invalid_request"),
        ),
        (
            request(&|body| body["client_secret"] = "wrong".into()),
            (401, "access_denied"),
        ),
        (
            request(&|body| body["client_id"] = "someone-else".into()),
            (401, "access_denied"),
        ),
    ];
    for (body, expected) in cases {
        let (status, answer) = post_token(&tenant.double, &tenant.http, &body).await;
        assert_eq!(
            (status, answer["error"].as_str().unwrap()),
            expected,
            "{body}"
        );
    }
    assert_eq!(tenant.double.refresh(&refresh_token).await.0, 200);
}

#[tokio::test]
async fn blocking_refuses_login_and_refresh_with_403_and_unblocking_lets_the_same_password_in() {
    let tenant = tenant().await;
    let user_id = tenant.created_user("ann@example.com").await;
    let refresh_token = tenant.offline_login("ann@example.com").await;
    assert!(!tenant.double.is_blocked(&user_id));

    let (status, blocked) = tenant.patch(&user_id, &json!({"blocked": true})).await;
    assert_eq!(status, 200, "{blocked}");
    assert_eq!(
        (&blocked["user_id"], &blocked["blocked"]),
        (&json!(user_id), &json!(true))
    );
    assert!(tenant.double.is_blocked(&user_id));
    let login = (tenant.double)
        .log_in("ann@example.com", STRONG_PASSWORD, OFFLINE)
        .await;
    assert_eq!(login, (403, user_is_blocked()));
    assert_eq!(
        tenant.double.refresh(&refresh_token).await,
        (403, user_is_blocked())
    );
    // A wrong password still gets the answer that tells nothing.
    let (status, wrong) = (tenant.double)
        .log_in("ann@example.com", "N0t-the-passw0rd", "openid")
        .await;
    assert_eq!(
        (status, wrong["error_description"].as_str()),
        (403, Some("Wrong email or password."))
    );
    // Blocking revokes nothing: the refresh token is still there, only refused.
    assert_eq!(tenant.double.refresh_tokens_of(&user_id), 1);
    assert_eq!(
        tenant.double.sessions_of(&user_id),
        1,
        "no session for a refused login"
    );

    let (status, unblocked) = tenant.patch(&user_id, &json!({"blocked": false})).await;
    assert_eq!((status, &unblocked["blocked"]), (200, &json!(false)));
    assert!(!tenant.double.is_blocked(&user_id));
    let (status, body) = (tenant.double)
        .log_in("ann@example.com", STRONG_PASSWORD, "openid")
        .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn revoking_refresh_tokens_answers_202_refuses_them_and_leaves_login_and_sessions() {
    let tenant = tenant().await;
    let user_id = tenant.created_user("ann@example.com").await;
    let other_id = tenant.created_user("bob@example.com").await;
    let first = tenant.offline_login("ann@example.com").await;
    let second = tenant.offline_login("ann@example.com").await;
    let bobs = tenant.offline_login("bob@example.com").await;
    assert_eq!(tenant.double.refresh_tokens_of(&user_id), 2);

    let (status, body, headers) = tenant.delete(&refresh_tokens_path(&user_id)).await;
    assert_eq!((status, body.as_str()), (202, ""));
    assert_rate_limit_headers(&headers);
    for token in [&first, &second] {
        assert_eq!(
            tenant.double.refresh(token).await,
            (403, unknown_refresh_token())
        );
    }
    assert_eq!(tenant.double.refresh_tokens_of(&user_id), 0);
    assert_eq!(tenant.double.sessions_of(&user_id), 2);
    assert_eq!(
        tenant.double.refresh(&bobs).await.0,
        200,
        "another user's stay"
    );
    assert_eq!(tenant.double.refresh_tokens_of(&other_id), 1);
    // Logging in again works, and may ask for a new refresh token.
    let fresh = tenant.offline_login("ann@example.com").await;
    assert_eq!(tenant.double.refresh(&fresh).await.0, 200);
    // Again with nothing left to revoke: still 202.
    tenant.delete(&refresh_tokens_path(&user_id)).await;
    assert_eq!(tenant.delete(&refresh_tokens_path(&user_id)).await.0, 202);
    assert_eq!(tenant.double.calls("revoke_refresh_tokens"), 3);
}

#[tokio::test]
async fn revoking_sessions_answers_202_and_ends_them_but_not_refresh_tokens() {
    let tenant = tenant().await;
    let user_id = tenant.created_user("ann@example.com").await;
    let refresh_token = tenant.offline_login("ann@example.com").await;
    assert_eq!(tenant.double.sessions_of(&user_id), 1);

    let (status, body, headers) = tenant.delete(&sessions_path(&user_id)).await;
    assert_eq!((status, body.as_str()), (202, ""));
    assert_rate_limit_headers(&headers);
    assert_eq!(tenant.double.sessions_of(&user_id), 0);
    assert_eq!(tenant.double.refresh_tokens_of(&user_id), 1);
    assert_eq!(tenant.double.refresh(&refresh_token).await.0, 200);
    assert_eq!(tenant.double.calls("revoke_sessions"), 1);
}

#[tokio::test]
async fn a_new_password_ends_the_sessions_and_keeps_the_refresh_tokens() {
    let tenant = tenant().await;
    let user_id = tenant.created_user("ann@example.com").await;
    let refresh_token = tenant.offline_login("ann@example.com").await;
    let renamed = tenant.patch(&user_id, &json!({"name": "Ann Lee"})).await;
    assert_eq!(renamed.0, 200);
    assert_eq!(
        tenant.double.sessions_of(&user_id),
        1,
        "other fields leave them"
    );
    let body =
        json!({"password": "N3w-Passw0rd", "connection": "Username-Password-Authentication"});
    assert_eq!(tenant.patch(&user_id, &body).await.0, 200);
    assert_eq!(tenant.double.sessions_of(&user_id), 0);
    assert_eq!(tenant.double.refresh(&refresh_token).await.0, 200);
}

#[tokio::test]
async fn an_unknown_user_is_404_inexistent_user_for_block_and_both_revocations() {
    let tenant = tenant().await;
    let missing = "auth0|000000000000000000000000";
    let (status, body) = tenant.patch(missing, &json!({"blocked": true})).await;
    assert_eq!((status, body), (404, inexistent_user()));
    for path in [sessions_path(missing), refresh_tokens_path(missing)] {
        let (status, body, headers) = tenant.delete(&path).await;
        assert_eq!(status, 404, "{path}");
        assert_eq!(
            serde_json::from_str::<Value>(&body).unwrap(),
            inexistent_user()
        );
        assert_rate_limit_headers(&headers);
    }
}

#[tokio::test]
async fn deleting_a_user_ends_its_refresh_tokens_and_sessions() {
    let tenant = tenant().await;
    let user_id = tenant.created_user("ann@example.com").await;
    let refresh_token = tenant.offline_login("ann@example.com").await;
    assert_eq!(tenant.delete(&user_path(&user_id)).await.0, 204);
    assert_eq!(
        tenant.double.refresh(&refresh_token).await,
        (403, unknown_refresh_token())
    );
    assert_eq!(
        (
            tenant.double.refresh_tokens_of(&user_id),
            tenant.double.sessions_of(&user_id)
        ),
        (0, 0)
    );
    // A new user with the same address does not inherit them.
    let again = tenant.created_user("ann@example.com").await;
    assert_eq!(tenant.double.refresh(&refresh_token).await.0, 403);
    assert_eq!(tenant.double.sessions_of(&again), 0);
}

#[tokio::test]
async fn a_client_without_a_scope_gets_403_insufficient_scope_for_the_calls_that_need_it() {
    let tenant = tenant().await;
    let user_id = tenant.created_user("ann@example.com").await;
    tenant
        .double
        .set_scope("read:users update:users delete:users create:users");
    let narrow = fetch_token(&tenant.double, &tenant.http).await;
    let call = |path: String| {
        let request = tenant.http.delete(tenant.url(&path)).bearer_auth(&narrow);
        tenant.send(request)
    };
    for (path, scope) in [
        (sessions_path(&user_id), "delete:sessions"),
        (refresh_tokens_path(&user_id), "delete:refresh_tokens"),
    ] {
        let message = format!("Insufficient scope, expected any of: {scope}");
        let expected = json!({
            "statusCode": 403,
            "error": "Forbidden",
            "message": message,
            "errorCode": "insufficient_scope",
        });
        assert_eq!(call(path).await, (403, expected));
    }
    // The token issued before the change keeps its scopes.
    assert_eq!(tenant.delete(&sessions_path(&user_id)).await.0, 202);
}

#[tokio::test]
async fn the_new_operations_take_faults_like_the_others() {
    let tenant = tenant().await;
    let user_id = tenant.created_user("ann@example.com").await;
    let refresh_token = tenant.offline_login("ann@example.com").await;
    let double = &tenant.double;

    double.inject(Fault::status("revoke_sessions", 503).times(2));
    for _ in 0..2 {
        let (status, body, headers) = tenant.delete(&sessions_path(&user_id)).await;
        assert_eq!(status, 503);
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            (body["statusCode"].as_u64(), body["error"].as_str()),
            (Some(503), Some("Service Unavailable"))
        );
        assert_rate_limit_headers(&headers);
    }
    assert_eq!(
        double.sessions_of(&user_id),
        1,
        "a status fault does no work"
    );
    assert_eq!(tenant.delete(&sessions_path(&user_id)).await.0, 202);
    assert_eq!(double.calls("revoke_sessions"), 3);

    double.inject(Fault::drop_connection("revoke_refresh_tokens"));
    let dropped = tenant
        .request(reqwest::Method::DELETE, &refresh_tokens_path(&user_id))
        .send()
        .await
        .unwrap_err();
    assert!(
        dropped.status().is_none() && !dropped.is_timeout(),
        "{dropped:?}"
    );
    assert_eq!(
        double.refresh_tokens_of(&user_id),
        1,
        "a dropped call does no work"
    );

    double.inject(Fault::delay("revoke_refresh_tokens", 250));
    let late = tenant
        .request(reqwest::Method::DELETE, &refresh_tokens_path(&user_id))
        .timeout(Duration::from_millis(50))
        .send()
        .await
        .unwrap_err();
    assert!(late.is_timeout());
    assert_eq!(
        double.refresh_tokens_of(&user_id),
        0,
        "a delay does the work first"
    );

    let blocking = tenant.offline_login("ann@example.com").await;
    double.inject(Fault::status("update_user", 500));
    assert_eq!(
        tenant.patch(&user_id, &json!({"blocked": true})).await.0,
        500
    );
    assert!(!double.is_blocked(&user_id));
    assert_eq!(
        double.refresh(&refresh_token).await,
        (403, unknown_refresh_token())
    );

    double.inject(Fault::status("refresh_token", 503));
    let (status, body) = double.refresh(&blocking).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (503, Some("temporarily_unavailable"))
    );
    assert_eq!(double.refresh(&blocking).await.0, 200);
    assert_eq!(double.calls("refresh_token"), 3);
}

#[tokio::test]
async fn the_control_state_shows_each_users_block_refresh_tokens_and_sessions() {
    let tenant = tenant().await;
    let ann = tenant.created_user("ann@example.com").await;
    let bob = tenant.created_user("bob@example.com").await;
    let tokens = [
        tenant.offline_login("ann@example.com").await,
        tenant.offline_login("ann@example.com").await,
    ];
    tenant.patch(&bob, &json!({"blocked": true})).await;
    tenant.delete(&sessions_path(&ann)).await;

    let (_, state) = read(
        tenant
            .http
            .get(tenant.url("/__control/state"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        state["access"],
        json!({
            ann.as_str(): {"blocked": false, "refresh_tokens": 2, "sessions": 0},
            bob.as_str(): {"blocked": true, "refresh_tokens": 0, "sessions": 0},
        })
    );
    assert_eq!(state["calls"]["revoke_sessions"], 1);
    assert_eq!(state["calls"]["revoke_refresh_tokens"], 0);
    assert_eq!(state["calls"]["refresh_token"], 0);
    for token in tokens {
        assert!(!state.to_string().contains(&token), "only digests are kept");
    }
}

// --- search ---

fn day(date: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(&format!("{date}T12:00:00Z"))
        .unwrap()
        .with_timezone(&Utc)
}

#[tokio::test]
async fn search_filters_on_app_metadata_and_a_created_at_range() {
    let tenant = tenant().await;
    let ours = json!({"created_by": "signup-api"});
    let double = &tenant.double;
    double.insert_user_at("d1@example.com", ours.clone(), day("2024-01-01"));
    let wanted_late = double.insert_user_at("d3@example.com", ours.clone(), day("2024-01-03"));
    let wanted_early = double.insert_user_at("d2@example.com", ours.clone(), day("2024-01-02"));
    double.insert_user_at(
        "other@example.com",
        json!({"created_by": "Signup-API"}),
        day("2024-01-02"),
    );
    double.insert_user_at("d4@example.com", ours, day("2024-01-04"));

    let q = r#"app_metadata.created_by:"signup-api" AND created_at:[2024-01-02 TO 2024-01-04}"#;
    let (status, page) = tenant
        .search(&[
            ("q", q),
            ("search_engine", "v3"),
            ("include_totals", "true"),
        ])
        .await;
    assert_eq!(status, 200, "{page}");
    let ids: Vec<&str> = (page["users"].as_array().unwrap().iter())
        .map(|user| user["user_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [wanted_early.as_str(), wanted_late.as_str()]);
    assert_eq!(
        (page["start"].as_u64(), page["limit"].as_u64()),
        (Some(0), Some(50))
    );
    assert_eq!(
        (page["length"].as_u64(), page["total"].as_u64()),
        (Some(2), Some(2))
    );

    let (_, newest_first) = tenant.search(&[("q", q), ("sort", "created_at:-1")]).await;
    assert_eq!(newest_first[0]["user_id"], wanted_late.as_str());
}

#[tokio::test]
async fn search_pages_are_zero_based() {
    let tenant = tenant().await;
    for n in 0..5 {
        let email = format!("u{n}@example.com");
        tenant
            .double
            .insert_user_at(&email, json!({}), day(&format!("2024-01-0{}", n + 1)));
    }
    let params = [("page", "1"), ("per_page", "2"), ("include_totals", "true")];
    let (_, page) = tenant.search(&params).await;
    let emails: Vec<&str> = (page["users"].as_array().unwrap().iter())
        .map(|user| user["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, ["u2@example.com", "u3@example.com"]);
    assert_eq!(
        (page["start"].as_u64(), page["total"].as_u64()),
        (Some(2), Some(5))
    );
}

#[tokio::test]
async fn search_refuses_more_than_100_per_page_and_pages_past_1000_results() {
    let tenant = tenant().await;
    let (status, body) = tenant.search(&[("per_page", "101")]).await;
    assert_eq!(
        (status, body["errorCode"].as_str()),
        (400, Some("invalid_query_string"))
    );
    let (status, body) = tenant.search(&[("page", "10"), ("per_page", "100")]).await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({
            "statusCode": 400,
            "error": "Bad Request",
            "message": "You can only page through the first 1000 records. See https://auth0.com/docs/users/search/v3/view-search-results-by-page#limitation",
            "errorCode": "invalid_paging",
        })
    );
    assert_eq!(
        tenant.search(&[("page", "9"), ("per_page", "100")]).await.0,
        200
    );
}

// --- rate limit ---

#[tokio::test]
async fn every_management_answer_carries_rate_limit_headers() {
    let tenant = tenant().await;
    let ok = tenant
        .request(reqwest::Method::GET, "/api/v2/users")
        .send()
        .await
        .unwrap();
    let unauthorized = tenant
        .http
        .get(tenant.url("/api/v2/users"))
        .send()
        .await
        .unwrap();
    for response in [ok, unauthorized] {
        for header in [
            "x-ratelimit-limit",
            "x-ratelimit-remaining",
            "x-ratelimit-reset",
        ] {
            assert!(response.headers().contains_key(header), "{header}");
        }
    }
}

#[tokio::test]
async fn going_over_the_rate_limit_answers_429_with_the_headers_and_retry_after() {
    let tenant = tenant_with(Auth0Config {
        rate_limit_per_sec: Some(2),
        ..Auth0Config::default()
    })
    .await;
    // A window boundary between the calls resets the count; try again if that happened.
    for _ in 0..3 {
        let mut answers = Vec::new();
        for _ in 0..3 {
            answers.push(
                tenant
                    .request(reqwest::Method::GET, "/api/v2/users")
                    .send()
                    .await
                    .unwrap(),
            );
        }
        let header = |response: &reqwest::Response, name: &str| {
            response.headers()[name].to_str().unwrap().to_string()
        };
        if answers.iter().any(|answer| {
            header(answer, "x-ratelimit-reset") != header(&answers[0], "x-ratelimit-reset")
        }) {
            continue;
        }
        let statuses: Vec<u16> = answers
            .iter()
            .map(|answer| answer.status().as_u16())
            .collect();
        assert_eq!(statuses, [200, 200, 429]);
        let remaining: Vec<String> = answers
            .iter()
            .map(|answer| header(answer, "x-ratelimit-remaining"))
            .collect();
        assert_eq!(remaining, ["1", "0", "0"]);
        let limited = answers.pop().unwrap();
        assert_eq!(header(&limited, "x-ratelimit-limit"), "2");
        assert_eq!(header(&limited, "retry-after"), "1");
        let reset: i64 = header(&limited, "x-ratelimit-reset").parse().unwrap();
        assert!(reset > Utc::now().timestamp() - 1);
        assert_eq!(
            read(limited).await.1,
            json!({"statusCode": 429, "error": "Too Many Requests", "message": "Global limit has been reached"})
        );
        return;
    }
    panic!("never got three calls into one rate-limit window");
}

// --- faults ---

#[tokio::test]
async fn a_status_fault_answers_the_auth0_error_shape_without_doing_the_work() {
    let tenant = tenant().await;
    tenant.double.inject(Fault::status("create_user", 503));
    let (status, body) = tenant.create(&new_user("ann@example.com")).await;
    assert_eq!(status, 503);
    assert_eq!(body["statusCode"], 503);
    assert_eq!(body["error"], "Service Unavailable");
    assert!(body["message"].is_string());
    assert!(tenant.double.users().is_empty());
    assert_eq!(tenant.create(&new_user("ann@example.com")).await.0, 201);
    assert_eq!(tenant.double.calls("create_user"), 2);
}

#[tokio::test]
async fn a_429_fault_carries_exhausted_rate_limit_headers() {
    let tenant = tenant().await;
    tenant.double.inject(Fault::status("get_user", 429));
    let response = tenant
        .request(reqwest::Method::GET, "/api/v2/users/auth0%7Cx")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    let headers = response.headers();
    assert_eq!(headers["x-ratelimit-remaining"], "0");
    assert_eq!(headers["retry-after"], "1");
    let reset: i64 = headers["x-ratelimit-reset"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(reset >= Utc::now().timestamp());
    assert_eq!(
        read(response).await.1["message"],
        "Global limit has been reached"
    );
}

#[tokio::test]
async fn a_delay_fault_does_the_work_before_answering_late() {
    let tenant = tenant().await;
    tenant.double.inject(Fault::delay("create_user", 250));
    let request = tenant
        .request(reqwest::Method::POST, "/api/v2/users")
        .json(&new_user("ann@example.com"))
        .timeout(Duration::from_millis(50));
    let error = request.send().await.unwrap_err();
    assert!(error.is_timeout());
    assert_eq!(tenant.double.users_with_email("ann@example.com").len(), 1);
}

#[tokio::test]
async fn a_dropped_connection_gives_the_client_an_error_and_the_server_keeps_serving() {
    let tenant = tenant().await;
    tenant.double.inject(Fault::drop_connection("create_user"));
    let request = tenant
        .request(reqwest::Method::POST, "/api/v2/users")
        .json(&new_user("ann@example.com"));
    let error = request.send().await.unwrap_err();
    assert!(error.status().is_none() && !error.is_timeout(), "{error:?}");
    assert!(tenant.double.users().is_empty());
    assert_eq!(tenant.create(&new_user("ann@example.com")).await.0, 201);
}

#[tokio::test]
async fn a_fault_lasts_for_its_times_calls_then_the_real_answer_returns() {
    let tenant = tenant().await;
    tenant
        .double
        .inject(Fault::status("get_user", 500).times(2));
    let path = "/api/v2/users/auth0%7Cmissing";
    let statuses = [
        tenant.get(path).await.0,
        tenant.get(path).await.0,
        tenant.get(path).await.0,
    ];
    assert_eq!(statuses, [500, 500, 404]);
    assert_eq!(tenant.double.calls("get_user"), 3);
}

#[tokio::test]
async fn a_fault_body_and_headers_replace_the_defaults() {
    let tenant = tenant().await;
    let fault = Fault::status("search_users", 502)
        .with_body(json!("<html>Bad Gateway</html>"))
        .with_header("x-amzn-errortype", "GatewayError");
    tenant.double.inject(fault);
    let response = tenant
        .request(reqwest::Method::GET, "/api/v2/users")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    assert_eq!(response.headers()["x-amzn-errortype"], "GatewayError");
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    assert_eq!(response.text().await.unwrap(), "<html>Bad Gateway</html>");
}

#[tokio::test]
async fn a_token_fault_answers_the_oauth_error_shape() {
    let double = Auth0Double::start(Auth0Config::default()).await.unwrap();
    double.inject(Fault::status("token", 429));
    let (status, body) = post_token(&double, &Client::new(), &token_request(&double)).await;
    assert_eq!(status, 429);
    assert_eq!(body["error"], "too_many_requests");
    assert_eq!(double.token_requests(), 1);
}

// --- control API and lifecycle ---

#[tokio::test]
async fn the_control_api_takes_faults_reports_state_and_resets() {
    let tenant = tenant().await;
    let http = &tenant.http;
    let created_at = DateTime::parse_from_rfc3339("2024-01-02T03:04:05.000Z").unwrap();
    let app_metadata = json!({"created_by": "x"});
    let at = created_at.with_timezone(&Utc);
    (tenant.double).insert_user_at("Seed@Example.com", app_metadata, at);
    let seeded = &tenant.double.users()[0];
    assert_eq!(
        (seeded["email"].as_str(), seeded["created_at"].as_str()),
        (Some("seed@example.com"), Some("2024-01-02T03:04:05.000Z"))
    );

    let faults =
        json!([{"op": "create_user", "status": 500}, {"op": "get_user", "drop": true, "times": 2}]);
    let response = http
        .post(tenant.url("/__control/faults"))
        .json(&faults)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(tenant.create(&new_user("ann@example.com")).await.0, 500);

    let (_, state) = read(
        http.get(tenant.url("/__control/state"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(state["users"].as_array().unwrap().len(), 1);
    assert_eq!(state["token_requests"], 1);
    assert_eq!(state["calls"]["create_user"], 1);
    assert_eq!(state["calls"]["search_users"], 0);
    assert_eq!(
        state["faults"],
        json!([{"op": "get_user", "status": null, "delay_ms": 0, "drop": true, "times": 2, "body": null, "headers": null}])
    );

    let cleared = http
        .delete(tenant.url("/__control/faults"))
        .send()
        .await
        .unwrap();
    assert_eq!(cleared.status(), 204);
    assert_eq!(tenant.get("/api/v2/users/auth0%7Cx").await.0, 404);

    assert_eq!(
        http.post(tenant.url("/__control/reset"))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert!(tenant.double.users().is_empty());
    assert_eq!(
        (
            tenant.double.token_requests(),
            tenant.double.calls("get_user")
        ),
        (0, 0)
    );
    assert_eq!(
        tenant.get("/api/v2/users/auth0%7Cx").await.0,
        404,
        "tokens survive a reset"
    );
}

#[tokio::test]
async fn dropping_the_double_stops_its_server() {
    let double = Auth0Double::start(Auth0Config::default()).await.unwrap();
    let url = format!("{}/__control/state", double.base_url());
    drop(double);
    for _ in 0..50 {
        if Client::new().get(&url).send().await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("still serving after drop");
}
