//! The password-setup email, sent through a Resend-style HTTP API (`POST /emails`).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use url::Url;

use crate::deadline::{Deadline, DeadlineExceeded};
use crate::domain::{Email, Role};
use crate::secrets::{AppSecret, CachedSecret, SecretsError};

/// The message is a function of these fields alone (no send time in it), so sending the same
/// invitation again yields the same bytes, and so the same idempotency key.
pub struct PasswordSetupEmail<'a> {
    pub to: &'a Email,
    pub tenant_name: &'a str,
    pub role: Role,
    pub link: &'a Url,
    /// How long the link works, counted from the sending.
    pub valid_for: Duration,
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
    /// `{api_url}/emails`, made once: a URL given as text is parsed again on every request.
    emails_url: Url,
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
        let mut emails_url = api_url;
        if let Ok(mut path) = emails_url.path_segments_mut() {
            path.pop_if_empty().push("emails");
        }
        Self {
            http,
            emails_url,
            secret,
            max_timeout,
        }
    }

    /// Sends once, and once more on a 5xx, 429 or lost connection. The `Idempotency-Key` is
    /// derived from the message itself: the API sends one message however often the same
    /// one is posted (our own retry, or an admin's retry after a crash that had already sent
    /// it), and a different message always gets a different key.
    #[tracing::instrument(skip_all, fields(op = "send_email"))]
    pub async fn send_password_setup(
        &self,
        email: &PasswordSetupEmail<'_>,
        deadline: &Deadline,
    ) -> Result<String, EmailError> {
        let secret = self.secret.get().await?;
        let credentials = &secret.email;
        let body = Message {
            from: &credentials.from,
            html: render_html(email),
            subject: format!("Set your password for {}", email.tenant_name),
            tags: [Tag {
                name: "category",
                value: "password_setup",
            }],
            text: render_text(email),
            to: [email.to.as_str()],
        }
        .to_json();
        let idempotency_key = content_key(&body);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self
                .http
                .post(self.emails_url.clone())
                .bearer_auth(credentials.api_key.expose_secret())
                .header("Idempotency-Key", &idempotency_key)
                .header(CONTENT_TYPE, "application/json")
                .body(body.clone())
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

/// The message as the API takes it (`POST /emails`).
///
/// The fields are in alphabetical order, the order a `serde_json` map writes its keys in, so
/// the bytes (and the idempotency key made of them) are those of the map this replaced: a
/// message sent before an update and retried after it keeps its key.
#[derive(Serialize)]
struct Message<'a> {
    from: &'a str,
    html: String,
    subject: String,
    tags: [Tag; 1],
    text: String,
    to: [&'a str; 1],
}

#[derive(Serialize)]
struct Tag {
    name: &'static str,
    value: &'static str,
}

impl Message<'_> {
    /// Serialized once: the same bytes are hashed for the key and sent on every attempt.
    fn to_json(&self) -> Bytes {
        // Only strings and arrays of them: nothing in it can fail to serialize.
        Bytes::from(serde_json::to_vec(self).expect("a message of strings serializes"))
    }
}

/// `password-setup/` and 32 hex characters of the message's SHA-256 (the message holds the
/// token, so the key is as unguessable as the link; it reveals nothing the message does not).
fn content_key(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    format!("password-setup/{}", hex::encode(&digest[..16]))
}

fn validity_label(valid_for: Duration) -> String {
    match valid_for.as_secs() / 3_600 {
        1 => "1 hour".into(),
        hours if hours % 24 == 0 && hours > 24 => format!("{} days", hours / 24),
        hours => format!("{hours} hours"),
    }
}

fn render_text(email: &PasswordSetupEmail<'_>) -> String {
    format!(
        "You have been added to {tenant} as {role}.\n\n\
         Set your password here:\n{link}\n\n\
         The link expires {expires} after this email was sent. If you did not expect this \
         email, ignore it.\n",
        tenant = email.tenant_name,
        role = role_label(email.role),
        link = email.link,
        expires = validity_label(email.valid_for),
    )
}

fn render_html(email: &PasswordSetupEmail<'_>) -> String {
    let link = escape_html(email.link.as_str());
    format!(
        "<p>You have been added to <strong>{tenant}</strong> as {role}.</p>\
         <p><a href=\"{link}\">Set your password</a></p>\
         <p>The link expires {expires} after this email was sent. If you did not expect this \
         email, ignore it.</p>",
        tenant = escape_html(email.tenant_name),
        role = role_label(email.role),
        expires = validity_label(email.valid_for),
    )
}

/// One pass, one string (a chain of `replace` made a new string for each character).
fn escape_html(raw: &str) -> String {
    let mut escaped = String::with_capacity(raw.len() + raw.len() / 8);
    for c in raw.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_validity_reads_as_a_person_would_say_it() {
        let hours = |h: u64| validity_label(Duration::from_secs(h * 3_600));
        assert_eq!(
            (hours(1), hours(24), hours(36), hours(72)),
            (
                "1 hour".into(),
                "24 hours".into(),
                "36 hours".into(),
                "3 days".into()
            )
        );
    }

    #[test]
    fn tenant_names_are_escaped_in_html() {
        assert_eq!(escape_html("<b>A&B</b>"), "&lt;b&gt;A&amp;B&lt;/b&gt;");
        assert_eq!(escape_html(r#"O'Neil "Ü""#), "O&#39;Neil &quot;Ü&quot;");
    }

    #[test]
    fn the_message_is_written_as_the_map_it_replaced_so_its_key_stays_the_same() {
        let message = Message {
            from: "Acme <no-reply@acme.test>",
            html: "<p>\"hi\"</p>".into(),
            subject: "Set your password for Acme".into(),
            tags: [Tag {
                name: "category",
                value: "password_setup",
            }],
            text: "hi\n".into(),
            to: ["new.hire@acme.test"],
        };
        let map = serde_json::json!({
            "to": ["new.hire@acme.test"],
            "text": "hi\n",
            "tags": [{"value": "password_setup", "name": "category"}],
            "subject": "Set your password for Acme",
            "html": "<p>\"hi\"</p>",
            "from": "Acme <no-reply@acme.test>",
        });
        assert_eq!(message.to_json(), map.to_string().into_bytes());
    }
}
