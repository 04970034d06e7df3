//! CloudWatch metrics without API calls: Embedded Metric Format lines on stdout, which
//! CloudWatch Logs turns into metrics. Names are what template.yaml's alarms use.

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

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
    /// Management API calls one cleanup run made (its cap: `CLEANUP_AUTH0_MAX_CALLS_PER_RUN`).
    CleanupAuth0Calls,
    /// Seconds between now and the Auth0 sweep's watermark after a run.
    SweepWatermarkLag,
    /// Seconds since the full pass's current round began (0 when a run just completed one).
    FullPassLag,
    /// How much of its round the full pass has done, in percent.
    FullPassDone,
}

/// The unit of a metric's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Seconds,
    Percent,
}

impl Unit {
    fn name(self) -> &'static str {
        match self {
            Self::Count => "Count",
            Self::Seconds => "Seconds",
            Self::Percent => "Percent",
        }
    }
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
            Self::CleanupAuth0Calls => "CleanupAuth0Calls",
            Self::SweepWatermarkLag => "SweepWatermarkLag",
            Self::FullPassLag => "FullPassLag",
            Self::FullPassDone => "FullPassDone",
        }
    }
}

/// Writes one EMF line: `value` of `metric`, with `Function` and the extra dimension if any.
pub fn count(metric: Metric, value: u64, dimension: Option<(&str, &str)>) {
    write(metric, value, Unit::Count, dimension);
}

/// Writes one EMF line: the current `value` of `metric` in `unit`, with `Function`.
pub fn gauge(metric: Metric, value: u64, unit: Unit) {
    write(metric, value, unit, None);
}

fn write(metric: Metric, value: u64, unit: Unit, dimension: Option<(&str, &str)>) {
    let line = EmfLine {
        metric,
        value,
        unit,
        dimension,
        function: function(),
        timestamp: now_millis(),
    };
    let text = serde_json::to_string(&line).expect("an EMF line is plain JSON");
    // println! (not a raw stdout handle) so test runs capture it like any other output.
    println!("{text}");
}

/// One metric value as an EMF document. With a dimension (`Step`, `Kind`) the line counts
/// twice: per function, and per function and dimension value, so alarms can watch the total
/// and dashboards the breakdown. Serialized as it is (no JSON tree first): create-user writes
/// one per create.
struct EmfLine<'a> {
    metric: Metric,
    value: u64,
    unit: Unit,
    dimension: Option<(&'a str, &'a str)>,
    function: &'a str,
    timestamp: u64,
}

impl Serialize for EmfLine<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        #[serde(rename_all = "PascalCase")]
        struct Aws<'a> {
            timestamp: u64,
            cloud_watch_metrics: [Directive<'a>; 1],
        }
        #[derive(Serialize)]
        #[serde(rename_all = "PascalCase")]
        struct Directive<'a> {
            namespace: &'static str,
            dimensions: &'a [&'a [&'a str]],
            metrics: [MetricDefinition; 1],
        }
        #[derive(Serialize)]
        #[serde(rename_all = "PascalCase")]
        struct MetricDefinition {
            name: &'static str,
            unit: &'static str,
        }

        let by_dimension;
        let dimensions: &[&[&str]] = match self.dimension {
            Some((name, _)) => {
                by_dimension = ["Function", name];
                &[&["Function"], &by_dimension]
            }
            None => &[&["Function"]],
        };
        let mut line = serializer.serialize_map(None)?;
        line.serialize_entry(
            "_aws",
            &Aws {
                timestamp: self.timestamp,
                cloud_watch_metrics: [Directive {
                    namespace: NAMESPACE,
                    dimensions,
                    metrics: [MetricDefinition {
                        name: self.metric.name(),
                        unit: self.unit.name(),
                    }],
                }],
            },
        )?;
        line.serialize_entry("Function", self.function)?;
        if let Some((name, value)) = self.dimension {
            line.serialize_entry(name, value)?;
        }
        line.serialize_entry(self.metric.name(), &self.value)?;
        line.end()
    }
}

fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn emf_line(
        metric: Metric,
        value: u64,
        dimension: Option<(&str, &str)>,
        function: &str,
        timestamp: u64,
    ) -> serde_json::Value {
        let line = EmfLine {
            metric,
            value,
            unit: Unit::Count,
            dimension,
            function,
            timestamp,
        };
        serde_json::from_str(&serde_json::to_string(&line).unwrap()).unwrap()
    }

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

    #[test]
    fn a_gauge_carries_its_unit() {
        let line = EmfLine {
            metric: Metric::FullPassLag,
            value: 3_600,
            unit: Unit::Seconds,
            dimension: None,
            function: "cleanup",
            timestamp: 1_700_000_000_000,
        };
        let line: serde_json::Value =
            serde_json::from_str(&serde_json::to_string(&line).unwrap()).unwrap();
        assert_eq!(
            line,
            json!({
                "_aws": {"Timestamp": 1_700_000_000_000u64, "CloudWatchMetrics": [{
                    "Namespace": "AtomicUserProvisioning",
                    "Dimensions": [["Function"]],
                    "Metrics": [{"Name": "FullPassLag", "Unit": "Seconds"}]}]},
                "Function": "cleanup", "FullPassLag": 3_600
            })
        );
    }

    #[test]
    fn a_line_without_a_dimension_counts_per_function_only() {
        let line = emf_line(
            Metric::UsersCreated,
            1,
            None,
            "create-user",
            1_700_000_000_000,
        );
        assert_eq!(
            line,
            json!({
                "_aws": {"Timestamp": 1_700_000_000_000u64, "CloudWatchMetrics": [{
                    "Namespace": "AtomicUserProvisioning",
                    "Dimensions": [["Function"]],
                    "Metrics": [{"Name": "UsersCreated", "Unit": "Count"}]}]},
                "Function": "create-user", "UsersCreated": 1
            })
        );
    }
}
