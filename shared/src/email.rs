//! The password-setup email, sent through a Resend-style HTTP API (`POST /emails`).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use secrecy::ExposeSecret;
use serde::Deserialize;
use url::Url;

use crate::deadline::{Deadline, DeadlineExceeded};
use crate::domain::{Email, Role};
use crate::secrets::{AppSecret, CachedSecret, SecretsError};

pub struct PasswordSetupEmail<'a> {
    pub to: &'a Email,
    pub tenant_name: &'a str,
    pub role: Role,
    pub link: &'a Url,
    pub expires_at: DateTime<Utc>,
    /// Same key, same message: the API sends it once however often we retry.
    pub idempotency_key: String,
}

#[derive(Debug, thiserror::Error)]
pub enum EmailError {
    #[error("the email API answered {status}: {message}")]
    Rejected {
        status: u16,
        name: String,
        message: String,
    },
    #[error("the email API did not answer in time or at all")]
    Unreachable(#[source] reqwest::Error),
    #[error(transparent)]
    Deadline(#[from] DeadlineExceeded),
    #[error("the email API key could not be read: {0}")]
    Secret(#[from] SecretsError),
}

impl EmailError {
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            Self::Unreachable(_) | Self::Deadline(_) | Self::Secret(_)
        )
    }
}

pub struct EmailSender {
    http: reqwest::Client,
    api_url: Url,
    /// API key and sender address live in the app secret.
    secret: Arc<CachedSecret<AppSecret>>,
    max_timeout: Duration,
}

impl EmailSender {
    pub fn new(
        http: reqwest::Client,
        api_url: Url,
        secret: Arc<CachedSecret<AppSecret>>,
        max_timeout: Duration,
    ) -> Self {
        Self {
            http,
            api_url,
            secret,
            max_timeout,
        }
    }

    /// Sends once, and once more on a 5xx, 429 or lost connection: the idempotency key
    /// makes the second try safe.
    #[tracing::instrument(skip_all, fields(op = "send_email"))]
    pub async fn send_password_setup(
        &self,
        email: &PasswordSetupEmail<'_>,
        deadline: &Deadline,
    ) -> Result<String, EmailError> {
        let secret = self.secret.get().await?;
        let credentials = &secret.email;
        let body = serde_json::json!({
            "from": credentials.from,
            "to": [email.to.as_str()],
            "subject": format!("Set your password for {}", email.tenant_name),
            "html": render_html(email),
            "text": render_text(email),
            "tags": [{"name": "category", "value": "password_setup"}],
        });
        let url = format!("{}/emails", self.api_url.as_str().trim_end_matches('/'));
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self
                .http
                .post(&url)
                .bearer_auth(credentials.api_key.expose_secret())
                .header("Idempotency-Key", &email.idempotency_key)
                .json(&body)
                .timeout(deadline.call_budget(self.max_timeout)?)
                .send()
                .await;
            let retryable = match &result {
                Ok(r) => {
                    r.status().is_server_error() || r.status() == StatusCode::TOO_MANY_REQUESTS
                }
                Err(e) => !e.is_timeout(),
            };
            if retryable && attempt < 2 && deadline.call_budget(self.max_timeout).is_ok() {
                tracing::warn!(
                    attempt,
                    "email API failed; retrying with the same idempotency key"
                );
                continue;
            }
            // Without the URL, like every HTTP error that is logged or answered.
            let response = result.map_err(|e| EmailError::Unreachable(e.without_url()))?;
            return accepted_id(response).await;
        }
    }
}

async fn accepted_id(response: reqwest::Response) -> Result<String, EmailError> {
    #[derive(Deserialize, Default)]
    struct Body {
        #[serde(default)]
        id: String,
        #[serde(default)]
        name: String,
        #[serde(default)]
        message: String,
    }
    let status = response.status();
    let body: Body = response.json().await.unwrap_or_default();
    if status.is_success() && !body.id.is_empty() {
        Ok(body.id)
    } else {
        Err(EmailError::Rejected {
            status: status.as_u16(),
            name: body.name,
            message: body.message,
        })
    }
}

fn role_label(role: Role) -> &'static str {
    match role {
        Role::Owner => "owner",
        Role::Admin => "administrator",
        Role::User => "user",
    }
}

fn expiry_label(expires_at: DateTime<Utc>) -> String {
    expires_at.format("%Y-%m-%d %H:%M UTC").to_string()
}

fn render_text(email: &PasswordSetupEmail<'_>) -> String {
    format!(
        "You have been added to {tenant} as {role}.\n\n\
         Set your password here:\n{link}\n\n\
         The link expires on {expires}. If you did not expect this email, ignore it.\n",
        tenant = email.tenant_name,
        role = role_label(email.role),
        link = email.link,
        expires = expiry_label(email.expires_at),
    )
}

fn render_html(email: &PasswordSetupEmail<'_>) -> String {
    let link = escape_html(email.link.as_str());
    format!(
        "<p>You have been added to <strong>{tenant}</strong> as {role}.</p>\
         <p><a href=\"{link}\">Set your password</a></p>\
         <p>The link expires on {expires}. If you did not expect this email, ignore it.</p>",
        tenant = escape_html(email.tenant_name),
        role = role_label(email.role),
        expires = expiry_label(email.expires_at),
    )
}

fn escape_html(raw: &str) -> String {
    raw.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_names_are_escaped_in_html() {
        assert_eq!(escape_html("<b>A&B</b>"), "&lt;b&gt;A&amp;B&lt;/b&gt;");
    }
}
