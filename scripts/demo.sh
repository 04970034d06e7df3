#!/usr/bin/env bash
# `make demo`: throwaway Postgres + the doubles + the real create-user binary, then stop it all.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/throwaway.sh
throwaway_postgres provisioning-demo
export DATABASE_URL="$THROWAWAY_PG_URL"
cargo build --bins --locked --quiet
cargo run --quiet --locked -p testkit --bin demo
