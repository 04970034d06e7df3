//! Typed configuration, read once per Lambda instance from environment variables.
//! A missing or malformed value stops start-up with the key's name, never its value.

use std::time::Duration;

use secrecy::SecretString;
use url::Url;

use crate::cleanup::config::CleanupSettings;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("configuration: {key} is required ({expected})")]
    Missing {
        key: &'static str,
        expected: &'static str,
    },
    #[error("configuration: {key} is malformed; expected {expected}")]
    Invalid { key: &'static str, expected: String },
}

#[derive(Debug, Clone)]
pub struct Config {
    pub database: DatabaseConfig,
    pub auth0: Auth0Config,
    pub email: EmailConfig,
    /// Base of the password-setup link: `{frontend_url}/auth/set-password?token=…`.
    pub frontend_url: Url,
    pub timeouts: Timeouts,
    pub reset_token_ttl: Duration,
    pub cleanup: CleanupSettings,
}

#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    /// `postgres://user:password@host:port/db`; the password makes the whole URL a secret.
    pub url: SecretString,
    pub pool_size: usize,
}

#[derive(Debug, Clone)]
pub struct Auth0Config {
    /// `https://{domain}`; a full URL is accepted so the local double can be used.
    pub base_url: Url,
    pub client_id: String,
    pub client_secret: SecretString,
    pub audience: String,
    pub connection: String,
}

#[derive(Debug, Clone)]
pub struct EmailConfig {
    pub api_url: Url,
    pub api_key: SecretString,
    pub from: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Upper bound for one HTTP call; the Lambda deadline may make it shorter.
    pub http: Duration,
    pub statement: Duration,
    pub lock: Duration,
    /// Must outlast the slowest HTTP call made while a transaction is open.
    pub idle_in_transaction: Duration,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// Reads every value through `lookup`, so tests can pass a map instead of the environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&lookup);
        let auth0_base = env.base_url("AUTH0_DOMAIN")?;
        let default_audience = format!("{}/api/v2/", auth0_base.as_str().trim_end_matches('/'));
        let timeouts = Timeouts {
            http: env.millis("HTTP_TIMEOUT_MS", 5_000)?,
            statement: env.millis("DB_STATEMENT_TIMEOUT_MS", 5_000)?,
            lock: env.millis("DB_LOCK_TIMEOUT_MS", 3_000)?,
            idle_in_transaction: env.millis("DB_IDLE_IN_TRANSACTION_TIMEOUT_MS", 30_000)?,
        };
        // Two HTTP calls can sit inside one idle stretch (a 429 retry), so ask for twice as much.
        if timeouts.idle_in_transaction < timeouts.http * 2 {
            return Err(ConfigError::Invalid {
                key: "DB_IDLE_IN_TRANSACTION_TIMEOUT_MS",
                expected: "at least twice HTTP_TIMEOUT_MS".into(),
            });
        }
        Ok(Self {
            database: DatabaseConfig {
                url: SecretString::from(
                    env.required("DATABASE_URL", "postgres://user:password@host:5432/db")?,
                ),
                pool_size: env.number("DB_POOL_SIZE", 2, 1..=64)?,
            },
            auth0: Auth0Config {
                base_url: auth0_base,
                client_id: env.required("AUTH0_CLIENT_ID", "the M2M application's client id")?,
                client_secret: SecretString::from(
                    env.required("AUTH0_CLIENT_SECRET", "the M2M application's client secret")?,
                ),
                audience: env.optional("AUTH0_AUDIENCE").unwrap_or(default_audience),
                connection: env
                    .optional("AUTH0_CONNECTION")
                    .unwrap_or_else(|| "Username-Password-Authentication".into()),
            },
            email: EmailConfig {
                api_url: env.url_or("EMAIL_API_URL", "https://api.resend.com")?,
                api_key: SecretString::from(env.required("EMAIL_API_KEY", "the email API key")?),
                from: env.required("EMAIL_FROM", "a sender like \"Acme <no-reply@acme.test>\"")?,
            },
            frontend_url: env.url("FRONTEND_URL")?,
            timeouts,
            reset_token_ttl: Duration::from_secs(
                3600 * env.number::<u64>("RESET_TOKEN_TTL_HOURS", 24, 1..=168)?,
            ),
            cleanup: CleanupSettings::from_env(&env)?,
        })
    }
}

pub(crate) struct Env<'a, F: Fn(&str) -> Option<String>>(&'a F);

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

    pub(crate) fn number<N>(
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

    /// `tenant.eu.auth0.com` becomes `https://tenant.eu.auth0.com`; a full URL stays as given.
    fn base_url(&self, key: &'static str) -> Result<Url, ConfigError> {
        let raw = self.required(key, "an Auth0 domain like tenant.eu.auth0.com")?;
        let full = if raw.contains("://") {
            raw
        } else {
            format!("https://{raw}")
        };
        parse_http_url(key, &full)
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
            ("AUTH0_DOMAIN", "acme.eu.auth0.com".to_string()),
            ("AUTH0_CLIENT_ID", "cid".to_string()),
            ("AUTH0_CLIENT_SECRET", "s3cret-value".to_string()),
            ("EMAIL_API_KEY", "re_key".to_string()),
            ("EMAIL_FROM", "Acme <no-reply@acme.test>".to_string()),
            ("FRONTEND_URL", "https://app.acme.test/".to_string()),
        ])
    }

    fn load(vars: &HashMap<&'static str, String>) -> Result<Config, ConfigError> {
        Config::from_lookup(|k| vars.get(k).cloned())
    }

    #[test]
    fn a_bare_auth0_domain_gets_https_and_the_management_audience() {
        let config = load(&base()).unwrap();
        assert_eq!(config.auth0.base_url.as_str(), "https://acme.eu.auth0.com/");
        assert_eq!(config.auth0.audience, "https://acme.eu.auth0.com/api/v2/");
        assert_eq!(config.auth0.client_secret.expose_secret(), "s3cret-value");
        assert_eq!(config.database.pool_size, 2);
        assert_eq!(config.reset_token_ttl, Duration::from_secs(86_400));
    }

    #[test]
    fn a_missing_key_is_named_and_no_value_is_shown() {
        let mut vars = base();
        vars.remove("AUTH0_CLIENT_SECRET");
        let err = load(&vars).unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Missing {
                key: "AUTH0_CLIENT_SECRET",
                ..
            }
        ));
        let mut vars = base();
        vars.insert("DB_POOL_SIZE", "lots".into());
        let message = load(&vars).unwrap_err().to_string();
        assert!(
            message.contains("DB_POOL_SIZE") && !message.contains("lots"),
            "{message}"
        );
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
    fn debug_output_never_shows_secrets() {
        let printed = format!("{:?}", load(&base()).unwrap());
        assert!(
            !printed.contains("s3cret-value")
                && !printed.contains("hunter2")
                && !printed.contains("re_key")
        );
    }
}
