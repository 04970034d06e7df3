//! The set-password page (`web/set-password/`), served as a static site would serve it at
//! `FRONTEND_URL/auth/set-password`: the HTML with its two settings filled in (the public
//! API's base URL and where to sign in, `<meta>` tags the page reads), its script and its
//! style sheet next to it (`/auth/set-password.js`, `/auth/set-password.css`, so the page's
//! relative links work without a trailing slash). The files are read on every request: an
//! edit shows on the next reload, with no build step.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use crate::doubles::server::{Listening, RunningServer};

/// What the page is told.
#[derive(Debug, Clone)]
pub struct PageSettings {
    /// Base URL of the public API (`PublicApiUrl`), e.g. the local gateway's.
    pub api_base_url: String,
    /// Where the "sign in" link of the success screen points.
    pub sign_in_url: String,
}

const SIGN_IN_STAND_IN: &str = "The local stack has no admin app to sign in to. \
Log in to the Auth0 double with the new password instead:\n\n  \
make token USER=<address> PASSWORD=<the new password>\n";

struct Site {
    dir: PathBuf,
    settings: PageSettings,
}

/// A running page server; stops when dropped.
pub struct PageServer {
    server: RunningServer,
}

/// `web/set-password/` of this checkout.
pub fn page_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../web/set-password")
}

/// The page's socket, bound before its settings are known (the functions need the page's URL
/// for their links before the gateway, which the page calls, can start).
pub struct PageBinding {
    listening: Listening,
}

impl PageBinding {
    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> &str {
        self.listening.base_url()
    }

    pub fn serve(self, dir: PathBuf, settings: PageSettings) -> PageServer {
        let site = Arc::new(Site { dir, settings });
        let router = Router::new().fallback(serve).with_state(site);
        PageServer {
            server: self.listening.serve(router),
        }
    }
}

impl PageServer {
    pub async fn bind(addr: SocketAddr) -> std::io::Result<PageBinding> {
        let listening = RunningServer::listen(addr).await?;
        Ok(PageBinding { listening })
    }

    pub async fn start(
        dir: PathBuf,
        settings: PageSettings,
        addr: SocketAddr,
    ) -> std::io::Result<PageServer> {
        Ok(Self::bind(addr).await?.serve(dir, settings))
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> &str {
        self.server.base_url()
    }
}

async fn serve(State(site): State<Arc<Site>>, uri: Uri) -> Response {
    let (file, content_type) = match uri.path() {
        "/auth/set-password" | "/auth/set-password/" => ("index.html", "text/html; charset=utf-8"),
        "/auth/set-password.js" => ("set-password.js", "text/javascript; charset=utf-8"),
        "/auth/set-password.css" => ("set-password.css", "text/css; charset=utf-8"),
        // The success screen's "Sign in" link: no admin app runs locally.
        "/" => return (StatusCode::OK, SIGN_IN_STAND_IN).into_response(),
        _ => return (StatusCode::NOT_FOUND, "Not found\n").into_response(),
    };
    let text = match std::fs::read_to_string(site.dir.join(file)) {
        Ok(text) => text,
        Err(err) => {
            let message = format!("cannot read {file}: {err}\n");
            return (StatusCode::INTERNAL_SERVER_ERROR, message).into_response();
        }
    };
    let text = if file == "index.html" {
        let settings = &site.settings;
        let text = set_meta(&text, "set-password-api", &settings.api_base_url);
        set_meta(&text, "sign-in-url", &settings.sign_in_url)
    } else {
        text
    };
    let mut response = text.into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // The link's token is in the page's URL: never sent on as a referrer.
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    let csp = format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src {}; \
         base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        origin_of(&site.settings.api_base_url)
    );
    if let Ok(value) = HeaderValue::from_str(&csp) {
        headers.insert("content-security-policy", value);
    }
    response
}

/// Sets the `content` of `<meta name="{name}" content="…">` in `html`.
fn set_meta(html: &str, name: &str, value: &str) -> String {
    let marker = format!("name=\"{name}\" content=\"");
    let Some(start) = html.find(&marker).map(|at| at + marker.len()) else {
        return html.to_string();
    };
    let Some(length) = html[start..].find('"') else {
        return html.to_string();
    };
    let escaped = value.replace('&', "&amp;").replace('"', "&quot;");
    format!("{}{escaped}{}", &html[..start], &html[start + length..])
}

/// `scheme://host[:port]` of a URL.
fn origin_of(url: &str) -> String {
    url::Url::parse(url).map_or_else(
        |_| url.to_string(),
        |parsed| parsed.origin().ascii_serialization(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_in_the_meta_settings_of_the_committed_page() {
        let html = std::fs::read_to_string(page_dir().join("index.html")).unwrap();
        let html = set_meta(&html, "set-password-api", "http://127.0.0.1:4000");
        assert!(html.contains(r#"<meta name="set-password-api" content="http://127.0.0.1:4000">"#));
        assert_eq!(
            origin_of("http://127.0.0.1:4000/x"),
            "http://127.0.0.1:4000"
        );
    }
}
