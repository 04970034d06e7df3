//! The seeded people's Auth0 logins: every user of the database with an `auth0|…` login gets
//! that Auth0 user in the double (same id and address, the given password, blocked when the
//! row is inactive), created through the double's Management API as an Auth0 tenant's users
//! would have been. Then an admin can log in to the double (`make token`) and call the admin
//! API through the gateway with the token, as the admin panel does.

use serde_json::{Value, json};

/// One person of the seed.
#[derive(Debug, Clone)]
pub struct Person {
    pub email: String,
    /// `auth0|…`
    pub auth0_sub: String,
    pub active: bool,
}

/// The users of `database_url` that have an Auth0 login.
pub async fn people_of(database_url: &str) -> Result<Vec<Person>, String> {
    let (client, connection) = tokio_postgres::connect(database_url, tokio_postgres::NoTls)
        .await
        .map_err(|err| format!("cannot connect to the database: {err}"))?;
    tokio::spawn(connection);
    let rows = client
        .query(
            "SELECT email, auth0_sub, is_active FROM users \
             WHERE auth0_sub LIKE 'auth0|%' ORDER BY email",
            &[],
        )
        .await
        .map_err(|err| format!("cannot read the users: {err}"))?;
    Ok(rows
        .iter()
        .map(|row| Person {
            email: row.get(0),
            auth0_sub: row.get(1),
            active: row.get(2),
        })
        .collect())
}

/// The double's Management API, as a client of the tenant.
pub struct Auth0Admin {
    base_url: String,
    client_id: String,
    client_secret: String,
    connection: String,
    http: reqwest::Client,
}

impl Auth0Admin {
    pub fn new(base_url: &str, client_id: &str, client_secret: &str, connection: &str) -> Self {
        Auth0Admin {
            base_url: base_url.trim_end_matches('/').to_string(),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            connection: connection.into(),
            http: reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("an HTTP client"),
        }
    }

    async fn management_token(&self) -> Result<String, String> {
        let body = json!({
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "audience": format!("{}/api/v2/", self.base_url),
        });
        let answer = self.post("/oauth/token", None, &body).await?;
        answer["access_token"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("no access token: {answer}"))
    }

    async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Result<Value, String> {
        self.send(reqwest::Method::POST, path, token, body).await
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> Result<Value, String> {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base_url))
            .json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .map_err(|err| format!("{method} {path}: {err}"))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(format!("{method} {path}: {status} {text}"));
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Creates each person's Auth0 user with `password` (blocked if inactive).
    pub async fn create_logins(&self, people: &[Person], password: &str) -> Result<(), String> {
        let token = self.management_token().await?;
        for person in people {
            let local_id = person
                .auth0_sub
                .strip_prefix("auth0|")
                .ok_or_else(|| format!("{} is not an auth0| login", person.auth0_sub))?;
            let body = json!({
                "connection": self.connection,
                "user_id": local_id,
                "email": person.email,
                "email_verified": true,
                "password": password,
            });
            self.post("/api/v2/users", Some(&token), &body).await?;
            if !person.active {
                let path = format!("/api/v2/users/{}", url_escape(&person.auth0_sub));
                let body = json!({ "blocked": true });
                self.send(reqwest::Method::PATCH, &path, Some(&token), &body)
                    .await?;
            }
        }
        Ok(())
    }

    /// A person's access token for `audience`, from the password-realm grant (what a login
    /// form of the admin panel gets).
    pub async fn log_in(
        &self,
        email: &str,
        password: &str,
        audience: &str,
    ) -> Result<String, String> {
        let body = json!({
            "grant_type": "http://auth0.com/oauth/grant-type/password-realm",
            "client_id": self.client_id,
            "username": email,
            "password": password,
            "realm": self.connection,
            "audience": audience,
            "scope": "openid",
        });
        let answer = self.post("/oauth/token", None, &body).await?;
        answer["access_token"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("no access token: {answer}"))
    }
}

fn url_escape(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}
