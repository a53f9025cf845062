"""Login limits counted before the password is checked (also when guesses arrive together,
at a real gunicorn gateway), the client's address taken from trusted proxies only, password
hashes upgraded on login, and the same limits on Open311 and media uploads."""

import sys
import threading
from datetime import timedelta

import pytest
import requests
from argon2 import PasswordHasher
from pymongo import MongoClient

from devstack.processes import ManagedProcess, free_port, wait_until
from gridwork_common.clock import PinnedClock, utc_now
from gridwork_common.config import Settings
from services.gateway.app import create_app
from services.gateway.auth import Identity
from services.gateway.problems import ApiProblem
from services.gateway.ratelimits import Rate, RateLimits
from services.gateway.store import USERS, gateway_db
from tests.conftest import settings_env
from tests.integration.gateway.conftest import PASSWORD

pytestmark = pytest.mark.integration

TOKEN_URL = "/api/v1/auth/token"
GUESSES = 30


def _login(username: str, password: str) -> dict:
    return {"grant_type": "password", "username": username, "password": password}


@pytest.fixture
def gunicorn_gateway(infra, rabbit_config, tmp_path):
    """The gateway under gunicorn (two gthread workers), on the test's own database."""
    env = settings_env(infra, rabbit_config["AMQP_URI"])
    port = free_port()
    gateway = ManagedProcess(
        name="gateway",
        argv=[sys.executable, "-m", "gunicorn", "-c", "services/gateway/gunicorn_conf.py"],
        env={
            **env,
            "GATEWAY_PORT": str(port),
            "GATEWAY_WORKERS": "2",
            "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        },
        run_dir=tmp_path / "run",
        log_dir=tmp_path / "log",
        marker="services/gateway/gunicorn_conf.py",
    )
    gateway.start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _healthy(url), 60, "gunicorn gateway")
        yield url, Settings.from_env(env)
    finally:
        gateway.stop()


def _healthy(url: str) -> bool:
    try:
        return requests.get(f"{url}/healthz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def test_thirty_guesses_sent_at_once_get_at_most_five_verified(gunicorn_gateway):
    url, settings = gunicorn_gateway
    Identity(gateway_db(settings), settings).create_user(
        "target", PASSWORD, ["leader"], "530402", None
    )
    start = threading.Barrier(GUESSES)
    answers: list[requests.Response] = []

    def guess(number: int) -> None:
        session = requests.Session()
        start.wait()
        answers.append(
            session.post(
                f"{url}{TOKEN_URL}", json=_login("target", f"guess {number:04d}"), timeout=60
            )
        )

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(GUESSES)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    statuses = sorted(answer.status_code for answer in answers)
    assert len(statuses) == GUESSES
    assert set(statuses) <= {401, 429}, statuses
    assert statuses.count(401) <= settings.login_limit_per_user, statuses
    refused = [answer for answer in answers if answer.status_code == 429]
    assert refused and all(
        answer.headers["Content-Type"] == "application/problem+json" for answer in refused
    )
    assert all(0 < int(answer.headers["Retry-After"]) <= 900 for answer in refused)
    # The right password is refused too until the window ends: the guesses used it up.
    right = requests.post(f"{url}{TOKEN_URL}", json=_login("target", PASSWORD), timeout=30)
    assert right.status_code == 429


# ------------------------------------------------------------------ addresses and proxies
def _gateway(settings, **changes):
    app = create_app(settings.with_changes(**changes))
    return app.test_client()


def _wrong_login(client, username: str, peer: str, forwarded: str | None = None):
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    return client.post(
        TOKEN_URL,
        json=_login(username, "not the password"),
        headers=headers,
        environ_base={"REMOTE_ADDR": peer},
    )


def test_directly_a_forged_forwarded_address_changes_nothing(settings):
    client = _gateway(settings, login_limit_per_address=3, trusted_proxy_hops=0)
    for number in range(3):
        forged = f"203.0.113.{number}"
        assert _wrong_login(client, f"user-{number}", "192.0.2.10", forged).status_code == 401
    refused = _wrong_login(client, "user-9", "192.0.2.10", "203.0.113.99")
    assert refused.status_code == 429
    assert refused.headers["Retry-After"]
    assert _wrong_login(client, "user-9", "192.0.2.11").status_code == 401  # another peer


def test_behind_one_proxy_each_client_is_limited_by_its_own_address(settings):
    client = _gateway(settings, login_limit_per_address=3, trusted_proxy_hops=1)
    proxy = "10.0.0.2"
    for number in range(3):
        assert _wrong_login(client, f"user-{number}", proxy, "198.51.100.7").status_code == 401
    assert _wrong_login(client, "user-8", proxy, "198.51.100.7").status_code == 429
    # Another client behind the same proxy is not locked out with the first one...
    assert _wrong_login(client, "user-9", proxy, "198.51.100.8").status_code == 401
    # ...and the first cannot escape by writing an address of its own before the proxy's.
    escaped = _wrong_login(client, "user-9", proxy, "203.0.113.5, 198.51.100.7")
    assert escaped.status_code == 429


def test_without_trusted_hops_every_client_behind_a_proxy_shares_its_address(settings):
    """What TRUSTED_PROXY_HOPS is for: with 0, the proxy's address is everyone's."""
    client = _gateway(settings, login_limit_per_address=3, trusted_proxy_hops=0)
    for number in range(3):
        assert _wrong_login(client, f"user-{number}", "10.0.0.2", "198.51.100.7").status_code == 401
    assert _wrong_login(client, "user-9", "10.0.0.2", "198.51.100.8").status_code == 429


# ------------------------------------------------------------------ counting and windows
def test_a_success_clears_the_users_count_and_the_window_ends(settings):
    # Starts at the machine's time and only moves forward: mongod's TTL monitor, which
    # judges the counters by the machine's clock, must not remove them mid-test.
    clock = PinnedClock(utc_now())
    identity = Identity(gateway_db(settings), settings, clock)
    identity.create_user("clerk", PASSWORD, ["leader"], "530402", None)

    def attempt(password):
        try:
            identity.login("clerk", password, "192.0.2.20")
        except ApiProblem as problem:
            return problem.status
        return 200

    assert [attempt("wrong password") for _ in range(4)] == [401] * 4
    assert attempt(PASSWORD) == 200  # the fifth attempt: allowed, and clears the count
    assert [attempt("wrong password") for _ in range(5)] == [401] * 5
    assert attempt(PASSWORD) == 429  # the sixth within the window
    clock.advance(timedelta(seconds=settings.login_limit_window_s + 1))
    assert attempt(PASSWORD) == 200


def test_successful_logins_do_not_use_up_their_address(settings):
    identity = Identity(gateway_db(settings), settings.with_changes(login_limit_per_address=3))
    for number in range(5):
        identity.create_user(f"office-{number}", PASSWORD, ["leader"], "530402", None)
    for number in range(5):  # one office, one public address, more logins than the limit
        assert identity.login(f"office-{number}", PASSWORD, "192.0.2.30")["access_token"]


def test_an_unreachable_counter_store_answers_503_with_retry_after():
    client = MongoClient("mongodb://127.0.0.1:9/", serverSelectionTimeoutMS=200, connect=False)
    limits = RateLimits(client["nowhere"])
    with pytest.raises(ApiProblem) as raised:
        limits.take(Rate("login-user", 5, 900), "anyone", "too many")
    assert raised.value.status == 503
    assert int(raised.value.headers["Retry-After"]) > 0


# ------------------------------------------------------------------ password hashes
def test_a_hash_with_weaker_parameters_is_upgraded_on_login(settings):
    db = gateway_db(settings)
    identity = Identity(db, settings)
    identity.create_user("old-timer", PASSWORD, ["leader"], "530402", None)
    weak = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash(PASSWORD)
    db[USERS].update_one({"_id": "old-timer"}, {"$set": {"password_hash": weak}})
    current = PasswordHasher()
    assert current.check_needs_rehash(weak)

    identity.login("old-timer", PASSWORD, "192.0.2.40")

    upgraded = db[USERS].find_one({"_id": "old-timer"})["password_hash"]
    assert upgraded != weak
    assert not current.check_needs_rehash(upgraded)
    assert current.verify(upgraded, PASSWORD)
    assert identity.login("old-timer", PASSWORD, "192.0.2.40")["access_token"]


# ------------------------------------------------------------------ Open311 and uploads
def test_open311_public_routes_are_limited_per_address(settings):
    client = _gateway(settings, open311_limit_per_minute=2)

    def ask(peer, path="/open311/v2/requests/no-such-request.json"):
        # Public reads, no api_key: each counts against its address, found or not.
        return client.get(path, environ_base={"REMOTE_ADDR": peer})

    assert [ask("192.0.2.50").status_code for _ in range(2)] == [404, 404]
    refused = ask("192.0.2.50", "/open311/v2/requests.xml")
    assert refused.status_code == 429
    assert refused.mimetype == "application/xml"  # a GeoReport error list, in its format
    assert b"<code>429</code>" in refused.data
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    assert ask("192.0.2.51").status_code == 404  # another address has its own count


def test_upload_slots_are_limited_per_user(settings, services):
    client = _gateway(settings, upload_limit_per_minute=2)
    identity = Identity(gateway_db(settings), settings)
    for username in ("uploader-1", "uploader-2"):
        identity.create_user(username, PASSWORD, ["grid_worker"], "530402001001002", None)

    def ask_slot(username, key):
        token = client.post(TOKEN_URL, json=_login(username, PASSWORD)).get_json()
        return client.post(
            "/api/v1/media/uploads",
            headers={"Authorization": f"Bearer {token['access_token']}", "Idempotency-Key": key},
            json={
                "content_type": "image/jpeg",
                "size": 1000,
                "purpose": "incident_report",
                "owner": {"kind": "incident", "id": "no-such-incident"},
            },
        )

    # Whatever the media service answers, each asking counts before it is asked.
    assert [ask_slot("uploader-1", f"k{n}").status_code != 429 for n in range(2)] == [True, True]
    refused = ask_slot("uploader-1", "k3")
    assert refused.status_code == 429
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    assert ask_slot("uploader-2", "k1").status_code != 429  # another user's own count
