-- An index for every foreign key a delete or a lookup walks (docs/cleanup.md, "Indexes").

-- DELETE FROM users looks for rows created by the deleted user (ON DELETE SET NULL): without
-- this index every deleted row, a cleanup batch's included, scans the whole table.
CREATE INDEX users_created_by_idx ON users (created_by);

-- Every user of a tenant; a tenant cannot be deleted without it either.
CREATE INDEX users_tenant_idx ON users (tenant_id);
