//! `make migrate`: the real `migrate` binary against an empty database of the throwaway
//! cluster, over verify-full TLS with the CA made for the run, credentials from a secret file.

use std::process::Command;

use testkit::harness::connect;
use testkit::runtime_api::workspace_binary;
use uuid::Uuid;

/// An empty database, dropped when the test ends.
struct EmptyDatabase {
    admin_url: String,
    name: String,
}

impl EmptyDatabase {
    async fn create() -> EmptyDatabase {
        let admin_url = std::env::var("TEST_DATABASE_URL").expect("make test sets it");
        let name = format!("migrate_{}", Uuid::new_v4().simple());
        connect(&admin_url)
            .await
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        EmptyDatabase { admin_url, name }
    }

    fn url(&self) -> url::Url {
        let mut url = url::Url::parse(&self.admin_url).unwrap();
        url.set_path(&format!("/{}", self.name));
        url
    }
}

impl Drop for EmptyDatabase {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().ok()?;
            runtime.block_on(async {
                let admin = connect(&admin_url).await;
                admin
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
                    .ok()
            })
        })
        .join();
    }
}

struct Run {
    ok: bool,
    output: String,
}

fn migrate(vars: &[(&str, String)]) -> Run {
    let binary = workspace_binary("migrate").expect("`cargo build --bins` ran before the tests");
    let output = Command::new(binary)
        .env_clear()
        .envs(vars.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap();
    Run {
        ok: output.status.success(),
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    }
}

#[tokio::test]
async fn make_migrate_applies_every_migration_over_verify_full_tls_and_seeds_nothing() {
    let (Ok(ca), Ok(wrong_ca)) = (
        std::env::var("TEST_PG_CA_FILE"),
        std::env::var("TEST_PG_WRONG_CA_FILE"),
    ) else {
        eprintln!("skipped: the suite runs against an external DATABASE_URL without its CA");
        return;
    };
    let database = EmptyDatabase::create().await;
    // The password comes from the database secret, as on AWS; the URL holds none.
    let full = database.url();
    let password = full.password().unwrap().to_string();
    let mut url = full.clone();
    url.set_password(None).unwrap();
    let dir = tempdir();
    let secret_file = dir.join("db-secret.json");
    std::fs::write(
        &secret_file,
        serde_json::json!({"username": full.username(), "password": password}).to_string(),
    )
    .unwrap();
    let vars = |ca: &str| {
        vec![
            ("DATABASE_URL", url.to_string()),
            ("DB_SECRET_FILE", secret_file.display().to_string()),
            ("DB_SSL_ROOT_CERT", ca.to_string()),
        ]
    };

    // A certificate our CA did not sign: refused, nothing applied, no password shown.
    let refused = migrate(&vars(&wrong_ca));
    assert!(!refused.ok, "{}", refused.output);
    assert!(
        refused.output.contains("UnknownIssuer"),
        "{}",
        refused.output
    );
    assert!(!refused.output.contains(&password), "{}", refused.output);

    let first = migrate(&vars(&ca));
    assert!(first.ok, "{}", first.output);
    for name in [
        "V1__schema",
        "V2__set_password",
        "V3__cleanup_indexes",
        "V4__idempotency_keys",
        "V5__auth0_sweep",
    ] {
        assert!(
            first.output.contains(&format!("applied {name}")),
            "{}",
            first.output
        );
    }
    assert!(!first.output.contains(&password), "{}", first.output);

    let sql = connect(full.as_str()).await;
    let tables: i64 = sql
        .query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'
                AND table_name IN ('tenants', 'users', 'employees', 'pages', 'user_page_access',
                                   'password_reset_tokens', 'idempotency_keys', 'auth0_sweep',
                                   'auth0_sweep_retries')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(tables, 9);
    // The sweep's one row, where nothing has been swept yet.
    let sweep: (Option<chrono::DateTime<chrono::Utc>>, i64) = sql
        .query_one("SELECT watermark, rounds_completed FROM auth0_sweep", &[])
        .await
        .map(|row| (row.get(0), row.get(1)))
        .unwrap();
    assert_eq!(sweep, (None, 0));
    let rows: i64 = sql
        .query_one(
            "SELECT (SELECT count(*) FROM tenants) + (SELECT count(*) FROM users) + (SELECT count(*) FROM pages)",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 0, "never any demo data");

    let again = migrate(&vars(&ca));
    assert!(again.ok, "{}", again.output);
    assert!(again.output.contains("up to date"), "{}", again.output);
}

#[test]
fn make_migrate_names_a_missing_setting_and_never_needs_the_auth0_or_email_ones() {
    let run = migrate(&[("DB_SSLMODE", "verify-full".into())]);
    assert!(!run.ok);
    assert!(run.output.contains("DB_HOST"), "{}", run.output);
    assert!(!run.output.contains("AUTH0"), "{}", run.output);
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("migrate-test-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
