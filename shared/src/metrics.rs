//! CloudWatch metrics without API calls: Embedded Metric Format lines on stdout, which
//! CloudWatch Logs turns into metrics. Names are what template.yaml's alarms use.

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

pub const NAMESPACE: &str = "AtomicUserProvisioning";

static FUNCTION: OnceLock<&'static str> = OnceLock::new();

/// Names the function in every metric's `Function` dimension; set once by `main`. In Lambda
/// that is the deployed function's name, unique per stack, which the template's alarms use;
/// elsewhere the binary's own name.
pub fn set_function(binary_name: &'static str) {
    let deployed = std::env::var("AWS_LAMBDA_FUNCTION_NAME")
        .ok()
        .filter(|name| !name.is_empty())
        .map(|name| &*Box::leak(name.into_boxed_str()));
    let _ = FUNCTION.set(deployed.unwrap_or(binary_name));
}

fn function() -> &'static str {
    FUNCTION.get().copied().unwrap_or("unknown")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    UsersCreated,
    Rollbacks,
    CompensatingDeletes,
    CompensatingDeleteFailures,
    OrphansFound,
    OrphansRemoved,
    Auth0RateLimited,
    /// Invited people who set their password (set-password).
    PasswordsSet,
}

impl Metric {
    pub fn name(self) -> &'static str {
        match self {
            Self::UsersCreated => "UsersCreated",
            Self::Rollbacks => "Rollbacks",
            Self::CompensatingDeletes => "CompensatingDeletes",
            Self::CompensatingDeleteFailures => "CompensatingDeleteFailures",
            Self::OrphansFound => "OrphansFound",
            Self::OrphansRemoved => "OrphansRemoved",
            Self::Auth0RateLimited => "Auth0RateLimited",
            Self::PasswordsSet => "PasswordsSet",
        }
    }
}

/// Writes one EMF line: `value` of `metric`, with `Function` and the extra dimension if any.
pub fn count(metric: Metric, value: u64, dimension: Option<(&str, &str)>) {
    let line = emf_line(metric, value, dimension, function(), now_millis());
    // println! (not a raw stdout handle) so test runs capture it like any other output.
    println!("{line}");
}

/// With a dimension (`Step`, `Kind`) the line counts twice: per function, and per function
/// and dimension value, so alarms can watch the total and dashboards the breakdown.
fn emf_line(
    metric: Metric,
    value: u64,
    dimension: Option<(&str, &str)>,
    function: &str,
    timestamp: u64,
) -> Value {
    let mut dimension_sets = vec![vec!["Function"]];
    let mut line = Map::new();
    line.insert("Function".into(), json!(function));
    if let Some((name, dimension_value)) = dimension {
        dimension_sets.push(vec!["Function", name]);
        line.insert(name.into(), json!(dimension_value));
    }
    line.insert(metric.name().into(), json!(value));
    line.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": dimension_sets,
                "Metrics": [{"Name": metric.name(), "Unit": "Count"}],
            }],
        }),
    );
    Value::Object(line)
}

fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_follows_the_embedded_metric_format() {
        let line = emf_line(
            Metric::Rollbacks,
            1,
            Some(("Step", "send_email")),
            "create-user",
            1_700_000_000_000,
        );
        assert_eq!(
            line,
            json!({
                "_aws": {"Timestamp": 1_700_000_000_000u64, "CloudWatchMetrics": [{
                    "Namespace": "AtomicUserProvisioning",
                    "Dimensions": [["Function"], ["Function", "Step"]],
                    "Metrics": [{"Name": "Rollbacks", "Unit": "Count"}]}]},
                "Function": "create-user", "Step": "send_email", "Rollbacks": 1
            })
        );
    }
}
