//! The fault campaign of `make chaos` with a small budget: real create-user processes killed
//! at random, serving creates and lifecycle operations (update, deactivate, reactivate,
//! delete) on the users created before, a scim process serving an identity provider's creates,
//! PATCHes, PUTs and DELETEs on the same users, Auth0/email/database faults, cleanup beside
//! them, then every invariant checked.

use std::time::Duration;

use testkit::chaos::{self, Api, Op, Settings};

/// Fixed, so that a red run makes the same choices (requests, kills, faults) when run again;
/// `CHAOS_SEED=<n> make test` tries another. `make chaos` draws a new one each run.
const SEED: u64 = 271_828;

#[tokio::test]
async fn a_short_fault_campaign_keeps_every_invariant_of_both_systems() {
    let seed = match std::env::var("CHAOS_SEED") {
        Ok(raw) => raw.trim().parse().expect("CHAOS_SEED is a whole number"),
        Err(_) => SEED,
    };
    // Printed with the test's output (a failing test's, or any with --nocapture).
    println!("fault campaign seed {seed} (CHAOS_SEED=<n> replays another)");
    let settings = Settings {
        instances: 3,
        scim_instances: 1,
        duration: Duration::from_secs(15),
        kill_percent: 20,
        ..Settings::new(seed)
    };
    let report = chaos::run(settings).await.expect("the campaign runs");
    let text = report.text();
    // The campaign did what it is for: requests answered, kills, faults of each kind.
    assert!(report.answered(Op::Create, 201) > 0, "{text}");
    assert!(report.kills > 0, "{text}");
    for kind in ["auth0 ", "email ", "database: "] {
        assert!(
            report.faults.keys().any(|fault| fault.starts_with(kind)),
            "no {kind}fault injected:\n{text}"
        );
    }
    // Every kind of admin lifecycle operation ran, and some of each got through.
    for op in Op::ALL
        .into_iter()
        .filter(|op| op.on_a_user() && op.api() == Api::Admin)
    {
        assert!(
            report.answered(op, 200) > 0,
            "no {} answered 200:\n{text}",
            op.name()
        );
    }
    // The identity provider created users and changed some (too few requests in 15 s to ask
    // it of every kind).
    let scim_succeeded = |on_a_user: bool| {
        Op::ALL
            .into_iter()
            .filter(|op| op.api() == Api::Scim && op.on_a_user() == on_a_user)
            .map(|op| report.answered(op, op.success()))
            .sum::<u64>()
    };
    assert!(
        scim_succeeded(false) > 0 && scim_succeeded(true) > 0,
        "{text}"
    );
    assert!(report.passwords_set > 0 && report.deactivated > 0, "{text}");
    assert!(
        report.failed_invariants().is_empty(),
        "invariants failed (seed {seed}):\n{text}"
    );
}
