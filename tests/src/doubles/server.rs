//! HTTP plumbing shared by the doubles: start/stop, JSON answers, the control API.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Mutex, MutexGuard};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use super::faults::Fault;

/// A double serving on a tokio task; dropping it shuts the server down.
#[derive(Debug)]
pub(crate) struct RunningServer {
    base_url: String,
    shutdown: Option<oneshot::Sender<()>>,
}

impl RunningServer {
    /// Binds `addr`; the app is built afterwards because it needs to know its own URL.
    pub(crate) async fn listen(addr: SocketAddr) -> std::io::Result<Listening> {
        let listener = TcpListener::bind(addr).await?;
        let bound = listener.local_addr()?;
        // A wildcard bind is still reached through loopback by tests.
        let host = if bound.ip().is_unspecified() {
            Ipv4Addr::LOCALHOST.into()
        } else {
            bound.ip()
        };
        let base_url = format!("http://{}", SocketAddr::new(host, bound.port()));
        Ok(Listening { listener, base_url })
    }

    pub(crate) fn base_url(&self) -> &str {
        &self.base_url
    }
}

/// A bound socket waiting for its app.
pub(crate) struct Listening {
    listener: TcpListener,
    base_url: String,
}

impl Listening {
    pub(crate) fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Serves `router` on a tokio task until the returned handle is dropped.
    pub(crate) fn serve(self, router: Router) -> RunningServer {
        let (shutdown, stopped) = oneshot::channel::<()>();
        let signal = async {
            let _ = stopped.await;
        };
        let server = axum::serve(self.listener, router).with_graceful_shutdown(signal);
        tokio::spawn(async move {
            if let Err(error) = server.await {
                tracing::warn!(%error, "double stopped serving");
            }
        });
        RunningServer {
            base_url: self.base_url,
            shutdown: Some(shutdown),
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// 127.0.0.1 on a random port.
pub(crate) fn any_loopback_port() -> SocketAddr {
    (Ipv4Addr::LOCALHOST, 0).into()
}

/// Locks a double's state; a poisoned lock is still usable because every change is atomic.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A JSON answer with the content type the real APIs send.
pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

/// An error answer as data: small enough for `Result`, turned into a response at the edge.
#[derive(Debug)]
pub(crate) struct Rejection {
    pub(crate) status: StatusCode,
    pub(crate) body: Value,
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        json_response(self.status, &self.body)
    }
}

/// A handler's result: the answer, or the error answer.
pub(crate) type Answer = Result<Response, Rejection>;

/// Plain address syntax check: `local@domain.tld`, no spaces or angle brackets.
pub(crate) fn is_valid_email(address: &str) -> bool {
    let Some((local, domain)) = address.split_once('@') else {
        return false;
    };
    let forbidden = |c: char| c.is_whitespace() || c.is_control() || "<>()[],;:\\\"@".contains(c);
    !local.is_empty()
        && !local.chars().any(forbidden)
        && domain.contains('.')
        && domain.split('.').all(|label| !label.is_empty())
        && !domain.chars().any(forbidden)
}

/// What the control API needs from a double.
pub(crate) trait Control: Clone + Send + Sync + 'static {
    fn snapshot(&self) -> Value;
    fn reset(&self);
    fn inject(&self, fault: Fault);
    fn clear_faults(&self);
}

/// `/__control/{state,reset,faults}`, the same for every double.
pub(crate) fn control_routes<C: Control>() -> Router<C> {
    Router::new()
        .route("/__control/state", get(snapshot::<C>))
        .route("/__control/reset", post(reset::<C>))
        .route(
            "/__control/faults",
            post(add_faults::<C>).delete(clear_faults::<C>),
        )
}

async fn snapshot<C: Control>(State(double): State<C>) -> Response {
    json_response(StatusCode::OK, &double.snapshot())
}

async fn reset<C: Control>(State(double): State<C>) -> StatusCode {
    double.reset();
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(Fault),
    Many(Vec<Fault>),
}

async fn add_faults<C: Control>(State(double): State<C>, body: Bytes) -> Response {
    match serde_json::from_slice::<OneOrMany>(&body) {
        Ok(OneOrMany::One(fault)) => double.inject(fault),
        Ok(OneOrMany::Many(faults)) => faults.into_iter().for_each(|fault| double.inject(fault)),
        Err(error) => return control_error(&format!("invalid fault: {error}")).into_response(),
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn clear_faults<C: Control>(State(double): State<C>) -> StatusCode {
    double.clear_faults();
    StatusCode::NO_CONTENT
}

/// Error shape of the control API itself (not part of any real API).
pub(crate) fn control_error(message: &str) -> Rejection {
    let body = json!({ "error": message });
    Rejection {
        status: StatusCode::BAD_REQUEST,
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::is_valid_email;

    #[test]
    fn plain_addresses_are_valid_emails() {
        assert!(is_valid_email("a.b+tag@example.co.uk"));
    }

    #[test]
    fn malformed_addresses_are_not_valid_emails() {
        for bad in [
            "",
            "a",
            "a@",
            "@b.com",
            "a@b",
            "a b@c.com",
            "a@b..com",
            "<a@b.com>",
        ] {
            assert!(!is_valid_email(bad), "{bad}");
        }
    }
}
