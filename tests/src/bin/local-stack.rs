//! Runs the Auth0 and email doubles on fixed ports until SIGTERM or Ctrl-C.
//!
//! Env: `AUTH0_DOUBLE_PORT` (4010), `EMAIL_DOUBLE_PORT` (4020), `AUTH0_CLIENT_ID`,
//! `AUTH0_CLIENT_SECRET`, `EMAIL_API_KEY` (defaults as in the doubles' configs).

use std::net::{Ipv4Addr, SocketAddr};

use testkit::doubles::{Auth0Config, Auth0Double, EmailConfig, EmailDouble};

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

    let auth0 =
        Auth0Double::start_on(auth0_config, loopback_port("AUTH0_DOUBLE_PORT", 4010)?).await?;
    let email =
        EmailDouble::start_on(email_config, loopback_port("EMAIL_DOUBLE_PORT", 4020)?).await?;
    println!("auth0 double: {}", auth0.base_url());
    println!("email double: {}", email.base_url());

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
