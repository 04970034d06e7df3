#!/usr/bin/env bash
# `make scim-conformance`: the two SCIM conformance suites (scim2-tester, scim-sanity) alone,
# as `make test` runs them: the integration test `scim_conformance` starts the local stack (the
# gateway, the real create-user, set-password and scim binaries, the doubles) on a database of
# its own, makes a SCIM token through the admin API and runs tests/scim/conformance.py, whose
# table of checks it prints. A throwaway Postgres unless DATABASE_URL is set. Against a running
# `make dev` instead: docs/scim-local.md.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/throwaway.sh
if [ -z "${DATABASE_URL:-}" ]; then
  throwaway_postgres provisioning-scim
  export DATABASE_URL="$THROWAWAY_PG_URL"
fi
export TEST_DATABASE_URL="$DATABASE_URL"

scripts/venv.sh
cargo build --locked -p create-user -p set-password -p scim \
  --bin create-user --bin set-password --bin scim
cargo test --locked -p testkit --test it scim_conformance -- --nocapture
