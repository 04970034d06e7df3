#!/usr/bin/env bash
# `make invoke [EVENT=events/….json] [FUNCTION=create-user]`: sends an event straight to the
# function under `cargo lambda watch` (started by `make dev`), as `cargo lambda invoke` does, and
# prints the event's name, the answer (an HTTP response as its status, the headers the function
# set and the JSON body) and the emails the call sent, or that it sent none.
#   - set-password events: the token placeholder (0 × 64) becomes the token of the newest link
#     emailed to the event's own address (its body's "email");
#   - user-* events: the user id placeholder becomes new.hire@acme.test's id, read from its
#     Auth0 user's tags in the double.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/local-env.sh

event=${1:-events/create-user.json}
function=${2:-create-user}
[ -f "$event" ] || { echo "no event file $event (see events/)" >&2; exit 1; }
export PATH="$PWD/.venv/bin:$PATH"

work=$(mktemp -d "${TMPDIR:-/tmp}/invoke.XXXXXX")
trap 'rm -rf "$work"' EXIT
cp "$event" "$work/event.json"
echo "== $event → $function (cargo lambda invoke on 127.0.0.1:$WATCH_PORT)"

# The set-password events hold a placeholder token: put in the token of the newest link sent
# to the event's address, as that person's browser would (create the user first).
placeholder=0000000000000000000000000000000000000000000000000000000000000000
if grep -q "$placeholder" "$work/event.json"; then
  curl -sS "$LOCAL_EMAIL_STATE" | python3 -c '
import base64, json, sys, urllib.parse
placeholder, path = sys.argv[1:3]
event = json.load(open(path))
body = event.get("body") or "{}"
if event.get("isBase64Encoded"):
    body = base64.b64decode(body).decode()
address = (json.loads(body).get("email") or "").strip().lower()
emails = json.load(sys.stdin).get("emails") or []
tokens = []
for email in emails:
    for word in (email.get("text") or "").split():
        if "/auth/set-password?" not in word:
            continue
        query = urllib.parse.parse_qs(urllib.parse.urlparse(word).query)
        if (query.get("email") or [""])[0].lower() == address:
            tokens.append(query["token"][0])
if not tokens:
    sys.exit("no password-setup link was emailed to %s yet: create that user first (make invoke)" % address)
text = open(path).read().replace(placeholder, tokens[-1])
open(path, "w").write(text)
print("   (the token of the newest link emailed to %s)" % address)
' "$placeholder" "$work/event.json"
fi

# The user-* events name new.hire@acme.test by a placeholder id: put in its id (it changes
# with every create), read from the tags of its Auth0 user in the Auth0 double.
user_placeholder=00000000-0000-4000-8000-00000000cafe
if grep -q "$user_placeholder" "$work/event.json"; then
  curl -sS "$LOCAL_AUTH0_STATE" | python3 -c '
import json, sys
placeholder, path = sys.argv[1:3]
users = json.load(sys.stdin).get("users") or []
ids = [u.get("app_metadata", {}).get("db_user_id") for u in users if u.get("email") == "new.hire@acme.test"]
if not ids or not ids[0]:
    sys.exit("new.hire@acme.test has no Auth0 user in the double: create it first (make invoke)")
text = open(path).read().replace(placeholder, ids[0])
open(path, "w").write(text)
print("   (new.hire@acme.test is user %s)" % ids[0])
' "$user_placeholder" "$work/event.json"
fi

emails_before=$(curl -sS "$LOCAL_EMAIL_STATE" | python3 -c 'import json,sys; print(len(json.load(sys.stdin).get("emails") or []))')

cargo lambda invoke "$function" --invoke-address 127.0.0.1 --invoke-port "$WATCH_PORT" \
  --data-file "$work/event.json" >"$work/response.json"
# An API Gateway response: its status, the headers the function set, and its JSON body unpacked.
python3 -c '
import base64, http, json, sys
r = json.load(open(sys.argv[1]))
if isinstance(r, dict) and "statusCode" in r:
    status = int(r["statusCode"])
    try:
        reason = http.HTTPStatus(status).phrase
    except ValueError:
        reason = ""
    print("HTTP %d %s" % (status, reason))
    for name, value in sorted((r.get("headers") or {}).items()):
        print("%s: %s" % (name.lower(), value))
    body = r.get("body") or ""
    if r.get("isBase64Encoded"):
        body = base64.b64decode(body).decode(errors="replace")
    print()
    try:
        print(json.dumps(json.loads(body), indent=2))
    except ValueError:
        print(body)
else:
    print(json.dumps(r, indent=2))
' "$work/response.json"

echo "== emails sent by this call (the email double, $LOCAL_EMAIL_STATE)"
curl -sS "$LOCAL_EMAIL_STATE" | python3 -c '
import json, sys
before = int(sys.argv[1])
emails = json.load(sys.stdin).get("emails") or []
sent = emails[before:]
if not sent:
    print("no email sent")
for email in sent:
    print("to:", ", ".join(email.get("to") or []))
    print("subject:", email.get("subject"))
    print(email.get("text") or email.get("html") or "")
' "$emails_before"
