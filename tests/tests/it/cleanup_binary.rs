//! The real binaries end to end: a create-user process killed between Auth0 and COMMIT, and
//! the cleanup binary answering every `events/cleanup-*.json` fixture through the Runtime API.

use std::time::Duration;

use serde_json::{Value, json};
use shared::auth0::CREATED_BY_MARKER;
use shared::cleanup::summary::{Counts, Dependency};
use shared::cleanup::{CleanupRequest, CleanupSummary, Scope, Trigger};
use testkit::doubles::Fault;
use testkit::harness::{SET_PASSWORD_PATH, TestStack, create_event, public_event, seed};
use testkit::lambda_process::LambdaProcess;
use testkit::runtime_api::Outcome;

use crate::cleanup::{HOUR, cleanup, pending_row, scheduled_event, tagged_auth0_user};

async fn start_binary(stack: &TestStack, name: &str) -> LambdaProcess {
    let mut vars = stack.vars.clone();
    // Room for the kill to land while the email call hangs.
    vars.insert("HTTP_TIMEOUT_MS".into(), "10000".into());
    vars.insert("RUST_LOG".into(), "info".into());
    LambdaProcess::start(name, &vars)
        .await
        .expect("`cargo build --bins` ran before the tests")
}

/// Runs the real create-user binary for `email`, lets it create the Auth0 user and send the
/// email (which then hangs), and kills the process before its COMMIT. Returns the Auth0 id.
async fn crash_create_user_before_commit(stack: &TestStack, email: &str) -> String {
    stack.email.inject(Fault::delay("send_email", 20_000));
    let function = start_binary(stack, "create-user").await;
    let invocation = function.invoke(create_event(seed::ACME_ADMIN_SUB, &json!({"email": email})));
    let email_in_flight = async {
        while stack.email.emails_to(email).is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::select! {
        outcome = invocation => panic!("create-user was meant to hang in the email call: {outcome:?}"),
        () = email_in_flight => {}
    }
    function.kill().await;

    // Postgres sees the connection drop and rolls the transaction back.
    let sql = stack.sql().await;
    for _ in 0..500 {
        let open: i64 = sql
            .query_one(
                "SELECT count(*) FROM pg_stat_activity
                  WHERE datname = $1 AND state LIKE 'idle in transaction%'",
                &[&stack.db.name],
            )
            .await
            .unwrap()
            .get(0);
        if open == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        stack.rows_for(email).await.users,
        0,
        "the row was rolled back"
    );
    let left = stack.auth0.users_with_email(email);
    assert_eq!(left.len(), 1, "the Auth0 user outlived the process");
    assert_eq!(left[0]["app_metadata"]["created_by"], CREATED_BY_MARKER);
    left[0]["user_id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_create_user_killed_before_commit_is_retried_and_the_retry_adopts_its_auth0_user() {
    let mut stack = TestStack::start().await;
    let email = "killed.once@acme.test";
    let orphan = crash_create_user_before_commit(&stack, email).await;

    let retried = stack
        .call(create_event(seed::ACME_ADMIN_SUB, &json!({"email": email})))
        .await;

    assert_eq!(retried.status, 201, "{:?}", retried.body);
    assert_eq!(retried.body["user"]["auth0UserId"], orphan.as_str());
    let auth0 = stack.auth0.users_with_email(email);
    assert_eq!(auth0.len(), 1);
    assert_eq!(
        auth0[0]["app_metadata"]["db_user_id"],
        retried.body["user"]["id"]
    );
    // The retry made the same message (its token is derived from the adopted Auth0 user), so
    // the email API delivered it once: the link the killed attempt sent now works.
    let sent = stack.email.emails_to(email);
    assert_eq!(sent.len(), 1, "no second email");
    assert_eq!(
        stack.email.calls(),
        2,
        "the retry did post it, with the same key"
    );
    let (token, address) = sent[0].setup_token_and_email().unwrap();
    let set = stack
        .call_public(public_event(
            SET_PASSWORD_PATH,
            &json!({"token": token, "email": address, "password": "Heal3d-Passw0rd"}),
        ))
        .await;
    assert_eq!(set.status, 200, "{}", set.body);

    // Even with no grace period at all, cleanup leaves the adopted user alone: a row holds it.
    stack.state.config.cleanup.grace_period = Duration::ZERO;
    let summary = cleanup(&stack, scheduled_event()).await;
    assert_eq!(summary.found, Counts::default(), "{summary:?}");
    assert_eq!(stack.auth0.users_with_email(email).len(), 1);
}

#[tokio::test]
async fn a_create_user_killed_before_commit_leaves_an_auth0_user_that_cleanup_removes_after_the_grace_period()
 {
    let mut stack = TestStack::start().await;
    let email = "killed.once@acme.test";
    let orphan = crash_create_user_before_commit(&stack, email).await;

    // Within the grace period it could still be a create-user at work: left alone.
    let summary = cleanup(&stack, scheduled_event()).await;
    assert_eq!(summary.found, Counts::default(), "{summary:?}");
    assert_eq!(stack.auth0.users_with_email(email).len(), 1);

    // Once the grace period has passed (shortened here rather than waited for), it goes.
    stack.state.config.cleanup.grace_period = Duration::from_millis(1);
    let summary = cleanup(&stack, scheduled_event()).await;
    assert_eq!(
        summary.removed,
        Counts {
            auth0_orphans: 1,
            ..Counts::default()
        },
        "{summary:?}"
    );
    assert!(
        stack.auth0.users_with_email(email).is_empty(),
        "{orphan} is still there"
    );

    // And the address is free for a fresh, ordinary creation.
    let created = stack
        .call(create_event(seed::ACME_ADMIN_SUB, &json!({"email": email})))
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_ne!(created.body["user"]["auth0UserId"], orphan.as_str());
}

/// What each fixture in `events/` is documented to ask for.
fn documented(file: &str) -> CleanupRequest {
    let manual = |scope, dry_run| CleanupRequest {
        trigger: Trigger::Manual,
        scope,
        dry_run,
    };
    match file {
        "cleanup-scheduled.json" => CleanupRequest {
            trigger: Trigger::Schedule,
            scope: Scope::Everything,
            dry_run: false,
        },
        "cleanup-dry-run.json" => manual(Scope::Everything, true),
        "cleanup-email.json" => manual(
            Scope::Email(shared::domain::Email::parse("half.made@acme.test").unwrap()),
            false,
        ),
        other => panic!("events/{other} is not documented in this test (nor in the README)"),
    }
}

fn fixture(file: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../events")
        .join(file);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[tokio::test]
async fn every_cleanup_event_fixture_gives_its_documented_result_through_the_real_binary() {
    let mut files: Vec<String> =
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../events"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with("cleanup-") && name.ends_with(".json"))
            .collect();
    files.sort();
    assert!(files.len() >= 3, "{files:?}");
    for file in &files {
        assert_eq!(
            CleanupRequest::parse(&fixture(file)).unwrap(),
            documented(file),
            "{file}"
        );
    }

    let stack = TestStack::start().await;
    let row = pending_row(&stack, "half.made@acme.test", HOUR).await;
    tagged_auth0_user(&stack, "half.made@acme.test", row, HOUR);
    tagged_auth0_user(&stack, "crashed@acme.test", uuid::Uuid::new_v4(), HOUR);
    let function = start_binary(&stack, "cleanup").await;
    let invoke = |event| function.invoke(event);
    let summary_of = |outcome: Outcome| match outcome {
        Outcome::Response(body) => serde_json::from_value::<CleanupSummary>(body).unwrap(),
        other => panic!("{other:?}"),
    };

    // In this order: report, clean one address, clean the rest.
    let dry = summary_of(
        invoke(fixture("cleanup-dry-run.json"))
            .await
            .unwrap()
            .outcome,
    );
    assert!(dry.dry_run && dry.removed == Counts::default(), "{dry:?}");
    assert_eq!(
        (dry.found.db_orphans, dry.found.auth0_orphans),
        (1, 1),
        "{dry:?}"
    );
    let one = summary_of(invoke(fixture("cleanup-email.json")).await.unwrap().outcome);
    assert_eq!(
        (one.trigger.as_str(), one.scope.as_str()),
        ("manual", "h***@acme.test")
    );
    assert_eq!(
        (one.removed.db_orphans, one.removed.auth0_orphans),
        (1, 0),
        "{one:?}"
    );
    let scheduled = invoke(fixture("cleanup-scheduled.json")).await.unwrap();
    let all = summary_of(scheduled.outcome);
    assert_eq!(all.trigger, "schedule");
    assert_eq!(
        (all.removed.db_orphans, all.removed.auth0_orphans),
        (0, 1),
        "{all:?}"
    );

    // A bad event is the invocation's error, and the function keeps serving.
    let refused = invoke(json!({"dry_run": true})).await.unwrap();
    match refused.outcome {
        Outcome::Error {
            error_type,
            error_message,
        } => {
            assert_eq!(error_type, "InvalidRequest");
            assert!(error_message.contains("dry_run"), "{error_message}");
        }
        other => panic!("{other:?}"),
    }
    let again = summary_of(invoke(scheduled_event()).await.unwrap().outcome);
    assert_eq!(again.found, Counts::default());

    let logs = function.kill().await;
    let lines = logs.json_lines();
    // One summary line per run, with the counts as fields and the request id.
    let summaries: Vec<&Value> = lines
        .iter()
        .filter(|l| l["message"] == "cleanup finished")
        .collect();
    assert_eq!(summaries.len(), 4, "{}", logs.text);
    let line = summaries
        .iter()
        .find(|l| l["span"]["request_id"] == scheduled.request_id.as_str())
        .expect("the scheduled run's summary line carries its request id");
    assert_eq!(line["removed.auth0_orphans"], 1);
    assert_eq!(line["partial"], false);
    let logged: CleanupSummary = serde_json::from_str(line["summary"].as_str().unwrap()).unwrap();
    assert_eq!(logged, all);
    assert!(
        lines
            .iter()
            .any(|l| l["message"] == "cleanup event refused" && l["level"] == "WARN"),
        "{}",
        logs.text
    );
    // CloudWatch metrics (EMF) of the real runs only: the dry run's orphans are not counted.
    // Per run and kind, counted under Function and under Function + Kind.
    let metric = |name: &str, kind: &str| -> Vec<u64> {
        logs.metric(name)
            .iter()
            .filter(|l| l["Function"] == "cleanup" && l["Kind"] == kind)
            .map(|l| {
                assert_eq!(
                    l["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
                    json!([["Function"], ["Function", "Kind"]])
                );
                l[name].as_u64().unwrap()
            })
            .collect()
    };
    // The runs after the dry run: one address, the schedule, the schedule again.
    assert_eq!(
        metric("OrphansFound", "database"),
        [1, 0, 0],
        "{}",
        logs.text
    );
    assert_eq!(metric("OrphansFound", "auth0"), [0, 1, 0], "{}", logs.text);
    assert_eq!(
        metric("OrphansRemoved", "database"),
        [1, 0, 0],
        "{}",
        logs.text
    );
    assert_eq!(
        metric("OrphansRemoved", "auth0"),
        [0, 1, 0],
        "{}",
        logs.text
    );
    for secret in [
        "half.made@acme.test",
        "crashed@acme.test",
        "test-client-secret",
        "test-email-key",
    ] {
        assert!(!logs.text.contains(secret), "the logs contain {secret:?}");
    }
}

/// Runs the cleanup binary with `adjust`ed settings once and returns (errorType, message, logs).
async fn failed_run(
    stack: &TestStack,
    adjust: impl FnOnce(&mut std::collections::HashMap<String, String>),
) -> (String, String, String) {
    let mut vars = stack.vars.clone();
    vars.insert("RUST_LOG".into(), "info".into());
    adjust(&mut vars);
    let function = LambdaProcess::start("cleanup", &vars)
        .await
        .expect("`cargo build --bins` ran before the tests");
    let outcome = function.invoke(scheduled_event()).await.unwrap().outcome;
    let logs = function.kill().await;
    match outcome {
        Outcome::Error {
            error_type,
            error_message,
        } => (error_type, error_message, logs.text),
        other => panic!("the run was meant to fail: {other:?}\n{}", logs.text),
    }
}

/// The summary a failed run carries after its `; `.
fn summary_in(message: &str) -> CleanupSummary {
    let (_, json) = message
        .split_once("; ")
        .expect("the message carries the summary");
    serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {message}"))
}

#[tokio::test]
async fn a_cleanup_that_cannot_log_in_to_the_database_fails_the_invocation() {
    let stack = TestStack::start().await;
    let row = pending_row(&stack, "half.made@acme.test", HOUR).await;
    tagged_auth0_user(&stack, "half.made@acme.test", row, HOUR);

    let (error_type, message, logs) = failed_run(&stack, |vars| {
        let mut url = url::Url::parse(&vars["DATABASE_URL"]).unwrap();
        url.set_password(Some("not-the-password")).unwrap();
        vars.insert("DATABASE_URL".into(), url.into());
    })
    .await;

    assert_eq!(error_type, "DependencyUnavailable", "{message}");
    assert!(
        message.contains("the database was unavailable"),
        "{message}"
    );
    let summary = summary_in(&message);
    assert_eq!(summary.unavailable, [Dependency::Database], "{summary:?}");
    assert_eq!(summary.removed, Counts::default());
    assert!(!summary.errors.is_empty(), "{summary:?}");
    // Nothing happened in either system.
    assert!(crate::cleanup::user_exists(&stack, row).await);
    assert_eq!(stack.auth0.users_with_email("half.made@acme.test").len(), 1);
    for secret in ["not-the-password", "half.made@acme.test"] {
        assert!(
            !message.contains(secret) && !logs.contains(secret),
            "{secret}"
        );
    }
}

#[tokio::test]
async fn a_cleanup_whose_auth0_credentials_are_refused_fails_the_invocation() {
    let stack = TestStack::start().await;
    let row = pending_row(&stack, "half.made@acme.test", HOUR).await;
    let kept = tagged_auth0_user(&stack, "half.made@acme.test", row, HOUR);
    let orphan = tagged_auth0_user(&stack, "crashed@acme.test", uuid::Uuid::new_v4(), HOUR);

    let (error_type, message, logs) = failed_run(&stack, |vars| {
        vars.insert("AUTH0_CLIENT_SECRET".into(), "not-the-secret".into());
    })
    .await;

    assert_eq!(error_type, "DependencyUnavailable", "{message}");
    assert!(message.contains("Auth0 was unavailable"), "{message}");
    let summary = summary_in(&message);
    assert_eq!(summary.unavailable, [Dependency::Auth0], "{summary:?}");
    assert!(summary.partial, "{summary:?}");
    assert_eq!(summary.removed, Counts::default(), "{summary:?}");
    assert!(crate::cleanup::user_exists(&stack, row).await);
    for id in [&kept, &orphan] {
        assert!(crate::cleanup::auth0_user_exists(&stack, id));
    }
    assert!(!message.contains("not-the-secret") && !logs.contains("not-the-secret"));
}

/// The link of the newest password-setup email to `email` sets a password (200).
async fn link_works(stack: &TestStack, email: &str) -> bool {
    let sent = stack.email.emails_to(email);
    let (token, address) = sent.last().unwrap().setup_token_and_email().unwrap();
    let body = json!({"token": token, "email": address, "password": "Heal3d-Passw0rd"});
    stack
        .call_public(public_event(SET_PASSWORD_PATH, &body))
        .await
        .status
        == 200
}

#[tokio::test]
async fn a_retry_whose_adoption_fails_keeps_the_orphan_and_the_next_retry_heals_the_first_link() {
    let stack = TestStack::start().await;
    let email = "adoption.fails@acme.test";
    let orphan = crash_create_user_before_commit(&stack, email).await;

    stack.auth0.inject(Fault::status("update_user", 503));
    let failed = stack
        .call(create_event(seed::ACME_ADMIN_SUB, &json!({"email": email})))
        .await;
    failed.assert_answer(502, "AUTH0_FAILED");
    assert_eq!(stack.rows_for(email).await.users, 0);
    // The orphan was there before this request and is still there, untouched.
    let kept = stack.auth0.users_with_email(email);
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0]["user_id"], orphan.as_str());

    let healed = stack
        .call(create_event(seed::ACME_ADMIN_SUB, &json!({"email": email})))
        .await;
    assert_eq!(healed.status, 201, "{}", healed.body);
    assert_eq!(healed.body["user"]["auth0UserId"], orphan.as_str());
    assert_eq!(stack.email.emails_to(email).len(), 1, "no second email");
    assert!(link_works(&stack, email).await, "the first link works");
}

#[tokio::test]
async fn an_email_accepted_after_the_timeout_keeps_the_auth0_user_and_the_retry_sends_nothing_new()
{
    let stack = TestStack::start().await;
    let email = "late.email@acme.test";
    // The email API takes the message, then answers after the HTTP timeout (2 s here).
    stack.email.inject(Fault::delay("send_email", 2_500));
    let failed = stack
        .call(create_event(seed::ACME_ADMIN_SUB, &json!({"email": email})))
        .await;
    failed.assert_answer(503, "EMAIL_UNAVAILABLE");
    assert_eq!(stack.rows_for(email).await.users, 0, "nothing committed");
    assert_eq!(
        stack.email.emails_to(email).len(),
        1,
        "the message went out"
    );
    let kept = stack.auth0.users_with_email(email);
    assert_eq!(kept.len(), 1, "the Auth0 user is kept for the retry");

    let retried = stack
        .call(create_event(seed::ACME_ADMIN_SUB, &json!({"email": email})))
        .await;
    assert_eq!(retried.status, 201, "{}", retried.body);
    assert_eq!(retried.body["user"]["auth0UserId"], kept[0]["user_id"]);
    assert_eq!(stack.email.emails_to(email).len(), 1, "no second email");
    assert!(
        link_works(&stack, email).await,
        "the link already sent works"
    );
}
