"""Webhooks end to end: a department subscribes over HTTP, the delivery process (run
in-process here, on the real broker) sends CloudEvents signed per Standard Webhooks to a
local receiver that verifies them with the `standardwebhooks` library, retries failures,
dead-letters them, and replays on request."""

import base64
import hashlib
import hmac
import json
import uuid
from datetime import timedelta

import pytest
from prometheus_client import REGISTRY
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from devstack.processes import wait_until
from gridwork_common.clock import PinnedClock, utc_now
from gridwork_common.events import parse_event
from services.gateway import webhooks
from services.gateway.deliveries import Deliveries
from services.gateway.store import gateway_db
from tests.population_data import COUNTY, TOWNSHIP_A
from tests.receiver import Receiver

pytestmark = pytest.mark.integration


@pytest.fixture
def receiver():
    running = Receiver()
    yield running
    running.close()


@pytest.fixture
def start_deliveries(settings, services, monkeypatch):
    """start_deliveries(clock=..., jitter=...) -> the delivery process, running."""
    monkeypatch.setenv("WEBHOOK_ALLOW_PRIVATE_URLS", "true")
    monkeypatch.setattr(webhooks, "BACKOFF_BASE_S", 0.05)
    monkeypatch.setattr(webhooks, "MAX_ATTEMPTS", 3)
    started = []

    def start(**collaborators):
        process = Deliveries(settings, **collaborators)
        process.start()
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def deliveries(start_deliveries):
    return start_deliveries()


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
    assert secret.startswith("whsec_")
    assert subscribed.get_json()["department"] == f"{TOWNSHIP_A}-police-station"
    receiver.secret = secret

    case_id = _run_case_to_the_police(as_user)
    wait_until(lambda: receiver.requests, 15, "a webhook delivery")
    headers, body = receiver.requests[0]
    assert receiver.verdicts[0] == "ok"  # Standard Webhooks: id, timestamp, signature
    assert headers["webhook-signature"].startswith("v1,")
    # The old header is still sent for one release, keyed by the same secret.
    key = base64.b64decode(secret.removeprefix("whsec_"))
    expected = "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
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
    counted = _delivery_outcomes()
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
    # /metrics (the WebhookDeadLetters alert): two retries, then the dead letter.
    assert _delivery_outcomes() == {
        **counted,
        "retry": counted["retry"] + 2,
        "dead": counted["dead"] + 1,
    }

    receiver.status = 204
    replayed = admin.post(
        f"/api/v1/subscriptions/{subscription['id']}/dead-letters/{letter['id']}/replay", key="rp1"
    )
    assert replayed.status_code == 200
    wait_until(lambda: len(receiver.requests) == 4, 15, "the replayed delivery")
    assert dead() == []
    assert _delivery_outcomes()["delivered"] == counted["delivered"] + 1


def _delivery_outcomes() -> dict[str, float]:
    return {
        outcome: REGISTRY.get_sample_value(
            "gridwork_webhook_deliveries_total", {"outcome": outcome}
        )
        or 0
        for outcome in ("delivered", "retry", "dead")
    }


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


def _report_and_subscribe(as_user, url: str, key: str) -> dict:
    subscription = as_user("admin").post(
        "/api/v1/subscriptions",
        key=f"sub-{key}",
        json={"url": url, "event_types": ["incident.reported"]},
    )
    assert subscription.status_code == 201, subscription.get_json()
    reported = as_user("worker-a1").post(
        "/api/v1/incidents",
        key=f"rep-{key}",
        json={"category": "04.01", "description": "垃圾", "location": [102.505, 24.305]},
    )
    assert reported.status_code == 201, reported.get_json()
    return subscription.get_json()


def test_a_stale_or_altered_message_is_refused_and_a_retry_is_signed_afresh(
    as_user, county, receiver, settings, start_deliveries, monkeypatch
):
    # The delivery process's clock runs 10 minutes behind the receiver's, as a replay
    # of a captured message would look: the first attempt is too old to be accepted.
    clock = PinnedClock(utc_now() - timedelta(minutes=10))
    monkeypatch.setattr(webhooks, "BACKOFF_BASE_S", 60.0)  # no retry until the clock moves
    start_deliveries(clock=clock, jitter=lambda: 0.5)
    subscription = _report_and_subscribe(as_user, receiver.url, "stale")
    receiver.secret = subscription["secret"]

    wait_until(lambda: receiver.verdicts, 15, "the first attempt")
    deliveries = gateway_db(settings)[webhooks.DELIVERIES]
    wait_until(lambda: deliveries.find_one({"attempts": 1}), 15, "the failure recorded")
    assert receiver.verdicts == ["Message timestamp too old"]
    # The retry is due half the first backoff step plus the injected draw's share of the rest.
    first_try = int(receiver.requests[0][0]["webhook-timestamp"])
    retry_at = deliveries.find_one({"attempts": 1})["next_attempt_at"].timestamp()
    assert 45 <= retry_at - first_try < 51  # 45 s after the failed try (30 + 0.5 of 30 s)

    clock.set(utc_now())  # the sender's clock right again: the retry is fresh
    wait_until(lambda: len(receiver.verdicts) == 2, 15, "the retried attempt")
    assert receiver.verdicts == ["Message timestamp too old", "ok"]

    (stale_headers, stale_body), (headers, body) = receiver.requests[0], receiver.requests[-1]
    # One message: the same id on every attempt (a receiver drops duplicates by it), each
    # attempt with its own timestamp and signature.
    assert headers["webhook-id"] == stale_headers["webhook-id"] and body == stale_body
    assert int(headers["webhook-timestamp"]) - int(stale_headers["webhook-timestamp"]) >= 590
    assert headers["webhook-signature"] != stale_headers["webhook-signature"]

    verifier = Webhook(subscription["secret"])
    assert verifier.verify(body, headers)["type"] == "gridwork.incident.reported"
    altered = body.replace("垃圾".encode(), "火灾".encode())
    assert altered != body
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        verifier.verify(altered, headers)
    # Re-dating a captured message does not help either: the signature covers the time.
    redated = {**stale_headers, "webhook-timestamp": headers["webhook-timestamp"]}
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        verifier.verify(stale_body, redated)


def test_a_subscription_from_before_standard_webhooks_keeps_its_secret(
    as_user, county, receiver, settings, deliveries
):
    # As stored by the previous release: the secret is 64 hex characters, keyed by its text.
    legacy_secret = uuid.uuid4().hex + uuid.uuid4().hex
    gateway_db(settings)[webhooks.SUBSCRIPTIONS].insert_one(
        {
            "_id": "legacy-subscription",
            "owner": "admin",
            "url": receiver.url,
            "event_types": ["incident.reported"],
            "territory": COUNTY,
            "department": None,
            "secret": legacy_secret,
            "active": True,
            "created_at": utc_now(),
        }
    )
    # The documented whsec_ form of an old secret: base64 of its text.
    receiver.secret = "whsec_" + base64.b64encode(legacy_secret.encode()).decode()
    as_user("worker-a1").post(
        "/api/v1/incidents",
        key="legacy-r",
        json={"category": "04.01", "description": "垃圾", "location": [102.505, 24.305]},
    )
    wait_until(lambda: receiver.verdicts, 15, "a delivery to the old subscription")
    assert receiver.verdicts == ["ok"]
    headers, body = receiver.requests[0]
    old = "sha256=" + hmac.new(legacy_secret.encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-Gridwork-Signature"] == old  # unchanged for receivers not yet moved


def test_a_burst_of_events_is_recorded_once_each(as_user, county, settings, deliveries):
    """Events arriving together are recorded together (one read of the subscriptions a
    batch); an event the broker delivers twice is one delivery."""
    from kombu import Connection, Exchange, Producer

    from gridwork_common.event_format import SERIALIZER
    from gridwork_common.events import new_event

    subscribed = as_user("admin").post(
        "/api/v1/subscriptions",
        key="burst",
        json={"url": "http://127.0.0.1:9/hook", "event_types": ["incident.reported"]},
    )
    assert subscribed.status_code == 201, subscribed.get_json()
    events = [
        new_event(
            source=f"/counties/{COUNTY}/events",
            routing_key=routing_key,
            subject=f"{COUNTY}001001001",
            data={"number": number},
        ).to_json_dict()
        for number, routing_key in enumerate(["incident.reported", "incident.accepted"] * 60)
    ]
    exchange = Exchange("events.events", type="topic", durable=True)
    with Connection(settings.amqp_uri) as connection:
        producer = Producer(connection.default_channel, exchange)
        for envelope in events + events[:10]:  # ten delivered twice
            routing_key = envelope["type"].removeprefix("gridwork.")
            producer.publish(envelope, routing_key=routing_key, serializer=SERIALIZER)

    recorded = gateway_db(settings)[webhooks.DELIVERIES]

    def all_taken() -> bool:
        with Connection(settings.amqp_uri) as connection:
            queue = connection.default_channel.queue_declare("gateway-webhooks", passive=True)
            return queue.message_count == 0 and recorded.count_documents({}) == 60

    wait_until(all_taken, 15, "the burst recorded")
    reported = {e["id"] for e in events if e["type"] == "gridwork.incident.reported"}
    assert {d["envelope"]["id"] for d in recorded.find()} == reported
