//! `make demo`: the main job end to end on the local stack, no AWS account needed.
//! Migrates and seeds the database at DATABASE_URL, starts the Auth0 and email doubles,
//! runs the real `create-user` binary behind an emulated Lambda Runtime API, sends it
//! `events/create-user.json`, and shows what each system now holds. The invited person then
//! completes the invitation through the real `set-password` binary: the link from the email
//! double's outbox is verified, a password set, and a login with it tried on the Auth0
//! double; a second use of the link is refused. The admin then deactivates the user (its
//! login and refresh token are refused), reactivates it (the same password works), deletes it
//! (its Auth0 user is gone) and creates the address again. Then it leaves one
//! orphan on each side and lets the real `cleanup` binary remove them
//! (`events/cleanup-scheduled.json`), printing its summary.

use chrono::Utc;
use serde_json::{Value, json};
use shared::auth0::CREATED_BY_MARKER;
use testkit::doubles::{Auth0Config, Auth0Double, EmailConfig, EmailDouble};
use testkit::harness::{Response, app_vars, connect, seed};
use testkit::lambda_process::LambdaProcess;
use testkit::runtime_api::Outcome;
use uuid::Uuid;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let database_url = std::env::var("DATABASE_URL")
        .map_err(|_| "DATABASE_URL is required (make demo sets it)")?;
    let mut db = connect(&database_url).await;
    shared::db::migrate(&mut db).await?;
    db.batch_execute(seed::SQL).await?;
    println!(
        "== database migrated and seeded: tenants Acme Corp and Globex, their admins, 3 pages"
    );

    let auth0 = Auth0Double::start(Auth0Config::default()).await?;
    let email = EmailDouble::start(EmailConfig::default()).await?;
    println!(
        "== Auth0 double at {}, email double at {}",
        auth0.base_url(),
        email.base_url()
    );

    let mut vars = app_vars(&database_url, &auth0, &email);
    vars.insert("RUST_LOG".into(), "warn".into());
    let function = LambdaProcess::start("create-user", &vars).await?;
    println!("== create-user is running and polling the Runtime API");

    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for (label, file) in [
        ("create a user", "events/create-user.json"),
        ("the same request again", "events/create-user.json"),
        ("check-exists", "events/check-exists.json"),
    ] {
        let event: Value = serde_json::from_str(&std::fs::read_to_string(root.join(file))?)?;
        let invocation = function.invoke(event).await?;
        let Outcome::Response(raw) = invocation.outcome else {
            return Err(format!("the function failed: {:?}", invocation.outcome).into());
        };
        let response = Response::from_lambda(raw);
        println!("\n== {label} ({file}) -> HTTP {}", response.status);
        println!("{}", serde_json::to_string_pretty(&response.body)?);
    }

    let new_hire = "new.hire@acme.test";
    let row = db
        .query_one(
            "SELECT u.auth0_sub, u.role,
                    (SELECT count(*) FROM user_page_access a WHERE a.user_id = u.id),
                    (SELECT first_name || ' ' || last_name FROM employees e WHERE e.user_id = u.id),
                    (SELECT count(*) FROM password_reset_tokens t WHERE t.user_id = u.id)
               FROM users u WHERE u.email = $1",
            &[&new_hire],
        )
        .await?;
    println!(
        "\n== Postgres: users row auth0_sub={} role={}, {} page permissions, employee {:?}, {} reset-token hash",
        row.get::<_, String>(0),
        row.get::<_, String>(1),
        row.get::<_, i64>(2),
        row.get::<_, Option<String>>(3),
        row.get::<_, i64>(4)
    );
    for user in auth0.users_with_email(new_hire) {
        println!(
            "== Auth0 double: {} {}",
            user["user_id"],
            json!({"app_metadata": user["app_metadata"]})
        );
    }
    for message in email.emails_to(new_hire) {
        println!(
            "== Email double: to {:?}, subject {:?}\n{}",
            message.to,
            message.subject,
            message.text.unwrap_or_default()
        );
    }
    function.kill().await;

    complete_the_invitation(&root, &vars, &auth0, &email, new_hire).await?;
    the_rest_of_a_life(&root, &vars, &auth0, new_hire).await?;

    // Cleanup: one leftover on each side, an hour old, as a crash or the old code leaves them.
    let pending_id = Uuid::new_v4();
    db.execute(
        "INSERT INTO users (id, tenant_id, email, role, auth0_sub, created_at)
         VALUES ($1, $2, 'half.made@acme.test', 'USER', $3, now() - interval '1 hour')",
        &[
            &pending_id,
            &Uuid::parse_str(seed::ACME)?,
            &format!("pending_{pending_id}"),
        ],
    )
    .await?;
    let an_hour_ago = Utc::now() - chrono::Duration::hours(1);
    let tags = |db_user_id: Uuid| {
        json!({"created_by": CREATED_BY_MARKER, "tenant_id": seed::ACME, "role": "USER",
               "db_user_id": db_user_id.to_string()})
    };
    auth0.insert_user_at("half.made@acme.test", tags(pending_id), an_hour_ago);
    let crashed = auth0.insert_user_at("crashed@acme.test", tags(Uuid::new_v4()), an_hour_ago);
    println!(
        "\n== leftovers: Postgres row half.made@acme.test auth0_sub=pending_{pending_id} (with its tagged \
         Auth0 user), and Auth0 user {crashed} (crashed@acme.test) that no row refers to"
    );

    let cleanup = LambdaProcess::start("cleanup", &vars).await?;
    let file = "events/cleanup-scheduled.json";
    let event: Value = serde_json::from_str(&std::fs::read_to_string(root.join(file))?)?;
    let invocation = cleanup.invoke(event).await?;
    let Outcome::Response(summary) = invocation.outcome else {
        return Err(format!("cleanup failed: {:?}", invocation.outcome).into());
    };
    println!("== cleanup ({file}):");
    println!("{}", serde_json::to_string_pretty(&summary)?);
    let counts = db
        .query_one(
            "SELECT count(*) FILTER (WHERE auth0_sub LIKE 'pending\\_%'),
                    count(*) FILTER (WHERE email = $1)
               FROM users",
            &[&new_hire],
        )
        .await?;
    println!(
        "== after cleanup: {} pending rows, {} Auth0 users for the leftovers; {new_hire} still has {} row and {} Auth0 user",
        counts.get::<_, i64>(0),
        auth0.users_with_email("half.made@acme.test").len()
            + auth0.users_with_email("crashed@acme.test").len(),
        counts.get::<_, i64>(1),
        auth0.users_with_email(new_hire).len(),
    );
    cleanup.kill().await;
    Ok(())
}

/// The invited person's side: the link from the email, verified and used through the real
/// set-password binary, then a login with the new password on the Auth0 double.
async fn complete_the_invitation(
    root: &std::path::Path,
    vars: &std::collections::HashMap<String, String>,
    auth0: &Auth0Double,
    email: &EmailDouble,
    address: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let invitation = email
        .emails_to(address)
        .pop()
        .ok_or("no invitation was emailed")?;
    let (token, _) = invitation
        .setup_token_and_email()
        .ok_or("the invitation carries no set-password link")?;
    let password = "Corr3ct-Horse-Battery";
    println!(
        "\n== the invited person opens the link; before setting a password, logging in with {password:?}: {}",
        log_in(auth0, address, password).await?
    );
    let set_password = LambdaProcess::start("set-password", vars).await?;
    println!("== set-password is running and polling the Runtime API");
    for (label, file) in [
        ("verify the link", "events/set-password-verify.json"),
        ("set the password", "events/set-password.json"),
        ("the same link a second time", "events/set-password.json"),
    ] {
        // The events hold a placeholder where the emailed token goes.
        let text = std::fs::read_to_string(root.join(file))?.replace(&"0".repeat(64), &token);
        let invocation = set_password.invoke(serde_json::from_str(&text)?).await?;
        let Outcome::Response(raw) = invocation.outcome else {
            return Err(format!("set-password failed: {:?}", invocation.outcome).into());
        };
        let response = Response::from_lambda(raw);
        println!("\n== {label} ({file}) -> HTTP {}", response.status);
        println!("{}", serde_json::to_string_pretty(&response.body)?);
    }
    set_password.kill().await;
    println!(
        "\n== logging in to the Auth0 double (password-realm grant) with the new password: {}",
        log_in(auth0, address, password).await?
    );
    println!(
        "== logging in with any other password: {}",
        log_in(auth0, address, "Guessed-Passw0rd").await?
    );
    Ok(())
}

/// The admin's side after the invitation, through the real create-user binary: deactivate,
/// reactivate, delete, and the same address created again; the person's login and refresh
/// token tried on the Auth0 double after each.
async fn the_rest_of_a_life(
    root: &std::path::Path,
    vars: &std::collections::HashMap<String, String>,
    auth0: &Auth0Double,
    address: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let password = "Corr3ct-Horse-Battery";
    let (status, tokens) = auth0
        .log_in(address, password, "openid offline_access")
        .await;
    let refresh_token = tokens["refresh_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    println!(
        "\n== the person signs in (with offline_access): HTTP {status}, a refresh token: {}",
        !refresh_token.is_empty()
    );
    let id = auth0.users_with_email(address)[0]["app_metadata"]["db_user_id"]
        .as_str()
        .ok_or("the user's Auth0 tags name no row")?
        .to_string();
    let function = LambdaProcess::start("create-user", vars).await?;
    let send = async |label: &str, file: &str| -> Result<(), Box<dyn std::error::Error>> {
        // The user-* events name the user by a placeholder id.
        let text = std::fs::read_to_string(root.join(file))?
            .replace("00000000-0000-4000-8000-00000000cafe", &id);
        let invocation = function.invoke(serde_json::from_str(&text)?).await?;
        let Outcome::Response(raw) = invocation.outcome else {
            return Err(format!("the function failed: {:?}", invocation.outcome).into());
        };
        let response = Response::from_lambda(raw);
        println!("\n== {label} ({file}) -> HTTP {}", response.status);
        println!("{}", serde_json::to_string_pretty(&response.body)?);
        Ok(())
    };
    let try_both = async || {
        let (login, body) = auth0.log_in(address, password, "openid").await;
        let (refresh, refreshed) = auth0.refresh(&refresh_token).await;
        format!(
            "login HTTP {login} {}, refresh HTTP {refresh} {}",
            body["error_description"], refreshed["error_description"]
        )
    };
    send(
        "the admin deactivates the user",
        "events/user-deactivate.json",
    )
    .await?;
    println!("== the person tries: {}", try_both().await);
    send(
        "the admin reactivates the user",
        "events/user-reactivate.json",
    )
    .await?;
    println!(
        "== the person signs in with the same password: login HTTP {}",
        auth0.log_in(address, password, "openid").await.0
    );
    send("the admin deletes the user", "events/user-delete.json").await?;
    println!(
        "== Auth0 users for {address} now: {}; the person tries: {}",
        auth0.users_with_email(address).len(),
        try_both().await
    );
    send("the same address created again", "events/create-user.json").await?;
    function.kill().await;
    Ok(())
}

/// What a login form would get: `HTTP 200` with tokens, or Auth0's refusal.
async fn log_in(
    auth0: &Auth0Double,
    address: &str,
    password: &str,
) -> Result<String, Box<dyn std::error::Error>> {
    let response = reqwest::Client::new()
        .post(format!("{}/oauth/token", auth0.base_url()))
        .json(&auth0.login_request(address, password))
        .send()
        .await?;
    let status = response.status().as_u16();
    let body: Value = response.json().await?;
    Ok(match status {
        200 => format!("HTTP 200, signed in (token_type {})", body["token_type"]),
        _ => format!("HTTP {status} {}", body["error_description"]),
    })
}
