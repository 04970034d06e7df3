#!/usr/bin/env bash
# `make dev`: starts the local stack in the background and returns.
#   - a throwaway Postgres (scripts/pg.sh), migrated and seeded with tests/fixtures/seed.sql
#   - local-stack: the Auth0 and email doubles (127.0.0.1:4010, :4020) with the seeded people's
#     logins, the local API Gateway for template.yaml's routes (:4000) and the set-password
#     page (FRONTEND_URL = http://localhost:3000)
#   - `cargo lambda watch` on 127.0.0.1:9000, the functions configured for all of the above
#   - a SCIM token of Acme Corp, made through the admin API, printed and kept in
#     .local/scim-token (`make scim-token`) for the SCIM API at http://127.0.0.1:4000/scim/v2
# Every PID it starts is in .local/pids; `make stop` (scripts/stop.sh) ends exactly those.
# Ports: AUTH0_DOUBLE_PORT, EMAIL_DOUBLE_PORT, GATEWAY_PORT, FRONTEND_PORT, WATCH_PORT; cleanup's
# grace period: CLEANUP_GRACE_PERIOD_MINUTES (15, at least 1). The other make targets read
# them back from .local/stack.env.
set -euo pipefail
cd "$(dirname "$0")/.."

state=.local
auth0_port=${AUTH0_DOUBLE_PORT:-4010}
email_port=${EMAIL_DOUBLE_PORT:-4020}
gateway_port=${GATEWAY_PORT:-4000}
frontend_port=${FRONTEND_PORT:-3000}
watch_port=${WATCH_PORT:-9000}
grace_minutes=${CLEANUP_GRACE_PERIOD_MINUTES:-15}
target=${CARGO_TARGET_DIR:-target}
seed_password=${SEED_PASSWORD:-Local-Dev-Passw0rd}

if [ -s "$state/pids" ] || [ -s "$state/pg_dir" ]; then
  echo "the local stack is already running (.local/pids); \`make stop\` first" >&2
  exit 1
fi
case "$grace_minutes" in
  '' | *[!0-9]*) echo "CLEANUP_GRACE_PERIOD_MINUTES=$grace_minutes is not a number of minutes" >&2; exit 1 ;;
esac
[ "$grace_minutes" -ge 1 ] || { echo "CLEANUP_GRACE_PERIOD_MINUTES must be at least 1" >&2; exit 1; }
for port in "$auth0_port" "$email_port" "$gateway_port" "$frontend_port" "$watch_port"; do
  # SO_REUSEADDR as the servers use it: a port in TIME_WAIT from the last run is free.
  python3 -c 'import socket,sys; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", int(sys.argv[1])))' "$port" 2>/dev/null \
    || { echo "port $port is taken; stop what uses it or set AUTH0_DOUBLE_PORT/EMAIL_DOUBLE_PORT/GATEWAY_PORT/FRONTEND_PORT/WATCH_PORT" >&2; exit 1; }
done
mkdir -p "$state"

step() { echo "== [$1/6] $2"; }

step 1 "Python tools (cargo-lambda, zig) in .venv"
scripts/venv.sh build
export PATH="$PWD/.venv/bin:$PATH"

# cargo prints each crate as it compiles: a cold target/ takes minutes on two cores, a warm one
# a second. The functions are built here, so `cargo lambda watch` finds them ready.
step 2 "building local-stack, migrate-and-seed and the four functions (debug; minutes when cold)"
cargo build --locked -p testkit -p create-user -p cleanup -p set-password -p scim \
  --bin local-stack --bin migrate-and-seed --bin create-user --bin cleanup --bin set-password \
  --bin scim

# From here on, a failure stops whatever was already started.
trap 'echo "make dev failed; stopping what it started" >&2; scripts/stop.sh' ERR

step 3 "Postgres: a throwaway cluster, migrated and seeded"
pg_dir=$(mktemp -d /tmp/provisioning-dev.XXXXXX)
echo "$pg_dir" >"$state/pg_dir"
database_url=$(scripts/pg.sh start "$pg_dir")
DATABASE_URL=$database_url "$target/debug/migrate-and-seed"

# The doubles accept these credentials; the functions are given the same ones. TLS to
# Postgres is verified as in production, against the CA pg.sh made for this cluster.
auth0_client_id=dev-client-id
auth0_client_secret=dev-client-secret
email_api_key=dev-email-key
frontend_url=http://localhost:$frontend_port
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
FRONTEND_URL=$frontend_url
CLEANUP_GRACE_PERIOD_MINUTES=$grace_minutes
LOG_FORMAT=text
RUST_LOG=info
NO_COLOR=1
ENV
# What the other make targets (invoke, token, state, psql, logs) need to know of this stack.
cat >"$state/stack.env" <<ENV
AUTH0_DOUBLE_PORT=$auth0_port
EMAIL_DOUBLE_PORT=$email_port
GATEWAY_PORT=$gateway_port
FRONTEND_PORT=$frontend_port
WATCH_PORT=$watch_port
AUTH0_CLIENT_ID=$auth0_client_id
AUTH0_AUDIENCE=https://api.acme.test
SEED_PASSWORD=$seed_password
PG_DIR=$pg_dir
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

wait_for() { # what, port, seconds, log name
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

step 4 "local-stack: the doubles, the seeded logins, the gateway and the page"
AUTH0_DOUBLE_PORT=$auth0_port EMAIL_DOUBLE_PORT=$email_port GATEWAY_PORT=$gateway_port \
  FRONTEND_PORT=$frontend_port WATCH_PORT=$watch_port FRONTEND_URL=$frontend_url \
  AUTH0_CLIENT_ID=$auth0_client_id AUTH0_CLIENT_SECRET=$auth0_client_secret EMAIL_API_KEY=$email_api_key \
  DATABASE_URL=$database_url SEED_PASSWORD=$seed_password \
  start_bg local-stack "$target/debug/local-stack"
wait_for "the Auth0 double" "$auth0_port" 20 local-stack
wait_for "the email double" "$email_port" 20 local-stack
wait_for "the set-password page" "$frontend_port" 20 local-stack
wait_for "the gateway" "$gateway_port" 20 local-stack

step 5 "cargo lambda watch"
NO_COLOR=1 CARGO_TERM_COLOR=never start_bg watch cargo lambda watch \
  --invoke-address 127.0.0.1 --invoke-port "$watch_port" --env-file "$state/dev.env"
wait_for "cargo lambda watch" "$watch_port" 120 watch

step 6 "a SCIM token of Acme Corp, made by its seeded admin through the admin API"
scim_token=$(NEW=1 scripts/scim-token.sh | tail -n 1)

cat <<MSG
== the local stack is running
   API Gateway         http://127.0.0.1:$gateway_port/api   (every route of template.yaml)
   SCIM 2.0            http://127.0.0.1:$gateway_port/scim/v2   (Acme's SCIM token below; docs/scim-local.md)
   set-password page   $frontend_url/auth/set-password   (the emailed links open it)
   Postgres            make psql   (tenants Acme Corp and Globex, their admins, 3 pages)
   Auth0 double        http://127.0.0.1:$auth0_port   (seeded people log in with $seed_password)
   email double        http://127.0.0.1:$email_port   (GET /__control/state)
   cargo lambda watch  http://127.0.0.1:$watch_port   (rebuilds on every edit)
   cleanup's grace     $grace_minutes min   (CLEANUP_GRACE_PERIOD_MINUTES)

   TOKEN=\$(make -s token USER=admin@acme.test | tail -n 1)
   curl -i http://127.0.0.1:$gateway_port/api/direct-users/create -H "authorization: Bearer \$TOKEN" \\
        -H 'content-type: application/json' -d '{"email": "someone@acme.test"}'
   SCIM_TOKEN=$scim_token   (make -s scim-token | tail -n 1)
   curl -s http://127.0.0.1:$gateway_port/scim/v2/Users -H "Authorization: Bearer \$SCIM_TOKEN"
   make state          users in Postgres and the Auth0 double, the emails and their links
   make invoke         sends events/create-user.json straight to the function
   make logs           the stack's logs;  make stop   stops all of it (PIDs in $state/pids)
MSG
