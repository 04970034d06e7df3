#!/usr/bin/env bash
# `make psql`: psql on the local stack's database, over TLS verified as the functions do.
# Extra arguments go to psql, e.g. scripts/psql.sh -c 'select email from users'.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/local-env.sh

psql_bin=$(command -v psql || true)
if [ -z "$psql_bin" ]; then
  psql_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)/psql
fi
[ -x "$psql_bin" ] || { echo "psql is needed (Debian: apt-get install postgresql-client)" >&2; exit 1; }
separator='?'
case "$LOCAL_DATABASE_URL" in *\?*) separator='&' ;; esac
exec "$psql_bin" "${LOCAL_DATABASE_URL}${separator}sslmode=verify-full&sslrootcert=${LOCAL_DB_CA}" "$@"
