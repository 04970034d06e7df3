//! The local stack as `make dev` assembles it, for tests: a database of the test's own, the
//! Auth0 and email doubles with the seeded people's logins, the real `create-user`,
//! `set-password` and `scim` binaries (through the Runtime API emulator, where `make dev` has
//! `cargo lambda watch`), the local gateway for `template.yaml` and the set-password page
//! calling it.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use super::functions::Processes;
use super::gateway::Gateway;
use super::page::{PageServer, PageSettings, page_dir};
use super::people::{Auth0Admin, people_of};
use super::template::Template;
use super::{LOCAL_AUDIENCE, template_parameters, template_path};
use crate::doubles::{Auth0Config, Auth0Double, EmailDouble};
use crate::harness::{TestDb, TestStack};
use crate::lambda_process::LambdaProcess;

/// The seeded people's password in the tests' Auth0 double.
pub const SEED_PASSWORD: &str = "Seeded-Passw0rd";

pub struct LocalStack {
    pub db: TestDb,
    pub auth0: Auth0Double,
    pub email: EmailDouble,
    pub gateway: Gateway,
    pub page: PageServer,
    /// `http://localhost:PORT`: what the functions put in the emailed links.
    pub frontend_url: String,
    admin: Auth0Admin,
}

fn loopback() -> SocketAddr {
    (Ipv4Addr::LOCALHOST, 0).into()
}

impl LocalStack {
    pub async fn start() -> LocalStack {
        let prepared = TestStack::prepare().await;
        let (db, auth0, email, mut vars) =
            (prepared.db, prepared.auth0, prepared.email, prepared.vars);

        // The page's address first: the functions put it in their links.
        let page = PageServer::bind(loopback()).await.expect("a loopback port");
        let port = page.base_url().rsplit(':').next().unwrap_or_default();
        let frontend_url = format!("http://localhost:{port}");
        vars.insert("FRONTEND_URL".into(), frontend_url.clone());

        let mut functions = Processes::default();
        for name in ["create-user", "set-password", "scim"] {
            let process = LambdaProcess::start(name, &vars)
                .await
                .unwrap_or_else(|err| panic!("{name} starts (`cargo build --bins` ran?): {err}"));
            functions = functions.with(name, process);
        }

        let parameters = template_parameters(
            &auth0.base_url(),
            LOCAL_AUDIENCE,
            &url::Url::parse(&frontend_url)
                .expect("a URL")
                .origin()
                .ascii_serialization(),
            &frontend_url,
        );
        let template = Template::from_file(&template_path(), &parameters).expect("template.yaml");
        let gateway = Gateway::start(template, Arc::new(functions), loopback())
            .await
            .expect("the gateway starts");
        let settings = PageSettings {
            api_base_url: gateway.base_url().to_string(),
            sign_in_url: format!("{frontend_url}/"),
        };
        let page = page.serve(page_dir(), settings);

        let config = Auth0Config::default();
        let admin = Auth0Admin::new(
            &auth0.base_url(),
            &config.client_id,
            &config.client_secret,
            &config.connection,
        );
        let people = people_of(&db.url).await.expect("the seeded users");
        admin
            .create_logins(&people, SEED_PASSWORD)
            .await
            .expect("the seeded logins");
        LocalStack {
            db,
            auth0,
            email,
            gateway,
            page,
            frontend_url,
            admin,
        }
    }

    /// The gateway's base URL (`http://127.0.0.1:PORT`; the routes are under `/api`).
    pub fn api(&self) -> &str {
        self.gateway.base_url()
    }

    /// `email`'s access token for the admin API, from a login to the Auth0 double with the
    /// seeded password (what `make token` prints).
    pub async fn token(&self, email: &str) -> String {
        self.admin
            .log_in(email, SEED_PASSWORD, LOCAL_AUDIENCE)
            .await
            .unwrap_or_else(|err| panic!("{email} logs in: {err}"))
    }

    /// The SCIM service's base URL through the gateway (`http://127.0.0.1:PORT/scim/v2`), what
    /// an identity provider is given.
    pub fn scim_base(&self) -> String {
        format!("{}/scim/v2", self.api())
    }

    /// A new SCIM token of `admin`'s tenant, made the way an OWNER or ADMIN makes one: `POST
    /// /api/scim-tokens` through the gateway with their access token.
    pub async fn scim_token(&self, admin: &str, name: &str) -> String {
        let access = self.token(admin).await;
        let response = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("an HTTP client")
            .post(format!("{}/api/scim-tokens", self.api()))
            .bearer_auth(access)
            .json(&serde_json::json!({ "name": name }))
            .send()
            .await
            .expect("the gateway answers");
        let status = response.status().as_u16();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        assert_eq!(status, 201, "POST /api/scim-tokens: {body}");
        body["token"].as_str().expect("the new token").to_string()
    }

    pub async fn sql(&self) -> tokio_postgres::Client {
        crate::harness::connect(&self.db.url).await
    }

    /// The newest password-setup link emailed to `address`.
    pub fn newest_link(&self, address: &str) -> String {
        let emails = self.email.emails_to(address);
        let text = emails
            .last()
            .and_then(|email| email.text.clone())
            .unwrap_or_else(|| panic!("no email to {address}"));
        text.split_whitespace()
            .find(|word| word.contains("/auth/set-password?"))
            .unwrap_or_else(|| panic!("no link in the email to {address}: {text}"))
            .to_string()
    }
}
