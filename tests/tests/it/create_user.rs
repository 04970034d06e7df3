//! The success paths of create-user and check-exists, checked the way a user would.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use testkit::harness::{
    CHECK_PATH, FRONTEND_URL, TestStack, api_event, check_exists_event, create_event, seed,
};
use uuid::Uuid;

fn full_request(email: &str) -> Value {
    json!({
        "email": email,
        "role": "ADMIN",
        "permissions": [
            {"pageId": seed::PAGE_DASHBOARD, "canRead": true, "canWrite": true, "canEdit": false, "canDelete": false},
            {"pageId": seed::PAGE_REPORTS, "canRead": true}
        ],
        "create_employee": true,
        "employee_data": {"firstName": "Ada", "lastName": "Lovelace", "department": "R&D", "jobTitle": "Analyst", "employmentType": "FULL_TIME"}
    })
}

/// The query string of the password-setup link in `text`.
fn link_params(text: &str) -> (String, String) {
    let start = text
        .find(FRONTEND_URL)
        .expect("the email carries the set-password link");
    let link = text[start..].split_whitespace().next().unwrap();
    let url = url::Url::parse(link).unwrap();
    assert_eq!(url.path(), "/auth/set-password");
    let param = |name: &str| {
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .unwrap()
    };
    (param("token"), param("email"))
}

#[tokio::test]
async fn create_user_writes_every_row_one_tagged_auth0_user_and_one_email() {
    let stack = TestStack::start().await;
    let response = stack
        .call(create_event(
            seed::ACME_ADMIN_SUB,
            &full_request("  Ada.Lovelace@Example.COM "),
        ))
        .await;

    assert_eq!(response.status, 201, "{:?}", response.body);
    let email = "ada.lovelace@example.com";
    let user = &response.body["user"];
    assert_eq!(user["email"], email);
    assert_eq!(user["role"], "ADMIN");
    assert_eq!(user["tenantId"], seed::ACME);
    assert!(response.body["message"].as_str().unwrap().contains(email));

    // Database: the user row carries the Auth0 id, never a pending marker.
    let sql = stack.sql().await;
    let row = sql
        .query_one("SELECT id, tenant_id, role, auth0_sub, is_active, created_by FROM users WHERE email = $1", &[&email])
        .await
        .unwrap();
    let user_id: Uuid = row.get(0);
    assert_eq!(user["id"], user_id.to_string());
    assert_eq!(row.get::<_, Uuid>(1).to_string(), seed::ACME);
    assert_eq!(row.get::<_, String>(2), "ADMIN");
    let auth0_sub: String = row.get(3);
    assert!(auth0_sub.starts_with("auth0|"), "{auth0_sub}");
    assert!(row.get::<_, bool>(4));
    assert_eq!(row.get::<_, Uuid>(5).to_string(), seed::ACME_ADMIN_ID);

    let employee = sql
        .query_one("SELECT first_name, last_name, employment_type, tenant_id FROM employees WHERE user_id = $1", &[&user_id])
        .await
        .unwrap();
    assert_eq!(employee.get::<_, String>(0), "Ada");
    assert_eq!(employee.get::<_, String>(1), "Lovelace");
    assert_eq!(
        employee.get::<_, Option<String>>(2).as_deref(),
        Some("FULL_TIME")
    );
    assert_eq!(employee.get::<_, Uuid>(3).to_string(), seed::ACME);

    let permissions = sql
        .query(
            "SELECT page_id::text, can_read, can_write, can_edit, can_delete FROM user_page_access WHERE user_id = $1 ORDER BY page_id",
            &[&user_id],
        )
        .await
        .unwrap();
    let permissions: Vec<(String, bool, bool, bool, bool)> = permissions
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect();
    assert_eq!(
        permissions,
        vec![
            (seed::PAGE_DASHBOARD.to_string(), true, true, false, false),
            (seed::PAGE_REPORTS.to_string(), true, false, false, false),
        ]
    );

    // Auth0: exactly one user, verified, tagged as ours with the row's id.
    let auth0_users = stack.auth0.users_with_email(email);
    assert_eq!(auth0_users.len(), 1);
    let auth0_user = &auth0_users[0];
    assert_eq!(auth0_user["user_id"], auth0_sub.as_str());
    assert_eq!(auth0_user["email_verified"], true);
    assert_eq!(
        auth0_user["app_metadata"],
        json!({"created_by": "atomic-user-provisioning", "tenant_id": seed::ACME, "role": "ADMIN", "db_user_id": user_id.to_string()})
    );

    // Email: one message whose link token hashes to the one stored hash.
    let emails = stack.email.emails_to(email);
    assert_eq!(emails.len(), 1);
    let message = &emails[0];
    assert_eq!(message.to, vec![email.to_string()]);
    assert!(message.subject.contains("Acme Corp"), "{}", message.subject);
    let text = message.text.as_deref().unwrap();
    assert!(
        text.contains("administrator") && text.contains("expires"),
        "{text}"
    );
    let (token, link_email) = link_params(text);
    // The key is derived from the message: it names neither the user nor the token.
    let key = message.idempotency_key.as_deref().unwrap();
    assert!(
        key.starts_with("password-setup/") && key.len() == 47,
        "{key}"
    );
    assert!(
        !key.contains(&user_id.to_string()) && !key.contains(&token[..16]),
        "{key}"
    );
    assert_eq!(link_email, email);
    assert_eq!(token.len(), 64);
    let tokens = sql
        .query(
            "SELECT token_hash, expires_at > now() + interval '23 hours', expires_at < now() + interval '25 hours', used_at IS NULL
               FROM password_reset_tokens WHERE user_id = $1",
            &[&user_id],
        )
        .await
        .unwrap();
    assert_eq!(tokens.len(), 1);
    let stored_hash: Vec<u8> = tokens[0].get(0);
    assert_eq!(stored_hash, Sha256::digest(token.as_bytes()).to_vec());
    assert!(
        tokens[0].get::<_, bool>(1) && tokens[0].get::<_, bool>(2) && tokens[0].get::<_, bool>(3)
    );
    // Only the hash is stored: the raw token appears nowhere in the table.
    let raw_stored: i64 = sql
        .query_one(
            "SELECT count(*) FROM password_reset_tokens WHERE encode(token_hash, 'hex') = $1",
            &[&token],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(raw_stored, 0);
}

#[tokio::test]
async fn linking_a_free_employee_points_it_at_the_new_user() {
    let stack = TestStack::start().await;
    let response = stack
        .call(create_event(
            seed::ACME_OWNER_SUB,
            &json!({"email": "grace@acme.test", "link_employee": true, "employee_id": seed::EMPLOYEE_FREE}),
        ))
        .await;
    assert_eq!(response.status, 201, "{:?}", response.body);
    assert_eq!(
        response.body["user"]["role"], "USER",
        "role defaults to USER"
    );
    assert_eq!(response.body["user"]["employeeId"], seed::EMPLOYEE_FREE);
    let linked: Option<Uuid> = stack
        .sql()
        .await
        .query_one(
            "SELECT user_id FROM employees WHERE id = $1",
            &[&Uuid::parse_str(seed::EMPLOYEE_FREE).unwrap()],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        linked.map(|u| u.to_string()).as_deref(),
        response.body["user"]["id"].as_str()
    );
}

#[tokio::test]
async fn permissions_and_employee_data_sent_as_json_strings_are_accepted() {
    let stack = TestStack::start().await;
    let body = json!({
        "email": "strings@example.com",
        "permissions": json!([{"pageId": seed::PAGE_SETTINGS, "canRead": true, "canDelete": true}]).to_string(),
        "create_employee": true,
        "employee_data": json!({"firstName": "Str", "lastName": "Ings"}).to_string(),
    });
    let response = stack.call(create_event(seed::ACME_ADMIN_SUB, &body)).await;
    assert_eq!(response.status, 201, "{:?}", response.body);
    assert_eq!(
        stack.rows_for("strings@example.com").await.per_user(),
        (1, 1, 1, 1)
    );
}

#[tokio::test]
async fn an_owner_may_create_an_owner() {
    let stack = TestStack::start().await;
    let response = stack
        .call(create_event(
            seed::ACME_OWNER_SUB,
            &json!({"email": "co-owner@acme.test", "role": "OWNER"}),
        ))
        .await;
    assert_eq!(response.status, 201, "{:?}", response.body);
    assert_eq!(response.body["user"]["role"], "OWNER");
}

#[tokio::test]
async fn check_exists_answers_for_any_tenant_and_ignores_case() {
    let stack = TestStack::start().await;
    let ask = |email: &str| check_exists_event(seed::ACME_ADMIN_SUB, email);
    let taken = stack.call(ask("ADMIN@globex.test")).await;
    assert_eq!(taken.status, 200, "{:?}", taken.body);
    assert_eq!(
        taken.body,
        json!({"exists": true, "email": "admin@globex.test"})
    );
    let free = stack.call(ask("nobody@example.com")).await;
    assert_eq!(free.body["exists"], false);
    let bad = stack.call(ask("nope")).await;
    assert_eq!(
        (bad.status, bad.body["field"].as_str()),
        (400, Some("email"))
    );
    let not_admin = stack
        .call(api_event(
            "POST",
            CHECK_PATH,
            Some(seed::ACME_USER_SUB),
            Some(r#"{"email":"x@example.com"}"#),
        ))
        .await;
    assert_eq!(not_admin.status, 403);
}

#[tokio::test]
async fn one_auth0_token_serves_many_requests() {
    let stack = TestStack::start().await;
    for i in 0..4 {
        let response = stack
            .call(create_event(
                seed::ACME_ADMIN_SUB,
                &json!({"email": format!("batch{i}@example.com")}),
            ))
            .await;
        assert_eq!(response.status, 201, "{:?}", response.body);
    }
    assert_eq!(stack.auth0.token_requests(), 1);
}

#[tokio::test]
async fn pooled_connections_killed_between_requests_do_not_fail_the_next_one() {
    let stack = TestStack::start_with(|vars| {
        vars.insert("DB_POOL_SIZE".into(), "3".into());
    })
    .await;
    // Three requests at once leave three connections in the pool.
    let ask = |email: &str| check_exists_event(seed::ACME_ADMIN_SUB, email);
    let (a, b, c) = tokio::join!(
        stack.call(ask("a@example.com")),
        stack.call(ask("b@example.com")),
        stack.call(ask("c@example.com"))
    );
    assert_eq!((a.status, b.status, c.status), (200, 200, 200));
    // What a Lambda thaw after RDS dropped idle connections looks like to the pool.
    let killed: i64 = stack
        .sql()
        .await
        .query_one(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
              WHERE datname = current_database() AND application_name = 'atomic-user-provisioning') t",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let pooled = stack.state.pool.status().size;
    assert!(pooled >= 2, "several connections were pooled: {pooled}");
    assert_eq!(
        killed as usize, pooled,
        "every pooled connection was found and killed"
    );
    let second = stack
        .call(create_event(
            seed::ACME_ADMIN_SUB,
            &json!({"email": "after@example.com"}),
        ))
        .await;
    assert_eq!(second.status, 201, "{:?}", second.body);
    assert_eq!(stack.rows_for("after@example.com").await.users, 1);
}

#[tokio::test]
async fn concurrent_requests_for_one_email_give_one_201_and_one_409() {
    let stack = TestStack::start_with(|vars| {
        vars.insert("DB_POOL_SIZE".into(), "4".into());
    })
    .await;
    let body = json!({"email": "race@example.com", "permissions": [{"pageId": seed::PAGE_DASHBOARD, "canRead": true}]});
    let (a, b) = tokio::join!(
        stack.call(create_event(seed::ACME_ADMIN_SUB, &body)),
        stack.call(create_event(seed::ACME_OWNER_SUB, &body))
    );
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(statuses, [201, 409], "{:?} / {:?}", a.body, b.body);
    let loser = if a.status == 409 { &a } else { &b };
    assert_eq!(loser.code(), "USER_ALREADY_EXISTS", "{:?}", loser.body);
    assert_eq!(stack.auth0.users_with_email("race@example.com").len(), 1);
    assert_eq!(stack.email.emails_to("race@example.com").len(), 1);
    let rows = stack.rows_for("race@example.com").await;
    assert_eq!((rows.users, rows.permissions, rows.reset_tokens), (1, 1, 1));
}
