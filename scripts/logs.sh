#!/usr/bin/env bash
# `make logs [FOLLOW=1] [LINES=100]`: the local stack's logs (local-stack: the doubles, the
# gateway's one line per request and the page; watch: cargo lambda watch and the functions),
# the last LINES of each, without colour codes; FOLLOW=1 keeps printing what comes.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -s .local/local-stack.log ] || { echo "no logs yet: \`make dev\` first" >&2; exit 1; }

lines=${LINES:-100}
follow=()
[ "${FOLLOW:-}" = 1 ] && follow=(-F)
logs=(.local/local-stack.log)
[ -e .local/watch.log ] && logs+=(.local/watch.log)
# Colour and cursor sequences (ESC [ … letter) and other escapes out.
tail -n "$lines" "${follow[@]}" "${logs[@]}" | sed -u -E $'s/\x1b\\[[0-9;?]*[ -\\/]*[@-~]//g; s/\x1b[()][A-Z0-9]//g; s/\r$//'
