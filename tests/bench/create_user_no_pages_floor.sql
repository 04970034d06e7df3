-- The floor for `make bench`'s admin API create beside the SCIM create: the person a SCIM
-- create makes (an employee with a name and nothing more, no page permissions), sent to
-- create-user as the admin panel would. The 8 statements create-user runs for it
-- (shared/src/lifecycle/create.rs, through flow::run), in its order, one round trip each:
-- BEGIN and the caller read and locked FOR SHARE; the user row and its employee; after
-- Auth0's create, the Auth0 id, the invitation's SAVEPOINT and token; COMMIT. Without page
-- permissions neither the pages' check nor the grant runs. Values the binary computes in Rust
-- (the user id, the token hash, the expiry) are computed by the server here, the user id from
-- the number n.
-- Variables from the command line: -D sub=<caller's auth0 sub>
\set n random(1, 9223372036854775806)
BEGIN;
SELECT u.id, u.tenant_id, t.name, u.business_id, u.role, u.is_active
  FROM users u JOIN tenants t ON t.id = u.tenant_id
 WHERE u.auth0_sub = :sub
   FOR SHARE OF u \gset caller_
INSERT INTO users (id, tenant_id, business_id, email, role,
                   auth0_sub, created_by, created_by_token, external_id, is_active)
VALUES (md5('floor' || :n)::uuid, :caller_tenant_id::uuid, :caller_business_id::uuid,
        'floor' || :n || '@floor.test', 'USER', 'pending_' || :n, :caller_id::uuid, NULL, NULL, true)
RETURNING created_at;
INSERT INTO employees (tenant_id, business_id, user_id, first_name, last_name, email,
                       department, job_title, employment_type)
SELECT u.tenant_id, u.business_id, u.id, 'Nia', 'Hire', 'floor' || :n || '@floor.test', NULL, NULL, NULL
  FROM users u
 WHERE u.id = md5('floor' || :n)::uuid
RETURNING id;
UPDATE users SET auth0_sub = 'auth0|floor' || :n, updated_at = now() WHERE id = md5('floor' || :n)::uuid;
SAVEPOINT reset_token;
INSERT INTO password_reset_tokens (user_id, token_hash, expires_at) VALUES (md5('floor' || :n)::uuid, sha256(('floor' || :n)::bytea), now() + interval '24 hours');
COMMIT;
