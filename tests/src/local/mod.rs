//! The local stack's own parts beside the doubles (`make dev`, and the browser test): a local
//! API Gateway for the template's HTTP routes, the set-password page, and the seeded people's
//! logins in the Auth0 double.

pub mod authorizer;
pub mod functions;
pub mod gateway;
pub mod page;
pub mod people;
pub mod stack;
pub mod template;

use std::collections::HashMap;
use std::path::PathBuf;

/// The admin API's audience under the local stack (the `Auth0Audience` parameter): the `aud`
/// of the admin tokens `make token` gets from the Auth0 double.
pub const LOCAL_AUDIENCE: &str = "https://api.acme.test";

/// `template.yaml` of this checkout.
pub fn template_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../template.yaml")
}

/// The values the local stack gives the template's parameters that the gateway reads (what
/// `make deploy` gives them on AWS): the Auth0 double as the issuer, the page's origin for
/// CORS.
pub fn template_parameters(
    auth0_base_url: &str,
    audience: &str,
    cors_allowed_origins: &str,
    frontend_url: &str,
) -> HashMap<String, String> {
    let frontend_origin = url::Url::parse(frontend_url).map_or_else(
        |_| frontend_url.trim_end_matches('/').to_string(),
        |url| url.origin().ascii_serialization(),
    );
    HashMap::from([
        (
            "Auth0Issuer".to_string(),
            format!("{}/", auth0_base_url.trim_end_matches('/')),
        ),
        ("Auth0Audience".to_string(), audience.to_string()),
        (
            "CorsAllowedOrigins".to_string(),
            cors_allowed_origins.to_string(),
        ),
        ("FrontendUrl".to_string(), frontend_url.to_string()),
        ("FrontendOrigin".to_string(), frontend_origin),
    ])
}
