-- The floor for `make bench`'s GET /api/direct-users?limit=50&cursor=…, a page deep in the
-- list: the list's SELECT alone (shared/src/db/user_views.rs, list_sql with the cursor's
-- condition), for the 51 rows the binary asks for. The binary looks the caller up first, in
-- a round trip of its own; that is not here.
-- Variables from the command line: -D tenant=<the tenant> -D limit=51 -D at=<the cursor's
-- created_at> -D after=<the cursor's user id>.
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
  WHERE u.tenant_id = :tenant AND u.auth0_sub NOT LIKE 'pending\_%'
    AND (u.created_at, u.id) < (:at::timestamptz, :after::uuid)
  ORDER BY u.created_at DESC, u.id DESC
  LIMIT :limit;
