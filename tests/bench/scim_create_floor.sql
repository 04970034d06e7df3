-- The floor for `make bench`'s SCIM create (POST /scim/v2/Users as an identity provider sends
-- it: userName, name, emails, externalId, active, no password): the 8 statements the scim
-- function runs (shared/src/lifecycle/create.rs through flow::run, the admin API's create),
-- in its order, one round trip each: BEGIN and the token's lookup (scim_tokens::FIND, which
-- records the token's use at most once a minute); the user row (created by the token, with its
-- externalId) and its employee (a name only); after Auth0's create, the Auth0 id, the
-- invitation's SAVEPOINT and token; COMMIT. SCIM gives no page permissions, so neither the
-- pages' check nor the grant runs. Values the binary computes in Rust (the user id, the token
-- hash, the expiry) are computed by the server here, the user id from the number n.
-- Variables from the command line: -D hash=\x<the SCIM token's SHA-256, in hex>
\set n random(1, 9223372036854775806)
BEGIN;
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
INSERT INTO users (id, tenant_id, business_id, email, role,
                   auth0_sub, created_by, created_by_token, external_id, is_active)
VALUES (md5('floor' || :n)::uuid, :token_tenant_id::uuid, :token_business_id::uuid,
        'floor' || :n || '@floor.test', 'USER', 'pending_' || :n, NULL, :token_id::uuid, 'ext-' || :n, true)
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
