//! `make demo`: the main job end to end on the local stack, no AWS account needed.
//! Migrates and seeds the database at DATABASE_URL, starts the Auth0 and email doubles,
//! runs the real `create-user` binary behind an emulated Lambda Runtime API, sends it
//! `events/create-user.json`, and shows what each system now holds. The invited person then
//! completes the invitation through the real `set-password` binary: the link from the email
//! double's outbox is verified, a password set, and a login with it tried on the Auth0
//! double; a second use of the link is refused. The admin then deactivates the user (its
//! login and refresh token are refused), reactivates it (the same password works), deletes it
//! (its Auth0 user is gone) and creates the address again. An identity provider then lives a
//! user's life through the real `scim` binary, with a SCIM token the admin makes through the
//! admin API: Okta's lookup by filter (nobody), a create with the person's password, the lookup
//! again, an Entra-style deactivation (the login is refused) and reactivation (it works again),
//! a delete and then 404. Then it leaves one orphan on each side and lets the real `cleanup`
//! binary remove them (`events/cleanup-scheduled.json`), printing its summary.

use chrono::Utc;
use serde_json::{Value, json};
use shared::auth0::CREATED_BY_MARKER;
use testkit::doubles::{Auth0Config, Auth0Double, EmailConfig, EmailDouble};
use testkit::harness::{
    Response, SCIM_TOKENS_PATH, SCIM_USERS_PATH, api_event, app_vars, connect, scim_event, seed,
};
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
    an_identity_provider_s_life_of_a_user(&vars, &db, &auth0, &email).await?;

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

/// An identity provider's side, through the real scim binary: the admin makes a SCIM token
/// through the admin API (the real create-user binary), then the provider looks the person up,
/// creates them with their password (Okta's password sync), finds them, deactivates them as
/// Entra ID does (`"Replace"`, `"False"`), reactivates them and deletes them; the person's
/// login is tried on the Auth0 double after each change.
async fn an_identity_provider_s_life_of_a_user(
    vars: &std::collections::HashMap<String, String>,
    db: &tokio_postgres::Client,
    auth0: &Auth0Double,
    email: &EmailDouble,
) -> Result<(), Box<dyn std::error::Error>> {
    let answer = |invocation: testkit::runtime_api::Invocation| match invocation.outcome {
        Outcome::Response(raw) => Ok(Response::from_lambda(raw)),
        other => Err(format!("the function failed: {other:?}")),
    };
    // The demo stops at the first answer that is not the one expected.
    let expect = |response: &Response, status: u16, what: &str| match response.status {
        s if s == status => Ok(()),
        s => Err(format!(
            "{what}: HTTP {status} expected, HTTP {s} answered: {}",
            response.body
        )),
    };
    let admin_api = LambdaProcess::start("create-user", vars).await?;
    let body = json!({"name": "Okta (demo)"}).to_string();
    let made = answer(
        admin_api
            .invoke(api_event(
                "POST",
                SCIM_TOKENS_PATH,
                Some(seed::ACME_ADMIN_SUB),
                Some(&body),
            ))
            .await?,
    )?;
    admin_api.kill().await;
    expect(&made, 201, "making a SCIM token")?;
    let token = made.body["token"]
        .as_str()
        .ok_or("the admin API made no SCIM token")?
        .to_string();
    println!(
        "\n== the admin makes a SCIM token for the identity provider (POST {SCIM_TOKENS_PATH}) -> HTTP {}: \
         {}… (shown this once; the database keeps its SHA-256 and the hint {})",
        made.status,
        &token[..16],
        made.body["hint"]
    );

    let scim = LambdaProcess::start("scim", vars).await?;
    println!("== scim is running and polling the Runtime API");
    let send = async |method: &str,
                      path: &str,
                      body: Option<Value>,
                      query: &[(&str, &str)]|
           -> Result<Response, Box<dyn std::error::Error>> {
        let event = scim_event(method, path, Some(&token), body.as_ref(), query);
        Ok(answer(scim.invoke(event).await?)?)
    };
    let address = "pat.provisioned@acme.test";
    let password = "Sync3d-From-Okta";
    let filter = format!("userName eq \"{address}\"");
    let find = async || {
        send(
            "GET",
            SCIM_USERS_PATH,
            None,
            &[("filter", &filter), ("startIndex", "1"), ("count", "100")],
        )
        .await
    };
    let found = find().await?;
    expect(&found, 200, "the first lookup")?;
    println!(
        "\n== Okta looks the person up first: GET {SCIM_USERS_PATH}?filter={filter} -> HTTP {}\n{}",
        found.status, found.body
    );

    let okta_user = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": address,
        "name": {"givenName": "Pat", "familyName": "Provisioned"},
        "emails": [{"primary": true, "value": address, "type": "work"}],
        "externalId": "00u1demo",
        "password": password,
        "active": true,
    });
    let created = send("POST", SCIM_USERS_PATH, Some(okta_user), &[]).await?;
    expect(&created, 201, "the create")?;
    println!(
        "\n== nobody, so Okta creates the user with the person's password: POST {SCIM_USERS_PATH} -> HTTP {}, Location {}",
        created.status, created.headers["location"]
    );
    println!("{}", serde_json::to_string_pretty(&created.body)?);
    let id = created.body["id"]
        .as_str()
        .ok_or("the create answered no user")?
        .to_string();
    let user_path = format!("{SCIM_USERS_PATH}/{id}");
    let row = db
        .query_one(
            "SELECT u.created_by::text, u.created_by_token::text, s.name
               FROM users u JOIN scim_tokens s ON s.id = u.created_by_token
              WHERE u.email = $1",
            &[&address],
        )
        .await?;
    println!(
        "== Postgres: created_by {}, created_by_token {} (the token {:?}); emails sent to {address}: {} (the password came with the user)",
        row.get::<_, Option<String>>(0)
            .unwrap_or_else(|| "NULL".into()),
        row.get::<_, String>(1),
        row.get::<_, String>(2),
        email.emails_to(address).len()
    );
    let found = find().await?;
    expect(&found, 200, "the second lookup")?;
    println!(
        "== the same lookup now -> HTTP {}, totalResults {}; the person logs in: {}",
        found.status,
        found.body["totalResults"],
        log_in(auth0, address, password).await?
    );

    let patch = |op: &str, value: &str| {
        json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": op, "path": "active", "value": value}],
        })
    };
    let off = send("PATCH", &user_path, Some(patch("Replace", "False")), &[]).await?;
    expect(&off, 200, "the deactivation")?;
    println!(
        "\n== Entra ID deactivates ({{\"op\":\"Replace\",\"path\":\"active\",\"value\":\"False\"}}): PATCH {user_path} -> HTTP {}, active {}",
        off.status, off.body["active"]
    );
    let found = find().await?;
    println!(
        "== Auth0 user blocked: {}; the person tries to log in: {}; still found by the lookup: totalResults {}, active {}",
        auth0.users_with_email(address)[0]["blocked"],
        log_in(auth0, address, password).await?,
        found.body["totalResults"],
        found.body["Resources"][0]["active"]
    );
    let on = send("PATCH", &user_path, Some(patch("Replace", "True")), &[]).await?;
    expect(&on, 200, "the reactivation")?;
    println!(
        "\n== Entra ID reactivates: PATCH {user_path} -> HTTP {}, active {}; the person logs in with the same password: {}",
        on.status,
        on.body["active"],
        log_in(auth0, address, password).await?
    );

    let deleted = send("DELETE", &user_path, None, &[]).await?;
    expect(&deleted, 204, "the delete")?;
    let kept: i64 = db
        .query_one(
            "SELECT count(*) FROM employees
              WHERE first_name = 'Pat' AND last_name = 'Provisioned' AND user_id IS NULL",
            &[],
        )
        .await?
        .get(0);
    println!(
        "\n== the identity provider deletes the user: DELETE {user_path} -> HTTP {} (no body); Auth0 users for {address} now: {}; \
         employee records kept, unlinked: {kept}",
        deleted.status,
        auth0.users_with_email(address).len()
    );
    let gone = send("GET", &user_path, None, &[]).await?;
    expect(&gone, 404, "reading the deleted user")?;
    println!("== GET {user_path} -> HTTP {}\n{}", gone.status, gone.body);
    scim.kill().await;
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
