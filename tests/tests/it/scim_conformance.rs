//! Two independent SCIM conformance suites from PyPI, scim2-tester and scim-sanity (pinned in
//! requirements-dev.txt, installed into `.venv` by scripts/venv.sh), against the real `scim`
//! binary: the local stack as `make dev` runs it (the gateway serving template.yaml's `ANY
//! /scim/v2/{proxy+}`, the functions through the Runtime API emulator, Postgres, the Auth0 and
//! email doubles), a SCIM token made through the admin API with the seeded admin's JWT from the
//! Auth0 double, and the tools over HTTP as an identity provider would reach the service. The
//! tools' side, with the few checks allowed to fail and why, is `tests/scim/conformance.py`
//! (also runnable against `make dev`: docs/scim-local.md). A Rust test rather than a step of
//! scripts/test.sh, as the Auth0 SDK's and the browser's checks are: the stack is built and
//! torn down by the test, and `cargo test` reports it with the rest.

use std::time::{Duration, Instant};

use serde_json::Value;
use testkit::local::stack::LocalStack;
use tokio::process::Command;

use crate::auth0_sdk::venv_python;
use crate::openapi::repo_root;

/// Both suites take about ten seconds on two cores; the bound turns a hang into a failure.
const RUN_LIMIT: Duration = Duration::from_secs(300);

/// The addresses the tools make up for their users (`scim2-tester-…@example.com`, given by
/// conformance.py, and scim-sanity's `scim-sanity-test-…@example.com`).
fn made_by_a_tool(address: &str) -> bool {
    address.contains("scim2-tester-") || address.contains("scim-sanity-test-")
}

#[tokio::test]
async fn scim2_tester_and_scim_sanity_pass_against_the_scim_function() {
    let stack = LocalStack::start().await;
    let token = stack.scim_token("admin@acme.test", "Conformance").await;
    let users_before = stack.auth0.users().len();

    let started = Instant::now();
    let run = Command::new(venv_python())
        .arg(repo_root().join("tests/scim/conformance.py"))
        .arg(stack.scim_base())
        .env("SCIM_TOKEN", &token)
        // The gateway is on loopback: never through a proxy the machine may set.
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(RUN_LIMIT, run)
        .await
        .expect("the conformance suites finish")
        .expect("the venv's python runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    // The table of checks: shown by `make scim-conformance` (--nocapture) and on failure.
    println!(
        "{stdout}(both suites in {:.1} s)",
        started.elapsed().as_secs_f64()
    );
    assert!(
        output.status.success(),
        "a SCIM conformance check failed (the FAIL and FAILED lines above):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .expect("the summary's JSON line");
    for tool in ["scim2-tester", "scim-sanity"] {
        let counts = &summary["counts"][tool];
        assert_eq!(counts["failed"], 0, "{summary}");
        assert!(counts["passed"].as_u64().unwrap_or(0) > 0, "{summary}");
    }

    // The users the tools made went through the real flow: a login in Auth0 and, as they sent
    // no password, an invitation each.
    let invited: Vec<String> = stack
        .email
        .emails()
        .iter()
        .flat_map(|email| email.to.clone())
        .filter(|to| made_by_a_tool(to))
        .collect();
    assert!(
        invited.iter().any(|to| to.contains("scim2-tester-"))
            && invited.iter().any(|to| to.contains("scim-sanity-test-")),
        "{invited:?}"
    );
    // And the tools deleted every one of them, in both systems.
    let rows = stack
        .sql()
        .await
        .query("SELECT email FROM users", &[])
        .await
        .unwrap();
    let left: Vec<String> = rows
        .iter()
        .map(|row| row.get::<_, String>(0))
        .filter(|email| made_by_a_tool(email))
        .collect();
    assert!(left.is_empty(), "rows left: {left:?}");
    assert_eq!(stack.auth0.users().len(), users_before);
}
