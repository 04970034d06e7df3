#!/usr/bin/env bash
# `make invoke [EVENT=events/….json] [FUNCTION=create-user]`: sends an event to the function
# under `cargo lambda watch` (started by `make dev`) and prints its answer (an HTTP response is
# shown as status and JSON body); for create-user, then the last email the double received.
set -euo pipefail
cd "$(dirname "$0")/.."

event=${1:-events/create-user.json}
function=${2:-create-user}
watch_port=${WATCH_PORT:-9000}
email_port=${EMAIL_DOUBLE_PORT:-4020}
auth0_port=${AUTH0_DOUBLE_PORT:-4010}

[ -s .local/pids ] || { echo "the local stack is not running: \`make dev\` first" >&2; exit 1; }
export PATH="$PWD/.venv/bin:$PATH"

# The set-password events hold a placeholder token: put in the newest emailed link's token,
# as the person's browser would (create the user first, e.g. `make invoke`).
placeholder=0000000000000000000000000000000000000000000000000000000000000000
if grep -q "$placeholder" "$event"; then
  filled=$(mktemp "${TMPDIR:-/tmp}/invoke-event.XXXXXX")
  trap 'rm -f "$filled"' EXIT
  curl -s "http://127.0.0.1:$email_port/__control/state" | python3 -c '
import json, sys, urllib.parse
placeholder, event_file, out = sys.argv[1:4]
emails = json.load(sys.stdin).get("emails") or []
links = [w for e in emails for w in (e.get("text") or "").split() if "/auth/set-password?" in w]
if not links:
    sys.exit("no password-setup link in the email double yet: create a user first (make invoke)")
query = urllib.parse.parse_qs(urllib.parse.urlparse(links[-1]).query)
text = open(event_file).read().replace(placeholder, query["token"][0])
open(out, "w").write(text)
' "$placeholder" "$event" "$filled"
  event=$filled
fi

# The user-* events name new.hire@acme.test by a placeholder id: put in its id (it changes
# with every create), read from the tags of its Auth0 user in the Auth0 double.
user_placeholder=00000000-0000-4000-8000-00000000cafe
if grep -q "$user_placeholder" "$event"; then
  with_id=$(mktemp "${TMPDIR:-/tmp}/invoke-event.XXXXXX")
  trap 'rm -f "$with_id" ${filled:-}' EXIT
  curl -s "http://127.0.0.1:$auth0_port/__control/state" | python3 -c '
import json, sys
placeholder, event_file, out = sys.argv[1:4]
users = json.load(sys.stdin).get("users") or []
ids = [u.get("app_metadata", {}).get("db_user_id") for u in users if u.get("email") == "new.hire@acme.test"]
if not ids or not ids[0]:
    sys.exit("new.hire@acme.test has no Auth0 user in the double: create it first (make invoke)")
open(out, "w").write(open(event_file).read().replace(placeholder, ids[0]))
' "$user_placeholder" "$event" "$with_id"
  event=$with_id
fi

echo "== $function <- $event"
response=$(cargo lambda invoke "$function" --invoke-address 127.0.0.1 --invoke-port "$watch_port" \
  --data-file "$event")
# An API Gateway response carries its JSON body as a string: show it unpacked.
python3 -c '
import json, sys
r = json.loads(sys.argv[1])
if isinstance(r, dict) and "statusCode" in r:
    print("HTTP", r["statusCode"])
    body = r.get("body") or "null"
    try:
        print(json.dumps(json.loads(body), indent=2))
    except ValueError:
        print(body)
else:
    print(json.dumps(r, indent=2))
' "$response"

[ "$function" = create-user ] || exit 0
echo "== the email double (http://127.0.0.1:$email_port/__control/state), last email:"
curl -s "http://127.0.0.1:$email_port/__control/state" | python3 -c '
import json, sys
state = json.load(sys.stdin)
emails = state.get("emails") or []
if not emails:
    print("(none yet)")
else:
    last = emails[-1]
    print("to:", ", ".join(last.get("to", [])))
    print("subject:", last.get("subject"))
    print(last.get("text") or last.get("html") or "")
print("(%d email(s) in all)" % len(emails))
'
