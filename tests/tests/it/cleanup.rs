//! The cleanup reconciler, called as the Lambda runtime would: what it finds, removes, leaves
//! alone and reports. Old leftovers are made by backdating `created_at` (Postgres) and by
//! seeding Auth0 users with an old `created_at` (the double).

use std::time::Duration;

use chrono::Utc;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};
use shared::auth0::CREATED_BY_MARKER;
use shared::cleanup::summary::{Counts, Kind, SkipReason};
use shared::cleanup::{CleanupError, CleanupSummary};
use testkit::harness::{TestStack, epoch_millis, seed};
use uuid::Uuid;

pub(crate) const HOUR: Duration = Duration::from_secs(3_600);
/// Younger than the default 15-minute grace period.
pub(crate) const JUST_NOW: Duration = Duration::from_secs(5);

pub(crate) fn scheduled_event() -> Value {
    json!({
        "version": "0",
        "id": Uuid::new_v4().to_string(),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": Utc::now().to_rfc3339(),
        "region": "eu-west-1",
        "resources": ["arn:aws:events:eu-west-1:123456789012:rule/cleanup"],
        "detail": {}
    })
}

/// Calls the cleanup handler with `function_timeout` left before the Lambda deadline.
pub(crate) async fn invoke(
    stack: &TestStack,
    event: Value,
    function_timeout: Duration,
) -> Result<CleanupSummary, CleanupError> {
    let mut context = Context::default();
    context.request_id = Uuid::new_v4().to_string();
    context.deadline = epoch_millis() + function_timeout.as_millis() as u64;
    shared::cleanup::handle(&stack.state, LambdaEvent::new(event, context)).await
}

pub(crate) async fn cleanup(stack: &TestStack, event: Value) -> CleanupSummary {
    invoke(stack, event, Duration::from_secs(60))
        .await
        .expect("a valid cleanup event")
}

/// A `users` row of Acme still `pending_…`, as the old code (or a crash) left it.
/// Asserts a complete run without errors that removed (database orphans, their Auth0 users,
/// Auth0 orphans).
pub(crate) fn removed_without_errors(summary: &CleanupSummary, removed: (u64, u64, u64)) {
    assert!(summary.errors.is_empty() && !summary.partial, "{summary:?}");
    let counts = &summary.removed;
    assert_eq!(
        (
            counts.db_orphans,
            counts.auth0_users_of_db_orphans,
            counts.auth0_orphans
        ),
        removed,
        "{summary:?}"
    );
}

pub(crate) async fn pending_row(stack: &TestStack, email: &str, age: Duration) -> Uuid {
    let id = Uuid::new_v4();
    stack
        .sql()
        .await
        .execute(
            "INSERT INTO users (id, tenant_id, business_id, email, role, auth0_sub, created_at)
             SELECT $1, $2::uuid, u.business_id, $3, 'USER', $6,
                    now() - make_interval(secs => $4)
               FROM users u WHERE u.id = $5::uuid",
            &[
                &id,
                &Uuid::parse_str(seed::ACME).unwrap(),
                &email,
                &age.as_secs_f64(),
                &Uuid::parse_str(seed::ACME_ADMIN_ID).unwrap(),
                &format!("pending_{id}"),
            ],
        )
        .await
        .unwrap();
    id
}

/// A finished user: its row holds the Auth0 id.
pub(crate) async fn user_row(stack: &TestStack, email: &str, auth0_id: &str) -> Uuid {
    let id = Uuid::new_v4();
    stack
        .sql()
        .await
        .execute(
            "INSERT INTO users (id, tenant_id, email, role, auth0_sub, created_at)
             VALUES ($1, $2, $3, 'USER', $4, now() - interval '1 day')",
            &[
                &id,
                &Uuid::parse_str(seed::ACME).unwrap(),
                &email,
                &auth0_id,
            ],
        )
        .await
        .unwrap();
    id
}

pub(crate) fn our_tags(db_user_id: Uuid) -> Value {
    json!({
        "created_by": CREATED_BY_MARKER,
        "tenant_id": seed::ACME,
        "role": "USER",
        "db_user_id": db_user_id.to_string(),
    })
}

/// An Auth0 user carrying our tags, created `age` ago.
pub(crate) fn tagged_auth0_user(
    stack: &TestStack,
    email: &str,
    db_user_id: Uuid,
    age: Duration,
) -> String {
    let created_at = Utc::now() - chrono::Duration::from_std(age).unwrap();
    stack
        .auth0
        .insert_user_at(email, our_tags(db_user_id), created_at)
}

pub(crate) fn auth0_user_exists(stack: &TestStack, auth0_id: &str) -> bool {
    stack.auth0.users().iter().any(|u| u["user_id"] == auth0_id)
}

pub(crate) async fn user_exists(stack: &TestStack, id: Uuid) -> bool {
    stack
        .sql()
        .await
        .query_one("SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)", &[&id])
        .await
        .unwrap()
        .get(0)
}

/// A reset token of `user_id`: `expired_ago` (negative: still valid), used `used_ago` if given.
async fn reset_token(
    stack: &TestStack,
    user_id: Uuid,
    expired_ago: chrono::Duration,
    used_ago: Option<chrono::Duration>,
) -> Uuid {
    let expires_at = Utc::now() - expired_ago;
    let used_at = used_ago.map(|ago| Utc::now() - ago);
    let created_at = expires_at - chrono::Duration::hours(24);
    stack
        .sql()
        .await
        .query_one(
            "INSERT INTO password_reset_tokens (user_id, token_hash, expires_at, used_at, created_at)
             VALUES ($1, sha256(gen_random_uuid()::text::bytea), $2, $3, $4) RETURNING id",
            &[&user_id, &expires_at, &used_at, &created_at],
        )
        .await
        .unwrap()
        .get(0)
}

async fn count(stack: &TestStack, sql: &str) -> i64 {
    stack.sql().await.query_one(sql, &[]).await.unwrap().get(0)
}

#[tokio::test]
async fn a_scheduled_run_removes_a_pending_row_with_its_tagged_auth0_user_and_unlinks_its_employee()
{
    let stack = TestStack::start().await;
    let orphan = pending_row(&stack, "half.made@acme.test", HOUR).await;
    let auth0_id = tagged_auth0_user(&stack, "half.made@acme.test", orphan, HOUR);
    let sql = stack.sql().await;
    sql.execute(
        "UPDATE employees SET user_id = $1 WHERE id = $2",
        &[&orphan, &Uuid::parse_str(seed::EMPLOYEE_FREE).unwrap()],
    )
    .await
    .unwrap();
    sql.execute(
        "INSERT INTO user_page_access (user_id, page_id, can_read) VALUES ($1, $2, true)",
        &[&orphan, &Uuid::parse_str(seed::PAGE_DASHBOARD).unwrap()],
    )
    .await
    .unwrap();
    reset_token(&stack, orphan, chrono::Duration::hours(-20), None).await;
    // Old code committed pending rows before calling Auth0: often there is no Auth0 user at all.
    let bare = pending_row(&stack, "never.reached.auth0@acme.test", HOUR).await;

    let summary = cleanup(&stack, scheduled_event()).await;

    let expected = Counts {
        db_orphans: 2,
        auth0_users_of_db_orphans: 1,
        employees_unlinked: 1,
        ..Counts::default()
    };
    assert_eq!(summary.found, expected, "{summary:?}");
    assert_eq!(summary.removed, expected, "{summary:?}");
    assert_eq!(
        (summary.trigger.as_str(), summary.scope.as_str()),
        ("schedule", "all")
    );
    assert!(!summary.partial && !summary.dry_run);
    assert!(summary.skipped.is_empty() && summary.errors.is_empty());
    assert!(!user_exists(&stack, orphan).await && !user_exists(&stack, bare).await);
    assert!(!auth0_user_exists(&stack, &auth0_id));
    stack.assert_nothing_kept("half.made@acme.test").await;
    // The employee stays, unlinked.
    let employee = sql
        .query_one(
            "SELECT user_id, first_name FROM employees WHERE id = $1",
            &[&Uuid::parse_str(seed::EMPLOYEE_FREE).unwrap()],
        )
        .await
        .unwrap();
    assert_eq!(employee.get::<_, Option<Uuid>>(0), None);
    assert_eq!(employee.get::<_, String>(1), "Grace");
    // The seed's real users are untouched.
    assert_eq!(count(&stack, "SELECT count(*) FROM users").await, 5);
}

#[tokio::test]
async fn a_scheduled_run_removes_tagged_auth0_users_that_no_row_refers_to() {
    let stack = TestStack::start().await;
    // A create-user killed after Auth0 answered and before COMMIT leaves just this.
    let orphan = tagged_auth0_user(&stack, "crashed@acme.test", Uuid::new_v4(), HOUR);
    // A finished user: the row holds its Auth0 id.
    let kept = tagged_auth0_user(&stack, "finished@acme.test", Uuid::new_v4(), HOUR);
    user_row(&stack, "finished@acme.test", &kept).await;

    let summary = cleanup(&stack, scheduled_event()).await;

    let expected = Counts {
        auth0_orphans: 1,
        ..Counts::default()
    };
    assert_eq!(
        (summary.found, summary.removed),
        (expected, expected),
        "{summary:?}"
    );
    assert!(!auth0_user_exists(&stack, &orphan));
    assert!(auth0_user_exists(&stack, &kept));
    assert_eq!(stack.auth0.calls("delete_user"), 1);
}

#[tokio::test]
async fn expired_and_used_reset_tokens_older_than_the_retention_period_are_purged() {
    let stack = TestStack::start().await;
    let user = Uuid::parse_str(seed::ACME_ADMIN_ID).unwrap();
    let days = chrono::Duration::days;
    let long_expired = reset_token(&stack, user, days(8), None).await;
    let long_used = reset_token(&stack, user, days(-1), Some(days(8))).await;
    let recently_expired = reset_token(&stack, user, days(1), None).await;
    let recently_used = reset_token(&stack, user, days(-1), Some(days(1))).await;
    let valid = reset_token(&stack, user, days(-1), None).await;

    let summary = cleanup(&stack, scheduled_event()).await;

    assert_eq!(summary.found.reset_tokens, 2, "{summary:?}");
    assert_eq!(summary.removed.reset_tokens, 2);
    let left: Vec<Uuid> = stack
        .sql()
        .await
        .query("SELECT id FROM password_reset_tokens", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    for id in [recently_expired, recently_used, valid] {
        assert!(left.contains(&id));
    }
    for id in [long_expired, long_used] {
        assert!(!left.contains(&id));
    }
}

#[tokio::test]
async fn leftovers_younger_than_the_grace_period_are_left_alone() {
    let stack = TestStack::start().await;
    let row = pending_row(&stack, "just.started@acme.test", JUST_NOW).await;
    let with_row = tagged_auth0_user(&stack, "just.started@acme.test", row, JUST_NOW);
    let without_row = tagged_auth0_user(&stack, "just.created@acme.test", Uuid::new_v4(), JUST_NOW);

    let summary = cleanup(&stack, scheduled_event()).await;

    assert_eq!(summary.found, Counts::default(), "{summary:?}");
    assert_eq!(summary.removed, Counts::default());
    assert!(user_exists(&stack, row).await);
    assert!(auth0_user_exists(&stack, &with_row) && auth0_user_exists(&stack, &without_row));
    assert_eq!(stack.auth0.calls("delete_user"), 0);
}

#[tokio::test]
async fn auth0_users_we_did_not_create_are_never_deleted() {
    let stack = TestStack::start().await;
    // A pending row whose address has an Auth0 login made elsewhere: a person decides.
    let row = pending_row(&stack, "signed.up.alone@acme.test", HOUR).await;
    let foreign = stack.auth0.insert_user_at(
        "signed.up.alone@acme.test",
        Value::Null,
        Utc::now() - chrono::Duration::days(30),
    );
    // Old Auth0 users without any row: untagged, or tagged by another system.
    let untagged = stack.auth0.insert_user_at(
        "someone@acme.test",
        json!({"role": "USER"}),
        Utc::now() - chrono::Duration::days(30),
    );
    let other_marker = stack.auth0.insert_user_at(
        "other.app@acme.test",
        json!({"created_by": "another-provisioner", "db_user_id": Uuid::new_v4().to_string()}),
        Utc::now() - chrono::Duration::days(30),
    );

    let summary = cleanup(&stack, scheduled_event()).await;

    assert_eq!(summary.found.db_orphans, 1, "{summary:?}");
    assert_eq!(summary.removed, Counts::default());
    assert_eq!(summary.skipped.len(), 1);
    let skipped = &summary.skipped[0];
    assert_eq!(
        (skipped.kind, skipped.reason),
        (Kind::DbOrphan, SkipReason::Auth0UserNotOurs)
    );
    assert_eq!(skipped.id.as_deref(), Some(row.to_string().as_str()));
    assert_eq!(skipped.email.as_deref(), Some("s***@acme.test"));
    assert!(user_exists(&stack, row).await);
    for id in [foreign, untagged, other_marker] {
        assert!(auth0_user_exists(&stack, &id), "{id} was deleted");
    }
    assert_eq!(stack.auth0.calls("delete_user"), 0);
}

/// Everything a dry run could touch, as comparable text.
async fn snapshot(stack: &TestStack) -> (String, Vec<Value>) {
    let rows = stack
        .sql()
        .await
        .query_one(
            "SELECT (SELECT string_agg(id::text || auth0_sub, ',' ORDER BY id) FROM users)
                 || (SELECT coalesce(string_agg(id::text, ',' ORDER BY id), '') FROM password_reset_tokens)
                 || (SELECT string_agg(id::text || coalesce(user_id::text, '-'), ',' ORDER BY id) FROM employees)",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    (rows, stack.auth0.users())
}

#[tokio::test]
async fn a_dry_run_reports_what_it_would_remove_and_changes_nothing() {
    let stack = TestStack::start().await;
    let row = pending_row(&stack, "half.made@acme.test", HOUR).await;
    tagged_auth0_user(&stack, "half.made@acme.test", row, HOUR);
    stack
        .sql()
        .await
        .execute(
            "UPDATE employees SET user_id = $1 WHERE id = $2",
            &[&row, &Uuid::parse_str(seed::EMPLOYEE_FREE).unwrap()],
        )
        .await
        .unwrap();
    tagged_auth0_user(&stack, "crashed@acme.test", Uuid::new_v4(), HOUR);
    let admin = Uuid::parse_str(seed::ACME_ADMIN_ID).unwrap();
    reset_token(&stack, admin, chrono::Duration::days(30), None).await;
    let foreign_row = pending_row(&stack, "elsewhere@acme.test", HOUR).await;
    stack.auth0.insert_user("elsewhere@acme.test", Value::Null);
    let before = snapshot(&stack).await;

    for event in [
        json!({"dryRun": true}),
        json!({"dryRun": true, "email": "Half.Made@acme.test"}),
    ] {
        let summary = cleanup(&stack, event.clone()).await;
        assert!(summary.dry_run, "{event}");
        assert_eq!(summary.removed, Counts::default(), "{event}");
        assert_eq!(snapshot(&stack).await, before, "{event} changed something");
        assert_eq!(stack.auth0.calls("delete_user"), 0);
        if event.get("email").is_none() {
            assert_eq!(
                summary.found,
                Counts {
                    db_orphans: 2,
                    auth0_users_of_db_orphans: 1,
                    auth0_orphans: 1,
                    reset_tokens: 1,
                    employees_unlinked: 1,
                    intents: 0,
                },
                "{summary:?}"
            );
            assert_eq!(summary.skipped.len(), 1);
            assert_eq!(
                summary.skipped[0].id.as_deref(),
                Some(foreign_row.to_string().as_str())
            );
        } else {
            assert_eq!(summary.scope, "h***@acme.test");
            assert_eq!(
                (summary.found.db_orphans, summary.found.auth0_orphans),
                (1, 0),
                "{summary:?}"
            );
        }
    }

    // The same run for real removes what the dry run reported.
    let summary = cleanup(&stack, scheduled_event()).await;
    assert_eq!(
        (summary.removed.db_orphans, summary.removed.auth0_orphans),
        (1, 1),
        "{summary:?}"
    );
}

#[tokio::test]
async fn a_manual_event_cleans_only_the_address_it_names() {
    let stack = TestStack::start().await;
    let named = pending_row(&stack, "named@acme.test", HOUR).await;
    let named_auth0 = tagged_auth0_user(&stack, "named@acme.test", named, HOUR);
    let other = pending_row(&stack, "other@acme.test", HOUR).await;
    let crashed = tagged_auth0_user(&stack, "crashed@acme.test", Uuid::new_v4(), HOUR);
    let other_crashed = tagged_auth0_user(&stack, "other.crash@acme.test", Uuid::new_v4(), HOUR);
    let admin = Uuid::parse_str(seed::ACME_ADMIN_ID).unwrap();
    reset_token(&stack, admin, chrono::Duration::days(30), None).await;

    let summary = cleanup(&stack, json!({"email": "  Named@ACME.test "})).await;
    assert_eq!(
        (summary.trigger.as_str(), summary.scope.as_str()),
        ("manual", "n***@acme.test")
    );
    assert_eq!(
        summary.removed,
        Counts {
            db_orphans: 1,
            auth0_users_of_db_orphans: 1,
            ..Counts::default()
        },
        "{summary:?}"
    );
    assert!(!user_exists(&stack, named).await && !auth0_user_exists(&stack, &named_auth0));

    // An address that only Auth0 holds (the crash case) is cleaned the same way.
    let summary = cleanup(&stack, json!({"email": "crashed@acme.test"})).await;
    assert_eq!(
        summary.removed,
        Counts {
            auth0_orphans: 1,
            ..Counts::default()
        },
        "{summary:?}"
    );
    assert!(!auth0_user_exists(&stack, &crashed));

    // Nothing else was touched.
    assert!(user_exists(&stack, other).await);
    assert!(auth0_user_exists(&stack, &other_crashed));
    assert_eq!(
        count(&stack, "SELECT count(*) FROM password_reset_tokens").await,
        1
    );
}

#[tokio::test]
async fn invalid_events_are_refused_with_the_field_named_and_change_nothing() {
    let stack = TestStack::start().await;
    let row = pending_row(&stack, "half.made@acme.test", HOUR).await;
    let mut not_scheduled = scheduled_event();
    not_scheduled["detail-type"] = json!("EC2 Instance State-change Notification");
    let cases = [
        (json!("run"), "event", "must be a JSON object"),
        (
            json!({"email": "nope"}),
            "email",
            "must be an email address",
        ),
        (
            json!({"email": ["a@acme.test"]}),
            "email",
            "must be a string",
        ),
        (json!({"dryRun": "true"}), "dryRun", "must be true or false"),
        (json!({"dry_run": true}), "dry_run", "unknown field"),
        (json!({"emails": "a@acme.test"}), "emails", "unknown field"),
        (
            not_scheduled,
            "detail-type",
            "only EventBridge scheduled events",
        ),
    ];
    for (event, field, message) in cases {
        let err = match invoke(&stack, event.clone(), Duration::from_secs(30)).await {
            Err(CleanupError::InvalidRequest(err)) => err,
            other => panic!("an invalid event is refused: {other:?}"),
        };
        assert_eq!(err.0.field, field, "{event}");
        assert!(err.to_string().contains(message), "{event}: {err}");
    }
    assert!(user_exists(&stack, row).await);
    assert_eq!(stack.auth0.calls("users_by_email"), 0);
}

#[tokio::test]
async fn pooled_connections_that_died_while_frozen_do_not_end_the_next_runs_passes() {
    let (mut stack, proxy) = crate::bounded_waits::stack_behind_a_proxy(|vars| {
        vars.insert("DB_POOL_SIZE".into(), "2".into());
    })
    .await;
    stack.state.config.cleanup.grace_period = Duration::from_secs(60);
    let first = cleanup(&stack, scheduled_event()).await;
    assert!(!first.partial && first.errors.is_empty(), "{first:?}");
    assert!(
        stack.state.pool.status().size >= 1,
        "a connection was pooled"
    );
    let orphan = pending_row(&stack, "after.thaw@acme.test", HOUR).await;
    // The pool still holds its connections as open; they break at their next use.
    proxy.sever_open_connections();

    let summary = cleanup(&stack, scheduled_event()).await;
    assert!(!summary.partial, "{summary:?}");
    assert!(summary.errors.is_empty(), "{summary:?}");
    assert_eq!(summary.removed.db_orphans, 1, "{summary:?}");
    assert!(!user_exists(&stack, orphan).await);
}
