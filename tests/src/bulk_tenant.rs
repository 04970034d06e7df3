//! A tenant at a real size for the Auth0 sweep's tests and `make bench`: `users` tagged Auth0
//! users of Acme in the double (seeded in bulk) and their rows (one `generate_series`, in a
//! template database built once per server and copied for each stack), one user every 30
//! seconds, the last created when the template was built.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use crate::doubles::{
    BulkUsers, bulk_db_user_id, bulk_db_user_id_sql, bulk_user_id, bulk_user_id_sql,
};
use crate::harness::{TestDb, TestStack, seed};

/// Time between two users' creation.
pub const SPACING_S: i64 = 30;

pub struct BulkTenant {
    pub stack: TestStack,
    pub bulk: BulkUsers,
}

impl BulkTenant {
    /// `adjust` changes the app's settings before its state is built.
    pub async fn start(
        users: u64,
        adjust: impl FnOnce(&mut HashMap<String, String>),
    ) -> BulkTenant {
        let db = TestDb::create_with(&rows_sql(users)).await;
        let stack = TestStack::start_on(db, adjust).await;
        let sql = stack.sql().await;
        let row = sql
            .query_one("SELECT users, first_created_at FROM bulk_tenant", &[])
            .await
            .expect("the template holds bulk_tenant");
        let bulk = BulkUsers {
            count: row.get::<_, i64>(0) as u64,
            first_created_at: row.get(1),
            spacing: chrono::Duration::seconds(SPACING_S),
            email_prefix: "user".into(),
            email_domain: "big.test".into(),
            app_metadata: json!({
                "created_by": shared::auth0::CREATED_BY_MARKER,
                "tenant_id": seed::ACME,
                "role": "USER",
                "db_user_id": null,
            }),
        };
        stack.auth0.insert_bulk(bulk.clone());
        // The rows hold the users the double made.
        let n = users / 2;
        let row = sql
            .query_one(
                "SELECT id, email, created_at FROM users WHERE auth0_sub = $1",
                &[&bulk_user_id(n)],
            )
            .await
            .expect("a row for every bulk user");
        let profile = stack.auth0.user(&bulk_user_id(n)).expect("in the double");
        assert_eq!(row.get::<_, Uuid>(0), bulk_db_user_id(n));
        assert_eq!(row.get::<_, String>(1), profile["email"].as_str().unwrap());
        assert_eq!(row.get::<_, DateTime<Utc>>(2), bulk.created_at(n));
        assert_eq!(
            profile["app_metadata"]["db_user_id"],
            bulk_db_user_id(n).to_string()
        );
        BulkTenant { stack, bulk }
    }

    /// Bulk user `n`'s creation time.
    pub fn at(&self, n: u64) -> DateTime<Utc> {
        self.bulk.created_at(n)
    }

    /// Deletes bulk user `n`'s row directly, as the old backend or a person might: its Auth0
    /// user is an orphan among old users.
    pub async fn delete_row(&self, n: u64) {
        let deleted = self
            .stack
            .sql()
            .await
            .execute(
                "DELETE FROM users WHERE auth0_sub = $1",
                &[&bulk_user_id(n)],
            )
            .await
            .expect("delete");
        assert_eq!(deleted, 1, "user {n} had a row");
    }

    /// Bulk user `n` is still in Auth0.
    pub fn exists(&self, n: u64) -> bool {
        self.stack.auth0.user(&bulk_user_id(n)).is_some()
    }

    /// Management API calls the double has seen (the token endpoint is not one).
    pub fn calls(&self) -> u64 {
        crate::doubles::AUTH0_OPS
            .iter()
            .filter(|op| **op != "token")
            .map(|op| self.stack.auth0.calls(op) as u64)
            .sum()
    }
}

/// The rows of `users` bulk users, and where they began (table `bulk_tenant`).
fn rows_sql(users: u64) -> String {
    format!(
        "CREATE TABLE bulk_tenant AS
           SELECT {users}::bigint AS users,
                  date_trunc('milliseconds', now())
                    - make_interval(secs => {SPACING_S} * ({users} - 1)) AS first_created_at;
         INSERT INTO users (id, tenant_id, email, role, auth0_sub, created_at)
         SELECT {id}, '{acme}', 'user' || g || '@big.test', 'USER', {sub},
                b.first_created_at + g * interval '{SPACING_S} seconds'
           FROM bulk_tenant b, generate_series(0, b.users - 1) g;",
        id = bulk_db_user_id_sql("g"),
        sub = bulk_user_id_sql("g"),
        acme = seed::ACME,
    )
}
