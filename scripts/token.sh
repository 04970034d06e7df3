#!/usr/bin/env bash
# `make token USER=admin@acme.test [PASSWORD=…]`: logs USER in to the Auth0 double the way the
# admin panel's login does (Auth0's password-realm grant, for the admin API's audience) and
# prints the access token on its last line. The seeded people's password is the default;
# a person who set their own through the page gives it as PASSWORD.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/local-env.sh

user=${1:-}
# USER is also the shell's own variable (`root`): anything that is no address means the admin.
case "$user" in
  *@*) ;;
  *) user=admin@acme.test ;;
esac
password=${2:-$SEED_PASSWORD}
url=http://127.0.0.1:$AUTH0_DOUBLE_PORT/oauth/token

body=$(python3 -c '
import json, sys
user, password, client_id, audience = sys.argv[1:5]
print(json.dumps({
    "grant_type": "http://auth0.com/oauth/grant-type/password-realm",
    "client_id": client_id,
    "username": user,
    "password": password,
    "realm": "Username-Password-Authentication",
    "audience": audience,
    "scope": "openid",
}))' "$user" "$password" "$AUTH0_CLIENT_ID" "$AUTH0_AUDIENCE")

echo "== $user logs in to the Auth0 double (POST $url, audience $AUTH0_AUDIENCE)"
answer=$(curl -sS -w '\n%{http_code}' "$url" -H 'content-type: application/json' -d "$body")
status=${answer##*$'\n'}
answer=${answer%$'\n'*}
if [ "$status" != 200 ]; then
  echo "HTTP $status: $answer" >&2
  exit 1
fi
python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])' <<<"$answer"
