#!/usr/bin/env bash
# `make demo`: throwaway Postgres + the doubles + the real create-user binary, then stop it all.
set -euo pipefail
cd "$(dirname "$0")/.."
pg_dir=$(mktemp -d /tmp/provisioning-demo.XXXXXX)
trap 'scripts/pg.sh stop "$pg_dir"' EXIT INT TERM
DATABASE_URL=$(scripts/pg.sh start "$pg_dir")
export DATABASE_URL
cargo build --bins --locked --quiet
cargo run --quiet --locked -p testkit --bin demo
