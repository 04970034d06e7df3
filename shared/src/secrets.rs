//! Secrets: the app secret (Auth0 M2M credentials, email API key) and the RDS-managed
//! database secret. In AWS they come from Secrets Manager; locally from environment
//! variables or a JSON file. Each is cached per instance for a TTL and can be refreshed on
//! demand (an Auth0 `401 access_denied` means the secret was rotated).
//!
//! A hand-written cache rather than `aws_secretsmanager_caching`: that crate pulls
//! `aws-config`/`aws-sdk-secretsmanager` with default features, which brings back the legacy
//! hyper 0.14 / rustls 0.21 client this workspace leaves out.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
use secrecy::SecretString;
use serde_json::{Map, Value};
use tokio::sync::Mutex;
use url::Url;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum SecretsError {
    #[error("secret {id} does not exist")]
    NotFound { id: String },
    #[error("not allowed to read secret {id}; grant secretsmanager:GetSecretValue on it")]
    AccessDenied { id: String },
    #[error("Secrets Manager did not answer for {id}: {detail}")]
    Unreachable { id: String, detail: String },
    #[error("{source_name} is not a JSON object")]
    NotJson { source_name: String },
    #[error("{key} is missing")]
    MissingKey { key: String },
    #[error("{key} is malformed; expected {expected}")]
    InvalidKey { key: String, expected: &'static str },
    #[error("cannot read {path}: {reason}")]
    File { path: String, reason: String },
}

/// Auth0 Management API credentials.
#[derive(Debug, Clone)]
pub struct Auth0Credentials {
    /// `https://{domain}`; a full URL is accepted so the local double can be used.
    pub base_url: Url,
    pub client_id: String,
    pub client_secret: SecretString,
    pub audience: String,
    pub connection: String,
}

#[derive(Debug, Clone)]
pub struct EmailCredentials {
    pub api_key: SecretString,
    pub from: String,
}

/// The app secret: `{"domain","client_id","client_secret","audience"?,"connection"?,"api_key","from"}`.
#[derive(Debug, Clone)]
pub struct AppSecret {
    pub auth0: Auth0Credentials,
    pub email: EmailCredentials,
}

/// The RDS-managed database secret: `{"username","password", …}`.
#[derive(Debug, Clone)]
pub struct DbSecret {
    pub username: String,
    pub password: SecretString,
}

/// JSON key of the app secret → the environment variable that replaces it locally.
pub const APP_SECRET_ENV_NAMES: [(&str, &str); 7] = [
    ("domain", "AUTH0_DOMAIN"),
    ("client_id", "AUTH0_CLIENT_ID"),
    ("client_secret", "AUTH0_CLIENT_SECRET"),
    ("audience", "AUTH0_AUDIENCE"),
    ("connection", "AUTH0_CONNECTION"),
    ("api_key", "EMAIL_API_KEY"),
    ("from", "EMAIL_FROM"),
];

/// Reads named fields from one source, naming them in errors the way a person would look them up.
struct Fields<'a> {
    get: &'a dyn Fn(&str) -> Option<String>,
    describe: &'a dyn Fn(&str) -> String,
}

impl Fields<'_> {
    fn optional(&self, key: &str) -> Option<String> {
        (self.get)(key)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    fn required(&self, key: &str) -> Result<String, SecretsError> {
        self.optional(key).ok_or_else(|| SecretsError::MissingKey {
            key: (self.describe)(key),
        })
    }
}

impl AppSecret {
    fn from_fields(fields: &Fields<'_>) -> Result<Self, SecretsError> {
        let domain = fields.required("domain")?;
        let with_scheme = if domain.contains("://") {
            domain
        } else {
            format!("https://{domain}")
        };
        let base_url = Url::parse(with_scheme.trim_end_matches('/'))
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| SecretsError::InvalidKey {
                key: (fields.describe)("domain"),
                expected: "an Auth0 domain like tenant.eu.auth0.com",
            })?;
        let audience = fields
            .optional("audience")
            .unwrap_or_else(|| format!("{}/api/v2/", base_url.as_str().trim_end_matches('/')));
        Ok(Self {
            auth0: Auth0Credentials {
                base_url,
                client_id: fields.required("client_id")?,
                client_secret: SecretString::from(fields.required("client_secret")?),
                audience,
                connection: fields
                    .optional("connection")
                    .unwrap_or_else(|| "Username-Password-Authentication".into()),
            },
            email: EmailCredentials {
                api_key: SecretString::from(fields.required("api_key")?),
                from: fields.required("from")?,
            },
        })
    }

    /// Locally: `AUTH0_DOMAIN`, `AUTH0_CLIENT_ID`, … (see [`APP_SECRET_ENV_NAMES`]).
    pub fn from_env(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, SecretsError> {
        let env_name = |key: &str| {
            APP_SECRET_ENV_NAMES
                .iter()
                .find(|(json, _)| *json == key)
                .map(|(_, env)| *env)
                .unwrap_or("?")
        };
        let get = |key: &str| lookup(env_name(key));
        let describe = |key: &str| env_name(key).to_string();
        Self::from_fields(&Fields {
            get: &get,
            describe: &describe,
        })
    }

    pub fn from_json(source_name: &str, text: &str) -> Result<Self, SecretsError> {
        let object = json_object(source_name, text)?;
        let get = |key: &str| object.get(key).and_then(Value::as_str).map(str::to_string);
        let describe = |key: &str| format!("key `{key}` of {source_name}");
        Self::from_fields(&Fields {
            get: &get,
            describe: &describe,
        })
    }
}

impl DbSecret {
    pub fn from_json(source_name: &str, text: &str) -> Result<Self, SecretsError> {
        let object = json_object(source_name, text)?;
        let get = |key: &str| object.get(key).and_then(Value::as_str).map(str::to_string);
        let describe = |key: &str| format!("key `{key}` of {source_name}");
        let fields = Fields {
            get: &get,
            describe: &describe,
        };
        Ok(Self {
            username: fields.required("username")?,
            password: SecretString::from(fields.required("password")?),
        })
    }
}

/// Never echoes the text: a malformed secret may still hold a real password.
fn json_object(source_name: &str, text: &str) -> Result<Map<String, Value>, SecretsError> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(object)) => Ok(object),
        _ => Err(SecretsError::NotJson {
            source_name: source_name.to_string(),
        }),
    }
}

/// Where one secret comes from.
#[derive(Debug, Clone)]
pub enum SecretSource {
    /// Secrets Manager, by ARN or name.
    Manager(String),
    /// A JSON file with the same shape, re-read on refresh (local rotation).
    File(PathBuf),
    /// Values already in the environment; nothing to refresh.
    Fixed,
}

/// A secret the instance keeps for `ttl`, fetched again after it or when told to.
pub struct CachedSecret<T> {
    source: SecretSource,
    client: Option<aws_sdk_secretsmanager::Client>,
    parse: fn(&str, &str) -> Result<T, SecretsError>,
    ttl: Duration,
    slot: Mutex<Option<(Arc<T>, Instant)>>,
    last_forced: Mutex<Option<Instant>>,
    fetches: AtomicUsize,
}

/// Forced refreshes (after a credential was refused) are spaced at least this far apart.
pub const MIN_FORCED_REFRESH_INTERVAL: Duration = Duration::from_secs(30);

impl<T: Send + Sync> CachedSecret<T> {
    /// `initial` is the value for a `Fixed` source.
    pub fn new(
        source: SecretSource,
        client: Option<aws_sdk_secretsmanager::Client>,
        parse: fn(&str, &str) -> Result<T, SecretsError>,
        ttl: Duration,
        initial: Option<T>,
    ) -> Self {
        let slot = initial.map(|value| (Arc::new(value), Instant::now()));
        Self {
            source,
            client,
            parse,
            ttl,
            slot: Mutex::new(slot),
            last_forced: Mutex::new(None),
            fetches: AtomicUsize::new(0),
        }
    }

    /// The cached value while it is fresh; otherwise fetched (once, however many callers wait).
    pub async fn get(&self) -> Result<Arc<T>, SecretsError> {
        let mut slot = self.slot.lock().await;
        if let Some((value, fetched_at)) = slot.as_ref()
            && (matches!(self.source, SecretSource::Fixed) || fetched_at.elapsed() < self.ttl)
        {
            return Ok(value.clone());
        }
        match self.fetch().await {
            Ok(value) => {
                let value = Arc::new(value);
                *slot = Some((value.clone(), Instant::now()));
                Ok(value)
            }
            // A blip in Secrets Manager should not fail requests a still-valid secret can serve.
            Err(err) => match slot.as_ref() {
                Some((stale, _)) if matches!(err, SecretsError::Unreachable { .. }) => {
                    tracing::warn!(error = %err, "secret refresh failed; using the cached value");
                    Ok(stale.clone())
                }
                _ => Err(err),
            },
        }
    }

    /// Fetches now, whatever the TTL says: the cached value was found to be wrong. At most
    /// once per [`MIN_FORCED_REFRESH_INTERVAL`], so a credential that stays wrong cannot turn
    /// every request into a Secrets Manager call.
    pub async fn refresh(&self) -> Result<Arc<T>, SecretsError> {
        let mut slot = self.slot.lock().await;
        let mut last_forced = self.last_forced.lock().await;
        let recently = last_forced.is_some_and(|at| at.elapsed() < MIN_FORCED_REFRESH_INTERVAL);
        if matches!(self.source, SecretSource::Fixed) || recently {
            return slot
                .as_ref()
                .map(|(v, _)| v.clone())
                .ok_or(SecretsError::MissingKey {
                    key: "secret value".into(),
                });
        }
        *last_forced = Some(Instant::now());
        let value = Arc::new(self.fetch().await?);
        *slot = Some((value.clone(), Instant::now()));
        tracing::info!("secret refreshed");
        Ok(value)
    }

    /// How many times the source was read (for tests and the cold-start measurement).
    pub fn fetch_count(&self) -> usize {
        self.fetches.load(Ordering::Relaxed)
    }

    async fn fetch(&self) -> Result<T, SecretsError> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        match &self.source {
            SecretSource::Manager(id) => {
                let client = self
                    .client
                    .as_ref()
                    .expect("a Secrets Manager source comes with a client");
                let text = fetch_from_manager(client, id).await?;
                (self.parse)(&format!("secret {id}"), &text)
            }
            SecretSource::File(path) => {
                let text =
                    tokio::fs::read_to_string(path)
                        .await
                        .map_err(|e| SecretsError::File {
                            path: path.display().to_string(),
                            reason: e.kind().to_string(),
                        })?;
                (self.parse)(&path.display().to_string(), &text)
            }
            SecretSource::Fixed => Err(SecretsError::MissingKey {
                key: "secret value".into(),
            }),
        }
    }
}

/// Secrets Manager calls used when a client carries no timeout of its own.
const DEFAULT_MANAGER_TIMEOUT: Duration = Duration::from_secs(5);

/// A Secrets Manager client whose every call, retries included, ends within `timeout`: an
/// endpoint that accepts connections and never answers must not hang start-up until Lambda
/// kills the instance.
pub fn manager_client(
    aws: &aws_config::SdkConfig,
    timeout: Duration,
) -> aws_sdk_secretsmanager::Client {
    let timeouts = aws_sdk_secretsmanager::config::timeout::TimeoutConfig::builder()
        .connect_timeout(timeout.min(Duration::from_secs(2)))
        .operation_attempt_timeout(timeout / 2)
        .operation_timeout(timeout)
        .build();
    let config = aws_sdk_secretsmanager::config::Builder::from(aws)
        .timeout_config(timeouts)
        .build();
    aws_sdk_secretsmanager::Client::from_conf(config)
}

#[tracing::instrument(skip_all, fields(op = "get_secret_value"))]
async fn fetch_from_manager(
    client: &aws_sdk_secretsmanager::Client,
    id: &str,
) -> Result<String, SecretsError> {
    let limit = client
        .config()
        .timeout_config()
        .and_then(|t| t.operation_timeout())
        .unwrap_or(DEFAULT_MANAGER_TIMEOUT);
    let no_answer = || SecretsError::Unreachable {
        id: id.into(),
        detail: format!("no answer within {} ms", limit.as_millis()),
    };
    // The SDK's own timeout ends the call; this one only stands behind it.
    let sent = tokio::time::timeout(
        limit + Duration::from_millis(500),
        client.get_secret_value().secret_id(id).send(),
    )
    .await
    .map_err(|_| no_answer())?;
    let output = sent.map_err(|err| {
        if matches!(
            err,
            aws_sdk_secretsmanager::error::SdkError::TimeoutError(_)
        ) {
            return no_answer();
        }
        let code = err.code().unwrap_or_default().to_string();
        match code.as_str() {
            "ResourceNotFoundException" => SecretsError::NotFound { id: id.into() },
            "AccessDeniedException" => SecretsError::AccessDenied { id: id.into() },
            _ => SecretsError::Unreachable {
                id: id.into(),
                detail: if code.is_empty() {
                    "no answer".into()
                } else {
                    code
                },
            },
        }
    })?;
    output
        .secret_string()
        .map(str::to_string)
        .ok_or(SecretsError::NotJson {
            source_name: format!("secret {id} (binary secrets are not supported)"),
        })
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    const FULL: &str = r#"{"domain":"acme.eu.auth0.com","client_id":"cid","client_secret":"s3cr3t-value","api_key":"re_key","from":"Acme <no-reply@acme.test>"}"#;

    #[test]
    fn the_app_secret_json_gets_defaults_for_audience_and_connection() {
        let secret = AppSecret::from_json("secret app", FULL).unwrap();
        assert_eq!(secret.auth0.audience, "https://acme.eu.auth0.com/api/v2/");
        assert_eq!(secret.auth0.connection, "Username-Password-Authentication");
        assert_eq!(secret.auth0.client_secret.expose_secret(), "s3cr3t-value");
    }

    #[test]
    fn a_missing_key_is_named_and_a_malformed_secret_is_never_echoed() {
        let err = AppSecret::from_json("secret app", r#"{"domain":"a.auth0.com"}"#).unwrap_err();
        assert_eq!(err.to_string(), "key `client_id` of secret app is missing");
        let err = AppSecret::from_json("secret app", r#"{"client_secret": "hunter2""#).unwrap_err();
        assert_eq!(err.to_string(), "secret app is not a JSON object");
        let err =
            DbSecret::from_json("secret db", r#"{"username":"app","password":5}"#).unwrap_err();
        assert_eq!(err.to_string(), "key `password` of secret db is missing");
    }

    #[test]
    fn local_values_are_named_by_their_environment_variable() {
        let err = AppSecret::from_env(&|key| (key == "AUTH0_DOMAIN").then(|| "a.auth0.com".into()))
            .unwrap_err();
        assert_eq!(err.to_string(), "AUTH0_CLIENT_ID is missing");
    }
}
