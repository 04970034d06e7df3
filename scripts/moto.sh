#!/usr/bin/env bash
# moto's server on loopback, standing in for AWS Secrets Manager in tests.
#   scripts/moto.sh start DIR   starts it (PID in DIR/moto.pid), records every request, prints its URL
#   scripts/moto.sh stop DIR    stops exactly that process
set -euo pipefail
cd "$(dirname "$0")/.."
cmd=${1:?usage: moto.sh start|stop DIR}
dir=${2:?usage: moto.sh start|stop DIR}

case "$cmd" in
  start)
    mkdir -p "$dir"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    # The recording (what tests count GetSecretValue calls from) goes to moto's working dir.
    (cd "$dir" && exec "$OLDPWD/.venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$dir/moto.log" 2>&1) &
    echo $! >"$dir/moto.pid"
    url="http://127.0.0.1:$port"
    for _ in $(seq 1 100); do
      if python3 -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1] + '/moto-api/', timeout=1)" "$url" 2>/dev/null; then
        python3 -c "import urllib.request,sys; urllib.request.urlopen(urllib.request.Request(sys.argv[1] + '/moto-api/recorder/start-recording', method='POST'))" "$url"
        echo "$url"
        exit 0
      fi
      sleep 0.1
    done
    echo "moto_server did not start; its log:" >&2
    cat "$dir/moto.log" >&2
    exit 1
    ;;
  stop)
    pid=$(cat "$dir/moto.pid" 2>/dev/null || true)
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
    rm -f "$dir/moto.pid"
    ;;
  *)
    echo "usage: moto.sh start|stop DIR" >&2
    exit 2
    ;;
esac
