//! Postgres over TLS with rustls, against the throwaway cluster `make test` starts with a CA
//! made at test time (scripts/pg.sh): verify-full passes with that CA and fails with another.

use std::path::PathBuf;

use serde_json::json;
use shared::config::{DatabaseSettings, DbTarget, DbTls, Timeouts};
use shared::db::build_pool;
use testkit::harness::{TestStack, create_event, seed};

/// The CA files of the cluster; `None` when the suite runs against an external DATABASE_URL.
fn cluster_cas() -> Option<(PathBuf, PathBuf)> {
    let ca = std::env::var("TEST_PG_CA_FILE").ok()?;
    let wrong = std::env::var("TEST_PG_WRONG_CA_FILE").ok()?;
    Some((ca.into(), wrong.into()))
}

fn settings(tls: DbTls) -> DatabaseSettings {
    let url = std::env::var("TEST_DATABASE_URL").expect("make test sets TEST_DATABASE_URL");
    DatabaseSettings {
        target: DbTarget::Url(url.into()),
        tls,
        pool_size: 1,
    }
}

fn timeouts() -> Timeouts {
    Timeouts {
        http: std::time::Duration::from_secs(2),
        statement: std::time::Duration::from_secs(5),
        lock: std::time::Duration::from_secs(2),
        idle_in_transaction: std::time::Duration::from_secs(10),
        connect: std::time::Duration::from_secs(5),
        secrets: std::time::Duration::from_secs(5),
    }
}

/// Whether the server sees this session as TLS.
async fn session_is_encrypted(tls: DbTls) -> Result<bool, String> {
    let pool = build_pool(&settings(tls), None, &timeouts()).map_err(|e| e.to_string())?;
    let client = pool.get().await.map_err(|e| error_chain(&e))?;
    let row = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .map_err(|e| e.to_string())?;
    Ok(row.get(0))
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    text
}

macro_rules! require_tls_cluster {
    () => {
        match cluster_cas() {
            Some(cas) => cas,
            None => {
                eprintln!(
                    "skipped: TEST_PG_CA_FILE is set only for the cluster `make test` starts"
                );
                return;
            }
        }
    };
}

#[tokio::test]
async fn verify_full_with_the_clusters_ca_connects_over_tls() {
    let (ca, _) = require_tls_cluster!();
    assert_eq!(
        session_is_encrypted(DbTls::VerifyFull { ca_file: ca }).await,
        Ok(true)
    );
}

#[tokio::test]
async fn verify_full_with_a_wrong_ca_fails_with_a_certificate_error() {
    let (_, wrong) = require_tls_cluster!();
    let err = session_is_encrypted(DbTls::VerifyFull { ca_file: wrong })
        .await
        .unwrap_err();
    assert!(
        err.contains("invalid peer certificate") && err.contains("UnknownIssuer"),
        "{err}"
    );
}

#[tokio::test]
async fn require_encrypts_without_checking_the_certificate_and_disable_does_not_encrypt() {
    let _ = require_tls_cluster!();
    assert_eq!(session_is_encrypted(DbTls::Require).await, Ok(true));
    assert_eq!(session_is_encrypted(DbTls::Disable).await, Ok(false));
}

#[tokio::test]
async fn a_missing_ca_bundle_is_named_when_the_pool_is_built() {
    let err = build_pool(
        &settings(DbTls::VerifyFull {
            ca_file: "/nonexistent/rds-bundle.pem".into(),
        }),
        None,
        &timeouts(),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("DB_SSL_ROOT_CERT /nonexistent/rds-bundle.pem: cannot read it"),
        "{err}"
    );
}

#[tokio::test]
async fn create_user_runs_over_a_verified_tls_connection() {
    let (ca, _) = require_tls_cluster!();
    let stack = TestStack::start_with(|vars| {
        vars.insert("DB_SSLMODE".into(), "verify-full".into());
        vars.insert("DB_SSL_ROOT_CERT".into(), ca.display().to_string());
    })
    .await;
    let response = stack
        .call(create_event(
            seed::ACME_ADMIN_SUB,
            &json!({"email": "tls@example.com"}),
        ))
        .await;
    assert_eq!(response.status, 201, "{:?}", response.body);
    let encrypted: i64 = stack
        .sql()
        .await
        .query_one(
            "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
              WHERE a.application_name = 'atomic-user-provisioning' AND s.ssl",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(encrypted >= 1, "the app's pooled connection is encrypted");
}
