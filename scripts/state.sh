#!/usr/bin/env bash
# `make state`: what the local stack holds now: the users in Postgres (with whether their
# password is set) and in the Auth0 double (blocked, open sessions, the row they are tagged
# with), and the emails sent with their links.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/local-env.sh

echo "== Postgres: users"
scripts/psql.sh -X -q -P footer=off -c "
  SELECT u.email, u.role, t.name AS tenant,
         CASE WHEN u.is_active THEN 'yes' ELSE 'no' END AS active,
         CASE WHEN u.setup_completed_at IS NOT NULL THEN 'yes' ELSE 'no' END AS password_set,
         CASE WHEN u.auth0_sub LIKE 'pending%' THEN 'pending' ELSE u.auth0_sub END AS auth0_user,
         u.id
    FROM users u JOIN tenants t ON t.id = u.tenant_id
   ORDER BY u.created_at, u.email"

echo "== Auth0 double ($LOCAL_AUTH0_STATE): users"
curl -sS "$LOCAL_AUTH0_STATE" | python3 -c '
import json, sys
state = json.load(sys.stdin)
access = state.get("access") or {}
rows = [("email", "user_id", "blocked", "sessions", "tagged row")]
for user in state.get("users") or []:
    a = access.get(user["user_id"], {})
    tag = (user.get("app_metadata") or {}).get("db_user_id") or "-"
    rows.append((user.get("email", ""), user["user_id"], "yes" if a.get("blocked") else "no",
                 str(a.get("sessions", 0)), tag))
widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
for row in rows:
    print(" " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths)))
'

echo "== email double ($LOCAL_EMAIL_STATE): emails, oldest first"
curl -sS "$LOCAL_EMAIL_STATE" | python3 -c '
import json, sys
emails = json.load(sys.stdin).get("emails") or []
if not emails:
    print(" (none)")
for n, email in enumerate(emails, 1):
    text = email.get("text") or ""
    links = [w for w in text.split() if "/auth/set-password?" in w]
    print(" %d. to %s: %s" % (n, ", ".join(email.get("to") or []), email.get("subject")))
    for link in links:
        print("    " + link)
'
