-- The user lifecycle: changes to a user that touch both systems (update, deactivate,
-- reactivate, delete) and the admin API's list of users.

-- An operation on a user writes its intent here, in a short transaction committed before it
-- calls Auth0, and removes it when both systems agree again. One per user at a time (the key):
-- a second operation on the same user is refused while one runs. Cleanup makes the Auth0 user
-- match the row again for an intent older than its grace period (a process that died between
-- the two), whatever happened in between; so no foreign key: a delete's intent outlives its row.
CREATE TABLE lifecycle_intents (
    user_id        uuid PRIMARY KEY,
    tenant_id      uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    auth0_user_id  text NOT NULL CHECK (auth0_user_id LIKE '%|%'),
    operation      text NOT NULL CHECK (operation IN ('update', 'deactivate', 'reactivate', 'delete')),
    -- The request that wrote it: its retry on a fresh connection takes it up again.
    attempt        uuid NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);
-- Cleanup finds the old ones; the tenant foreign key's index.
CREATE INDEX lifecycle_intents_created_at_idx ON lifecycle_intents (created_at);
CREATE INDEX lifecycle_intents_tenant_idx ON lifecycle_intents (tenant_id);

-- The list of a tenant's users, newest first, paged by (created_at, id).
CREATE INDEX users_tenant_created_idx ON users (tenant_id, created_at DESC, id DESC);
-- The list filtered by an address prefix.
CREATE INDEX users_tenant_email_prefix_idx ON users (tenant_id, lower(email) text_pattern_ops);
DROP INDEX users_tenant_idx; -- the index above leads with tenant_id: it serves the foreign key
