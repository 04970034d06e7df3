//! Secrets from AWS Secrets Manager through the real AWS SDK, against moto's server: read at
//! start-up, cached per instance, re-read after a rotation, and clear errors when wrong.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::json;
use testkit::doubles::{Auth0Config, EmailConfig};
use testkit::harness::{PreparedStack, Response, TestStack, create_event, seed};
use testkit::lambda_process::LambdaProcess;
use testkit::moto::Moto;

fn app_secret(auth0_url: &str, client_secret: &str) -> String {
    json!({
        "domain": auth0_url,
        "client_id": Auth0Config::default().client_id,
        "client_secret": client_secret,
        "api_key": EmailConfig::default().api_key,
        "from": "Acme <no-reply@acme.test>",
    })
    .to_string()
}

/// Production-shaped settings: no credential in the environment, only ARNs and the host.
fn use_secrets_manager(vars: &mut HashMap<String, String>, app_arn: &str, db_arn: &str) {
    let url = url::Url::parse(&vars["DATABASE_URL"]).unwrap();
    for key in [
        "DATABASE_URL",
        "AUTH0_DOMAIN",
        "AUTH0_CLIENT_ID",
        "AUTH0_CLIENT_SECRET",
        "EMAIL_API_KEY",
        "EMAIL_FROM",
    ] {
        vars.remove(key);
    }
    vars.insert("APP_SECRET_ARN".into(), app_arn.into());
    vars.insert("DB_SECRET_ARN".into(), db_arn.into());
    vars.insert("DB_HOST".into(), url.host_str().unwrap().into());
    vars.insert("DB_PORT".into(), url.port().unwrap().to_string());
    vars.insert("DB_NAME".into(), url.path().trim_start_matches('/').into());
}

/// The RDS-style secret for the credentials in `database_url`.
fn db_secret(database_url: &str) -> String {
    let url = url::Url::parse(database_url).unwrap();
    json!({"username": url.username(), "password": url.password().unwrap_or_default(), "engine": "postgres"})
        .to_string()
}

async fn stack_on_secrets_manager(
    moto: &Moto,
    ttl_seconds: u64,
    client_secret: &str,
) -> Result<(TestStack, String, String), shared::state::InitError> {
    let prepared = TestStack::prepare().await;
    let db_credentials = db_secret(&prepared.vars["DATABASE_URL"]);
    start_on_secrets_manager(prepared, moto, ttl_seconds, client_secret, &db_credentials).await
}

async fn start_on_secrets_manager(
    mut prepared: PreparedStack,
    moto: &Moto,
    ttl_seconds: u64,
    client_secret: &str,
    db_credentials: &str,
) -> Result<(TestStack, String, String), shared::state::InitError> {
    // The app secret names the Auth0 double, whose URL exists only now.
    let app_arn = moto
        .create_secret(
            "app",
            &app_secret(&prepared.auth0.base_url(), client_secret),
        )
        .await;
    let db_arn = moto.create_secret("db", db_credentials).await;
    use_secrets_manager(&mut prepared.vars, &app_arn, &db_arn);
    prepared
        .vars
        .insert("SECRETS_TTL_SECONDS".into(), ttl_seconds.to_string());
    let stack = prepared.start(Some(&moto.sdk_config())).await?;
    Ok((stack, app_arn, db_arn))
}

#[tokio::test]
async fn secrets_are_read_once_at_start_up_and_again_only_after_the_ttl() {
    let moto = Moto::from_env();
    let (stack, app_arn, db_arn) = stack_on_secrets_manager(&moto, 2, "test-client-secret")
        .await
        .unwrap();
    assert_eq!(moto.get_secret_value_calls(&app_arn).await, 1);
    assert_eq!(moto.get_secret_value_calls(&db_arn).await, 1);

    for i in 0..3 {
        let response = stack
            .call(create_event(
                seed::ACME_ADMIN_SUB,
                &json!({"email": format!("sm{i}@example.com")}),
            ))
            .await;
        assert_eq!(response.status, 201, "{:?}", response.body);
    }
    assert_eq!(
        moto.get_secret_value_calls(&app_arn).await,
        1,
        "cached, not read per invocation"
    );

    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let response = stack
        .call(create_event(
            seed::ACME_ADMIN_SUB,
            &json!({"email": "after-ttl@example.com"}),
        ))
        .await;
    assert_eq!(response.status, 201, "{:?}", response.body);
    assert_eq!(
        moto.get_secret_value_calls(&app_arn).await,
        2,
        "read again once the TTL passed"
    );
    // The pool was built with the database credentials; they are not re-read per request.
    assert_eq!(moto.get_secret_value_calls(&db_arn).await, 1);
}

#[tokio::test]
async fn a_rotated_auth0_client_secret_is_picked_up_after_one_refresh() {
    let moto = Moto::from_env();
    let (stack, app_arn, _) = stack_on_secrets_manager(&moto, 3_600, "test-client-secret")
        .await
        .unwrap();
    let first = stack
        .call(create_event(
            seed::ACME_ADMIN_SUB,
            &json!({"email": "before-rotation@example.com"}),
        ))
        .await;
    assert_eq!(first.status, 201, "{:?}", first.body);

    // Rotation: the new secret is stored, Auth0 accepts only it, and old tokens lapse.
    moto.put_secret(
        &app_arn,
        &app_secret(&stack.auth0.base_url(), "rotated-secret"),
    )
    .await;
    stack.auth0.set_client_secret("rotated-secret");
    stack.auth0.expire_tokens();

    let second = stack
        .call(create_event(
            seed::ACME_ADMIN_SUB,
            &json!({"email": "after-rotation@example.com"}),
        ))
        .await;
    assert_eq!(second.status, 201, "{:?}", second.body);
    assert_eq!(
        moto.get_secret_value_calls(&app_arn).await,
        2,
        "one refresh, no more"
    );
    assert_eq!(
        stack
            .auth0
            .users_with_email("after-rotation@example.com")
            .len(),
        1
    );
}

#[tokio::test]
async fn a_rotation_the_secret_does_not_know_about_fails_clearly_after_one_refresh() {
    let moto = Moto::from_env();
    let (stack, app_arn, _) = stack_on_secrets_manager(&moto, 3_600, "test-client-secret")
        .await
        .unwrap();
    stack.auth0.set_client_secret("only-auth0-knows");
    let response = stack
        .call(create_event(
            seed::ACME_ADMIN_SUB,
            &json!({"email": "stale@example.com"}),
        ))
        .await;
    response.assert_answer(502, "AUTH0_FAILED");
    assert!(
        response.body["message"]
            .as_str()
            .unwrap()
            .contains("credentials refused"),
        "{:?}",
        response.body
    );
    assert_eq!(
        moto.get_secret_value_calls(&app_arn).await,
        2,
        "start-up read plus one refresh"
    );
    stack.assert_nothing_kept("stale@example.com").await;
}

async fn start_up_error(app_secret_value: Option<&str>) -> (String, String) {
    let moto = Moto::from_env();
    let app_arn = match app_secret_value {
        Some(value) => moto.create_secret("app", value).await,
        None => "arn:aws:secretsmanager:us-east-1:123456789012:secret:missing-AbCdEf".to_string(),
    };
    let db_arn = moto
        .create_secret("db", r#"{"username":"postgres","password":"x"}"#)
        .await;
    let result = TestStack::try_start(
        |vars| use_secrets_manager(vars, &app_arn, &db_arn),
        Some(&moto.sdk_config()),
    )
    .await;
    let Err(err) = result else {
        panic!("start-up should fail")
    };
    (err.to_string(), app_arn)
}

#[tokio::test]
async fn a_missing_secret_stops_start_up_naming_it() {
    let (message, arn) = start_up_error(None).await;
    assert_eq!(message, format!("secrets: secret {arn} does not exist"));
}

#[tokio::test]
async fn a_malformed_secret_stops_start_up_without_echoing_it() {
    let (message, arn) = start_up_error(Some(r#"{"client_secret": "hunter2", "#)).await;
    assert_eq!(
        message,
        format!("secrets: secret {arn} is not a JSON object")
    );
    assert!(!message.contains("hunter2"));
}

#[tokio::test]
async fn a_secret_without_a_key_stops_start_up_naming_the_key() {
    let (message, arn) = start_up_error(Some(
        r#"{"domain":"acme.eu.auth0.com","client_id":"cid","api_key":"k","from":"a@b.co"}"#,
    ))
    .await;
    assert_eq!(
        message,
        format!("secrets: key `client_secret` of secret {arn} is missing")
    );
}

#[tokio::test]
async fn the_create_user_binary_finds_its_secrets_through_the_sdks_environment() {
    let moto = Moto::from_env();
    let stack = TestStack::start().await;
    let app_arn = moto
        .create_secret(
            "app",
            &app_secret(&stack.auth0.base_url(), "test-client-secret"),
        )
        .await;
    let db_arn = moto
        .create_secret("db", &db_secret(&stack.vars["DATABASE_URL"]))
        .await;
    let mut vars = stack.vars.clone();
    use_secrets_manager(&mut vars, &app_arn, &db_arn);

    vars.extend(moto.env_vars());
    let function = LambdaProcess::start("create-user", &vars).await.unwrap();
    let invocation = function
        .invoke(create_event(
            seed::ACME_ADMIN_SUB,
            &json!({"email": "sdk-env@example.com"}),
        ))
        .await
        .unwrap();
    let response = Response::of(&invocation);
    assert_eq!(response.status, 201, "{:?}", response.body);
    assert_eq!(moto.get_secret_value_calls(&app_arn).await, 1);
    function.kill().await;

    // A secret that does not exist: the process stops at init with the secret named.
    vars.insert("APP_SECRET_ARN".into(), format!("{app_arn}-gone"));
    let Err(failure) = LambdaProcess::start("create-user", &vars).await else {
        panic!("start-up should fail")
    };
    assert!(failure.contains("exited during init"), "{failure}");
    assert!(
        failure.contains(&format!("secret {app_arn}-gone does not exist")),
        "{failure}"
    );
}

#[tokio::test]
async fn locally_a_secret_file_is_read_at_start_up_and_re_read_on_rotation() {
    let dir = std::env::temp_dir().join(format!("app-secret-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("app-secret.json");
    let mut prepared = TestStack::prepare().await;
    std::fs::write(
        &file,
        app_secret(&prepared.auth0.base_url(), "test-client-secret"),
    )
    .unwrap();
    for key in [
        "AUTH0_DOMAIN",
        "AUTH0_CLIENT_ID",
        "AUTH0_CLIENT_SECRET",
        "EMAIL_API_KEY",
        "EMAIL_FROM",
    ] {
        prepared.vars.remove(key);
    }
    prepared
        .vars
        .insert("APP_SECRET_FILE".into(), file.display().to_string());
    let stack = prepared.start(None).await.unwrap();
    let first = stack
        .call(create_event(
            seed::ACME_ADMIN_SUB,
            &json!({"email": "file1@example.com"}),
        ))
        .await;
    assert_eq!(first.status, 201, "{:?}", first.body);

    std::fs::write(
        &file,
        app_secret(&stack.auth0.base_url(), "rotated-in-file"),
    )
    .unwrap();
    stack.auth0.set_client_secret("rotated-in-file");
    stack.auth0.expire_tokens();
    let second = stack
        .call(create_event(
            seed::ACME_ADMIN_SUB,
            &json!({"email": "file2@example.com"}),
        ))
        .await;
    assert_eq!(second.status, 201, "{:?}", second.body);
    assert_eq!(stack.state.app_secret.fetch_count(), 2);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_rotated_database_password_is_picked_up_when_the_old_one_is_refused() {
    let moto = Moto::from_env();
    let prepared = TestStack::prepare().await;
    // A role of its own: the cluster's admin password is shared by every test.
    let role = format!("app_{}", uuid::Uuid::new_v4().simple());
    let admin = prepared.db.admin_sql().await;
    admin
        .batch_execute(&format!(
            "CREATE ROLE {role} LOGIN PASSWORD 'before-rotation';
             GRANT ALL ON DATABASE {db} TO {role};",
            db = prepared.db.name
        ))
        .await
        .unwrap();
    testkit::harness::connect(&prepared.db.url)
        .await
        .batch_execute(&format!(
            "GRANT ALL ON ALL TABLES IN SCHEMA public TO {role}; GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {role};"
        ))
        .await
        .unwrap();
    let credentials = |password: &str| json!({"username": role, "password": password}).to_string();
    let (stack, _, db_arn) = start_on_secrets_manager(
        prepared,
        &moto,
        3_600,
        "test-client-secret",
        &credentials("before-rotation"),
    )
    .await
    .unwrap();
    let first = stack
        .call(create_event(
            seed::ACME_ADMIN_SUB,
            &json!({"email": "db-before@example.com"}),
        ))
        .await;
    assert_eq!(first.status, 201, "{:?}", first.body);

    // Rotation: the password changes in Postgres and in the secret; the pooled connections
    // are recycled (as RDS or a thawed Lambda would), so the next request needs a new one.
    admin
        .batch_execute(&format!("ALTER ROLE {role} PASSWORD 'after-rotation'"))
        .await
        .unwrap();
    moto.put_secret(&db_arn, &credentials("after-rotation"))
        .await;
    admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1",
            &[&role],
        )
        .await
        .unwrap();

    let second = stack
        .call(create_event(
            seed::ACME_ADMIN_SUB,
            &json!({"email": "db-after@example.com"}),
        ))
        .await;
    assert_eq!(second.status, 201, "{:?}", second.body);
    assert_eq!(
        moto.get_secret_value_calls(&db_arn).await,
        2,
        "start-up read plus one refresh"
    );
    assert_eq!(stack.rows_for("db-after@example.com").await.users, 1);
}
