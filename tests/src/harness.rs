//! The test harness: a fresh database per test (cloned from a migrated template on the
//! throwaway cluster), the Auth0 and email doubles on loopback, and the app state wired to them.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use shared::config::Config;
use shared::state::AppState;
use tokio_postgres::NoTls;
use uuid::Uuid;

use crate::doubles::{Auth0Config, Auth0Double, EmailConfig, EmailDouble};

/// Ids from `tests/fixtures/seed.sql`.
pub mod seed {
    pub const ACME: &str = "11111111-1111-4111-8111-111111111111";
    pub const GLOBEX: &str = "22222222-2222-4222-8222-222222222222";
    pub const ACME_OWNER_SUB: &str = "auth0|seedowneracme0000000001";
    pub const ACME_ADMIN_SUB: &str = "auth0|seedadminacme0000000002";
    pub const ACME_ADMIN_ID: &str = "a0000000-0000-4000-8000-000000000002";
    pub const ACME_USER_SUB: &str = "auth0|seeduseracme00000000003";
    pub const ACME_INACTIVE_ADMIN_SUB: &str = "auth0|seedinactiveacme0000004";
    pub const GLOBEX_ADMIN_SUB: &str = "auth0|seedadminglobex000000005";
    pub const PAGE_DASHBOARD: &str = "c0000000-0000-4000-8000-000000000001";
    pub const PAGE_REPORTS: &str = "c0000000-0000-4000-8000-000000000002";
    pub const PAGE_SETTINGS: &str = "c0000000-0000-4000-8000-000000000003";
    pub const EMPLOYEE_FREE: &str = "e0000000-0000-4000-8000-000000000001";
    pub const EMPLOYEE_LINKED: &str = "e0000000-0000-4000-8000-000000000002";
    pub const EMPLOYEE_OTHER_BUSINESS: &str = "e0000000-0000-4000-8000-000000000003";
    pub const EMPLOYEE_OTHER_TENANT: &str = "e0000000-0000-4000-8000-000000000004";
    pub const SQL: &str = include_str!("../fixtures/seed.sql");
}

pub const FRONTEND_URL: &str = "https://app.acme.test";
pub const EMAIL_FROM: &str = "Acme <no-reply@acme.test>";

/// Prints the app's logs while a test runs when `TEST_LOG` is set.
fn init_test_logging() {
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                std::env::var("TEST_LOG").unwrap_or_else(|_| "info".into()),
            ))
            .with_test_writer()
            .try_init();
    }
}

fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .or_else(|_| std::env::var("DATABASE_URL"))
        .expect("TEST_DATABASE_URL or DATABASE_URL must point at a Postgres server; `make test` starts one")
}

fn url_for_database(admin: &str, name: &str) -> String {
    let mut url = url::Url::parse(admin).expect("DATABASE_URL is a URL");
    url.set_path(&format!("/{name}"));
    url.into()
}

pub async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the test Postgres: {e}"));
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// Template name carries a hash of the migrations and the seed, so a change rebuilds it.
fn template_name() -> String {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/migrations");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("shared/migrations exists")
        .map(|e| e.expect("readable migrations dir").path())
        .collect();
    files.sort();
    let mut hasher = Sha256::new();
    for file in files {
        hasher.update(std::fs::read(&file).expect("readable migration"));
    }
    hasher.update(seed::SQL.as_bytes());
    format!("provisioning_tpl_{}", &hex::encode(hasher.finalize())[..12])
}

/// A database of its own for one test, dropped when the test ends (pass or fail).
pub struct TestDb {
    pub url: String,
    pub name: String,
    admin_url: String,
}

impl TestDb {
    pub async fn create() -> TestDb {
        Self::create_from(None).await
    }

    /// As [`TestDb::create`], from a template that also holds what `extra` (SQL, one or more
    /// statements) adds to the seed: built once per server and named by a hash of the
    /// migrations, the seed and `extra`, so a big fixture (a million rows) is inserted once
    /// and then copied for each test in well under a second.
    pub async fn create_with(extra: &str) -> TestDb {
        Self::create_from(Some(extra)).await
    }

    async fn create_from(extra: Option<&str>) -> TestDb {
        let admin_url = admin_url();
        let admin = connect(&admin_url).await;
        let base = template_name();
        let template = match extra {
            None => base.clone(),
            Some(extra) => {
                let digest = hex::encode(Sha256::digest(extra.as_bytes()));
                format!("{base}_x{}", &digest[..12])
            }
        };
        // Across test processes and threads: one builds the template, the others wait.
        admin
            .execute("SELECT pg_advisory_lock(727274)", &[])
            .await
            .unwrap();
        for (name, from, sql) in [(&base, None, None), (&template, Some(&base), extra)] {
            let exists = admin
                .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[name])
                .await
                .unwrap()
                .is_some();
            if !exists {
                build_template(&admin, &admin_url, name, from.map(String::as_str), sql).await;
            }
        }
        admin
            .execute("SELECT pg_advisory_unlock(727274)", &[])
            .await
            .unwrap();
        let name = format!("test_{}", Uuid::new_v4().simple());
        admin
            .batch_execute(&format!("CREATE DATABASE {name} TEMPLATE {template}"))
            .await
            .unwrap();
        TestDb {
            url: url_for_database(&admin_url, &name),
            name,
            admin_url,
        }
    }
}

impl TestDb {
    /// A connection to the server's admin database (roles, other sessions).
    pub async fn admin_sql(&self) -> tokio_postgres::Client {
        connect(&self.admin_url).await
    }
}

/// Builds `template`: migrated and seeded, or a copy of `from` with `extra` run on it.
async fn build_template(
    admin: &tokio_postgres::Client,
    admin_url: &str,
    template: &str,
    from: Option<&str>,
    extra: Option<&str>,
) {
    let building = format!("{template}_building");
    // Separate statements: a multi-statement batch would be one (forbidden) transaction.
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {building}"))
        .await
        .unwrap();
    let create = match from {
        Some(from) => format!("CREATE DATABASE {building} TEMPLATE {from}"),
        None => format!("CREATE DATABASE {building}"),
    };
    admin.batch_execute(&create).await.unwrap();
    {
        let mut client = connect(&url_for_database(admin_url, &building)).await;
        match (from, extra) {
            (None, _) => {
                shared::db::migrate(&mut client)
                    .await
                    .expect("migrations apply");
                client.batch_execute(seed::SQL).await.expect("seed applies");
            }
            (Some(_), Some(extra)) => {
                client
                    .batch_execute(extra)
                    .await
                    .expect("the fixture applies");
                // Planner statistics and the visibility map, as a database in use has them.
                client
                    .batch_execute("VACUUM ANALYZE")
                    .await
                    .expect("vacuum");
            }
            (Some(_), None) => {}
        }
    }
    // The building connection must be gone before the database can be renamed.
    for _ in 0..50 {
        let renamed = admin
            .batch_execute(&format!("ALTER DATABASE {building} RENAME TO {template}"))
            .await;
        if renamed.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("could not finish the template database {template}");
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop cannot await; a short-lived thread with its own runtime does the DROP.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let (client, connection) = tokio_postgres::connect(&admin_url, NoTls).await.ok()?;
                tokio::spawn(connection);
                client
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
                    .ok()
            })
        })
        .join();
    }
}

/// Environment-style settings for the app, pointing at this stack.
pub fn app_vars(db_url: &str, auth0: &Auth0Double, email: &EmailDouble) -> HashMap<String, String> {
    let auth0_cfg = Auth0Config::default();
    HashMap::from([
        ("DATABASE_URL".to_string(), db_url.to_string()),
        ("DB_SSLMODE".to_string(), "disable".to_string()),
        ("AUTH0_DOMAIN".to_string(), auth0.base_url()),
        ("AUTH0_CLIENT_ID".to_string(), auth0_cfg.client_id),
        ("AUTH0_CLIENT_SECRET".to_string(), auth0_cfg.client_secret),
        ("EMAIL_API_URL".to_string(), email.base_url()),
        ("EMAIL_API_KEY".to_string(), EmailConfig::default().api_key),
        ("EMAIL_FROM".to_string(), EMAIL_FROM.to_string()),
        ("FRONTEND_URL".to_string(), FRONTEND_URL.to_string()),
        ("HTTP_TIMEOUT_MS".to_string(), "2000".to_string()),
        ("DB_LOCK_TIMEOUT_MS".to_string(), "2000".to_string()),
        // No ceiling on cleanup's Auth0 calls unless a test sets one (cleanup_budget.rs).
        ("CLEANUP_AUTH0_MAX_RPS".to_string(), "0".to_string()),
    ])
}

pub struct PreparedStack {
    pub db: TestDb,
    pub auth0: Auth0Double,
    pub email: EmailDouble,
    pub vars: HashMap<String, String>,
}

impl PreparedStack {
    /// Builds the app state from `vars` as a Lambda instance would at start-up.
    pub async fn start(
        self,
        aws: Option<&aws_config::SdkConfig>,
    ) -> Result<TestStack, shared::state::InitError> {
        let config = Config::from_lookup(|key| self.vars.get(key).cloned())?;
        let state = AppState::init_with_aws(config, aws).await?;
        Ok(TestStack {
            db: self.db,
            auth0: self.auth0,
            email: self.email,
            state,
            vars: self.vars,
        })
    }
}

/// One test's world: its database, both doubles, and the app state wired to them.
pub struct TestStack {
    pub db: TestDb,
    pub auth0: Auth0Double,
    pub email: EmailDouble,
    pub state: AppState,
    pub vars: HashMap<String, String>,
}

impl TestStack {
    pub async fn start() -> TestStack {
        Self::start_with(|_| {}).await
    }

    /// `adjust` may change any setting (timeouts, pool size) before the state is built.
    pub async fn start_with(adjust: impl FnOnce(&mut HashMap<String, String>)) -> TestStack {
        Self::try_start(adjust, None)
            .await
            .expect("app state builds")
    }

    /// As `start_with`, with an AWS SDK configuration (moto) for secrets; returns the
    /// start-up error instead of panicking so tests can check it.
    pub async fn try_start(
        adjust: impl FnOnce(&mut HashMap<String, String>),
        aws: Option<&aws_config::SdkConfig>,
    ) -> Result<TestStack, shared::state::InitError> {
        let mut prepared = Self::prepare().await;
        adjust(&mut prepared.vars);
        prepared.start(aws).await
    }

    /// As `start_with`, on `db` (one made by [`TestDb::create_with`], say).
    pub async fn start_on(
        db: TestDb,
        adjust: impl FnOnce(&mut HashMap<String, String>),
    ) -> TestStack {
        let mut prepared = Self::prepare_on(db).await;
        adjust(&mut prepared.vars);
        prepared.start(None).await.expect("app state builds")
    }

    /// The database and the doubles, before the app state exists: lets a test put values
    /// that name them (the doubles' URLs) into a secret first.
    pub async fn prepare() -> PreparedStack {
        Self::prepare_on(TestDb::create().await).await
    }

    pub async fn prepare_on(db: TestDb) -> PreparedStack {
        init_test_logging();
        let auth0 = Auth0Double::start(Auth0Config::default())
            .await
            .expect("auth0 double starts");
        let email = EmailDouble::start(EmailConfig::default())
            .await
            .expect("email double starts");
        let vars = app_vars(&db.url, &auth0, &email);
        PreparedStack {
            db,
            auth0,
            email,
            vars,
        }
    }

    pub async fn sql(&self) -> tokio_postgres::Client {
        connect(&self.db.url).await
    }

    /// Calls the Lambda handler with an API Gateway event, as the runtime would.
    pub async fn call(&self, event: Value) -> Response {
        self.call_with_timeout(event, Duration::from_secs(25)).await
    }

    pub async fn call_with_timeout(&self, event: Value, function_timeout: Duration) -> Response {
        let event = handler_event(&event, lambda_context(function_timeout));
        let response = shared::admin_api::handle(&self.state, event)
            .await
            .expect("the event is an API Gateway proxy event");
        Response::from_lambda(serde_json::to_value(response).expect("response serialises"))
    }

    /// Calls the set-password Lambda handler with an API Gateway event, as the runtime would.
    pub async fn call_public(&self, event: Value) -> Response {
        let event = handler_event(&event, lambda_context(Duration::from_secs(25)));
        let response = shared::set_password::handler::handle(&self.state, event)
            .await
            .expect("the event is an API Gateway proxy event");
        Response::from_lambda(serde_json::to_value(response).expect("response serialises"))
    }

    /// Calls the scim Lambda handler with an API Gateway event, as the runtime would.
    pub async fn call_scim(&self, event: Value) -> Response {
        let event = handler_event(&event, lambda_context(Duration::from_secs(25)));
        let response = shared::scim::handle(&self.state, event)
            .await
            .expect("the event is an API Gateway proxy event");
        Response::from_lambda(serde_json::to_value(response).expect("response serialises"))
    }

    /// A SCIM token of the tenant of the admin `sub`, made through the admin API.
    pub async fn scim_token(&self, sub: &str) -> String {
        let made = self
            .call(api_event(
                "POST",
                SCIM_TOKENS_PATH,
                Some(sub),
                Some(&json!({"name": "Okta"}).to_string()),
            ))
            .await;
        assert_eq!(made.status, 201, "{}", made.body);
        made.body["token"].as_str().expect("the token").to_string()
    }

    /// Runs `sql` (one or more statements) on the test's database.
    pub async fn execute(&self, sql: &str) {
        self.sql().await.batch_execute(sql).await.unwrap();
    }

    /// A trigger that makes every row statement of `timing` on `table` fail, the way a broken
    /// schema or a bug would: `timing` is e.g. `BEFORE INSERT`, or `COMMIT AFTER UPDATE` for a
    /// deferred trigger that fails the commit. [`TestStack::repair`] removes it.
    pub async fn sabotage(&self, table: &str, timing: &str) {
        let (kind, timing, deferral) = match timing.strip_prefix("COMMIT ") {
            Some(timing) => ("CONSTRAINT", timing, "DEFERRABLE INITIALLY DEFERRED"),
            None => ("", timing, ""),
        };
        let sql = format!(
            "CREATE FUNCTION sabotage() RETURNS trigger LANGUAGE plpgsql AS $$
               BEGIN RAISE EXCEPTION 'sabotaged %', TG_TABLE_NAME; END $$;
             CREATE {kind} TRIGGER sabotage {timing} ON {table} {deferral}
               FOR EACH ROW EXECUTE FUNCTION sabotage();"
        );
        self.execute(&sql).await;
    }

    pub async fn repair(&self) {
        self.execute("DROP FUNCTION sabotage() CASCADE").await;
    }

    /// Rows that mention `email` in every table the flow writes.
    pub async fn rows_for(&self, email: &str) -> RowCounts {
        let sql = self.sql().await;
        let row = sql
            .query_one(
                "SELECT
                   (SELECT count(*) FROM users WHERE lower(email) = lower($1)),
                   (SELECT count(*) FROM employees e JOIN users u ON u.id = e.user_id WHERE lower(u.email) = lower($1)),
                   (SELECT count(*) FROM employees WHERE lower(email) = lower($1)),
                   (SELECT count(*) FROM user_page_access a JOIN users u ON u.id = a.user_id WHERE lower(u.email) = lower($1)),
                   (SELECT count(*) FROM password_reset_tokens t JOIN users u ON u.id = t.user_id WHERE lower(u.email) = lower($1))",
                &[&email],
            )
            .await
            .unwrap();
        RowCounts {
            users: row.get(0),
            linked_employees: row.get(1),
            employees_with_email: row.get(2),
            permissions: row.get(3),
            reset_tokens: row.get(4),
        }
    }

    /// Asserts that neither system holds anything for `email`.
    pub async fn assert_nothing_kept(&self, email: &str) {
        assert_eq!(
            self.rows_for(email).await,
            RowCounts::default(),
            "database rows left for {email}"
        );
        assert!(
            self.auth0.users_with_email(email).is_empty(),
            "Auth0 users left for {email}: {:?}",
            self.auth0.users_with_email(email)
        );
    }
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct RowCounts {
    pub users: i64,
    pub linked_employees: i64,
    pub employees_with_email: i64,
    pub permissions: i64,
    pub reset_tokens: i64,
}

impl RowCounts {
    /// (users, linked employees, page permissions, reset tokens): the rows one created user has.
    pub fn per_user(&self) -> (i64, i64, i64, i64) {
        (
            self.users,
            self.linked_employees,
            self.permissions,
            self.reset_tokens,
        )
    }
}

/// An API function's event as the runtime hands it over: the event's JSON text.
pub fn handler_event(event: &Value, context: Context) -> shared::http_api::ApiEvent {
    let json = serde_json::value::to_raw_value(event).expect("a JSON value serialises");
    LambdaEvent::new(json, context)
}

/// What the runtime hands the handler besides the event: a request id and the deadline.
fn lambda_context(function_timeout: Duration) -> Context {
    let mut context = Context::default();
    context.request_id = Uuid::new_v4().to_string();
    context.deadline = epoch_millis() + function_timeout.as_millis() as u64;
    context
}

pub fn epoch_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// An HTTP response as API Gateway would return it to the admin panel.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Value,
    pub body: Value,
}

impl Response {
    pub fn from_lambda(raw: Value) -> Response {
        let body = raw["body"]
            .as_str()
            .map(|b| serde_json::from_str(b).expect("body is JSON"))
            .unwrap_or(Value::Null);
        Response {
            status: raw["statusCode"].as_u64().expect("statusCode") as u16,
            headers: raw["headers"].clone(),
            body,
        }
    }

    /// The response a Lambda invocation returned; panics on a function error.
    pub fn of(invocation: &crate::runtime_api::Invocation) -> Response {
        match &invocation.outcome {
            crate::runtime_api::Outcome::Response(raw) => Response::from_lambda(raw.clone()),
            other => panic!("the function failed instead of answering: {other:?}"),
        }
    }

    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }

    /// Asserts the status and the body's `code`, showing the body when either differs.
    #[track_caller]
    pub fn assert_answer(&self, status: u16, code: &str) {
        assert_eq!((self.status, self.code()), (status, code), "{}", self.body);
    }
}

/// An API Gateway HTTP API (payload 2.0) event with the JWT authorizer's claims.
pub fn api_event(method: &str, path: &str, sub: Option<&str>, body: Option<&str>) -> Value {
    let authorizer = match sub {
        Some(sub) => {
            json!({"jwt": {"claims": {"sub": sub, "iss": "https://acme.eu.auth0.com/", "aud": "https://api.acme.test", "exp": "4102444800"}, "scopes": null}})
        }
        None => json!({"jwt": {"claims": {}, "scopes": null}}),
    };
    json!({
        "version": "2.0",
        "routeKey": format!("{method} {path}"),
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"content-type": "application/json", "host": "api.acme.test"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api1234",
            "authorizer": authorizer,
            "domainName": "api.acme.test",
            "domainPrefix": "api",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.7", "userAgent": "admin-panel"},
            "requestId": Uuid::new_v4().to_string(),
            "routeKey": format!("{method} {path}"),
            "stage": "$default",
            "time": "24/Nov/2026:10:00:00 +0000",
            "timeEpoch": 1795514400000i64
        },
        "body": body,
        "isBase64Encoded": false
    })
}

pub const CREATE_PATH: &str = "/api/direct-users/create";
pub const SCIM_TOKENS_PATH: &str = "/api/scim-tokens";
pub const SCIM_USERS_PATH: &str = "/scim/v2/Users";
pub const CHECK_PATH: &str = "/api/direct-users/check-exists";
pub const RESEND_PATH: &str = "/api/direct-users/resend-invitation";
pub const VERIFY_PATH: &str = "/api/auth/set-password/verify";
pub const SET_PASSWORD_PATH: &str = "/api/auth/set-password";

/// A call on a public route: no authorizer ran, so the event has no `authorizer` at all.
pub fn public_event(path: &str, body: &Value) -> Value {
    let mut event = api_event("POST", path, None, Some(&body.to_string()));
    event["requestContext"]
        .as_object_mut()
        .expect("requestContext is an object")
        .remove("authorizer");
    event
}

pub fn resend_event(sub: &str, email: &str) -> Value {
    api_event(
        "POST",
        RESEND_PATH,
        Some(sub),
        Some(&json!({ "email": email }).to_string()),
    )
}

pub fn check_exists_event(sub: &str, email: &str) -> Value {
    api_event(
        "POST",
        CHECK_PATH,
        Some(sub),
        Some(&json!({ "email": email }).to_string()),
    )
}

pub fn create_event(sub: &str, body: &Value) -> Value {
    api_event("POST", CREATE_PATH, Some(sub), Some(&body.to_string()))
}

/// A SCIM request as API Gateway hands it to the scim function: no authorizer, the bearer token
/// in `Authorization`, the query both raw and parsed.
pub fn scim_event(
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
    query: &[(&str, &str)],
) -> Value {
    let body = body.map(Value::to_string);
    let mut event = api_event(method, path, None, body.as_deref());
    event["requestContext"]
        .as_object_mut()
        .expect("requestContext is an object")
        .remove("authorizer");
    event["headers"] = json!({
        "content-type": "application/scim+json",
        "host": "scim.acme.test",
        "x-forwarded-proto": "https",
    });
    if let Some(token) = token {
        event["headers"]["authorization"] = json!(format!("Bearer {token}"));
    }
    let raw: Vec<String> = query
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}={}",
                url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>()
            )
        })
        .collect();
    event["rawQueryString"] = json!(raw.join("&"));
    if !query.is_empty() {
        event["queryStringParameters"] = query
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect::<serde_json::Map<_, _>>()
            .into();
    }
    event
}
