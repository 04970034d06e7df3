//! `make dev`: migrates the database at DATABASE_URL and loads the demo data of
//! `tests/fixtures/seed.sql` (two tenants, their owner and admins, pages, employees).
//! A database that already holds the seed is only migrated.

use testkit::harness::{connect, seed};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let database_url = std::env::var("DATABASE_URL")
        .map_err(|_| "DATABASE_URL is required (scripts/dev.sh sets it)")?;
    let mut db = connect(&database_url).await;
    shared::db::migrate(&mut db).await?;
    let seeded = db
        .query_opt(
            "SELECT 1 FROM tenants WHERE id = $1::text::uuid",
            &[&seed::ACME],
        )
        .await?
        .is_some();
    if seeded {
        println!("database migrated; the demo data was already there");
    } else {
        db.batch_execute(seed::SQL).await?;
        println!(
            "database migrated and seeded: tenants Acme Corp and Globex, their admins, 3 pages"
        );
    }
    Ok(())
}
