-- The floor for `make bench`'s GET /api/direct-users/{id}: the 2 statements create-user runs
-- (shared/src/lifecycle/views.rs), without a transaction, one round trip each here (the
-- binary sends both in one): the caller, locked FOR SHARE, and the user's view
-- (shared/src/db/user_views.rs, by_id_sql).
-- The user is one of the bench's pool in the caller's tenant, its id made from the number k
-- by the server here (the binary has it from the path). What the binary computes in Rust (the
-- attempt's uuid) is computed by the server; the intent's Auth0 id is a constant.
-- Variables from the command line: -D sub=<the caller's auth0 sub> -D pool=<users in the pool>.
\set k random(1, :pool)
SELECT u.id, u.tenant_id, t.name, u.business_id, u.role, u.is_active
  FROM users u JOIN tenants t ON t.id = u.tenant_id
 WHERE u.auth0_sub = :sub
   FOR SHARE OF u;
SELECT u.id, u.tenant_id, u.email, u.role, u.auth0_sub, u.is_active,
        u.setup_completed_at, u.created_at, u.updated_at, u.external_id, u.created_by, c.email,
        e.id, e.first_name, e.last_name, e.department, e.job_title, e.employment_type,
        p.pages, p.reads, p.writes, p.edits, p.deletes
   FROM users u
   LEFT JOIN users c ON c.id = u.created_by
   LEFT JOIN employees e ON e.user_id = u.id
   LEFT JOIN LATERAL (
        SELECT array_agg(a.page_id ORDER BY a.page_id) AS pages,
               array_agg(a.can_read ORDER BY a.page_id) AS reads,
               array_agg(a.can_write ORDER BY a.page_id) AS writes,
               array_agg(a.can_edit ORDER BY a.page_id) AS edits,
               array_agg(a.can_delete ORDER BY a.page_id) AS deletes
          FROM user_page_access a WHERE a.user_id = u.id) p ON true
  WHERE u.id = ('f0000000-0000-4000-8000-' || lpad(:k::text, 12, '0'))::uuid;
