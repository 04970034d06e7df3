-- The floor for `make bench`'s DELETE /api/direct-users/{id} of an active user: the 11
-- statements create-user runs (shared/src/lifecycle/delete.rs, through flow::run), in its
-- order, one round trip each: BEGIN, the caller locked FOR SHARE, the user FOR UPDATE, the
-- intent, COMMIT; then BEGIN, the caller, the user, the row deleted, COMMIT; then the intent
-- removed. The Auth0 calls (the block before the row goes, the delete after the COMMIT) are
-- not here. Users from the top of the pool down, each once (past the pool's start it would
-- wrap round to users already gone).
-- The user is one of the bench's pool in the caller's tenant, its id made from the number k
-- by the server here (the binary has it from the path). What the binary computes in Rust (the
-- attempt's uuid) is computed by the server; the intent's Auth0 id is a constant.
-- Variables from the command line: -D sub=<the caller's auth0 sub> -D tenant=<its tenant>
-- -D auth0_id=<an Auth0 id> -D pool=<users in the pool> -D n=0.
\set n :n + 1
\set k 1 + (:pool - 1 - (:n - 1) % :pool)
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
VALUES (('f0000000-0000-4000-8000-' || lpad(:k::text, 12, '0'))::uuid, :tenant, :auth0_id, 'delete', gen_random_uuid())
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
DELETE FROM users WHERE id = ('f0000000-0000-4000-8000-' || lpad(:k::text, 12, '0'))::uuid;
COMMIT;
DELETE FROM lifecycle_intents WHERE user_id = ('f0000000-0000-4000-8000-' || lpad(:k::text, 12, '0'))::uuid;
