-- The floor for `make bench`'s POST /api/direct-users/{id}/deactivate: the 12 statements
-- create-user runs (shared/src/lifecycle/activation.rs, through flow::run), in its order, one
-- round trip each: BEGIN, the caller locked FOR SHARE, the user FOR UPDATE, the intent,
-- COMMIT; then BEGIN, the caller, the user, the row deactivated with its open links used up,
-- the user's view read back, the intent removed, COMMIT. The Auth0 calls (block, sessions,
-- refresh tokens) are not here. Users 1, 2, 3, … each once.
-- The user is one of the bench's pool in the caller's tenant, its id made from the number k
-- by the server here (the binary has it from the path). What the binary computes in Rust (the
-- attempt's uuid) is computed by the server; the intent's Auth0 id is a constant.
-- Variables from the command line: -D sub=<the caller's auth0 sub> -D tenant=<its tenant>
-- -D auth0_id=<an Auth0 id> -D pool=<users in the pool> -D n=0.
\set n :n + 1
\set k :n
BEGIN;
SELECT u.id, u.tenant_id, t.name, u.business_id, u.role, u.is_active
  FROM users u JOIN tenants t ON t.id = u.tenant_id
 WHERE u.auth0_sub = :sub
   FOR SHARE OF u;
SELECT id, tenant_id, email, role, auth0_sub, is_active,
       setup_completed_at, created_at, updated_at, external_id
  FROM users
 WHERE id = ('f0000000-0000-4000-8000-' || lpad(:k::text, 12, '0'))::uuid
   FOR UPDATE;
INSERT INTO lifecycle_intents (user_id, tenant_id, auth0_user_id, operation, attempt)
VALUES (('f0000000-0000-4000-8000-' || lpad(:k::text, 12, '0'))::uuid, :tenant, :auth0_id, 'deactivate', gen_random_uuid())
ON CONFLICT (user_id) DO UPDATE SET operation = EXCLUDED.operation
 WHERE lifecycle_intents.attempt = EXCLUDED.attempt;
COMMIT;
BEGIN;
SELECT u.id, u.tenant_id, t.name, u.business_id, u.role, u.is_active
  FROM users u JOIN tenants t ON t.id = u.tenant_id
 WHERE u.auth0_sub = :sub
   FOR SHARE OF u;
SELECT id, tenant_id, email, role, auth0_sub, is_active,
       setup_completed_at, created_at, updated_at, external_id
  FROM users
 WHERE id = ('f0000000-0000-4000-8000-' || lpad(:k::text, 12, '0'))::uuid
   FOR UPDATE;
WITH links AS (
        UPDATE password_reset_tokens SET used_at = now()
         WHERE user_id = ('f0000000-0000-4000-8000-' || lpad(:k::text, 12, '0'))::uuid AND used_at IS NULL)
     UPDATE users SET is_active = false, updated_at = now() WHERE id = ('f0000000-0000-4000-8000-' || lpad(:k::text, 12, '0'))::uuid;
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
DELETE FROM lifecycle_intents WHERE user_id = ('f0000000-0000-4000-8000-' || lpad(:k::text, 12, '0'))::uuid;
COMMIT;
