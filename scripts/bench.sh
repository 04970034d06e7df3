#!/usr/bin/env bash
# `make bench`: a benchmark, not a test. Starts a throwaway Postgres, builds the release
# binaries, and runs tests/src/bin/bench.rs: the real create-user binary at 1, 8 and 32
# instances through Runtime API emulators against its floor (pgbench -M prepared with its own
# statements, same cluster, same run), the rest of the admin API (list over 100,000 users, get,
# update, deactivate, reactivate, delete) at one instance against theirs, the 100k cleanup,
# the Auth0 sweep at 10k, 100k and 1M tagged users (sweep_bench), SCIM (a filter lookup among
# 100,000 users, a full paged read of 10,000, creates beside the admin API's, and a first sync
# of 1,000 users against Auth0's rate limit), and the cold start with secrets from Secrets
# Manager (moto). Writes the measured part of docs/PERFORMANCE.md.
#   BENCH_SECONDS=10 BENCH_CLEANUP_ORPHANS=100000 BENCH_SWEEP_USERS=10000,100000,1000000 BENCH_LOG=info make bench
#   BENCH_INSTANCES=0 skips create-user's rows, BENCH_LIFECYCLE=0 the rest of the admin API,
#   BENCH_SCIM=0 SCIM's filter, paged read and creates, BENCH_SCIM_SYNC_USERS=0 the first sync
#   (BENCH_SCIM_SYNC_RATE=10 calls/s, BENCH_SCIM_SYNC_WORKERS=4).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

pgbench=$(ls -d /usr/lib/postgresql/*/bin/pgbench 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$pgbench" ] && command -v pg_config >/dev/null && [ -x "$(pg_config --bindir)/pgbench" ]; then
  pgbench="$(pg_config --bindir)/pgbench"
fi
[ -n "$pgbench" ] || pgbench=$(command -v pgbench || true)
[ -n "$pgbench" ] || { echo "pgbench is needed (it comes with the PostgreSQL server package)" >&2; exit 1; }
export PGBENCH="$pgbench"

source scripts/throwaway.sh
throwaway_postgres provisioning-bench-pg
export TEST_DATABASE_URL="$THROWAWAY_PG_URL" DATABASE_URL="$THROWAWAY_PG_URL"

# Cold start with secrets from Secrets Manager (coldstart.rs, run by bench): moto on loopback.
scripts/venv.sh
throwaway_moto
export TEST_MOTO_URL="$THROWAWAY_MOTO_URL"

cargo build --release --locked --bin create-user --bin scim --bin cleanup --bin set-password \
  --bin bench --bin cleanup_bench --bin sweep_bench --bin coldstart
"$CARGO_TARGET_DIR/release/bench"
