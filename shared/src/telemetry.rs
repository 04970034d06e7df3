//! Logging: JSON lines in Lambda (CloudWatch), readable text on a terminal.
//!
//! A JSON line is the event's fields, `requestId` (the invocation's, on every line logged while
//! serving one, also from inside client spans) and `span` (the innermost span's fields). No
//! list of every open span: that repeated the same fields on every line.

use std::sync::Arc;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

/// Dependencies whose debug lines carry personal data, held at `info` whatever the level:
/// tokio-postgres logs every statement's parameters (addresses, token hashes), reqwest every
/// URL (Auth0's users-by-email query holds the address).
const QUIET_DEPENDENCIES: &str = "tokio_postgres=info,reqwest=info";

/// Level from `LOG_LEVEL` or `RUST_LOG` (default `info`); `LOG_FORMAT=text` for humans.
/// `function` names this process in its metrics (`create-user`, `cleanup`).
pub fn init(function: &'static str) {
    crate::metrics::set_function(function);
    let filter = std::env::var("RUST_LOG")
        .or_else(|_| std::env::var("LOG_LEVEL"))
        .unwrap_or_else(|_| "info".into());
    let filter = format!("{filter},{QUIET_DEPENDENCIES}");
    let result = if std::env::var("LOG_FORMAT").as_deref() == Ok("text") {
        tracing_subscriber::fmt()
            .with_env_filter(EnvFilter::new(filter))
            .with_target(false)
            .with_writer(std::io::stdout)
            .without_time()
            .try_init()
    } else {
        let lines = tracing_subscriber::fmt::layer()
            .fmt_fields(JsonFields::new())
            .event_format(JsonLine)
            .with_writer(std::io::stdout);
        tracing_subscriber::registry()
            .with(EnvFilter::new(filter))
            .with(RequestIdLayer)
            .with(lines)
            .try_init()
            .map_err(Into::into)
    };
    // A second init (tests) keeps the first subscriber.
    let _ = result;
}

/// An error and its causes on one line, for logs: `outer: cause: root cause`. A cause whose
/// text the line already holds (many errors repeat their source) is not written twice.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// serde_json's reason for refusing a document, without the value it refused: that value is
/// whatever the sender wrote (an address, a token), and this text goes to logs and to invokers.
/// Syntax errors and missing or duplicate fields name no value and stay as serde words them;
/// for the rest, the kind of error, what was expected, and where.
pub fn json_error_reason(err: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let text = err.to_string();
    let names_no_value = matches!(
        err.classify(),
        Category::Syntax | Category::Eof | Category::Io
    ) || text.starts_with("missing field")
        || text.starts_with("duplicate field");
    if names_no_value {
        return text;
    }
    let kind = [
        "invalid type",
        "invalid value",
        "invalid length",
        "unknown variant",
        "unknown field",
    ]
    .into_iter()
    .find(|kind| text.starts_with(kind))
    .unwrap_or("invalid data");
    // serde writes `<kind>: <the value>, expected <what our type wants>`: only the last part is ours.
    let expected = text
        .rsplit_once(", expected ")
        .map(|(_, rest)| rest.split(" at line ").next().unwrap_or(rest))
        .map(|what| format!(" (expected {what})"))
        .unwrap_or_default();
    format!(
        "{kind}{expected} at line {} column {}",
        err.line(),
        err.column()
    )
}

/// The invocation's request id, kept on every span opened while serving it.
struct RequestId(Arc<str>);

/// Finds the request id in the span lambda_runtime opens per invocation (`requestId`) or in
/// our handlers' spans (`request_id`), and hands it down to every span opened inside.
struct RequestIdLayer;

impl<S> Layer<S> for RequestIdLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let inherited = span
            .parent()
            .and_then(|parent| parent.extensions().get::<RequestId>().map(|r| r.0.clone()));
        let request_id = inherited.or_else(|| {
            let mut found = FindRequestId(None);
            attrs.record(&mut found);
            found.0.map(Arc::from)
        });
        if let Some(request_id) = request_id {
            span.extensions_mut().insert(RequestId(request_id));
        }
    }
}

struct FindRequestId(Option<String>);

impl Visit for FindRequestId {
    fn record_str(&mut self, field: &Field, value: &str) {
        if matches!(field.name(), "requestId" | "request_id") {
            self.0 = Some(value.to_owned());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if self.0.is_none() && matches!(field.name(), "requestId" | "request_id") {
            // `%id` records through Debug of a Display wrapper: the plain text.
            self.0 = Some(format!("{value:?}"));
        }
    }
}

/// One JSON object per event: timestamp, level, message and fields, requestId, span. Written
/// straight into the line (no map of values first, no second parse of the span's fields): it
/// runs for every line every invocation logs.
struct JsonLine;

impl<S, N> FormatEvent<S, N> for JsonLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let mut line = JsonObject::new();
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        line.value("timestamp", &now);
        line.value("level", event.metadata().level().as_str());
        event.record(&mut JsonVisitor(&mut line));
        if let Some(span) = ctx.event_scope().and_then(|mut scope| scope.next()) {
            let extensions = span.extensions();
            if let Some(RequestId(id)) = extensions.get::<RequestId>() {
                line.value("requestId", id);
            }
            // The innermost span's own fields, as JsonFields wrote them when it opened (a JSON
            // object, or nothing for a span without fields), and its name.
            let fields = extensions
                .get::<FormattedFields<N>>()
                .map(|f| f.as_str().trim())
                .and_then(|f| f.strip_prefix('{')?.strip_suffix('}'))
                .map(str::trim)
                .unwrap_or_default();
            line.key("span");
            line.raw("{");
            if !fields.is_empty() {
                line.raw(fields);
                line.raw(",");
            }
            line.raw("\"name\":");
            line.value_only(span.name());
            line.raw("}");
        }
        writeln!(writer, "{}", line.finish())
    }
}

/// A JSON object written as text, key by key (serde_json escapes each key and value).
struct JsonObject {
    bytes: Vec<u8>,
}

impl JsonObject {
    fn new() -> Self {
        let mut bytes = Vec::with_capacity(384);
        bytes.push(b'{');
        JsonObject { bytes }
    }

    fn key(&mut self, key: &str) {
        if self.bytes.len() > 1 {
            self.bytes.push(b',');
        }
        self.value_only(key);
        self.bytes.push(b':');
    }

    /// A string, number or bool, as serde_json writes it (a NaN becomes `null`).
    fn value(&mut self, key: &str, value: impl serde::Serialize) {
        self.key(key);
        self.value_only(value);
    }

    fn value_only(&mut self, value: impl serde::Serialize) {
        // Into a Vec: cannot fail for strings, numbers and bools.
        let _ = serde_json::to_writer(&mut self.bytes, &value);
    }

    /// Text already in JSON, as is.
    fn raw(&mut self, json: &str) {
        self.bytes.extend_from_slice(json.as_bytes());
    }

    fn finish(mut self) -> String {
        self.bytes.push(b'}');
        String::from_utf8(self.bytes).expect("serde_json writes UTF-8")
    }
}

struct JsonVisitor<'a>(&'a mut JsonObject);

impl Visit for JsonVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.value(field.name(), value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.value(field.name(), value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.value(field.name(), value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.value(field.name(), value);
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.value(field.name(), value);
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.value(field.name(), value.to_string());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.value(field.name(), format!("{value:?}"));
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use serde_json::Value;

    use super::*;

    #[test]
    fn a_json_error_reason_keeps_what_was_wrong_and_drops_the_value_sent() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Shape {
            count: u32,
            kind: Kind,
        }
        #[derive(Debug, serde::Deserialize)]
        enum Kind {
            Scheduled,
        }
        let reason =
            |json: &str| json_error_reason(&serde_json::from_str::<Shape>(json).unwrap_err());

        let wrong_type = reason(r#"{"count": "jane.doe@example.com", "kind": "Scheduled"}"#);
        assert_eq!(
            wrong_type,
            "invalid type (expected u32) at line 1 column 32"
        );
        let wrong_variant = reason(r#"{"count": 1, "kind": "jane.doe@example.com"}"#);
        assert!(!wrong_variant.contains("jane.doe"), "{wrong_variant}");
        assert!(
            wrong_variant.starts_with("unknown variant (expected "),
            "{wrong_variant}"
        );

        // Nothing the sender wrote is in these: serde's own words stay.
        assert_eq!(
            reason(r#"{"kind": "Scheduled"}"#),
            "missing field `count` at line 1 column 21"
        );
        assert_eq!(
            reason(r#"{"count": 1,"#),
            "EOF while parsing a value at line 1 column 12"
        );
    }

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn lines_of(log: impl FnOnce()) -> Vec<Value> {
        let buffer = Buffer::default();
        let out = buffer.clone();
        let layer = tracing_subscriber::fmt::layer()
            .fmt_fields(JsonFields::new())
            .event_format(JsonLine)
            .with_writer(move || out.clone());
        let subscriber = tracing_subscriber::registry()
            .with(EnvFilter::new("info"))
            .with(RequestIdLayer)
            .with(layer);
        tracing::subscriber::with_default(subscriber, log);
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|l| serde_json::from_str(l).expect("each line is JSON"))
            .collect()
    }

    #[test]
    fn every_line_inside_an_invocation_carries_its_request_id_without_a_span_list() {
        let lines = lines_of(|| {
            tracing::info!("before any invocation");
            let invoke = tracing::info_span!("Lambda runtime invoke", requestId = "req-1");
            let _invoke = invoke.enter();
            let client = tracing::info_span!("create_user", op = "create_user");
            let _client = client.enter();
            tracing::warn!(
                step = "auth0_create",
                attempt = 2u64,
                "inside a client span"
            );
        });
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].get("requestId").is_none(), "{}", lines[0]);
        let inside = &lines[1];
        assert_eq!(inside["requestId"], "req-1");
        assert_eq!(inside["message"], "inside a client span");
        assert_eq!(inside["level"], "WARN");
        assert_eq!(inside["step"], "auth0_create");
        assert_eq!(inside["attempt"], 2);
        assert_eq!(inside["span"]["name"], "create_user");
        assert_eq!(inside["span"]["op"], "create_user");
        assert!(inside.get("spans").is_none(), "{inside}");
    }

    #[test]
    fn a_span_without_fields_and_text_that_needs_escaping_still_make_one_json_line() {
        let lines = lines_of(|| {
            let span = tracing::info_span!("quiet");
            let _span = span.enter();
            let odd = "a \"quoted\"\nline\\ with é";
            tracing::info!(detail = odd, ratio = 0.5, missing = f64::NAN, "said {odd}");
        });
        assert_eq!(lines.len(), 1, "{lines:?}");
        let line = &lines[0];
        assert_eq!(line["span"], serde_json::json!({"name": "quiet"}));
        assert_eq!(line["detail"], "a \"quoted\"\nline\\ with é");
        assert_eq!(line["message"], "said a \"quoted\"\nline\\ with é");
        assert_eq!(line["ratio"], 0.5);
        assert!(line["missing"].is_null(), "{line}");
        assert!(line["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')));
    }

    #[test]
    fn a_handler_span_with_a_display_request_id_gives_it_to_its_lines() {
        let id = uuid::Uuid::new_v4();
        let lines = lines_of(|| {
            let span = tracing::info_span!("request", request_id = %id);
            let _span = span.enter();
            tracing::info!("served");
        });
        assert_eq!(lines[0]["requestId"], id.to_string());
        assert_eq!(lines[0]["span"]["request_id"], id.to_string());
    }
}
