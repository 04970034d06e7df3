//! Typed configuration, read once per Lambda instance from environment variables.
//! A missing or malformed value stops start-up with the key's name, never its value.

use std::time::Duration;

use std::path::PathBuf;

use secrecy::SecretString;
use url::Url;

use crate::secrets::{AppSecret, SecretSource, SecretsError};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("configuration: {key} is required ({expected})")]
    Missing {
        key: &'static str,
        expected: &'static str,
    },
    #[error("configuration: {key} is malformed; expected {expected}")]
    Invalid { key: &'static str, expected: String },
    #[error("configuration: {0}")]
    Secret(#[from] SecretsError),
}

#[derive(Debug, Clone)]
pub struct Config {
    pub database: DatabaseSettings,
    pub secrets: SecretSettings,
    /// Resend-style API base: the sender posts to `{email_api_url}/emails`.
    pub email_api_url: Url,
    /// Base of the password-setup link: `{frontend_url}/auth/set-password?token=…`.
    pub frontend_url: Url,
    pub timeouts: Timeouts,
    pub reset_token_ttl: Duration,
    /// How long create-user replays the answer to an `Idempotency-Key`.
    pub idempotency_key_ttl: Duration,
    /// Whether deactivating a user (and adopting an old login) also ends its Auth0 sessions
    /// and revokes its refresh tokens (`AUTH0_REVOKE_SESSIONS`, default true). Those two
    /// endpoints exist on Auth0's Enterprise plans only; elsewhere, turn this off: blocking
    /// alone still refuses every new login and refresh.
    pub auth0_revoke_sessions: bool,
    pub cleanup: CleanupSettings,
}

#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    pub target: DbTarget,
    pub tls: DbTls,
    pub pool_size: usize,
}

/// Where the database is. Its credentials may come from the database secret instead.
#[derive(Debug, Clone)]
pub enum DbTarget {
    /// `postgres://user:password@host:port/db`; the password makes the whole URL a secret.
    Url(SecretString),
    Parts {
        host: String,
        port: u16,
        name: String,
        user: Option<String>,
        password: Option<SecretString>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbTls {
    Disable,
    /// Encrypted, certificate not checked (libpq's `require`).
    Require,
    /// Encrypted, certificate chained to `ca_file` and naming the host.
    VerifyFull {
        ca_file: PathBuf,
    },
}

#[derive(Debug, Clone)]
pub struct SecretSettings {
    pub app: SecretSource,
    /// The app secret read from the environment, when `app` is `Fixed`.
    pub app_from_env: Option<AppSecret>,
    /// The RDS-managed `{username, password}` secret, if the password is not in the URL.
    pub database: Option<SecretSource>,
    pub ttl: Duration,
}

impl SecretSettings {
    pub fn uses_secrets_manager(&self) -> bool {
        matches!(self.app, SecretSource::Manager(_))
            || matches!(self.database, Some(SecretSource::Manager(_)))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Upper bound for one HTTP call; the Lambda deadline may make it shorter.
    pub http: Duration,
    pub statement: Duration,
    pub lock: Duration,
    /// Must outlast the slowest HTTP call made while a transaction is open.
    pub idle_in_transaction: Duration,
    /// Opening a database connection (TCP, TLS, start-up, authentication), and waiting for a
    /// pooled one; the Lambda deadline may make it shorter.
    pub connect: Duration,
    /// One Secrets Manager call, retries included.
    pub secrets: Duration,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// Reads every value through `lookup`, so tests can pass a map instead of the environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&lookup);
        let timeouts = timeouts(&env)?;
        Ok(Self {
            database: database_settings(&env)?,
            secrets: secret_settings(&env, &lookup)?,
            email_api_url: env.url_or("EMAIL_API_URL", "https://api.resend.com")?,
            frontend_url: env.url("FRONTEND_URL")?,
            timeouts,
            reset_token_ttl: Duration::from_secs(
                3600 * env.number::<u64>("RESET_TOKEN_TTL_HOURS", 24, 1..=168)?,
            ),
            idempotency_key_ttl: Duration::from_secs(
                3600 * env.number::<u64>("IDEMPOTENCY_KEY_TTL_HOURS", 24, 1..=720)?,
            ),
            auth0_revoke_sessions: env.flag("AUTH0_REVOKE_SESSIONS", true)?,
            cleanup: CleanupSettings::from_env(&env)?,
        })
    }
}

fn timeouts<F: Fn(&str) -> Option<String>>(env: &Env<'_, F>) -> Result<Timeouts, ConfigError> {
    let timeouts = Timeouts {
        http: env.millis("HTTP_TIMEOUT_MS", 5_000)?,
        statement: env.millis("DB_STATEMENT_TIMEOUT_MS", 5_000)?,
        lock: env.millis("DB_LOCK_TIMEOUT_MS", 3_000)?,
        idle_in_transaction: env.millis("DB_IDLE_IN_TRANSACTION_TIMEOUT_MS", 30_000)?,
        connect: env.millis("DB_CONNECT_TIMEOUT_MS", 5_000)?,
        secrets: env.millis("SECRETS_TIMEOUT_MS", 5_000)?,
    };
    // Two HTTP calls can sit inside one idle stretch (a 429 retry), so ask for twice as much.
    if timeouts.idle_in_transaction < timeouts.http * 2 {
        return Err(ConfigError::Invalid {
            key: "DB_IDLE_IN_TRANSACTION_TIMEOUT_MS",
            expected: "at least twice HTTP_TIMEOUT_MS".into(),
        });
    }
    Ok(timeouts)
}

/// What `make migrate` needs: the database the functions use and its credentials, none of the
/// Auth0, email or link settings.
#[derive(Debug, Clone)]
pub struct MigrationConfig {
    pub database: DatabaseSettings,
    /// The database secret (`DB_SECRET_ARN` / `DB_SECRET_FILE`), if the URL holds no password.
    pub database_secret: Option<SecretSource>,
    pub timeouts: Timeouts,
}

impl MigrationConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&lookup);
        Ok(Self {
            database: database_settings(&env)?,
            database_secret: database_secret(&env),
            timeouts: timeouts(&env)?,
        })
    }
}

fn database_secret<F: Fn(&str) -> Option<String>>(env: &Env<'_, F>) -> Option<SecretSource> {
    match (
        env.optional("DB_SECRET_ARN"),
        env.optional("DB_SECRET_FILE"),
    ) {
        (Some(arn), _) => Some(SecretSource::Manager(arn)),
        (None, Some(file)) => Some(SecretSource::File(PathBuf::from(file))),
        (None, None) => None,
    }
}

fn database_settings<F: Fn(&str) -> Option<String>>(
    env: &Env<'_, F>,
) -> Result<DatabaseSettings, ConfigError> {
    let target = match env.optional("DATABASE_URL") {
        Some(url) => DbTarget::Url(SecretString::from(url)),
        None => DbTarget::Parts {
            host: env.required("DB_HOST", "DATABASE_URL, or DB_HOST with DB_NAME")?,
            port: env.number("DB_PORT", 5432, 1..=65_535)?,
            name: env.required("DB_NAME", "the database name")?,
            user: env.optional("DB_USER"),
            password: env.optional("DB_PASSWORD").map(SecretString::from),
        },
    };
    let tls = match env
        .optional("DB_SSLMODE")
        .as_deref()
        .unwrap_or("verify-full")
    {
        "disable" => DbTls::Disable,
        "require" => DbTls::Require,
        "verify-full" => DbTls::VerifyFull {
            ca_file: PathBuf::from(env.required(
                "DB_SSL_ROOT_CERT",
                "a PEM CA bundle for DB_SSLMODE=verify-full (on RDS: the global bundle)",
            )?),
        },
        _ => {
            return Err(ConfigError::Invalid {
                key: "DB_SSLMODE",
                expected: "disable, require or verify-full".into(),
            });
        }
    };
    Ok(DatabaseSettings {
        target,
        tls,
        pool_size: env.number("DB_POOL_SIZE", 2, 1..=64)?,
    })
}

fn secret_settings<F: Fn(&str) -> Option<String>>(
    env: &Env<'_, F>,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<SecretSettings, ConfigError> {
    let (app, app_from_env) = match (
        env.optional("APP_SECRET_ARN"),
        env.optional("APP_SECRET_FILE"),
    ) {
        (Some(arn), _) => (SecretSource::Manager(arn), None),
        (None, Some(file)) => (SecretSource::File(PathBuf::from(file)), None),
        (None, None) => (SecretSource::Fixed, Some(AppSecret::from_env(lookup)?)),
    };
    Ok(SecretSettings {
        app,
        app_from_env,
        database: database_secret(env),
        ttl: Duration::from_secs(env.number("SECRETS_TTL_SECONDS", 900, 1..=86_400)?),
    })
}

/// Settings of the cleanup reconciler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CleanupSettings {
    /// Orphans younger than this are left alone: a create-user may still be running.
    pub grace_period: Duration,
    /// Pending rows taken per transaction.
    pub batch_size: usize,
    /// Expired or used reset tokens are purged once this much older.
    pub token_retention: Duration,
    /// The run stops this long before the Lambda deadline and reports `partial`.
    pub deadline_margin: Duration,
    /// Least time between two of cleanup's Management API calls (`CLEANUP_AUTH0_MAX_RPS`
    /// calls a second, default 1; 0 sets no ceiling).
    pub auth0_interval: Duration,
    /// Cleanup waits for the next rate-limit window while Auth0 reports this many calls or
    /// fewer left in the current one: they are create-user's.
    pub auth0_reserve: u64,
    /// Most Management API calls one run makes (`CLEANUP_AUTH0_MAX_CALLS_PER_RUN`, default 225:
    /// a quarter of a call a second over the 15-minute schedule); `None`: no cap.
    pub auth0_calls_per_run: Option<u64>,
    /// The Auth0 sweep's full pass visits every tagged user within this period
    /// (`CLEANUP_AUTH0_FULL_PASS_HOURS`, default 24).
    pub auth0_full_pass_period: Duration,
    /// How far below its watermark the incremental pass looks again, for users Auth0's search
    /// index showed late (`CLEANUP_AUTH0_INDEX_LAG_MINUTES`, default 15).
    pub auth0_index_lag: Duration,
}

impl CleanupSettings {
    fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<'_, F>) -> Result<Self, ConfigError> {
        Ok(Self {
            grace_period: Duration::from_secs(
                60 * env.number::<u64>("CLEANUP_GRACE_PERIOD_MINUTES", 15, 1..=10_080)?,
            ),
            batch_size: env.number("CLEANUP_BATCH_SIZE", 50, 1..=1_000)?,
            token_retention: Duration::from_secs(
                3_600 * env.number::<u64>("RESET_TOKEN_RETENTION_HOURS", 168, 0..=8_760)?,
            ),
            deadline_margin: Duration::from_millis(env.number::<u64>(
                "CLEANUP_DEADLINE_MARGIN_MS",
                5_000,
                500..=60_000,
            )?),
            auth0_interval: {
                let per_sec = env.number("CLEANUP_AUTH0_MAX_RPS", 1.0, 0.0..=1_000.0)?;
                if per_sec > 0.0 {
                    Duration::from_secs_f64(1.0 / per_sec)
                } else {
                    Duration::ZERO
                }
            },
            auth0_reserve: env.number("CLEANUP_AUTH0_RESERVE", 2, 0..=1_000)?,
            auth0_calls_per_run: match env.number(
                "CLEANUP_AUTH0_MAX_CALLS_PER_RUN",
                225u64,
                0..=1_000_000,
            )? {
                0 => None,
                // A search and one orphan's re-read and delete: less makes no progress.
                1..MIN_CALLS_PER_RUN => {
                    return Err(ConfigError::Invalid {
                        key: "CLEANUP_AUTH0_MAX_CALLS_PER_RUN",
                        expected: format!(
                            "0 (no cap) or a whole number from {MIN_CALLS_PER_RUN} to 1000000"
                        ),
                    });
                }
                cap => Some(cap),
            },
            auth0_full_pass_period: Duration::from_secs(
                3_600 * env.number::<u64>("CLEANUP_AUTH0_FULL_PASS_HOURS", 24, 1..=8_760)?,
            ),
            auth0_index_lag: Duration::from_secs(
                60 * env.number::<u64>("CLEANUP_AUTH0_INDEX_LAG_MINUTES", 15, 0..=1_440)?,
            ),
        })
    }
}

/// The least `CLEANUP_AUTH0_MAX_CALLS_PER_RUN` that lets a run make progress.
const MIN_CALLS_PER_RUN: u64 = 3;

struct Env<'a, F: Fn(&str) -> Option<String>>(&'a F);

impl<F: Fn(&str) -> Option<String>> Env<'_, F> {
    fn optional(&self, key: &str) -> Option<String> {
        (self.0)(key)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    fn required(&self, key: &'static str, expected: &'static str) -> Result<String, ConfigError> {
        self.optional(key)
            .ok_or(ConfigError::Missing { key, expected })
    }

    fn number<N>(
        &self,
        key: &'static str,
        default: N,
        range: std::ops::RangeInclusive<N>,
    ) -> Result<N, ConfigError>
    where
        N: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
    {
        let Some(raw) = self.optional(key) else {
            return Ok(default);
        };
        raw.parse::<N>()
            .ok()
            .filter(|n| range.contains(n))
            .ok_or_else(|| ConfigError::Invalid {
                key,
                expected: format!("a whole number from {} to {}", range.start(), range.end()),
            })
    }

    /// `true` or `false` (any case); `default` when unset.
    fn flag(&self, key: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self
            .optional(key)
            .map(|raw| raw.to_ascii_lowercase())
            .as_deref()
        {
            None => Ok(default),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(_) => Err(ConfigError::Invalid {
                key,
                expected: "true or false".into(),
            }),
        }
    }

    fn millis(&self, key: &'static str, default: u64) -> Result<Duration, ConfigError> {
        self.number(key, default, 1..=900_000)
            .map(Duration::from_millis)
    }

    fn url(&self, key: &'static str) -> Result<Url, ConfigError> {
        let raw = self.required(key, "an http(s) URL")?;
        parse_http_url(key, &raw)
    }

    fn url_or(&self, key: &'static str, default: &str) -> Result<Url, ConfigError> {
        parse_http_url(key, &self.optional(key).unwrap_or_else(|| default.into()))
    }
}

fn parse_http_url(key: &'static str, raw: &str) -> Result<Url, ConfigError> {
    Url::parse(raw.trim_end_matches('/'))
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        .ok_or(ConfigError::Invalid {
            key,
            expected: "an http(s) URL".into(),
        })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use secrecy::ExposeSecret;

    use super::*;

    fn base() -> HashMap<&'static str, String> {
        HashMap::from([
            (
                "DATABASE_URL",
                "postgres://u:hunter2@127.0.0.1/db".to_string(),
            ),
            ("DB_SSLMODE", "disable".to_string()),
            ("AUTH0_DOMAIN", "acme.eu.auth0.com".to_string()),
            ("AUTH0_CLIENT_ID", "cid".to_string()),
            ("AUTH0_CLIENT_SECRET", "s3cret-value".to_string()),
            ("EMAIL_API_KEY", "re_key".to_string()),
            ("EMAIL_FROM", "Acme <no-reply@acme.test>".to_string()),
            ("FRONTEND_URL", "https://app.acme.test/".to_string()),
        ])
    }

    /// What a function gets in AWS: no credential in the environment, only ARNs.
    fn production() -> HashMap<&'static str, String> {
        HashMap::from([
            (
                "APP_SECRET_ARN",
                "arn:aws:secretsmanager:eu-west-1:1:secret:app".to_string(),
            ),
            (
                "DB_SECRET_ARN",
                "arn:aws:secretsmanager:eu-west-1:1:secret:db".to_string(),
            ),
            (
                "DB_HOST",
                "db.cluster-x.eu-west-1.rds.amazonaws.com".to_string(),
            ),
            ("DB_NAME", "app".to_string()),
            ("DB_SSL_ROOT_CERT", "/opt/rds/global-bundle.pem".to_string()),
            ("FRONTEND_URL", "https://app.acme.test".to_string()),
        ])
    }

    fn load(vars: &HashMap<&'static str, String>) -> Result<Config, ConfigError> {
        Config::from_lookup(|k| vars.get(k).cloned())
    }

    #[test]
    fn local_credentials_come_from_the_environment_with_auth0_defaults() {
        let config = load(&base()).unwrap();
        let app = config
            .secrets
            .app_from_env
            .as_ref()
            .expect("read from the environment");
        assert_eq!(app.auth0.base_url.as_str(), "https://acme.eu.auth0.com/");
        assert_eq!(app.auth0.audience, "https://acme.eu.auth0.com/api/v2/");
        assert_eq!(app.auth0.client_secret.expose_secret(), "s3cret-value");
        assert!(!config.secrets.uses_secrets_manager());
        assert_eq!(config.database.pool_size, 2);
        assert_eq!(config.reset_token_ttl, Duration::from_secs(86_400));
    }

    #[test]
    fn production_reads_secret_arns_and_defaults_to_verify_full() {
        let config = load(&production()).unwrap();
        assert!(config.secrets.uses_secrets_manager());
        assert!(config.secrets.app_from_env.is_none());
        assert_eq!(
            config.database.tls,
            DbTls::VerifyFull {
                ca_file: PathBuf::from("/opt/rds/global-bundle.pem")
            }
        );
        assert!(matches!(
            config.database.target,
            DbTarget::Parts { port: 5432, .. }
        ));
        assert_eq!(config.secrets.ttl, Duration::from_secs(900));
    }

    #[test]
    fn verify_full_without_a_ca_bundle_names_the_missing_key() {
        let mut vars = production();
        vars.remove("DB_SSL_ROOT_CERT");
        assert!(matches!(
            load(&vars).unwrap_err(),
            ConfigError::Missing {
                key: "DB_SSL_ROOT_CERT",
                ..
            }
        ));
        vars.insert("DB_SSLMODE", "prefer".into());
        assert!(matches!(
            load(&vars).unwrap_err(),
            ConfigError::Invalid {
                key: "DB_SSLMODE",
                ..
            }
        ));
    }

    #[test]
    fn a_missing_key_is_named_and_no_value_is_shown() {
        let mut vars = base();
        vars.remove("AUTH0_CLIENT_SECRET");
        assert_eq!(
            load(&vars).unwrap_err().to_string(),
            "configuration: AUTH0_CLIENT_SECRET is missing"
        );
        let mut vars = base();
        vars.insert("DB_POOL_SIZE", "lots".into());
        let message = load(&vars).unwrap_err().to_string();
        assert!(
            message.contains("DB_POOL_SIZE") && !message.contains("lots"),
            "{message}"
        );
        let mut vars = production();
        vars.remove("DB_HOST");
        assert!(matches!(
            load(&vars).unwrap_err(),
            ConfigError::Missing { key: "DB_HOST", .. }
        ));
    }

    #[test]
    fn the_idle_transaction_timeout_must_outlast_http_calls() {
        let mut vars = base();
        vars.insert("HTTP_TIMEOUT_MS", "10000".into());
        vars.insert("DB_IDLE_IN_TRANSACTION_TIMEOUT_MS", "15000".into());
        let err = load(&vars).unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Invalid {
                key: "DB_IDLE_IN_TRANSACTION_TIMEOUT_MS",
                ..
            }
        ));
    }

    #[test]
    fn cleanup_paces_its_auth0_calls_by_default_and_a_zero_ceiling_turns_that_off() {
        let cleanup = load(&base()).unwrap().cleanup;
        assert_eq!(cleanup.auth0_interval, Duration::from_secs(1));
        assert_eq!(cleanup.auth0_reserve, 2);
        let mut vars = base();
        vars.insert("CLEANUP_AUTH0_MAX_RPS", "0".into());
        assert_eq!(load(&vars).unwrap().cleanup.auth0_interval, Duration::ZERO);
        vars.insert("CLEANUP_AUTH0_MAX_RPS", "0.5".into());
        assert_eq!(
            load(&vars).unwrap().cleanup.auth0_interval,
            Duration::from_secs(2)
        );
        for (key, bad) in [
            ("CLEANUP_AUTH0_MAX_RPS", "-1"),
            ("CLEANUP_AUTH0_MAX_RPS", "fast"),
            ("CLEANUP_AUTH0_RESERVE", "-2"),
        ] {
            let mut vars = base();
            vars.insert(key, bad.into());
            assert!(
                matches!(load(&vars), Err(ConfigError::Invalid { key: k, .. }) if k == key),
                "{key}={bad}"
            );
        }
    }

    #[test]
    fn the_auth0_sweep_is_capped_per_run_and_its_periods_have_defaults() {
        let cleanup = load(&base()).unwrap().cleanup;
        assert_eq!(cleanup.auth0_calls_per_run, Some(225));
        assert_eq!(
            cleanup.auth0_full_pass_period,
            Duration::from_secs(24 * 3_600)
        );
        assert_eq!(cleanup.auth0_index_lag, Duration::from_secs(15 * 60));
        let mut vars = base();
        vars.insert("CLEANUP_AUTH0_MAX_CALLS_PER_RUN", "0".into());
        vars.insert("CLEANUP_AUTH0_FULL_PASS_HOURS", "168".into());
        vars.insert("CLEANUP_AUTH0_INDEX_LAG_MINUTES", "0".into());
        let cleanup = load(&vars).unwrap().cleanup;
        assert_eq!(cleanup.auth0_calls_per_run, None);
        assert_eq!(
            cleanup.auth0_full_pass_period,
            Duration::from_secs(168 * 3_600)
        );
        assert_eq!(cleanup.auth0_index_lag, Duration::ZERO);
        for (key, bad) in [
            ("CLEANUP_AUTH0_MAX_CALLS_PER_RUN", "2"),
            ("CLEANUP_AUTH0_MAX_CALLS_PER_RUN", "-1"),
            ("CLEANUP_AUTH0_MAX_CALLS_PER_RUN", "lots"),
            ("CLEANUP_AUTH0_FULL_PASS_HOURS", "0"),
            ("CLEANUP_AUTH0_FULL_PASS_HOURS", "1.5"),
            ("CLEANUP_AUTH0_INDEX_LAG_MINUTES", "1441"),
        ] {
            let mut vars = base();
            vars.insert(key, bad.into());
            let err = load(&vars).unwrap_err();
            assert!(
                matches!(err, ConfigError::Invalid { key: k, .. } if k == key),
                "{key}={bad}: {err}"
            );
        }
    }

    #[test]
    fn debug_output_never_shows_secrets() {
        let printed = format!("{:?}", load(&base()).unwrap());
        assert!(
            !printed.contains("s3cret-value")
                && !printed.contains("hunter2")
                && !printed.contains("re_key")
        );
    }
}
