//! The local API Gateway of `make dev` over real HTTP, with the real `create-user`,
//! `set-password` and `scim` binaries behind it: the routes come from template.yaml, the JWT authorizer
//! checks the Auth0 double's tokens as API Gateway would (a refused request never reaches the
//! function: no row, no email), events carry path and query parameters, base64 bodies and the
//! verified claims, and CORS is answered as the template's `CorsConfiguration` says.

use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{Value, json};
use testkit::local::LOCAL_AUDIENCE;
use testkit::local::stack::LocalStack;

struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Value,
}

async fn send(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.expect("the gateway answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Answer {
        status,
        headers,
        body,
    }
}

fn header<'a>(answer: &'a Answer, name: &str) -> Option<&'a str> {
    answer.headers.get(name).and_then(|v| v.to_str().ok())
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

#[tokio::test]
async fn the_jwt_authorizer_refuses_what_api_gateway_refuses_before_the_function_runs() {
    let stack = LocalStack::start().await;
    let http = client();
    let create = format!("{}/api/direct-users/create", stack.api());
    let body = json!({"email": "refused@acme.test"});
    let now = chrono::Utc::now().timestamp();
    let claims = |changes: Value| {
        let mut claims = json!({
            "iss": format!("{}/", stack.auth0.base_url()),
            "sub": "auth0|seedadminacme0000000002",
            "aud": LOCAL_AUDIENCE,
            "iat": now - 60,
            "exp": now + 3600,
        });
        for (name, value) in changes.as_object().unwrap() {
            claims[name] = value.clone();
        }
        claims
    };
    let good = stack.auth0.sign_token(&claims(json!({})));
    // The same claims and header under another signature: a forgery.
    let (signed, signature) = good.rsplit_once('.').unwrap();
    let mut forged_signature = signature.to_string();
    let flipped = if forged_signature.starts_with('A') {
        "B"
    } else {
        "A"
    };
    forged_signature.replace_range(0..1, flipped);
    let forged = format!("{signed}.{forged_signature}");

    let cases = [
        (None, None),
        (Some("Bearer".to_string()), None),
        (
            Some("Bearer not-a-jwt".into()),
            Some("the token is not a JWT"),
        ),
        (
            Some(format!("Bearer {forged}")),
            Some("the token's signature is invalid"),
        ),
        (
            Some(format!(
                "Bearer {}",
                stack.auth0.sign_token(&claims(json!({"exp": now - 1})))
            )),
            Some("the token has expired"),
        ),
        (
            Some(format!(
                "Bearer {}",
                stack
                    .auth0
                    .sign_token(&claims(json!({"aud": "https://other.test"})))
            )),
            Some("the token does not have a valid audience"),
        ),
        (
            Some(format!(
                "Bearer {}",
                stack
                    .auth0
                    .sign_token(&claims(json!({"iss": "https://elsewhere.test/"})))
            )),
            Some("the token does not have a valid issuer"),
        ),
        (
            Some(format!(
                "Bearer {}",
                stack.auth0.sign_token(&claims(json!({"nbf": now + 600})))
            )),
            Some("the token is not valid yet"),
        ),
    ];
    for (authorization, why) in cases {
        let mut request = http.post(&create).json(&body);
        if let Some(value) = &authorization {
            request = request.header("authorization", value);
        }
        let answer = send(request).await;
        assert_eq!(
            (answer.status, &answer.body),
            (401, &json!({"message": "Unauthorized"})),
            "{authorization:?}"
        );
        let challenge = header(&answer, "www-authenticate");
        match why {
            None => assert_eq!(challenge, None),
            Some(why) => assert!(
                challenge.is_some_and(|c| c.contains("invalid_token") && c.contains(why)),
                "{challenge:?} should say {why}"
            ),
        }
        assert!(header(&answer, "apigw-requestid").is_some());
    }
    // None of them reached the function.
    let sql = stack.sql().await;
    let rows = sql
        .query_one(
            "SELECT count(*) FROM users WHERE email = 'refused@acme.test'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows.get::<_, i64>(0), 0);
    assert!(stack.email.emails().is_empty());

    // The token the double signed, unchanged and without "Bearer", is let through.
    let answer = send(
        http.post(&create)
            .header("authorization", &good)
            .json(&body),
    )
    .await;
    assert_eq!(answer.status, 201, "{}", answer.body);
}

#[tokio::test]
async fn the_scim_api_reaches_the_scim_function_which_links_to_the_gateway_s_own_address() {
    let stack = LocalStack::start().await;
    let http = client();
    let base = stack.scim_base();
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    let scim_error = "urn:ietf:params:scim:api:messages:2.0:Error";

    // No authorizer on the SCIM API: the function itself refuses a request without its token,
    // in SCIM's error shape (API Gateway's own 401 would be {"message": …}).
    let refused = send(http.get(format!("{base}/Users"))).await;
    assert_eq!(refused.status, 401, "{}", refused.body);
    assert_eq!(refused.body["schemas"], json!([scim_error]));
    assert_eq!(
        header(&refused, "content-type"),
        Some("application/scim+json")
    );
    // Discovery needs no token; its links are the gateway's address, over http: the gateway
    // passes the request's Host and X-Forwarded-Proto: http, from which the function builds them.
    let config = send(http.get(format!("{base}/ServiceProviderConfig"))).await;
    assert_eq!(config.status, 200, "{}", config.body);
    assert_eq!(
        config.body["meta"]["location"],
        format!("{base}/ServiceProviderConfig")
    );

    // A create through `ANY /scim/v2/{proxy+}`, in SCIM's media type (which API Gateway hands
    // the function in base64).
    let token = stack.scim_token("admin@acme.test", "Gateway").await;
    let user = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "gw.scim@acme.test",
        "name": {"givenName": "Gia", "familyName": "Way"},
        "active": true,
    });
    let created = send(
        http.post(format!("{base}/Users"))
            .bearer_auth(&token)
            .header("content-type", "application/scim+json")
            .body(user.to_string()),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["id"].as_str().unwrap();
    let location = format!("{base}/Users/{id}");
    assert_eq!(header(&created, "location"), Some(location.as_str()));
    assert_eq!(created.body["meta"]["location"], location);
    let read = send(http.get(&location).bearer_auth(&token)).await;
    assert_eq!(read.status, 200, "{}", read.body);
    assert_eq!(read.body["userName"], "gw.scim@acme.test");

    // Every path under /scim/v2 is the function's: what it does not serve is its own 404.
    let groups = send(http.get(format!("{base}/Groups")).bearer_auth(&token)).await;
    assert_eq!(groups.status, 404, "{}", groups.body);
    assert_eq!(groups.body["schemas"], json!([scim_error]));
    // Outside it, API Gateway's.
    let elsewhere = send(http.get(format!("{}/scim/v1/Users", stack.api()))).await;
    assert_eq!(elsewhere.status, 404);
    assert_eq!(elsewhere.body, json!({"message": "Not Found"}));
}

#[tokio::test]
async fn every_template_route_reaches_its_function_with_the_event_api_gateway_builds() {
    let stack = LocalStack::start().await;
    let http = client();
    let api = stack.api();
    let admin = stack.token("admin@acme.test").await;
    let bearer = format!("Bearer {admin}");

    // Create with a key, then again: the function's own header passes through.
    let create = format!("{api}/api/direct-users/create");
    let body = json!({"email": "gw.user@acme.test", "role": "USER"});
    let first = send(
        http.post(&create)
            .header("authorization", &bearer)
            .header("idempotency-key", "gateway-test-1")
            .json(&body),
    )
    .await;
    assert_eq!(first.status, 201, "{}", first.body);
    let replay = send(
        http.post(&create)
            .header("authorization", &bearer)
            .header("idempotency-key", "gateway-test-1")
            .json(&body),
    )
    .await;
    assert_eq!(replay.status, 201);
    assert_eq!(header(&replay, "idempotent-replayed"), Some("true"));
    let id = first.body["user"]["id"].as_str().unwrap().to_string();

    // A body without a content type goes to the function in base64 (as API Gateway sends it),
    // and is still read as JSON; so is an `application/…+json` one.
    let check = format!("{api}/api/direct-users/check-exists");
    let raw = send(
        http.post(&check)
            .header("authorization", &bearer)
            .body(r#"{"email": "GW.User@acme.test"}"#),
    )
    .await;
    assert_eq!(
        (raw.status, &raw.body["exists"]),
        (200, &json!(true)),
        "{}",
        raw.body
    );
    let vendor = send(
        http.post(&check)
            .header("authorization", &bearer)
            .header("content-type", "application/vnd.acme+json")
            .body(r#"{"email": "nobody@acme.test"}"#),
    )
    .await;
    assert_eq!(vendor.body["exists"], false, "{}", vendor.body);

    // The query string and a path parameter.
    let list = send(
        http.get(format!("{api}/api/direct-users?email=gw%2E&status=invited"))
            .header("authorization", &bearer),
    )
    .await;
    assert_eq!(list.status, 200, "{}", list.body);
    let emails: Vec<&str> = list.body["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, ["gw.user@acme.test"]);
    let user = format!("{api}/api/direct-users/{id}");
    let read = send(http.get(&user).header("authorization", &bearer)).await;
    assert_eq!(
        (read.status, &read.body["email"]),
        (200, &json!("gw.user@acme.test")),
        "{}",
        read.body
    );
    let updated = send(
        http.patch(&user)
            .header("authorization", &bearer)
            .json(&json!({"role": "ADMIN"})),
    )
    .await;
    assert_eq!(
        (updated.status, &updated.body["role"]),
        (200, &json!("ADMIN")),
        "{}",
        updated.body
    );
    for action in ["deactivate", "reactivate"] {
        let answer = send(
            http.post(format!("{user}/{action}"))
                .header("authorization", &bearer),
        )
        .await;
        assert_eq!(answer.status, 200, "{action}: {}", answer.body);
    }
    let resend = send(
        http.post(format!("{api}/api/direct-users/resend-invitation"))
            .header("authorization", &bearer)
            .json(&json!({"email": "gw.user@acme.test"})),
    )
    .await;
    assert_eq!(resend.status, 200, "{}", resend.body);

    // The public routes need no token.
    let link = url::Url::parse(&stack.newest_link("gw.user@acme.test")).unwrap();
    let query: std::collections::HashMap<_, _> = link.query_pairs().into_owned().collect();
    let verify = send(
        http.post(format!("{api}/api/auth/set-password/verify"))
            .json(&json!({"token": query["token"], "email": query["email"]})),
    )
    .await;
    assert_eq!(
        (verify.status, &verify.body["tenantName"]),
        (200, &json!("Acme Corp"))
    );
    let set = send(
        http.post(format!("{api}/api/auth/set-password"))
            .json(&json!({
                "token": query["token"], "email": query["email"], "password": "Gateway-Passw0rd",
            })),
    )
    .await;
    assert_eq!(set.status, 200, "{}", set.body);

    let deleted = send(http.delete(&user).header("authorization", &bearer)).await;
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    assert!(stack.auth0.users_with_email("gw.user@acme.test").is_empty());

    // The claims are the caller's: a plain user's valid token reaches the function, which
    // refuses it by its own rule.
    let staff = stack.token("staff@acme.test").await;
    let refused = send(
        http.post(&create)
            .header("authorization", format!("Bearer {staff}"))
            .json(&json!({"email": "by.staff@acme.test"})),
    )
    .await;
    assert_eq!(
        (refused.status, refused.body["code"].as_str()),
        (403, Some("NOT_AN_ADMIN"))
    );

    // No route: API Gateway's own 404, also for a method the path does not have.
    for (method, path) in [("GET", "/api/nowhere"), ("PUT", "/api/direct-users/create")] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let answer = send(
            http.request(method, format!("{api}{path}"))
                .header("authorization", &bearer),
        )
        .await;
        assert_eq!(
            (answer.status, &answer.body),
            (404, &json!({"message": "Not Found"})),
            "{path}"
        );
    }
}

#[tokio::test]
async fn cors_is_answered_as_the_templates_cors_configuration_says() {
    let stack = LocalStack::start().await;
    let http = client();
    let api = stack.api();
    let page_origin = stack.frontend_url.clone();
    let preflight = |path: &str, origin: &str, method: &str, headers: &str| {
        http.request(reqwest::Method::OPTIONS, format!("{api}{path}"))
            .header("origin", origin)
            .header("access-control-request-method", method)
            .header("access-control-request-headers", headers)
    };

    // The admin API (AdminApi's CorsConfiguration): no token needed for the preflight.
    let admin = send(preflight(
        "/api/direct-users/x/deactivate",
        &page_origin,
        "POST",
        "authorization,content-type",
    ))
    .await;
    assert_eq!(admin.status, 204);
    let expect = [
        ("access-control-allow-origin", page_origin.as_str()),
        ("access-control-allow-methods", "GET,POST,PATCH,DELETE"),
        (
            "access-control-allow-headers",
            "authorization,content-type,idempotency-key",
        ),
        ("access-control-max-age", "600"),
    ];
    for (name, value) in expect {
        assert_eq!(header(&admin, name), Some(value), "{name}");
    }
    // The public API (PublicApi's): POST and content-type only.
    let public = send(preflight(
        "/api/auth/set-password",
        &page_origin,
        "POST",
        "content-type",
    ))
    .await;
    assert_eq!(
        header(&public, "access-control-allow-methods"),
        Some("POST")
    );
    assert_eq!(
        header(&public, "access-control-allow-headers"),
        Some("content-type")
    );
    // Another origin gets no CORS headers: the browser refuses the call.
    let other = send(preflight(
        "/api/auth/set-password",
        "https://evil.test",
        "POST",
        "content-type",
    ))
    .await;
    assert_eq!(other.status, 204);
    assert_eq!(header(&other, "access-control-allow-origin"), None);

    // An actual call: the allowed origin, and the headers the admin panel may read.
    let token = stack.token("admin@acme.test").await;
    let answer = send(
        http.post(format!("{api}/api/direct-users/check-exists"))
            .header("origin", &page_origin)
            .header("authorization", format!("Bearer {token}"))
            .json(&json!({"email": "admin@acme.test"})),
    )
    .await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        header(&answer, "access-control-allow-origin"),
        Some(page_origin.as_str())
    );
    assert_eq!(
        header(&answer, "access-control-expose-headers"),
        Some("idempotent-replayed,retry-after")
    );
    // The gateway's own refusals carry them too, so the page can read a 401.
    let refused = send(
        http.post(format!("{api}/api/direct-users/check-exists"))
            .header("origin", &page_origin)
            .json(&json!({"email": "admin@acme.test"})),
    )
    .await;
    assert_eq!(refused.status, 401);
    assert_eq!(
        refused.headers.get("access-control-allow-origin"),
        Some(&HeaderValue::from_str(&page_origin).unwrap())
    );
}
