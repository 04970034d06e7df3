//! The fault campaign of `make chaos` with a small budget: real create-user processes killed
//! at random, Auth0/email/database faults, cleanup beside them, then every invariant checked.

use std::time::Duration;

use testkit::chaos::{self, Settings};
use testkit::harness::epoch_millis;

#[tokio::test]
async fn a_short_fault_campaign_keeps_every_invariant_of_both_systems() {
    let seed = epoch_millis() % 1_000_000;
    let settings = Settings {
        instances: 3,
        duration: Duration::from_secs(15),
        kill_percent: 20,
        ..Settings::new(seed)
    };
    let report = chaos::run(settings).await.expect("the campaign runs");
    let text = report.text();
    // The campaign did what it is for: requests answered, kills, faults of each kind.
    assert!(
        report.outcomes.get("201").copied().unwrap_or(0) > 0,
        "{text}"
    );
    assert!(report.kills > 0, "{text}");
    for kind in ["auth0 ", "email ", "database: "] {
        assert!(
            report.faults.keys().any(|fault| fault.starts_with(kind)),
            "no {kind}fault injected:\n{text}"
        );
    }
    assert!(
        report.failed_invariants().is_empty(),
        "invariants failed (seed {seed}):\n{text}"
    );
}
