#!/usr/bin/env bash
# `make stop`: ends exactly what `make dev` started: the PIDs in .local/pids (each the leader
# of its own session, so its process group holds its children, e.g. the function processes
# of `cargo lambda watch`), then the Postgres cluster in .local/pg_dir.
set -euo pipefail
cd "$(dirname "$0")/.."
state=.local

# True while `pid` is still the process recorded (same start time: not a reused PID).
same_process() {
  [ "$(ps -o lstart= -p "$1" 2>/dev/null)" = "$2" ]
}

if [ -s "$state/pids" ]; then
  while read -r pid name started; do
    if same_process "$pid" "$started"; then
      echo "stopping $name (pid $pid)"
      # setsid made it a process-group leader: signal its group (it and its children).
      if [ "$(ps -o pgid= -p "$pid" | tr -d ' ')" = "$pid" ]; then
        kill -TERM -- "-$pid" 2>/dev/null || true
      else
        kill -TERM "$pid" 2>/dev/null || true
      fi
      for _ in $(seq 50); do same_process "$pid" "$started" || break; sleep 0.1; done
      if same_process "$pid" "$started"; then
        echo "$name (pid $pid) ignored SIGTERM; sending SIGKILL" >&2
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
      fi
    else
      echo "$name (pid $pid) is not running"
    fi
  done <"$state/pids"
  rm -f "$state/pids"
fi

if [ -s "$state/pg_dir" ]; then
  pg_dir=$(cat "$state/pg_dir")
  echo "stopping Postgres ($pg_dir)"
  scripts/pg.sh stop "$pg_dir"
  rm -f "$state/pg_dir"
fi
rm -f "$state/dev.env" "$state/stack.env" "$state/scim-token"
