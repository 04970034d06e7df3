//! The events cleanup accepts, parsed once into a [`CleanupRequest`]:
//! - an EventBridge scheduled event (`detail-type` "Scheduled Event", `source` "aws.events"):
//!   everything;
//! - a manual event, an object with only `email` (one address) and/or `dryRun` (report only);
//!   `{}` is a manual run of everything.
//!
//! Anything else is refused with an [`InvalidRequest`] naming the field, and nothing is done.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::Diagnostic;
use serde_json::{Map, Value};

use crate::domain::{Email, FieldError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CleanupRequest {
    pub trigger: Trigger,
    pub scope: Scope,
    /// Report what would be done; change nothing in either system.
    pub dry_run: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Schedule,
    Manual,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Schedule => "schedule",
            Self::Manual => "manual",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Everything,
    Email(Email),
}

impl Scope {
    pub fn email(&self) -> Option<&Email> {
        match self {
            Self::Everything => None,
            Self::Email(email) => Some(email),
        }
    }

    /// For the summary and logs: "all" or the redacted address.
    pub fn describe(&self) -> String {
        match self {
            Self::Everything => "all".into(),
            Self::Email(email) => email.redacted(),
        }
    }
}

/// The event was not one cleanup understands; reported as the invocation's error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid cleanup event: {0}")]
pub struct InvalidRequest(pub FieldError);

impl InvalidRequest {
    fn new(field: &str, message: impl Into<String>) -> Self {
        Self(FieldError::new(field, message))
    }
}

/// `errorType` "InvalidRequest" in the Lambda error outcome, the field in the message.
impl From<InvalidRequest> for Diagnostic {
    fn from(err: InvalidRequest) -> Self {
        Diagnostic {
            error_type: "InvalidRequest".into(),
            error_message: err.to_string(),
        }
    }
}

const MANUAL_FIELDS: &str = "a manual event takes only `email` and `dryRun`";

/// The top-level fields of an EventBridge event (`replay-name` on a replayed one).
const ENVELOPE_FIELDS: [&str; 10] = [
    "version",
    "id",
    "detail-type",
    "source",
    "account",
    "time",
    "region",
    "resources",
    "detail",
    "replay-name",
];

/// Refuses the first field of `object` not in `known`, naming it only when the name looks like
/// one (`{"jane@example.com": true}` must not reach the error or the log).
fn refuse_unknown_fields(
    object: &Map<String, Value>,
    known: &[&str],
    allowed: &str,
) -> Result<(), InvalidRequest> {
    let Some(name) = object.keys().find(|k| !known.contains(&k.as_str())) else {
        return Ok(());
    };
    Err(if crate::json::looks_like_a_field_name(name) {
        InvalidRequest::new(name, format!("unknown field; {allowed}"))
    } else {
        InvalidRequest::new(
            "event",
            format!("has a field that is not a field name (not repeated here); {allowed}"),
        )
    })
}

impl CleanupRequest {
    pub fn parse(event: &Value) -> Result<Self, InvalidRequest> {
        let Value::Object(object) = event else {
            return Err(InvalidRequest::new(
                "event",
                "must be a JSON object: an EventBridge scheduled event, or {\"email\": …, \"dryRun\": …}",
            ));
        };
        if object.contains_key("detail-type") || object.contains_key("source") {
            return parse_scheduled(event, object);
        }
        parse_manual(object)
    }
}

fn parse_scheduled(
    event: &Value,
    object: &Map<String, Value>,
) -> Result<CleanupRequest, InvalidRequest> {
    let scheduled: EventBridgeEvent = serde_json::from_value(event.clone()).map_err(|e| {
        InvalidRequest::new(
            "event",
            format!(
                "not a valid EventBridge event ({})",
                crate::telemetry::json_error_reason(&e)
            ),
        )
    })?;
    if scheduled.source != "aws.events" || scheduled.detail_type != "Scheduled Event" {
        return Err(InvalidRequest::new(
            "detail-type",
            "only EventBridge scheduled events (source \"aws.events\", detail-type \"Scheduled Event\") are accepted",
        ));
    }
    // EventBridge sends its envelope and nothing else. A hand-made copy with `dryRun` or
    // `email` added would otherwise run a real sweep of everything.
    refuse_unknown_fields(
        object,
        &ENVELOPE_FIELDS,
        "a scheduled event carries only EventBridge's own fields; for a dry run or one \
         address, invoke with {\"dryRun\": true} or {\"email\": …}",
    )?;
    Ok(CleanupRequest {
        trigger: Trigger::Schedule,
        scope: Scope::Everything,
        dry_run: false,
    })
}

fn parse_manual(object: &Map<String, Value>) -> Result<CleanupRequest, InvalidRequest> {
    refuse_unknown_fields(object, &["email", "dryRun"], MANUAL_FIELDS)?;
    let scope = match object.get("email") {
        None => Scope::Everything,
        Some(Value::String(raw)) => {
            Scope::Email(Email::parse(raw).map_err(|m| InvalidRequest::new("email", m))?)
        }
        Some(_) => {
            return Err(InvalidRequest::new(
                "email",
                "must be a string holding one email address",
            ));
        }
    };
    let dry_run = match object.get("dryRun") {
        None => false,
        Some(Value::Bool(flag)) => *flag,
        Some(_) => return Err(InvalidRequest::new("dryRun", "must be true or false")),
    };
    Ok(CleanupRequest {
        trigger: Trigger::Manual,
        scope,
        dry_run,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn scheduled() -> Value {
        json!({
            "version": "0",
            "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": "123456789012",
            "time": "2026-01-01T00:15:00Z",
            "region": "eu-west-1",
            "resources": ["arn:aws:events:eu-west-1:123456789012:rule/cleanup"],
            "detail": {}
        })
    }

    #[test]
    fn a_scheduled_event_runs_everything_for_real() {
        assert_eq!(
            CleanupRequest::parse(&scheduled()).unwrap(),
            CleanupRequest {
                trigger: Trigger::Schedule,
                scope: Scope::Everything,
                dry_run: false
            }
        );
    }

    #[test]
    fn a_manual_event_may_name_an_address_and_ask_for_a_dry_run() {
        let request =
            CleanupRequest::parse(&json!({"email": " Jane@Example.COM ", "dryRun": true})).unwrap();
        assert_eq!(request.trigger, Trigger::Manual);
        assert_eq!(request.scope.email().unwrap().as_str(), "jane@example.com");
        assert!(request.dry_run);
        assert_eq!(request.scope.describe(), "j***@example.com");
        let everything = CleanupRequest::parse(&json!({})).unwrap();
        assert_eq!(
            (everything.scope, everything.dry_run),
            (Scope::Everything, false)
        );
    }

    #[test]
    fn bad_events_are_refused_naming_the_field_and_never_echoing_an_address() {
        let mut foreign = scheduled();
        foreign["source"] = json!("aws.s3");
        let mut no_detail_type = scheduled();
        no_detail_type
            .as_object_mut()
            .unwrap()
            .remove("detail-type");
        let cases = [
            (json!([]), "event"),
            (json!("cleanup"), "event"),
            (json!(null), "event"),
            (json!({"email": 5}), "email"),
            (json!({"email": "not-an-address"}), "email"),
            (json!({"dryRun": "yes"}), "dryRun"),
            (json!({"dryRun": "jane@example.com"}), "dryRun"),
            (json!({"dry_run": true}), "dry_run"),
            (
                json!({"email": "a@example.com", "tenant": "acme"}),
                "tenant",
            ),
            (foreign, "detail-type"),
            (no_detail_type, "event"),
            // A key is caller data too: never repeated unless it looks like a field name.
            (json!({"jane@example.com": true}), "event"),
            (json!({"x".repeat(5_000): true}), "event"),
            (scheduled_with("dryRun", json!(true)), "dryRun"),
            (scheduled_with("email", json!("jane@example.com")), "email"),
            (scheduled_with("jane@example.com", json!(1)), "event"),
        ];
        for (event, field) in cases {
            let err = CleanupRequest::parse(&event).unwrap_err();
            assert_eq!(err.0.field, field, "{event}");
            let diagnostic = Diagnostic::from(err);
            assert_eq!(diagnostic.error_type, "InvalidRequest");
            assert!(
                diagnostic
                    .error_message
                    .starts_with("invalid cleanup event: "),
                "{}",
                diagnostic.error_message
            );
            assert!(
                !diagnostic.error_message.contains("jane@example.com"),
                "{}",
                diagnostic.error_message
            );
            assert!(diagnostic.error_message.len() < 400, "{field}: too long");
        }
    }

    fn scheduled_with(field: &str, value: Value) -> Value {
        let mut event = scheduled();
        event[field] = value;
        event
    }

    #[test]
    fn a_replayed_scheduled_event_is_still_a_scheduled_event() {
        let replayed = scheduled_with("replay-name", json!("cleanup-replay"));
        let request = CleanupRequest::parse(&replayed).unwrap();
        assert_eq!(
            (request.trigger, request.scope, request.dry_run),
            (Trigger::Schedule, Scope::Everything, false)
        );
    }
}
