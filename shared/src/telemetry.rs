//! Logging: JSON lines in Lambda (CloudWatch), readable text on a terminal.

use tracing_subscriber::EnvFilter;

/// Level from `LOG_LEVEL` or `RUST_LOG` (default `info`); `LOG_FORMAT=text` for humans.
/// `function` names this process in its metrics (`create-user`, `cleanup`).
pub fn init(function: &'static str) {
    crate::metrics::set_function(function);
    let filter = std::env::var("RUST_LOG")
        .or_else(|_| std::env::var("LOG_LEVEL"))
        .unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new(filter))
        .with_target(false)
        .with_writer(std::io::stdout);
    let result = if std::env::var("LOG_FORMAT").as_deref() == Ok("text") {
        builder.without_time().try_init()
    } else {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            // The span list carries the request id into lines logged inside client spans too.
            .with_span_list(true)
            .try_init()
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
