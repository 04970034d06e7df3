"""The two SCIM conformance suites from PyPI against a running scim function.

    SCIM_TOKEN=aup_scim_… .venv/bin/python tests/scim/conformance.py http://127.0.0.1:4000/scim/v2

Run by tests/tests/it/scim_conformance.rs (in `make test` and `make scim-conformance`) against
the real `scim` binary behind the local API Gateway, and by hand against `make dev`
(docs/scim-local.md). Both tools are pinned in requirements-dev.txt:

- scim2-tester: `check_server` over a scim2-client `SyncSCIMClient` (httpx2), restricted to the
  User resource type: discovery, then create, read, list, `attributes`/`excludedAttributes`,
  replace, delete, and PATCH add/remove/replace of every attribute /Schemas declares writable,
  with values it generates from /Schemas.
- scim-sanity: `probe --resource User --json-output` (strict mode): discovery and media type,
  the User lifecycle (201 + Location + meta, GET, PUT, PATCH active=false, DELETE, then 404),
  list, filter, paging, count=0, error shapes.

A check passes when the tool says so (scim2-tester: SUCCESS, COMPLIANT or ACCEPTABLE;
scim-sanity: pass); anything else, a SHOULD-level DEVIATION or a WARN included, fails the run,
except the few checks in ALLOWED below, each a deliberate behaviour of this service that the
tool does not read from /Schemas or /ServiceProviderConfig. Neither tool can skip one attribute
of a check, so the allowance is made here, exactly: the check, the attribute, and the text of
the server's answer. An allowance that matches nothing fails the run too, so the list (and
docs/scim-local.md, which repeats it) stays true. The tools' own skips (Group, Agent, POST
/.search) are printed and counted, never failures.

Prints one line per check, then one JSON line: the counts, for the Rust test.
"""

import json
import os
import subprocess
import sys
import uuid

import httpx2
import scim2_tester.filling
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server

# Fewer passing checks than these means a tool stopped testing what it did (a server that
# answers discovery wrong makes scim2-tester skip every resource check, for example).
MIN_PASSED = {"scim2-tester": 35, "scim-sanity": 15}

# (tool, check, attribute or None, a text the failure's reason contains) → why it is allowed.
ALLOWED = {
    (
        "scim2-tester",
        "check_add_attribute",
        "password",
        "changePassword is not supported",
    ): "password is only honoured at creation (changePassword.supported is false in "
    "/ServiceProviderConfig); the tool sets every writeOnly attribute with PATCH add "
    "and does not read changePassword. The server answers 400 mutability.",
    (
        "scim2-tester",
        "check_replace_attribute",
        "password",
        "changePassword is not supported",
    ): "as for add: changing a password is not supported (changePassword false).",
    (
        "scim2-tester",
        "check_remove_attribute",
        "urn:atomic-user-provisioning:scim:schemas:extension:app:2.0:User",
        "did not remove attribute",
    ): "every user has a role: removing the extension gives the user the default role "
    "USER, which the answer shows (an identity provider that stops sending the role "
    "demotes the user); the tool expects the extension to be unassigned.",
    (
        "scim2-tester",
        "check_remove_attribute",
        "urn:atomic-user-provisioning:scim:schemas:extension:app:2.0:User:role",
        "did not remove attribute",
    ): "as for the extension: removing role sets it to the default USER.",
    (
        "scim2-tester",
        "check_remove_attribute",
        "name",
        "it can be changed, not removed",
    ): "name is optional on create (a person without one gets no employee record), but once "
    "given it is the employee record's, which needs both parts: it can be changed, not "
    "removed. The server answers 400 mutability; requiring a name instead would refuse "
    "identity-provider users who have none.",
    (
        "scim2-tester",
        "check_remove_attribute",
        "active",
        "set it to false to deactivate",
    ): "active is optional on create (a user starts active) and cannot be unassigned: every "
    "user is active or not. Deactivation is active=false; the server answers 400 "
    "mutability to a remove.",
    (
        "scim-sanity",
        "GET /Users/{id} after PUT",
        None,
        "Expected displayName=",
    ): "displayName is readOnly in /Schemas (it is the employee's given and family "
    "name); RFC 7644 §3.5.1 has a PUT ignore readOnly values, so the PUT answers 200 "
    "and the name stays. The probe changes displayName and expects it stored.",
}


def user_name_as_an_address() -> None:
    """Give scim2-tester an email address wherever it makes up a userName.

    scim2-tester generates attribute values from /Schemas, a random UUID for a string such as
    userName. This service's userName is the login's email address (RFC 7643 §4.1.1 leaves its
    form to the service provider), so a UUID is refused with 400 invalidValue and nothing can
    be created. SCIM schemas have no way to say "an address"; scim2-tester takes a value from
    an attribute's examples first, and this is that example, for userName alone.
    """
    generated = scim2_tester.filling.get_random_example_value

    def example(path):
        if str(path).rsplit(":", 1)[-1].lower() == "username":
            return f"scim2-tester-{uuid.uuid4().hex[:16]}@example.com"
        return generated(path)

    scim2_tester.filling.get_random_example_value = example


def allowance(tool, check, attribute, reason):
    for key, why in ALLOWED.items():
        a_tool, a_check, a_attribute, a_text = key
        if (a_tool, a_check, a_attribute) == (tool, check, attribute) and a_text in (
            reason or ""
        ):
            return key, why
    return None, None


class Tally:
    def __init__(self):
        self.counts = {}
        self.failures = []
        self.used = set()

    def record(self, tool, outcome, check, attribute=None, reason=""):
        """outcome: pass, skip (the tool's own), or fail."""
        reason = " ".join((reason or "").split())
        label = check if attribute is None else f"{check} [{attribute}]"
        if outcome == "fail":
            key, why = allowance(tool, check, attribute, reason)
            if key is not None:
                self.used.add(key)
                outcome, reason = "allowed", why
        counts = self.counts.setdefault(tool, {"passed": 0, "skipped": 0, "allowed": 0, "failed": 0})
        counts[{"pass": "passed", "skip": "skipped", "allowed": "allowed", "fail": "failed"}[outcome]] += 1
        mark = {"pass": "PASS ", "skip": "SKIP ", "allowed": "ALLOW", "fail": "FAIL "}[outcome]
        print(f"{mark} {tool:<12} {label}" + (f": {reason[:400]}" if reason and outcome != "pass" else ""))
        if outcome == "fail":
            self.failures.append(f"{tool}: {label}: {reason[:400]}")


def run_scim2_tester(base_url, token, tally):
    user_name_as_an_address()
    # Loopback: never through a proxy the machine may set.
    http = httpx2.Client(
        base_url=base_url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
        trust_env=False,
    )
    with http:
        results = check_server(SyncSCIMClient(http), resource_types=["User"])
    for result in results:
        data = result.data if isinstance(result.data, dict) else {}
        attribute = data.get("urn")
        if result.status in (Status.SUCCESS, Status.COMPLIANT, Status.ACCEPTABLE):
            outcome = "pass"
        elif result.status == Status.SKIPPED:
            outcome = "skip"
        else:
            outcome = "fail"
        reason = result.reason or ""
        if outcome == "fail":
            reason = f"{result.status.name}: {reason}"
        tally.record("scim2-tester", outcome, result.title or "?", attribute, reason)


def run_scim_sanity(base_url, token, tally):
    probe = subprocess.run(
        [
            sys.executable, "-m", "scim_sanity", "probe", base_url,
            "--token", token,
            "--i-accept-side-effects",
            "--resource", "User",
            "--json-output",
            "--timeout", "30",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    try:
        report = json.loads(probe.stdout)
    except json.JSONDecodeError:
        tally.record("scim-sanity", "fail", "probe", None,
                     f"no JSON report (exit {probe.returncode}): {probe.stdout[-400:]} {probe.stderr[-400:]}")
        return
    for result in report.get("results", []):
        status = result.get("status")
        outcome = {"pass": "pass", "skip": "skip"}.get(status, "fail")
        reason = result.get("message") or ""
        if outcome == "fail":
            reason = f"{status}: {reason}"
        tally.record("scim-sanity", outcome, result.get("name", "?"), None, reason)
    # The probe's own verdict must agree: it exits 1 on any FAIL or ERROR.
    failed_here = any(r.get("status") in ("fail", "error") for r in report.get("results", []))
    if (probe.returncode != 0) != failed_here:
        tally.record("scim-sanity", "fail", "probe exit code", None,
                     f"exit {probe.returncode} with results that say otherwise")


def main():
    if len(sys.argv) != 2 or not os.environ.get("SCIM_TOKEN"):
        sys.exit("usage: SCIM_TOKEN=aup_scim_… conformance.py BASE_URL (…/scim/v2)")
    base_url = sys.argv[1].rstrip("/")
    token = os.environ["SCIM_TOKEN"]
    tally = Tally()
    run_scim2_tester(base_url, token, tally)
    run_scim_sanity(base_url, token, tally)

    for tool, least in MIN_PASSED.items():
        passed = tally.counts.get(tool, {}).get("passed", 0)
        if passed < least:
            tally.failures.append(f"{tool}: only {passed} checks passed, fewer than {least}")
    for key in ALLOWED:
        if key not in tally.used:
            tally.failures.append(
                f"allowance no longer needed (remove it here and in docs/scim-local.md): {key}"
            )
    for failure in tally.failures:
        print(f"FAILED {failure}")
    print(json.dumps({"counts": tally.counts, "failures": tally.failures}))
    sys.exit(1 if tally.failures else 0)


if __name__ == "__main__":
    main()
