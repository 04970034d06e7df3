-- Completing the invitation: when the invited person set their password (NULL while the
-- user is still in set-up; resend-invitation is refused once it is set).
ALTER TABLE users ADD COLUMN setup_completed_at timestamptz;

-- A user's open (unused) tokens are found by user on every set-password and resend;
-- at most one per user stays open, so the partial index stays tiny.
CREATE INDEX password_reset_tokens_open_user_idx ON password_reset_tokens (user_id)
    WHERE used_at IS NULL;


-- Cleanup purges tokens used (or superseded) longer than the retention ago.
CREATE INDEX password_reset_tokens_used_idx ON password_reset_tokens (used_at)
    WHERE used_at IS NOT NULL;
