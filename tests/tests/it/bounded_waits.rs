//! Every wait ends before the Lambda deadline, and start-up failures reach Lambda: a database
//! and a Secrets Manager endpoint that accept connections and never answer, and a bad
//! configuration, through the handlers and through the real binaries.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use shared::cleanup::summary::Dependency;
use shared::cleanup::{CleanupError, CleanupSummary};
use testkit::blackhole::Blackhole;
use testkit::freezable_proxy::FreezableProxy;
use testkit::harness::{CHECK_PATH, Response, TestStack, api_event, create_event, seed};
use testkit::lambda_process::LambdaProcess;
use testkit::moto::Moto;
use testkit::runtime_api::Outcome;

use crate::cleanup::{invoke, scheduled_event};

const APP_ARN: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:app-AbCdEf";

/// A stack whose database is a server that never answers.
async fn stack_on_a_silent_database(silent: &Blackhole) -> TestStack {
    let url = silent.postgres_url();
    TestStack::start_with(|vars| {
        vars.insert("DATABASE_URL".into(), url);
    })
    .await
}

/// Calls create-user with `function_timeout` left; fails unless it answers within that.
async fn call_in_time(stack: &TestStack, event: Value, function_timeout: Duration) -> Response {
    let call = stack.call_with_timeout(event, function_timeout);
    tokio::time::timeout(function_timeout, call)
        .await
        .expect("the handler answered before the Lambda deadline")
}

#[tokio::test]
async fn create_user_answers_503_before_its_deadline_when_the_database_never_answers() {
    let silent = Blackhole::start().await.unwrap();
    let stack = stack_on_a_silent_database(&silent).await;
    // Shorter than the 5 s connect timeout: the deadline is what bounds the wait.
    let function_timeout = Duration::from_secs(4);
    let events = [
        create_event(
            seed::ACME_ADMIN_SUB,
            &json!({"email": "silent.db@acme.test"}),
        ),
        api_event(
            "POST",
            CHECK_PATH,
            Some(seed::ACME_ADMIN_SUB),
            Some(r#"{"email":"silent.db@acme.test"}"#),
        ),
    ];
    for event in events {
        let response = call_in_time(&stack, event, function_timeout).await;
        response.assert_answer(503, "DATABASE_UNAVAILABLE");
    }
    assert!(
        stack
            .auth0
            .users_with_email("silent.db@acme.test")
            .is_empty()
    );
    assert!(stack.email.emails().is_empty());
}

#[tokio::test]
async fn cleanup_fails_its_invocation_in_time_with_a_partial_summary_when_the_database_never_answers()
 {
    let silent = Blackhole::start().await.unwrap();
    let mut stack = stack_on_a_silent_database(&silent).await;
    stack.state.config.cleanup.deadline_margin = Duration::from_millis(500);

    let summary = fails_in_time_with_the_database_unavailable(&stack).await;
    assert_eq!(stack.auth0.token_requests(), 0, "{summary:?}");
}

/// Runs cleanup with 4 s left: it must answer before the Lambda deadline, failing the
/// invocation (the Errors alarm fires) because the database was unavailable to it, with the
/// partial summary in the error.
async fn fails_in_time_with_the_database_unavailable(stack: &TestStack) -> CleanupSummary {
    let function_timeout = Duration::from_secs(4);
    let answer = tokio::time::timeout(
        function_timeout,
        invoke(stack, scheduled_event(), function_timeout),
    )
    .await
    .expect("the run answered before the Lambda deadline");
    let Err(CleanupError::DependencyUnavailable(summary)) = answer else {
        panic!("expected DependencyUnavailable, got {answer:?}");
    };
    assert_eq!(
        summary.unavailable,
        vec![Dependency::Database],
        "{summary:?}"
    );
    assert!(summary.partial, "{summary:?}");
    assert!(!summary.errors.is_empty(), "{summary:?}");
    *summary
}

/// A stack whose database connections go through a proxy the test can freeze.
pub(crate) async fn stack_behind_a_proxy(
    adjust: impl FnOnce(&mut HashMap<String, String>),
) -> (TestStack, FreezableProxy) {
    let mut prepared = TestStack::prepare().await;
    let direct = url::Url::parse(&prepared.vars["DATABASE_URL"]).unwrap();
    let upstream = format!("{}:{}", direct.host_str().unwrap(), direct.port().unwrap());
    let proxy = FreezableProxy::start(upstream).await.unwrap();
    prepared
        .vars
        .insert("DATABASE_URL".into(), proxy.postgres_url(direct.as_str()));
    adjust(&mut prepared.vars);
    (prepared.start(None).await.expect("app state builds"), proxy)
}

#[tokio::test]
async fn a_database_that_goes_silent_mid_session_gets_a_503_in_time_and_auth0_is_never_called() {
    let (stack, proxy) = stack_behind_a_proxy(|_| {}).await;
    // A pooled connection, then silence: the next statement is never delivered.
    let warm = stack
        .call(create_event(
            seed::ACME_ADMIN_SUB,
            &json!({"email": "warm@acme.test"}),
        ))
        .await;
    assert_eq!(warm.status, 201, "{}", warm.body);
    proxy.freeze();

    let function_timeout = Duration::from_secs(4);
    let event = create_event(seed::ACME_ADMIN_SUB, &json!({"email": "frozen@acme.test"}));
    let response = call_in_time(&stack, event, function_timeout).await;

    response.assert_answer(503, "DATABASE_UNAVAILABLE");
    assert_eq!(stack.auth0.calls("create_user"), 1, "only the warm-up's");
    assert!(stack.auth0.users_with_email("frozen@acme.test").is_empty());
}

#[tokio::test]
async fn a_commit_the_database_never_confirms_keeps_the_auth0_user_for_cleanup_and_says_so() {
    let (stack, proxy) = stack_behind_a_proxy(|vars| {
        vars.insert("DB_STATEMENT_TIMEOUT_MS".into(), "1000".into());
    })
    .await;
    let email = "unconfirmed@acme.test";
    // The email is the last step before COMMIT: silence falls while it is being answered.
    stack
        .email
        .inject(testkit::doubles::Fault::delay("send_email", 300));
    let function_timeout = Duration::from_secs(8);
    let call = stack.call_with_timeout(
        create_event(seed::ACME_ADMIN_SUB, &json!({"email": email})),
        function_timeout,
    );
    let freeze_once_the_email_is_sent = async {
        while stack.email.emails_to(email).is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        proxy.freeze();
    };
    let (response, ()) = tokio::time::timeout(function_timeout, async {
        tokio::join!(call, freeze_once_the_email_is_sent)
    })
    .await
    .expect("the handler answered before the Lambda deadline");

    response.assert_answer(503, "DATABASE_UNAVAILABLE");
    let message = response.body["message"].as_str().unwrap();
    assert!(message.contains("did not confirm the commit"), "{message}");
    assert!(!message.contains("Nothing was created"), "{message}");
    // Not deleted: had the commit landed, its row would point at this login.
    let kept = stack.auth0.users_with_email(email);
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(
        kept[0]["app_metadata"]["created_by"],
        shared::auth0::CREATED_BY_MARKER
    );
}

#[tokio::test]
async fn cleanup_fails_in_time_with_a_partial_summary_when_the_database_goes_silent_mid_session() {
    let (mut stack, proxy) = stack_behind_a_proxy(|_| {}).await;
    stack.state.config.cleanup.deadline_margin = Duration::from_millis(500);
    // One run opens and pools a connection; then silence.
    let first = invoke(&stack, scheduled_event(), Duration::from_secs(60))
        .await
        .unwrap();
    assert!(!first.partial, "{first:?}");
    proxy.freeze();

    // The pass's connection check finds no answer: the database is unavailable to the run.
    fails_in_time_with_the_database_unavailable(&stack).await;
}

/// Settings that read the app secret from Secrets Manager, with a 1 s budget per call.
fn app_secret_from_secrets_manager(vars: &mut HashMap<String, String>) {
    for key in [
        "AUTH0_DOMAIN",
        "AUTH0_CLIENT_ID",
        "AUTH0_CLIENT_SECRET",
        "EMAIL_API_KEY",
        "EMAIL_FROM",
    ] {
        vars.remove(key);
    }
    vars.insert("APP_SECRET_ARN".into(), APP_ARN.into());
    vars.insert("SECRETS_TIMEOUT_MS".into(), "1000".into());
}

#[tokio::test]
async fn start_up_stops_naming_the_secret_when_secrets_manager_never_answers() {
    let silent = Blackhole::start().await.unwrap();
    let aws = Moto {
        url: silent.http_url(),
    }
    .sdk_config();
    // Lambda gives the whole init phase 10 s.
    let started = Instant::now();
    let result = tokio::time::timeout(
        Duration::from_secs(10),
        TestStack::try_start(app_secret_from_secrets_manager, Some(&aws)),
    )
    .await
    .expect("start-up ended within Lambda's init limit");
    let Err(err) = result else {
        panic!("start-up should fail")
    };
    assert!(
        err.to_string().starts_with(&format!(
            "secrets: Secrets Manager did not answer for {APP_ARN}"
        )),
        "{err} (after {:?})",
        started.elapsed()
    );
}

fn init_error_of(failure: &testkit::lambda_process::InitFailure) -> (String, String) {
    match &failure.reported {
        Some(Outcome::InitError {
            error_type,
            error_message,
        }) => (error_type.clone(), error_message.clone()),
        other => panic!(
            "no init error was reported ({other:?}); the process logged:\n{}",
            failure.logs.text
        ),
    }
}

#[tokio::test]
async fn a_bad_configuration_is_reported_to_lambda_as_an_init_error_naming_the_variable() {
    let stack = TestStack::start().await;
    for function in ["create-user", "cleanup"] {
        let mut vars = stack.vars.clone();
        vars.remove("FRONTEND_URL");
        let failure = LambdaProcess::failing_init(function, &vars, Duration::from_secs(10))
            .await
            .unwrap();
        assert!(!failure.exit.success(), "{function}: {:?}", failure.exit);
        let (error_type, message) = init_error_of(&failure);
        assert_eq!(error_type, "ConfigError", "{function}");
        assert_eq!(
            message, "configuration: FRONTEND_URL is required (an http(s) URL)",
            "{function}"
        );
    }
}

#[tokio::test]
async fn a_secrets_manager_that_never_answers_ends_the_binarys_init_with_the_secret_named() {
    let silent = Blackhole::start().await.unwrap();
    let stack = TestStack::start().await;
    let mut vars = stack.vars.clone();
    app_secret_from_secrets_manager(&mut vars);
    vars.extend(
        Moto {
            url: silent.http_url(),
        }
        .env_vars(),
    );
    // Lambda gives the whole init phase 10 s.
    let failure = LambdaProcess::failing_init("create-user", &vars, Duration::from_secs(10))
        .await
        .unwrap();
    assert!(!failure.exit.success());
    let (error_type, message) = init_error_of(&failure);
    assert_eq!(error_type, "SecretsError");
    assert!(
        message.starts_with(&format!(
            "secrets: Secrets Manager did not answer for {APP_ARN}"
        )),
        "{message}"
    );
}
