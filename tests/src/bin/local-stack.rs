//! The local stack's servers, until SIGTERM or Ctrl-C (`make dev` starts it, `make stop` ends
//! it):
//!
//! - the Auth0 and email doubles;
//! - the seeded people's logins in the Auth0 double (every `auth0|…` user of `DATABASE_URL`,
//!   with the password `SEED_PASSWORD`), so an admin can get a token (`make token`);
//! - a local API Gateway for every HTTP route of `template.yaml` (JWT authorizer and CORS as
//!   the template says, the Auth0 double as the issuer), forwarding to the functions that
//!   `cargo lambda watch` runs on `WATCH_PORT`;
//! - the set-password page (`web/set-password/`) at `FRONTEND_URL/auth/set-password`, calling
//!   the gateway.
//!
//! Env: `AUTH0_DOUBLE_PORT` (4010), `EMAIL_DOUBLE_PORT` (4020), `GATEWAY_PORT` (4000),
//! `FRONTEND_PORT` (3000), `WATCH_PORT` (9000), `AUTH0_CLIENT_ID`, `AUTH0_CLIENT_SECRET`,
//! `EMAIL_API_KEY` (defaults as in the doubles' configs), `DATABASE_URL` (no logins without
//! it), `SEED_PASSWORD`, `AUTH0_AUDIENCE` (`https://api.acme.test`), `FRONTEND_URL`
//! (`http://localhost:FRONTEND_PORT`), `CORS_ALLOWED_ORIGINS` (the frontend's origin),
//! `TEMPLATE` (this checkout's `template.yaml`).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use testkit::doubles::{Auth0Config, Auth0Double, EmailConfig, EmailDouble};
use testkit::local::functions::InvokeApi;
use testkit::local::gateway::{Gateway, describe_routes};
use testkit::local::page::{PageServer, PageSettings, page_dir};
use testkit::local::people::{Auth0Admin, people_of};
use testkit::local::template::Template;
use testkit::local::{LOCAL_AUDIENCE, template_parameters, template_path};

/// The seeded people's password in the Auth0 double (docs/local-development.md).
const DEFAULT_SEED_PASSWORD: &str = "Local-Dev-Passw0rd";

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

fn loopback_port(name: &str, default: u16) -> Result<SocketAddr, String> {
    let port = env_or(name, &default.to_string());
    let port: u16 = port
        .parse()
        .map_err(|_| format!("{name}={port} is not a port"))?;
    Ok((Ipv4Addr::LOCALHOST, port).into())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let defaults = Auth0Config::default();
    let auth0_config = Auth0Config {
        client_id: env_or("AUTH0_CLIENT_ID", &defaults.client_id),
        client_secret: env_or("AUTH0_CLIENT_SECRET", &defaults.client_secret),
        ..defaults
    };
    let email_config = EmailConfig {
        api_key: env_or("EMAIL_API_KEY", &EmailConfig::default().api_key),
    };

    let auth0 = Auth0Double::start_on(
        auth0_config.clone(),
        loopback_port("AUTH0_DOUBLE_PORT", 4010)?,
    )
    .await?;
    let email =
        EmailDouble::start_on(email_config, loopback_port("EMAIL_DOUBLE_PORT", 4020)?).await?;
    println!("auth0 double: {}", auth0.base_url());
    println!("email double: {}", email.base_url());

    // The seeded people's logins.
    let seed_password = env_or("SEED_PASSWORD", DEFAULT_SEED_PASSWORD);
    let admin = Auth0Admin::new(
        &auth0.base_url(),
        &auth0_config.client_id,
        &auth0_config.client_secret,
        &auth0_config.connection,
    );
    match std::env::var("DATABASE_URL") {
        Ok(database_url) => {
            let people = people_of(&database_url).await?;
            admin.create_logins(&people, &seed_password).await?;
            println!(
                "auth0 double: {} seeded logins ({} blocked, as their rows are inactive)",
                people.len(),
                people.iter().filter(|p| !p.active).count()
            );
        }
        Err(_) => println!("auth0 double: no DATABASE_URL, so no seeded logins"),
    }

    // The gateway, configured by the template.
    let frontend_port = loopback_port("FRONTEND_PORT", 3000)?.port();
    let frontend_url = env_or("FRONTEND_URL", &format!("http://localhost:{frontend_port}"));
    let frontend_origin = url::Url::parse(&frontend_url)?
        .origin()
        .ascii_serialization();
    let parameters = template_parameters(
        &auth0.base_url(),
        &env_or("AUTH0_AUDIENCE", LOCAL_AUDIENCE),
        &env_or("CORS_ALLOWED_ORIGINS", &frontend_origin),
        &frontend_url,
    );
    let template_file = std::env::var("TEMPLATE").map_or_else(|_| template_path(), PathBuf::from);
    let template_file = template_file.canonicalize().unwrap_or(template_file);
    let template = Template::from_file(&template_file, &parameters)?;
    let routes = describe_routes(&template);
    let watch = format!(
        "http://127.0.0.1:{}",
        loopback_port("WATCH_PORT", 9000)?.port()
    );
    let functions = Arc::new(InvokeApi::new(&watch));
    let gateway = Gateway::start(template, functions, loopback_port("GATEWAY_PORT", 4000)?).await?;
    println!(
        "gateway: {}/api (template {}, functions at {watch})",
        gateway.base_url(),
        template_file.display()
    );
    for route in routes {
        println!("  {route}");
    }

    // The page, calling the gateway.
    let settings = PageSettings {
        api_base_url: gateway.base_url().to_string(),
        sign_in_url: format!("{}/", frontend_url.trim_end_matches('/')),
    };
    let page = PageServer::start(
        page_dir(),
        settings,
        (Ipv4Addr::LOCALHOST, frontend_port).into(),
    )
    .await?;
    println!(
        "set-password page: {}/auth/set-password (served from {})",
        frontend_url.trim_end_matches('/'),
        page.base_url()
    );

    wait_for_stop().await?;
    Ok(())
}

async fn wait_for_stop() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate = signal(SignalKind::terminate())?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result,
            _ = terminate.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await
}
