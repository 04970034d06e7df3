#!/usr/bin/env bash
# `make chaos`: the fault campaign (tests/src/bin/chaos.rs) on a throwaway Postgres, with the
# debug binaries: creates and the user lifecycle (update, deactivate, reactivate, delete)
# through the admin API (create-user) and through SCIM (scim: Okta's and Entra's creates,
# PATCHes, PUTs and DELETEs) on the same users, under kills and faults. Knobs: CHAOS_INSTANCES,
# CHAOS_SCIM_INSTANCES (scim processes, default 2), CHAOS_SECONDS, CHAOS_SEED, CHAOS_KILL_PERCENT,
# CHAOS_LIFECYCLE_PERCENT (the share of lifecycle requests, default 40),
# CHAOS_FAULT_EVERY_MS, CHAOS_FUNCTION_TIMEOUT_MS, CHAOS_CLEANUP_EVERY_MS, CHAOS_GRACE_MS
# (below the hard timeout it breaks cleanup's contract, to see the checker catch it);
# CHAOS_REPORT is the file written (default docs/RELIABILITY.md, empty for none). Exits
# non-zero if an invariant failed.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/throwaway.sh

if [ -z "${TEST_DATABASE_URL:-}" ]; then
  throwaway_postgres provisioning-pg
  export TEST_DATABASE_URL="$THROWAWAY_PG_URL"
  echo "throwaway Postgres at ${TEST_DATABASE_URL}"
fi

# The campaign drives the real create-user and scim binaries; they are built with it.
cargo build --locked --bin create-user --bin scim --bin chaos
export CHAOS_MACHINE="${CHAOS_MACHINE:-a $(nproc)-core $(uname -s) machine}"
export CHAOS_BINARIES="${CHAOS_BINARIES:-debug (unoptimised) binaries}"
"${CARGO_TARGET_DIR:-target}/debug/chaos"
