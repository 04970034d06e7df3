"""Auth0's official Python SDK (auth0-python) against the Auth0 double.

Run by tests/tests/it/auth0_sdk.rs with the double's base URL, client id and client secret.
The SDK parses every answer into its own typed models and error classes, so it fails where
the double's statuses, headers or JSON shapes drift from the real Management API's. Each
check asserts what the SDK hands its caller. On success it prints one JSON line for the Rust
test, which then looks at the double's users, refresh tokens and sessions itself.

Besides the calls the provisioning makes, it covers what the user lifecycle needs: a person's
login with a refresh token and its refresh (GetToken.login / refresh_token), blocking and
unblocking (users.update), revoking refresh tokens and sessions (users.refresh_token.delete,
users.sessions.delete) and the app_metadata merge of users.update.
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
NEW_PASSWORD = "Another-Good-Pass-7"
OFFLINE = "openid offline_access"
INEXISTENT_USER = {
    "statusCode": 404,
    "error": "Not Found",
    "message": "The user does not exist.",
    "errorCode": "inexistent_user",
}


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

    updated = api.users.update(created.user_id, password=NEW_PASSWORD, connection=CONNECTION)
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

    lifecycle(domain, client_id, client_secret, api, created.user_id)
    merged = metadata_merge(api, tagged[1])

    print(json.dumps({
        "kept": created.user_id,
        "deleted": deleted,
        "merged": merged,
    }))


def refused(call):
    """(status, error, description) of the Authentication API error `call` raised."""
    err = expect_error(Auth0Error, call)
    return err.status_code, err.error_code, err.message


def lifecycle(domain, client_id, client_secret, api, user_id):
    """A person's login with a refresh token, blocking and unblocking, and revoking the
    person's refresh tokens and sessions, through the SDK's Authentication and Management
    clients. Leaves the user unblocked with one live refresh token and no session."""
    email = "sdk.check@example.test"
    person = GetToken(domain, client_id, client_secret=client_secret, protocol="http")

    def log_in(scope=OFFLINE):
        return person.login(email, NEW_PASSWORD, scope=scope, realm=CONNECTION)

    login = log_in()
    assert login["token_type"] == "Bearer" and login["id_token"], login
    refresh_token = login["refresh_token"]
    assert isinstance(refresh_token, str) and refresh_token, login
    refreshed = person.refresh_token(refresh_token)
    assert refreshed["access_token"] and refreshed["id_token"], refreshed
    assert "refresh_token" not in refreshed, "no rotation"

    # Blocked: the login and the refresh are both refused, saying why.
    assert api.users.update(user_id, blocked=True).blocked is True
    blocked = (403, "invalid_grant", "user is blocked")
    assert refused(lambda: log_in("openid")) == blocked
    assert refused(lambda: person.refresh_token(refresh_token)) == blocked
    # Unblocked: the same password logs in again.
    assert api.users.update(user_id, blocked=False).blocked is False
    second = log_in()["refresh_token"]

    # Revoking the refresh tokens (202, which the SDK returns as None) refuses every one of
    # them; logging in still works.
    assert api.users.refresh_token.delete(user_id) is None
    unknown = (403, "invalid_grant", "Unknown or invalid refresh token.")
    for token in (refresh_token, second):
        assert refused(lambda: person.refresh_token(token)) == unknown
    fresh = log_in()["refresh_token"]
    assert person.refresh_token(fresh)["access_token"]

    assert api.users.sessions.delete(user_id) is None

    # An unknown user: 404 inexistent_user for the block and both revocations.
    missing = "auth0|000000000000000000000000"
    for call in (
        lambda: api.users.update(missing, blocked=True),
        lambda: api.users.sessions.delete(missing),
        lambda: api.users.refresh_token.delete(missing),
    ):
        assert expect_error(NotFoundError, call).body == INEXISTENT_USER


def metadata_merge(api, user_id):
    """app_metadata through users.update: merged at the first level, null removes a key, a
    nested object is replaced whole, {} removes it all. Answers the user's id."""
    start = {"created_by_system": "sdk-pages", "role": "admin", "plan": {"tier": 1, "seats": 3}}
    assert api.users.update(user_id, app_metadata=start).app_metadata == start
    merged = api.users.update(
        user_id, app_metadata={"role": None, "plan": {"tier": 2}, "team": "blue"}
    )
    assert merged.app_metadata == {
        "created_by_system": "sdk-pages",
        "plan": {"tier": 2},
        "team": "blue",
    }, merged.app_metadata
    cleared = api.users.update(user_id, app_metadata={})
    assert not cleared.app_metadata, cleared.app_metadata
    assert not api.users.get(user_id).app_metadata
    return user_id


if __name__ == "__main__":
    main(*sys.argv[1:4])
