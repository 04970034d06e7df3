#!/usr/bin/env bash
# `make scim-token`: under `make dev`, a SCIM token of Acme Corp on its last line, as an
# identity provider is given one: made by Acme's seeded admin through the admin API (`POST
# /api/scim-tokens` with the admin's JWT from the Auth0 double, through the local gateway).
# `make dev` makes one at start and keeps it in .local/scim-token; this prints that one, or
# makes it when there is none (NEW=1: a new one).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/local-env.sh

saved=.local/scim-token
if [ -s "$saved" ] && [ -z "${NEW:-}" ]; then
  echo "== the SCIM token make dev made (.local/scim-token; NEW=1 makes another)"
  cat "$saved"
  exit 0
fi

admin=$(scripts/token.sh admin@acme.test | tail -n 1)
url=http://127.0.0.1:$GATEWAY_PORT/api/scim-tokens
echo "== admin@acme.test makes a SCIM token (POST $url)"
# The first call after `make dev` may wait for `cargo lambda watch` to start create-user.
for attempt in 1 2 3; do
  answer=$(curl -sS --max-time 60 -w '\n%{http_code}' "$url" -H "authorization: Bearer $admin" \
    -H 'content-type: application/json' -d '{"name": "make dev"}') || answer=$'\n000'
  status=${answer##*$'\n'}
  answer=${answer%$'\n'*}
  case "$status" in
    201) break ;;
    5* | 000) [ "$attempt" -lt 3 ] && sleep 2 && continue ;;
  esac
  echo "HTTP $status: $answer" >&2
  exit 1
done
umask 077
python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])' <<<"$answer" >"$saved.new"
mv "$saved.new" "$saved"
cat "$saved"
