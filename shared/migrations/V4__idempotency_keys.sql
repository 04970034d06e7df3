-- Idempotency-Key on create-user: the first answer to a key, stored in the same transaction
-- as the user it created, replayed to repeats of the same request for a while.
CREATE TABLE idempotency_keys (
    -- Keys are scoped to the caller's tenant: two tenants may use the same key.
    tenant_id     uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    key           text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    -- SHA-256 of the route, the caller and the body: the same key with another request is refused.
    request_hash  bytea NOT NULL CHECK (length(request_hash) = 32),
    status        smallint NOT NULL CHECK (status BETWEEN 200 AND 499),
    response      jsonb NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    CHECK (expires_at > created_at),
    -- Also the index behind the tenant foreign key (its leading column).
    PRIMARY KEY (tenant_id, key)
);
-- Cleanup purges expired keys in batches.
CREATE INDEX idempotency_keys_expires_idx ON idempotency_keys (expires_at);
