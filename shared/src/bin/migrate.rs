//! `make migrate`: applies the pending migrations to the database the functions use
//! (`DATABASE_URL` or `DB_HOST`/`DB_PORT`/`DB_NAME`, credentials from `DB_SECRET_ARN` or
//! `DB_SECRET_FILE`, TLS per `DB_SSLMODE`, `verify-full` by default) and prints what it
//! applied. It never loads demo data.

use std::process::ExitCode;

use shared::config::MigrationConfig;
use shared::secrets::SecretSource;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let config = match MigrationConfig::from_env() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("migrate: {err}");
            return ExitCode::FAILURE;
        }
    };
    // The SDK's configuration is loaded only when the secret lives in Secrets Manager.
    let aws = match config.database_secret {
        Some(SecretSource::Manager(_)) => {
            Some(aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await)
        }
        _ => None,
    };
    match shared::migration::run(&config, aws.as_ref()).await {
        Ok(applied) if applied.is_empty() => {
            println!(
                "migrate: the database is up to date ({} migrations)",
                shared::db::known_migrations()
            );
            ExitCode::SUCCESS
        }
        Ok(applied) => {
            for name in &applied {
                println!("migrate: applied {name}");
            }
            println!("migrate: {} migration(s) applied", applied.len());
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("migrate: {err}");
            ExitCode::FAILURE
        }
    }
}
