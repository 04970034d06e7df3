"""Auth0's official Python SDK (auth0-python) against the Auth0 double.

Run by tests/tests/it/auth0_sdk.rs with the double's base URL, client id and client secret.
The SDK parses every answer into its own typed models and error classes, so it fails where
the double's statuses, headers or JSON shapes drift from the real Management API's. Each
check asserts what the SDK hands its caller. On success it prints one JSON line for the Rust
test, which then looks at the double's users itself.
"""

import json
import sys
import urllib.request

from auth0.authentication import GetToken
from auth0.authentication.exceptions import Auth0Error
from auth0.management.client import Auth0
from auth0.management.errors import (
    BadRequestError,
    ConflictError,
    NotFoundError,
    TooManyRequestsError,
    UnauthorizedError,
)

CONNECTION = "Username-Password-Authentication"
PASSWORD = "Correct-Horse-9-battery"


def expect_error(kind, call):
    """The SDK error `call` raised, which must be of class `kind`."""
    try:
        call()
    except kind as err:
        return err
    raise AssertionError(f"expected {kind.__name__}, got no error")


def inject_fault(base, fault):
    """One fault through the double's control API (not part of Auth0's)."""
    request = urllib.request.Request(
        f"{base}/__control/faults",
        data=json.dumps(fault).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as answer:
        assert answer.status == 204, answer.status


def control_state(base):
    """The double's users, call counts and pending faults (its control API)."""
    with urllib.request.urlopen(f"{base}/__control/state", timeout=5) as answer:
        return json.load(answer)


def main(base, client_id, client_secret):
    domain = base.split("://", 1)[1]
    audience = f"https://{domain}/api/v2/"

    # Client credentials, as GetToken asks for them (JSON body).
    token = GetToken(domain, client_id, client_secret=client_secret, protocol="http")
    granted = token.client_credentials(audience)
    assert granted["token_type"] == "Bearer", granted
    assert granted["expires_in"] == 86400, granted
    assert granted["access_token"], granted
    refused = expect_error(
        Auth0Error,
        lambda: GetToken(domain, client_id, client_secret="wrong", protocol="http")
        .client_credentials(audience),
    )
    assert (refused.status_code, refused.error_code) == (401, "access_denied"), refused

    # No retries unless a check asks for them: every answer reaches the check as sent.
    api = Auth0(base_url=f"{base}/api/v2", token=granted["access_token"], max_retries=0, timeout=5)

    created = api.users.create(
        connection=CONNECTION,
        email="Sdk.Check@Example.test",
        password=PASSWORD,
        email_verified=False,
        verify_email=False,
        app_metadata={"created_by_system": "sdk-check", "db_user_id": "sdk-1"},
        name="Sdk Check",
    )
    assert created.user_id.startswith("auth0|") and len(created.user_id) == 30, created.user_id
    assert created.email == "sdk.check@example.test", created.email
    assert created.identities[0].provider == "auth0", created.identities
    assert created.app_metadata == {"created_by_system": "sdk-check", "db_user_id": "sdk-1"}
    assert created.created_at is not None

    by_email = api.users.list_users_by_email(email="sdk.check@example.test")
    assert [user.user_id for user in by_email] == [created.user_id], by_email

    fetched = api.users.get(created.user_id)
    assert fetched.app_metadata["db_user_id"] == "sdk-1", fetched.app_metadata

    updated = api.users.update(created.user_id, password="Another-Good-Pass-7", connection=CONNECTION)
    assert updated.user_id == created.user_id

    # A v3 search read page by page by the SDK's pager (include_totals is its default).
    tagged = [
        api.users.create(
            connection=CONNECTION,
            email=f"sdk.page{n}@example.test",
            password=PASSWORD,
            app_metadata={"created_by_system": "sdk-pages"},
        ).user_id
        for n in range(5)
    ]
    pager = api.users.list(
        q='app_metadata.created_by_system:"sdk-pages"', search_engine="v3", per_page=2
    )
    assert sorted(user.user_id for user in pager) == sorted(tagged)
    second = api.users.list(
        q='app_metadata.created_by_system:"sdk-pages"', search_engine="v3", per_page=2, page=1
    )
    assert len(second.items) == 2, second.items

    # Every Management answer carries the rate-limit headers the SDK's retries read.
    raw = api.users.with_raw_response.get(created.user_id)
    for header in ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"):
        assert int(raw.headers[header]) >= 0, raw.headers

    # Errors, each the class the SDK gives that status, with Auth0's body.
    taken = expect_error(
        ConflictError,
        lambda: api.users.create(connection=CONNECTION, email="SDK.check@example.test", password=PASSWORD),
    )
    assert taken.body["errorCode"] == "auth0_idp_error", taken.body
    weak = expect_error(
        BadRequestError,
        lambda: api.users.update(created.user_id, password="a", connection=CONNECTION),
    )
    assert weak.body["message"].startswith("PasswordStrengthError"), weak.body
    malformed = expect_error(
        BadRequestError,
        lambda: api.users.create(connection=CONNECTION, email="not-an-address", password=PASSWORD),
    )
    assert malformed.body["errorCode"] == "invalid_body", malformed.body
    missing = expect_error(NotFoundError, lambda: api.users.get("auth0|000000000000000000000000"))
    assert missing.body["statusCode"] == 404, missing.body
    stranger = Auth0(base_url=f"{base}/api/v2", token="not-a-token", max_retries=0, timeout=5)
    unauthorized = expect_error(UnauthorizedError, lambda: stranger.users.get(created.user_id))
    assert unauthorized.body["message"] == "Invalid token", unauthorized.body

    # A 429: refused with the headers, then retried by the SDK once it is allowed to.
    inject_fault(base, {"op": "get_user", "status": 429, "times": 1})
    limited = expect_error(TooManyRequestsError, lambda: api.users.get(created.user_id))
    assert limited.headers["x-ratelimit-remaining"] == "0", limited.headers
    inject_fault(base, {"op": "get_user", "status": 429, "times": 1})
    patient = Auth0(base_url=f"{base}/api/v2", token=granted["access_token"], max_retries=2, timeout=5)
    assert patient.users.get(created.user_id).user_id == created.user_id
    # The injected 429 was served, so the answer above came from the SDK's retry.
    assert control_state(base)["faults"] == [], "the 429 was never served"

    # DELETE is idempotent: the second answers 204 too, which the SDK returns as None.
    deleted = tagged[0]
    assert api.users.delete(deleted) is None
    assert api.users.delete(deleted) is None

    print(json.dumps({
        "kept": created.user_id,
        "deleted": deleted,
    }))


if __name__ == "__main__":
    main(*sys.argv[1:4])
