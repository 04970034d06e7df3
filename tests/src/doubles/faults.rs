//! Injected failures, shared by every double.
//!
//! A [`Fault`] names an operation and applies to its next `times` calls. Faults wait in a FIFO
//! queue; each call consumes one use of the first fault that matches its operation.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::body::Body;
use axum::http::header::{CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One injected failure. JSON shape is the same over the control API.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
pub struct Fault {
    /// Operation name, e.g. `create_user` or `send_email`.
    pub op: String,
    /// Answer with this status instead of doing the work.
    #[serde(default)]
    pub status: Option<u16>,
    /// Sleep before answering. Without `status` the work is done first, like a slow server.
    #[serde(default)]
    pub delay_ms: u64,
    /// Close the TCP connection without any HTTP response; no work is done.
    #[serde(default)]
    pub drop: bool,
    /// How many calls this fault applies to.
    #[serde(default = "one")]
    pub times: u32,
    /// Body for a `status` answer; a JSON string is sent verbatim as text.
    #[serde(default)]
    pub body: Option<Value>,
    /// Extra headers on the answer; they override the double's own.
    #[serde(default)]
    pub headers: Option<BTreeMap<String, String>>,
}

fn one() -> u32 {
    1
}

impl Fault {
    fn on(op: &str) -> Fault {
        Fault {
            op: op.to_string(),
            status: None,
            delay_ms: 0,
            drop: false,
            times: 1,
            body: None,
            headers: None,
        }
    }

    /// Answer `op` with `status` (and the API's own error body) without doing the work.
    pub fn status(op: &str, status: u16) -> Fault {
        Fault {
            status: Some(status),
            ..Fault::on(op)
        }
    }

    /// Do the work of `op`, then wait `delay_ms` before answering.
    pub fn delay(op: &str, delay_ms: u64) -> Fault {
        Fault {
            delay_ms,
            ..Fault::on(op)
        }
    }

    /// Close the connection of `op` without answering and without doing the work.
    pub fn drop_connection(op: &str) -> Fault {
        Fault {
            drop: true,
            ..Fault::on(op)
        }
    }

    pub fn times(self, times: u32) -> Fault {
        Fault { times, ..self }
    }

    pub fn with_body(self, body: Value) -> Fault {
        Fault {
            body: Some(body),
            ..self
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Fault {
        self.headers
            .get_or_insert_with(BTreeMap::new)
            .insert(name.to_string(), value.to_string());
        self
    }
}

/// Pending faults in injection order.
#[derive(Debug, Default)]
pub(crate) struct FaultQueue {
    pending: Vec<Fault>,
}

impl FaultQueue {
    pub(crate) fn push(&mut self, fault: Fault) {
        if fault.times > 0 {
            self.pending.push(fault);
        }
    }

    pub(crate) fn clear(&mut self) {
        self.pending.clear();
    }

    pub(crate) fn pending(&self) -> &[Fault] {
        &self.pending
    }

    /// Uses up one application of the first fault for `op`.
    pub(crate) fn take(&mut self, op: &str) -> Option<Fault> {
        let index = self.pending.iter().position(|fault| fault.op == op)?;
        let fault = &mut self.pending[index];
        fault.times -= 1;
        let taken = Fault {
            times: 1,
            ..fault.clone()
        };
        if fault.times == 0 {
            self.pending.remove(index);
        }
        Some(taken)
    }
}

/// Answers one call, honouring its fault if any.
///
/// `work` does the real thing; `faulted` renders the API's own error for a status fault.
/// Neither may hold a lock across the sleep, which is why both are synchronous.
pub(crate) async fn respond(
    fault: Option<Fault>,
    faulted: impl FnOnce(StatusCode) -> Response,
    work: impl FnOnce() -> Response,
) -> Response {
    let Some(fault) = fault else {
        return work();
    };
    let delay = Duration::from_millis(fault.delay_ms);
    if fault.drop {
        tokio::time::sleep(delay).await;
        drop_connection();
    }
    let mut response = match fault.status {
        Some(code) => {
            tokio::time::sleep(delay).await;
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut response = faulted(status);
            if let Some(body) = fault.body {
                replace_body(&mut response, body);
            }
            if status == StatusCode::TOO_MANY_REQUESTS {
                response
                    .headers_mut()
                    .entry(RETRY_AFTER)
                    .or_insert(HeaderValue::from_static("1"));
            }
            response
        }
        None => {
            let response = work();
            tokio::time::sleep(delay).await;
            response
        }
    };
    for (name, value) in fault.headers.iter().flatten() {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

fn replace_body(response: &mut Response, body: Value) {
    let (text, content_type) = match body {
        Value::String(text) => (text, "text/plain; charset=utf-8"),
        json => (json.to_string(), "application/json; charset=utf-8"),
    };
    *response.body_mut() = Body::from(text);
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
}

/// Marker payload for the unwinding below.
struct ConnectionDropped;

/// Kills the connection without an HTTP response.
///
/// Every connection is served on its own tokio task; unwinding out of the handler ends that task
/// and drops its socket, while other connections and the accept loop carry on. `resume_unwind`
/// skips the panic hook, so nothing is printed.
fn drop_connection() -> ! {
    std::panic::resume_unwind(Box::new(ConnectionDropped))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_applies_to_its_next_times_calls_then_disappears() {
        let mut queue = FaultQueue::default();
        queue.push(Fault::status("create_user", 503).times(2));
        assert!(queue.take("get_user").is_none());
        assert_eq!(queue.take("create_user").unwrap().status, Some(503));
        assert_eq!(queue.take("create_user").unwrap().status, Some(503));
        assert!(queue.take("create_user").is_none());
        assert!(queue.pending().is_empty());
    }

    #[test]
    fn faults_for_the_same_op_are_used_in_injection_order() {
        let mut queue = FaultQueue::default();
        queue.push(Fault::status("token", 500));
        queue.push(Fault::delay("token", 10));
        assert_eq!(queue.take("token").unwrap().status, Some(500));
        assert_eq!(queue.take("token").unwrap().delay_ms, 10);
    }

    #[test]
    fn a_fault_json_needs_only_its_op() {
        let fault: Fault = serde_json::from_str(r#"{"op":"send_email"}"#).unwrap();
        assert_eq!(fault.times, 1);
        assert_eq!(fault, Fault::on("send_email"));
    }
}
