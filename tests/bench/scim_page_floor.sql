-- The floor for `make bench`'s full paged SCIM read of a tenant of 10,000 users
-- (GET /scim/v2/Users?startIndex=…&count=100, every page in turn, as an identity provider
-- reads the users it will manage): for each page the 3 statements the scim function runs
-- (shared/src/lifecycle/views.rs, matching_users), one round trip each here (the binary sends
-- the last two in one): the token's lookup (scim_tokens::FIND), the count of the tenant's users
-- (user_views::count_matching_sql without a filter) and the page (user_views::matching_page_sql)
-- at its offset. Transaction n reads page (n - 1) mod pages, so one client reads all the pages
-- in order, again and again.
-- Variables from the command line: -D hash=\x<the SCIM token's SHA-256, in hex>
-- -D pages=<pages in a read> -D count=100 -D n=0.
\set n :n + 1
\set offset ((:n - 1) % :pages) * :count
WITH token AS (
        SELECT id, tenant_id, business_id, last_used_at FROM scim_tokens
         WHERE token_hash = :hash AND revoked_at IS NULL),
     touched AS (
        UPDATE scim_tokens SET last_used_at = now()
         WHERE id = (SELECT id FROM scim_tokens
                      WHERE id = (SELECT id FROM token)
                        AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')
                        FOR UPDATE SKIP LOCKED))
     SELECT t.id, t.tenant_id, n.name, t.business_id
       FROM token t JOIN tenants n ON n.id = t.tenant_id \gset token_
SELECT count(*) FROM users u
  WHERE u.tenant_id = :token_tenant_id AND u.auth0_sub NOT LIKE 'pending\_%';
WITH page AS (
    SELECT u.id FROM users u
     WHERE u.tenant_id = :token_tenant_id AND u.auth0_sub NOT LIKE 'pending\_%'
     ORDER BY u.created_at, u.id OFFSET :offset LIMIT :count)
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
  WHERE u.id IN (SELECT id FROM page)
  ORDER BY u.created_at, u.id;
