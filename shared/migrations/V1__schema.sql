-- The data model of atomic user provisioning (see README "Data model").

CREATE TABLE tenants (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL CHECK (btrim(name) <> ''),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id    uuid NOT NULL REFERENCES tenants (id),
    business_id  uuid,
    email        text NOT NULL
                 CHECK (email = lower(btrim(email)) AND length(email) BETWEEN 3 AND 254
                        AND email LIKE '_%@_%'),
    role         text NOT NULL CHECK (role IN ('OWNER', 'ADMIN', 'USER')),
    -- 'pending_<uuid>' while creation is in flight, the Auth0 user id afterwards.
    auth0_sub    text NOT NULL CONSTRAINT users_auth0_sub_key UNIQUE CHECK (auth0_sub <> ''),
    is_active    boolean NOT NULL DEFAULT true,
    created_by   uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    -- Lets employees reference (id, tenant_id) so a link can never cross tenants.
    CONSTRAINT users_id_tenant_key UNIQUE (id, tenant_id)
);
-- One account per address across all tenants, whatever the case.
CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email));
CREATE INDEX users_pending_created_at_idx ON users (created_at) WHERE auth0_sub LIKE 'pending\_%';

CREATE TABLE employees (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id        uuid NOT NULL REFERENCES tenants (id),
    business_id      uuid,
    user_id          uuid CONSTRAINT employees_user_id_key UNIQUE,
    first_name       text NOT NULL CHECK (btrim(first_name) <> ''),
    last_name        text NOT NULL CHECK (btrim(last_name) <> ''),
    email            text,
    department       text,
    job_title        text,
    employment_type  text CHECK (employment_type IN
                         ('FULL_TIME', 'PART_TIME', 'CONTRACTOR', 'TEMPORARY', 'INTERN')),
    hire_date        date,
    is_active        boolean NOT NULL DEFAULT true,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    -- Deleting a user unlinks the employee; the employee record itself stays.
    CONSTRAINT employees_user_same_tenant_fkey FOREIGN KEY (user_id, tenant_id)
        REFERENCES users (id, tenant_id) ON DELETE SET NULL (user_id)
);
CREATE INDEX employees_tenant_idx ON employees (tenant_id);

CREATE TABLE pages (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL CHECK (btrim(name) <> ''),
    path        text NOT NULL CONSTRAINT pages_path_key UNIQUE CHECK (path LIKE '/%'),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE user_page_access (
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    page_id     uuid NOT NULL REFERENCES pages (id) ON DELETE CASCADE,
    can_read    boolean NOT NULL DEFAULT false,
    can_write   boolean NOT NULL DEFAULT false,
    can_edit    boolean NOT NULL DEFAULT false,
    can_delete  boolean NOT NULL DEFAULT false,
    PRIMARY KEY (user_id, page_id)
);
CREATE INDEX user_page_access_page_idx ON user_page_access (page_id);

CREATE TABLE password_reset_tokens (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- SHA-256 of the token; the raw token only ever travels in the email link.
    token_hash  bytea NOT NULL CONSTRAINT password_reset_tokens_token_hash_key UNIQUE
                CHECK (length(token_hash) = 32),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (expires_at > created_at)
);
CREATE INDEX password_reset_tokens_user_idx ON password_reset_tokens (user_id);
CREATE INDEX password_reset_tokens_expires_idx ON password_reset_tokens (expires_at);
