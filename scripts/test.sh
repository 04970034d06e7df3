#!/usr/bin/env bash
# `make test`: everything from a fresh machine. Checks the toolchain, starts a throwaway
# Postgres unless DATABASE_URL is set, runs every test, stops what it started.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo >/dev/null || { echo "cargo is needed (https://rustup.rs)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "python3 is needed" >&2; exit 1; }

source scripts/throwaway.sh

if [ -z "${DATABASE_URL:-}" ]; then
  throwaway_postgres provisioning-pg
  export DATABASE_URL="$THROWAWAY_PG_URL"
  echo "throwaway Postgres at ${DATABASE_URL}"
  # TLS tests verify the cluster's certificate against the CA pg.sh made for it.
  export TEST_PG_CA_FILE="$THROWAWAY_PG_DIR/tls/ca.crt"
  export TEST_PG_WRONG_CA_FILE="$THROWAWAY_PG_DIR/tls/wrong-ca.crt"
fi
# Tests make one database per test from a migrated template on this server.
export TEST_DATABASE_URL="$DATABASE_URL"

# The page's browser test drives Debian's Chromium through Debian's ChromeDriver: installed
# here when missing, as PostgreSQL is (root on Debian); without them the run fails, saying why.
browser=$(scripts/browser.sh) || { echo "the browser test needs chromium and chromium-driver (see above)" >&2; exit 1; }
while IFS= read -r line; do export "${line?}"; done <<<"$browser"
echo "browser: ${TEST_CHROMIUM:-} driven by ${TEST_CHROMEDRIVER:-}"

# The template must lint clean (cfn-lint from the project venv, installed when needed).
scripts/venv.sh
.venv/bin/cfn-lint template.yaml

# moto's server stands in for Secrets Manager; the real AWS SDK talks to it.
throwaway_moto
export TEST_MOTO_URL="$THROWAWAY_MOTO_URL"
echo "moto (Secrets Manager) at ${TEST_MOTO_URL}"

# The Lambda binaries are driven through the Runtime API by the tests, so build them first.
cargo build --workspace --bins --locked
cargo test --workspace --locked -- "$@"
