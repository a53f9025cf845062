"""The command centre's session cookie in-process (Flask test client, real mongod): Secure
only when the browser came over TLS as the trusted proxies say, a random key that is not
the stored record's id, and the 503 page when the session store does not answer."""

import hashlib
import re

import pytest

from gridwork_common.clock import utc_now
from services.gateway import store
from services.gateway.app import create_app
from services.gateway.auth import Identity
from services.gateway.store import gateway_db
from services.gateway.ui.sessions import COOKIE_NAME

pytestmark = pytest.mark.integration


def _session_cookie(response) -> str:
    (header,) = [h for h in response.headers.getlist("Set-Cookie") if h.startswith(COOKIE_NAME)]
    return header


def test_the_cookie_is_secure_when_a_trusted_proxy_says_https(settings):
    client = create_app(settings.with_changes(trusted_proxy_hops=1), utc_now).test_client()
    over_tls = client.get("/login", headers={"X-Forwarded-Proto": "https"})
    assert over_tls.status_code == 200
    cookie = _session_cookie(over_tls)
    assert "; Secure" in cookie and "; HttpOnly" in cookie and "SameSite=Strict" in cookie

    plain = create_app(settings.with_changes(trusted_proxy_hops=1), utc_now).test_client()
    assert "; Secure" not in _session_cookie(plain.get("/login"))


def test_a_client_cannot_claim_tls_without_a_trusted_proxy(settings):
    client = create_app(settings, utc_now).test_client()  # TRUSTED_PROXY_HOPS=0
    forged = client.get("/login", headers={"X-Forwarded-Proto": "https"})
    assert "; Secure" not in _session_cookie(forged)


def test_the_cookie_holds_a_random_key_and_the_store_only_its_digest(settings):
    client = create_app(settings, utc_now).test_client()
    cookie = _session_cookie(client.get("/login"))
    key = cookie.split(";", 1)[0].split("=", 1)[1]
    records = gateway_db(settings)[store.UI_SESSIONS]
    assert records.count_documents({"_id": key}) == 0
    record = records.find_one({"_id": hashlib.sha256(key.encode()).hexdigest()})
    assert record is not None and record["user"] is None
    assert set(record["data"]) == {"csrf_token"}  # the login form's CSRF secret, no more


def test_the_json_api_gets_no_session(settings):
    client = create_app(settings, utc_now).test_client()
    assert client.get("/healthz").headers.getlist("Set-Cookie") == []
    token = client.post("/api/v1/auth/token", json={"grant_type": "password"})
    assert token.status_code == 400  # no CSRF check on the API: the body's own error
    assert token.headers.getlist("Set-Cookie") == []


def test_a_session_store_that_does_not_answer_is_the_503_page(settings):
    unreachable = settings.with_changes(
        mongo_uri="mongodb://127.0.0.1:9/?directConnection=true", mongo_timeout_ms=300
    )
    client = create_app(unreachable, utc_now).test_client()
    client.set_cookie(COOKIE_NAME, "some-key")
    answer = client.get("/")
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "5"
    assert answer.mimetype == "text/html"
    assert "服务暂时不可用" in answer.get_data(as_text=True)
    assert "Content-Security-Policy" in answer.headers


@pytest.mark.parametrize(
    ("asked", "landing"),
    [
        ("/population?grid=1", "/population?grid=1"),
        ("//elsewhere.example/phish", "/"),
        ("https://elsewhere.example/", "/"),
        ("/\\elsewhere.example", "/"),
        ("", "/"),
    ],
)
def test_after_sign_in_only_a_path_on_this_site(settings, asked, landing):
    Identity(gateway_db(settings), settings).create_user(
        "next-user", "the right password", ["leader"], settings.county_code, None
    )
    client = create_app(settings, utc_now).test_client()
    form = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    answer = client.post(
        "/login",
        data={
            "csrf_token": token,
            "username": "next-user",
            "password": "the right password",
            "next": asked,
        },
    )
    assert answer.status_code == 302
    assert answer.headers["Location"] == landing
