#!/usr/bin/env bash
# `make dev`: starts the local stack in the background and returns.
#   - a throwaway Postgres (scripts/pg.sh), migrated and seeded with tests/fixtures/seed.sql
#   - the Auth0 and email doubles (local-stack) on 127.0.0.1:4010 and :4020
#   - `cargo lambda watch` on 127.0.0.1:9000, the functions configured for all of the above
# Every PID it starts is in .local/pids; `make stop` (scripts/stop.sh) ends exactly those.
set -euo pipefail
cd "$(dirname "$0")/.."

state=.local
auth0_port=${AUTH0_DOUBLE_PORT:-4010}
email_port=${EMAIL_DOUBLE_PORT:-4020}
watch_port=${WATCH_PORT:-9000}
target=${CARGO_TARGET_DIR:-target}

if [ -s "$state/pids" ] || [ -s "$state/pg_dir" ]; then
  echo "the local stack is already running (.local/pids); \`make stop\` first" >&2
  exit 1
fi
for port in "$auth0_port" "$email_port" "$watch_port"; do
  # SO_REUSEADDR as the servers use it: a port in TIME_WAIT from the last run is free.
  python3 -c 'import socket,sys; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", int(sys.argv[1])))' "$port" 2>/dev/null \
    || { echo "port $port is taken; stop what uses it or set AUTH0_DOUBLE_PORT/EMAIL_DOUBLE_PORT/WATCH_PORT" >&2; exit 1; }
done
mkdir -p "$state"

scripts/venv.sh build
export PATH="$PWD/.venv/bin:$PATH"

echo "== building the local-stack binaries and the functions (debug)"
cargo build --locked --quiet -p testkit --bin local-stack --bin migrate-and-seed -p create-user -p cleanup -p set-password

# From here on, a failure stops whatever was already started.
trap 'echo "make dev failed; stopping what it started" >&2; scripts/stop.sh' ERR

pg_dir=$(mktemp -d /tmp/provisioning-dev.XXXXXX)
echo "$pg_dir" >"$state/pg_dir"
database_url=$(scripts/pg.sh start "$pg_dir")
DATABASE_URL=$database_url "$target/debug/migrate-and-seed"

# The doubles accept these credentials; the functions are given the same ones. TLS to
# Postgres is verified as in production, against the CA pg.sh made for this cluster.
auth0_client_id=dev-client-id
auth0_client_secret=dev-client-secret
email_api_key=dev-email-key
cat >"$state/dev.env" <<ENV
DATABASE_URL=$database_url
DB_SSLMODE=verify-full
DB_SSL_ROOT_CERT=$pg_dir/tls/ca.crt
AUTH0_DOMAIN=http://127.0.0.1:$auth0_port
AUTH0_CLIENT_ID=$auth0_client_id
AUTH0_CLIENT_SECRET=$auth0_client_secret
EMAIL_API_URL=http://127.0.0.1:$email_port
EMAIL_API_KEY=$email_api_key
EMAIL_FROM="Acme <no-reply@acme.test>"
FRONTEND_URL=http://localhost:3000
LOG_FORMAT=text
RUST_LOG=info
ENV

# Runs a command in its own session (so `make dev` can return) and records its PID and start
# time (which, unlike the command line, survives exec); the command execs in place, so the
# recorded PID is the command itself and the leader of its process group.
start_bg() {
  local name=$1
  shift
  rm -f "$state/$name.pid"
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$state/$name.pid" "$@" \
    >"$state/$name.log" 2>&1 </dev/null &
  for _ in $(seq 50); do [ -s "$state/$name.pid" ] && break; sleep 0.1; done
  local pid
  pid=$(cat "$state/$name.pid")
  rm -f "$state/$name.pid"
  printf '%s %s %s\n' "$pid" "$name" "$(ps -o lstart= -p "$pid")" >>"$state/pids"
}

wait_for() { # what, url-or-port, seconds
  for _ in $(seq $(($3 * 10))); do
    if python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 0.2)' "$2" 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  echo "$1 did not start within $3 s; its log: $state/$4.log" >&2
  tail -n 20 "$state/$4.log" >&2
  return 1
}

AUTH0_DOUBLE_PORT=$auth0_port EMAIL_DOUBLE_PORT=$email_port \
  AUTH0_CLIENT_ID=$auth0_client_id AUTH0_CLIENT_SECRET=$auth0_client_secret EMAIL_API_KEY=$email_api_key \
  start_bg local-stack "$target/debug/local-stack"
wait_for "the Auth0 double" "$auth0_port" 20 local-stack
wait_for "the email double" "$email_port" 20 local-stack

start_bg watch cargo lambda watch --invoke-address 127.0.0.1 --invoke-port "$watch_port" \
  --env-file "$state/dev.env"
wait_for "cargo lambda watch" "$watch_port" 120 watch

cat <<MSG
== the local stack is running
   Postgres            $database_url  (tenants Acme Corp and Globex, their admins, 3 pages)
   Auth0 double        http://127.0.0.1:$auth0_port   (GET /__control/state)
   email double        http://127.0.0.1:$email_port   (GET /__control/state)
   cargo lambda watch  http://127.0.0.1:$watch_port   (log: $state/watch.log)
   make invoke         sends events/create-user.json as the seeded admin
   make invoke EVENT=events/set-password.json FUNCTION=set-password
                       sets new.hire@acme.test's password with the newest emailed link
   make stop           stops all of it (PIDs in $state/pids)
MSG
