"""The JSON API with the browser session (the phone app, services/gateway/api_session.py):
accepted only with the session's CSRF token in the X-CSRFToken header and from this site;
a bearer token is never mixed with a session; a session that ended is 401."""

import re

import pytest

from gridwork_common.clock import utc_now
from services.gateway.app import create_app
from services.gateway.auth import Identity
from services.gateway.store import gateway_db

pytestmark = pytest.mark.integration
PASSWORD = "the right password"


@pytest.fixture
def signed_in(settings):
    """A test client signed in as a grid worker, and the CSRF token of its session."""
    Identity(gateway_db(settings), settings).create_user(
        "phone-user", PASSWORD, ["grid_worker"], f"{settings.county_code}001001001", None
    )
    client = create_app(settings, utc_now).test_client()
    form = client.get("/login").get_data(as_text=True)
    login_token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    client.post(
        "/login",
        data={"csrf_token": login_token, "username": "phone-user", "password": PASSWORD},
    )
    page = client.get("/app/").get_data(as_text=True)
    csrf = re.search(r'<meta name="csrf-token" content="([^"]+)"', page).group(1)
    return client, csrf


def test_the_session_with_its_csrf_header_is_the_caller(signed_in):
    client, csrf = signed_in
    me = client.get("/api/v1/auth/me", headers={"X-CSRFToken": csrf})
    assert me.status_code == 200, me.get_data(as_text=True)
    assert me.get_json()["username"] == "phone-user"
    same_site = client.get(
        "/api/v1/auth/me",
        headers={
            "X-CSRFToken": csrf,
            "Origin": "http://localhost",
            "Sec-Fetch-Site": "same-origin",
        },
    )
    assert same_site.status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},  # the cookie alone: a cross-site form or image could send that
        {"X-CSRFToken": "not-the-token"},
        {"Origin": "https://elsewhere.example"},
        {"Sec-Fetch-Site": "cross-site"},
    ],
)
def test_without_the_token_or_from_another_site_it_is_401(signed_in, headers):
    client, csrf = signed_in
    if headers.get("X-CSRFToken") is None and headers:
        headers = {**headers, "X-CSRFToken": csrf}
    answer = client.get("/api/v1/auth/me", headers=headers)
    assert answer.status_code == 401
    assert answer.mimetype == "application/problem+json"


def test_a_bearer_token_is_never_read_with_a_session(signed_in):
    client, csrf = signed_in
    answer = client.get(
        "/api/v1/auth/me", headers={"X-CSRFToken": csrf, "Authorization": "Bearer forged"}
    )
    assert answer.status_code == 401
    assert answer.get_json()["detail"] == "the access token is not valid"


def test_after_sign_out_the_session_is_worth_nothing(signed_in):
    client, csrf = signed_in
    client.post("/logout", data={"csrf_token": csrf})
    answer = client.get("/api/v1/auth/me", headers={"X-CSRFToken": csrf})
    assert answer.status_code == 401
