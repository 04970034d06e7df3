-- Where cleanup's Auth0 sweep stands (docs/cleanup.md, "The Auth0 sweep"), so a run checks
-- what is new since the last one instead of every tagged Auth0 user. One row; only the run
-- holding the sweep lock writes it, after each page of search results it has dealt with.
CREATE TABLE auth0_sweep (
    id                    boolean PRIMARY KEY DEFAULT true CHECK (id),
    -- The incremental pass: every tagged Auth0 user created before this was checked once it
    -- was past the grace period. NULL until the first run sets it.
    watermark             timestamptz,
    -- The full pass, walking all tagged users older than the watermark in slices: when the
    -- current round began (NULL: the next run begins one), how far it is (every tagged user
    -- created before the cursor was visited by this round; NULL: not begun) and how many
    -- users it has visited.
    round_started_at      timestamptz,
    round_cursor          timestamptz,
    round_visited         bigint NOT NULL DEFAULT 0 CHECK (round_visited >= 0),
    rounds_completed      bigint NOT NULL DEFAULT 0 CHECK (rounds_completed >= 0),
    last_round_started_at timestamptz,
    last_round_ended_at   timestamptz,
    -- When the last run that swept began: the time between runs paces the full pass.
    last_run_at           timestamptz
);
INSERT INTO auth0_sweep DEFAULT VALUES;

-- Auth0 users a sweep could not settle (their address was busy, Auth0 failed, they changed
-- since the search): the next runs look at them again by id, a few times, before leaving
-- them to the full pass.
CREATE TABLE auth0_sweep_retries (
    auth0_user_id  text PRIMARY KEY CHECK (auth0_user_id <> ''),
    attempts       integer NOT NULL DEFAULT 1 CHECK (attempts > 0),
    added_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX auth0_sweep_retries_added_at_idx ON auth0_sweep_retries (added_at);
