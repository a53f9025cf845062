"""Webhooks end to end: a department subscribes over HTTP, the delivery process (run
in-process here, on the real broker) sends signed CloudEvents to a local receiver,
retries failures, dead-letters them, and replays on request."""

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from devstack.processes import wait_until
from gridwork_common.events import parse_event
from services.gateway import webhooks
from services.gateway.deliveries import Deliveries
from tests.population_data import TOWNSHIP_A

pytestmark = pytest.mark.integration


class Receiver:
    """A department's HTTP endpoint on loopback; answers `status` and records requests."""

    def __init__(self):
        self.requests = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body))
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


@pytest.fixture
def receiver():
    running = Receiver()
    yield running
    running.close()


@pytest.fixture
def deliveries(settings, services, monkeypatch):
    monkeypatch.setenv("WEBHOOK_ALLOW_PRIVATE_URLS", "true")
    monkeypatch.setattr(webhooks, "BACKOFF_BASE_S", 0.05)
    monkeypatch.setattr(webhooks, "MAX_ATTEMPTS", 3)
    process = Deliveries(settings)
    process.start()
    yield process
    process.stop()


def _run_case_to_the_police(as_user):
    worker = as_user("worker-a1")
    case = worker.post(
        "/api/v1/incidents",
        key="r1",
        json={"category": "02.01", "description": "可疑包裹", "location": [102.505, 24.305]},
    )
    assert case.status_code == 201, case.get_json()
    case_id = case.get_json()["incident"]["id"]
    village = as_user("village-a")
    version = 1
    for action, body in (("accept", {}), ("register", {}), ("escalate", {"reason": "派出所"})):
        answer = village.post(
            f"/api/v1/incidents/{case_id}/{action}",
            key=f"v-{action}",
            json={"expected_version": version, **body},
        )
        assert answer.status_code == 200, answer.get_json()
        version = answer.get_json()["version"]
    dispatched = as_user("township-a").post(
        f"/api/v1/incidents/{case_id}/dispatch",
        key="t-d",
        json={"expected_version": version, "department_code": f"{TOWNSHIP_A}-police-station"},
    )
    assert dispatched.status_code == 200, dispatched.get_json()
    return case_id


def test_a_department_gets_signed_cloudevents_of_its_own_cases(
    as_user, county, receiver, deliveries
):
    subscribed = as_user("police-a").post(
        "/api/v1/subscriptions", key="s1", json={"url": receiver.url, "event_types": ["incident.*"]}
    )
    assert subscribed.status_code == 201, subscribed.get_json()
    secret = subscribed.get_json()["secret"]
    assert subscribed.get_json()["department"] == f"{TOWNSHIP_A}-police-station"

    case_id = _run_case_to_the_police(as_user)
    wait_until(lambda: receiver.requests, 15, "a webhook delivery")
    headers, body = receiver.requests[0]
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-Gridwork-Signature"] == expected
    assert headers["Content-Type"].startswith("application/cloudevents+json")
    event = parse_event(json.loads(body))
    assert event.type == "gridwork.incident.dispatched"
    assert event.data["incident_id"] == case_id
    # Only the police station's own case events: none from before it was dispatched.
    assert all(
        json.loads(b)["department"] == f"{TOWNSHIP_A}-police-station" for _, b in receiver.requests
    )


def test_failed_deliveries_are_retried_dead_lettered_and_replayed(
    as_user, county, receiver, deliveries
):
    receiver.status = 500
    admin = as_user("admin")
    subscription = admin.post(
        "/api/v1/subscriptions",
        key="s2",
        json={"url": receiver.url, "event_types": ["incident.reported"]},
    ).get_json()
    as_user("worker-a1").post(
        "/api/v1/incidents",
        key="r2",
        json={"category": "04.01", "description": "垃圾", "location": [102.505, 24.305]},
    )

    def dead():
        listed = admin.get(f"/api/v1/subscriptions/{subscription['id']}/dead-letters")
        return listed.get_json()["items"]

    wait_until(dead, 20, "a dead letter")
    (letter,) = dead()
    assert letter["attempts"] == 3 and letter["last_error"] == "HTTP 500"
    assert len(receiver.requests) == 3  # one try and two retries

    receiver.status = 204
    replayed = admin.post(
        f"/api/v1/subscriptions/{subscription['id']}/dead-letters/{letter['id']}/replay", key="rp1"
    )
    assert replayed.status_code == 200
    wait_until(lambda: len(receiver.requests) == 4, 15, "the replayed delivery")
    assert dead() == []


def test_subscriptions_are_checked(as_user, county):
    police = as_user("police-a")
    bad_type = police.post(
        "/api/v1/subscriptions",
        key="s3",
        json={"url": "https://example.org/hook", "event_types": ["incident"]},
    )
    assert bad_type.status_code == 422 and bad_type.get_json()["field"] == "event_types"
    private = police.post(
        "/api/v1/subscriptions",
        key="s4",
        json={"url": "http://127.0.0.1:9/hook", "event_types": ["incident.*"]},
    )
    assert private.status_code == 422 and private.get_json()["field"] == "url"
    outside = as_user("township-b").post(
        "/api/v1/subscriptions",
        key="s5",
        json={
            "url": "https://example.org/hook",
            "event_types": ["incident.*"],
            "territory": TOWNSHIP_A,
        },
    )
    assert outside.status_code == 403
    assert as_user("worker-a1").get("/api/v1/subscriptions").status_code == 403
