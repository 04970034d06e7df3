-- SCIM 2.0: a customer's identity provider provisions users with a bearer token of its own.

-- A tenant's SCIM tokens. Only the SHA-256 of a token is stored; the token itself is shown
-- once, when an admin makes it. A revoked token stays listed (who made it, when it was last
-- used) and never works again.
CREATE TABLE scim_tokens (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id     uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    -- The business of the admin who made it: the users it creates join it.
    business_id   uuid,
    name          text NOT NULL CHECK (btrim(name) <> '' AND length(name) <= 100),
    token_hash    bytea NOT NULL CONSTRAINT scim_tokens_hash_key UNIQUE CHECK (length(token_hash) = 32),
    -- The token's first characters, shown to tell tokens apart; never enough to use one.
    token_hint    text NOT NULL,
    created_by    uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz,
    revoked_at    timestamptz
);
CREATE INDEX scim_tokens_tenant_idx ON scim_tokens (tenant_id, created_at DESC);
CREATE INDEX scim_tokens_created_by_idx ON scim_tokens (created_by);

-- What the identity provider calls the user (`externalId`), stored as it sent it.
ALTER TABLE users ADD COLUMN external_id text CHECK (length(external_id) <= 255);
CREATE INDEX users_tenant_external_id_idx ON users (tenant_id, external_id)
    WHERE external_id IS NOT NULL;
-- A user a SCIM client created: created_by is no user then, the token says who.
ALTER TABLE users ADD COLUMN created_by_token uuid REFERENCES scim_tokens (id) ON DELETE SET NULL;
CREATE INDEX users_created_by_token_idx ON users (created_by_token);
