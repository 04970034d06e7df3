#!/usr/bin/env bash
# A throwaway Postgres cluster on loopback, for tests and the local stack.
#   scripts/pg.sh start DIR   creates and starts a cluster in DIR, prints its DATABASE_URL;
#                             TLS is on with a CA made now: DIR/tls/ca.crt (and a wrong one,
#                             DIR/tls/wrong-ca.crt, for tests that must fail verification)
#   scripts/pg.sh stop DIR    stops it (by the PID postgres wrote) and deletes DIR
set -euo pipefail

cmd=${1:?usage: pg.sh start|stop DIR}
dir=${2:?usage: pg.sh start|stop DIR}

pg_bin() {
  if command -v pg_config >/dev/null && [ -x "$(pg_config --bindir)/initdb" ]; then
    pg_config --bindir
    return
  fi
  local found
  found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  [ -n "$found" ] && { echo "$found"; return; }
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing PostgreSQL from Debian's packages" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql) >&2
    ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1
    return
  fi
  echo "PostgreSQL 15+ is needed: install it (Debian: apt-get install postgresql)" >&2
  exit 1
}

# initdb refuses to run as root: run the server as the postgres user then.
as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# A throwaway CA and a server certificate for 127.0.0.1/localhost, made with the openssl CLI.
make_certificates() {
  local tls=$1
  command -v openssl >/dev/null || {
    [ "$(id -u)" = 0 ] && (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl) >&2
  }
  mkdir -p "$tls"
  (
    cd "$tls"
    for ca in ca wrong-ca; do
      openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=provisioning test $ca" \
        -keyout "$ca.key" -out "$ca.crt" 2>/dev/null
    done
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout server.key -out server.csr 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' >server.ext
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
      -extfile server.ext -out server.crt 2>/dev/null
    chmod 600 server.key
  )
  [ "$(id -u)" = 0 ] && chown -R postgres: "$tls"
  return 0
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

case "$cmd" in
  start)
    bin=$(pg_bin)
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres: "$dir"
    port=$(free_port)
    make_certificates "$dir/tls"
    # Passwords are checked over TCP (scram), as on RDS, so credential rotation can be tested;
    # the local socket stays trusted for pg_ctl.
    password=$(python3 -c 'import secrets; print(secrets.token_hex(12))')
    echo "$password" >"$dir/password"
    [ "$(id -u)" = 0 ] && chown postgres: "$dir/password"
    as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
      --pwfile="$dir/password" -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; exit 1; }
    # Durability off: the cluster lives for one test run.
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-p $port -c listen_addresses=127.0.0.1 -k $dir -c max_connections=300 -c ssl=on -c ssl_cert_file=$dir/tls/server.crt -c ssl_key_file=$dir/tls/server.key -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
      start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
    echo "$port" >"$dir/port"
    echo "postgres://postgres:$password@127.0.0.1:$port/postgres"
    ;;
  stop)
    [ -d "$dir/data" ] || exit 0
    bin=$(pg_bin)
    as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || {
      # pg_ctl failed: stop exactly the postmaster this cluster recorded.
      pid=$(head -n 1 "$dir/data/postmaster.pid" 2>/dev/null || true)
      [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
    }
    rm -rf "$dir"
    ;;
  *)
    echo "usage: pg.sh start|stop DIR" >&2
    exit 2
    ;;
esac
