#!/usr/bin/env bash
# `make test`: everything from a fresh machine. Checks the toolchain, starts a throwaway
# Postgres unless DATABASE_URL is set, runs every test, stops what it started.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo >/dev/null || { echo "cargo is needed (https://rustup.rs)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "python3 is needed" >&2; exit 1; }

pg_dir=""
cleanup() {
  [ -n "$pg_dir" ] && scripts/pg.sh stop "$pg_dir"
  return 0
}
trap cleanup EXIT INT TERM

if [ -z "${DATABASE_URL:-}" ]; then
  pg_dir=$(mktemp -d /tmp/provisioning-pg.XXXXXX)
  DATABASE_URL=$(scripts/pg.sh start "$pg_dir")
  export DATABASE_URL
  echo "throwaway Postgres at ${DATABASE_URL}"
fi
# Tests make one database per test from a migrated template on this server.
export TEST_DATABASE_URL="$DATABASE_URL"

# The template must lint clean (cfn-lint from the project venv, installed when needed).
scripts/venv.sh
.venv/bin/cfn-lint template.yaml

# The Lambda binaries are driven through the Runtime API by the tests, so build them first.
cargo build --workspace --bins --locked
cargo test --workspace --locked -- "$@"
