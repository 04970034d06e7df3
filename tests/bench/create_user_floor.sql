-- The floor for `make bench`: the 10 statements create-user runs for the example request
-- (events/create-user.json: an employee, two page permissions, no Idempotency-Key), in its
-- order, for `pgbench -M prepared`, one round trip each. Values the binary computes in Rust
-- (the user id, the token hash, the expiry) are computed by the server here, the user id from
-- the number n; nothing else differs. The caller's row is read and locked FOR SHARE with
-- BEGIN, and the user row takes the caller's tenant and business from that read.
-- Variables from the command line: -D sub=<caller's auth0 sub> -D pages={<page id>,<page id>}
\set n random(1, 9223372036854775806)
BEGIN;
SELECT u.id, u.tenant_id, t.name, u.business_id, u.role, u.is_active
  FROM users u JOIN tenants t ON t.id = u.tenant_id
 WHERE u.auth0_sub = :sub
   FOR SHARE OF u \gset caller_
SELECT w.id FROM unnest(:pages::uuid[]) WITH ORDINALITY AS w(id, n)
 WHERE NOT EXISTS (SELECT 1 FROM pages p WHERE p.id = w.id)
 ORDER BY w.n;
INSERT INTO users (id, tenant_id, business_id, email, role,
                   auth0_sub, created_by, created_by_token, external_id, is_active)
VALUES (md5('floor' || :n)::uuid, :caller_tenant_id::uuid, :caller_business_id::uuid,
        'floor' || :n || '@floor.test', 'USER', 'pending_' || :n, :caller_id::uuid, NULL, NULL, true)
RETURNING created_at;
INSERT INTO employees (tenant_id, business_id, user_id, first_name, last_name, email,
                       department, job_title, employment_type)
SELECT u.tenant_id, u.business_id, u.id, 'Nia', 'Hire', 'floor' || :n || '@floor.test', 'Sales', 'Account Executive', 'FULL_TIME'
  FROM users u
 WHERE u.id = md5('floor' || :n)::uuid
RETURNING id;
INSERT INTO user_page_access (user_id, page_id, can_read, can_write, can_edit, can_delete)
SELECT u.id, p.* FROM users u,
       unnest(:pages::uuid[], '{t,t}'::bool[], '{f,t}'::bool[], '{f,f}'::bool[], '{f,f}'::bool[]) AS p
 WHERE u.id = md5('floor' || :n)::uuid;
UPDATE users SET auth0_sub = 'auth0|floor' || :n, updated_at = now() WHERE id = md5('floor' || :n)::uuid;
SAVEPOINT reset_token;
INSERT INTO password_reset_tokens (user_id, token_hash, expires_at) VALUES (md5('floor' || :n)::uuid, sha256(('floor' || :n)::bytea), now() + interval '24 hours');
COMMIT;
