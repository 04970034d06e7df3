//! `make bench`: time from process start to "ready for the first event" (its first
//! `GET /runtime/invocation/next`) for the real create-user binary, with local secrets and
//! with secrets from Secrets Manager (moto, TEST_MOTO_URL), the SDK's config load included.

use std::time::{Duration, Instant};

use serde_json::json;
use testkit::doubles::{Auth0Config, EmailConfig};
use testkit::moto::Moto;
use testkit::runtime_api::{RuntimeApi, workspace_binary};

const RUNS: usize = 15;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let binary = workspace_binary("create-user")?;
    println!("binary: {}", binary.display());
    // Nothing is contacted during init but Secrets Manager: these need not be up.
    let local: Vec<(String, String)> = [
        ("DATABASE_URL", "postgres://app:pw@127.0.0.1:1/app"),
        ("DB_SSLMODE", "disable"),
        ("AUTH0_DOMAIN", "http://127.0.0.1:1"),
        ("AUTH0_CLIENT_ID", "id"),
        ("AUTH0_CLIENT_SECRET", "secret"),
        ("EMAIL_API_KEY", "key"),
        ("EMAIL_FROM", "a@b.co"),
        ("FRONTEND_URL", "https://app.acme.test"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    report("local secrets (environment)", &binary, &local).await?;

    if std::env::var("TEST_MOTO_URL").is_ok() {
        let moto = Moto::from_env();
        let app = json!({"domain": "http://127.0.0.1:1", "client_id": "id", "client_secret": Auth0Config::default().client_secret,
                         "api_key": EmailConfig::default().api_key, "from": "a@b.co"});
        let app_arn = moto.create_secret("bench-app", &app.to_string()).await;
        let db_arn = moto
            .create_secret("bench-db", r#"{"username":"app","password":"pw"}"#)
            .await;
        let mut vars: Vec<(String, String)> = [
            ("APP_SECRET_ARN", app_arn.as_str()),
            ("DB_SECRET_ARN", db_arn.as_str()),
            ("DB_HOST", "127.0.0.1"),
            ("DB_NAME", "app"),
            ("DB_SSLMODE", "disable"),
            ("FRONTEND_URL", "https://app.acme.test"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        vars.extend(moto.env_vars());
        report(
            "Secrets Manager (moto on loopback, SDK config load included)",
            &binary,
            &vars,
        )
        .await?;
    } else {
        println!("TEST_MOTO_URL not set: skipping the Secrets Manager measurement");
    }
    Ok(())
}

async fn report(
    label: &str,
    binary: &std::path::Path,
    vars: &[(String, String)],
) -> Result<(), Box<dyn std::error::Error>> {
    let mut samples = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let runtime = RuntimeApi::start().await?;
        let started = Instant::now();
        let mut child = tokio::process::Command::new(binary)
            .env_clear()
            .envs(vars.iter().cloned())
            .envs(runtime.lambda_env("create-user"))
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        runtime.wait_ready(Duration::from_secs(30)).await?;
        samples.push(started.elapsed());
        child.kill().await?;
    }
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{label}: median {:.1} ms, min {:.1} ms, max {:.1} ms over {RUNS} starts",
        ms(samples[RUNS / 2]),
        ms(samples[0]),
        ms(samples[RUNS - 1])
    );
    Ok(())
}
