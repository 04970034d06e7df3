//! The schema itself, read from `pg_catalog` of a migrated database.

use testkit::harness::TestStack;

/// Every foreign key needs an index whose leading columns are its columns (any order), or a
/// unique index within its columns: a DELETE of the referenced row, and every lookup along
/// the key, would otherwise scan the whole referencing table.
#[tokio::test]
async fn every_foreign_key_column_has_an_index() {
    let stack = TestStack::start().await;
    let sql = stack.sql().await;
    let keys = sql
        .query(
            "SELECT c.conrelid::regclass::text, c.conname,
                    EXISTS (
                      SELECT 1 FROM pg_index i
                       WHERE i.indrelid = c.conrelid AND i.indpred IS NULL
                         AND ((i.indkey::int2[])[0:cardinality(c.conkey) - 1] @> c.conkey
                              OR (i.indisunique
                                  AND c.conkey @> (i.indkey::int2[])[0:i.indnkeyatts - 1])))
               FROM pg_constraint c
              WHERE c.contype = 'f' AND c.connamespace = 'public'::regnamespace
              ORDER BY 1, 2",
            &[],
        )
        .await
        .unwrap();
    let unindexed: Vec<String> = keys
        .iter()
        .filter(|k| !k.get::<_, bool>(2))
        .map(|k| format!("{}.{}", k.get::<_, String>(0), k.get::<_, String>(1)))
        .collect();
    // The schema has foreign keys to check: this test reads the catalog it means to.
    assert!(keys.len() >= 6, "only {} foreign keys found", keys.len());
    assert!(
        unindexed.is_empty(),
        "foreign keys without an index: {unindexed:?}"
    );
}
