"""Webhooks for departments without AMQP: subscriptions, matching events to them, and
signed deliveries with retries and a dead-letter list.

The delivery process (`python -m services.gateway.deliveries`) consumes the services'
topic exchanges into a durable queue, turns each matching event into a delivery record
(one per subscription and event id, so a redelivered message is not sent twice), and
sends due deliveries: CloudEvents structured mode over HTTP, signed per Standard Webhooks
(https://www.standardwebhooks.com: `webhook-id`, `webhook-timestamp`, `webhook-signature`,
so a receiver can refuse a replayed or altered message), retried with exponential backoff
and full jitter, dead after the last try.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import math
import os
import random
import secrets
import socket
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from urllib.parse import urlparse

import urllib3
from pymongo import ReturnDocument
from pymongo.database import Database
from pymongo.errors import BulkWriteError, DuplicateKeyError
from standardwebhooks.webhooks import Webhook

from gridwork_common.clock import Clock, as_stored, utc_now
from gridwork_common.idempotency import check_replay, fingerprint, keyed_id
from services.gateway.metrics import WEBHOOK_DELIVERIES

SUBSCRIPTIONS = "subscriptions"
DELIVERIES = "deliveries"
EXCHANGES = ("events.events", "population.events", "gateway.events")
PENDING, SENDING, DELIVERED, DEAD = "pending", "sending", "delivered", "dead"
# Deprecated: the HMAC of the body alone (no id, no time, so replayable). Still sent in
# this release beside the Standard Webhooks headers; removed in the next one.
SIGNATURE_HEADER = "X-Gridwork-Signature"
SECRET_PREFIX = "whsec_"  # noqa: S105 (the Standard Webhooks prefix, not a secret)
SECRET_BYTES = 32
MAX_ATTEMPTS = int(os.environ.get("WEBHOOK_MAX_ATTEMPTS", "8"))
BACKOFF_BASE_S = float(os.environ.get("WEBHOOK_BACKOFF_BASE_S", "2"))
BACKOFF_CAP_S = 3600.0
SEND_TIMEOUT_S = 5.0
LEASE = timedelta(seconds=30)
DUPLICATE_KEY = 11000


class InvalidSubscription(ValueError):
    def __init__(self, field: str, problem: str):
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


def private_urls_allowed() -> bool:
    # A county's webhooks go to departments' servers; loopback and private addresses
    # are refused unless explicitly allowed (local development, tests): no SSRF.
    return os.environ.get("WEBHOOK_ALLOW_PRIVATE_URLS", "false").lower() in ("1", "true", "yes")


def check_url(url: str) -> str:
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise InvalidSubscription("url", "must be an http(s) URL")
    if not private_urls_allowed():
        try:
            addresses = {info[4][0] for info in socket.getaddrinfo(parsed.hostname, None)}
        except OSError:
            raise InvalidSubscription("url", "the host does not resolve") from None
        for address in addresses:
            ip = ipaddress.ip_address(address.split("%")[0])
            if ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved:
                raise InvalidSubscription("url", "must not point at a private address")
    return url


def event_type_matches(pattern: str, event_type: str) -> bool:
    """`incident.closed` matches itself; `incident.*` matches every incident event."""
    entity, _, action = pattern.partition(".")
    event_entity, _, event_action = event_type.partition(".")
    return entity == event_entity and action in ("*", event_action)


def matches(subscription: Mapping, envelope: Mapping) -> bool:
    event_type = str(envelope.get("type", "")).removeprefix("gridwork.")
    if not any(event_type_matches(p, event_type) for p in subscription["event_types"]):
        return False
    territory = subscription.get("territory")
    if territory and not str(envelope.get("subject", "")).startswith(territory):
        return False
    department = subscription.get("department")
    return not department or envelope.get("department") == department


def new_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and the base64 of a random 32-byte key."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def signing_key(secret: str) -> bytes:
    """The HMAC key of a subscription's secret. Secrets made before Standard Webhooks are
    64 hex characters whose ASCII bytes were the key; they keep that key, so their
    `whsec_` form (`standard_secret`) verifies the new headers and the old header is
    unchanged."""
    if secret.startswith(SECRET_PREFIX):
        return base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    return secret.encode("ascii")


def standard_secret(secret: str) -> str:
    """A subscription's secret in `whsec_` form, whichever form it was issued in."""
    return SECRET_PREFIX + base64.b64encode(signing_key(secret)).decode("ascii")


def legacy_signature(key: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def signed_headers(secret: str, message_id: str, at: datetime, body: bytes) -> dict[str, str]:
    """The signature headers of one attempt: the id is the message's (the same on every
    retry, so a receiver can drop duplicates), the timestamp the attempt's."""
    key = signing_key(secret)
    at = at.astimezone(UTC)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(math.floor(at.timestamp())),
        "webhook-signature": Webhook(key).sign(message_id, at, body.decode("utf-8")),
        SIGNATURE_HEADER: legacy_signature(key, body),
    }


def retry_delay(attempts: int, draw: Callable[[], float]) -> float:
    """Seconds before the next try after `attempts` failed ones: equal jitter, half the
    exponential ceiling plus a random share (`draw()` in [0, 1)) of the other half. The
    deliveries one outage failed together do not all come back at the same instants, and
    none comes back at once (full jitter could spend every try within seconds)."""
    ceiling = min(BACKOFF_BASE_S * 2 ** (attempts - 1), BACKOFF_CAP_S)
    return ceiling / 2 * (1 + min(max(draw(), 0.0), 1.0))


class Webhooks:
    def __init__(
        self,
        db: Database,
        clock: Clock = utc_now,
        jitter: Callable[[], float] = random.random,
    ):
        self.db = db
        self.clock = clock
        self.jitter = jitter  # the random draw of the retry backoff; tests pass their own

    def subscribe(
        self,
        owner: str,
        url: str,
        event_types: list[str],
        territory: str | None,
        department: str | None,
        idempotency_key: str | None = None,
    ) -> dict:
        """A retry under the same key gets the first attempt's subscription and secret."""
        request = {
            "url": url,
            "event_types": sorted(set(event_types)),
            "territory": territory,
            "department": department,
        }
        subscription_id = uuid.uuid4().hex
        if idempotency_key is not None:
            subscription_id = keyed_id("subscription", owner, idempotency_key)
            first = self.db[SUBSCRIPTIONS].find_one({"_id": subscription_id})
            if first is not None:
                check_replay(first, fingerprint(request))
                return {**render_subscription(first), "secret": first["secret"]}
        if not event_types:
            raise InvalidSubscription("event_types", "give at least one, e.g. incident.closed")
        secret = new_secret()
        document = {
            "_id": subscription_id,
            "owner": owner,
            "url": check_url(url),
            "event_types": sorted(set(event_types)),
            "territory": territory,
            "department": department,
            "secret": secret,
            "active": True,
            "created_at": as_stored(self.clock()),
            "request_fingerprint": fingerprint(request),
        }
        try:
            self.db[SUBSCRIPTIONS].insert_one(document)
        except DuplicateKeyError:  # the same key's retry, concurrently: its subscription
            first = self.db[SUBSCRIPTIONS].find_one({"_id": subscription_id})
            check_replay(first, fingerprint(request))
            return {**render_subscription(first), "secret": first["secret"]}
        return {**render_subscription(document), "secret": secret}

    def subscriptions(self, owner: str | None) -> list[dict]:
        query = {"active": True} if owner is None else {"active": True, "owner": owner}
        return [render_subscription(d) for d in self.db[SUBSCRIPTIONS].find(query).sort("_id")]

    def subscription(self, subscription_id: str, owner: str | None) -> dict:
        query = {"_id": subscription_id, "active": True}
        if owner is not None:
            query["owner"] = owner
        document = self.db[SUBSCRIPTIONS].find_one(query)
        if document is None:
            raise LookupError(subscription_id)
        return document

    def unsubscribe(self, subscription_id: str, owner: str | None) -> None:
        self.subscription(subscription_id, owner)
        self.db[SUBSCRIPTIONS].update_one({"_id": subscription_id}, {"$set": {"active": False}})

    def dead_letters(self, subscription_id: str) -> list[dict]:
        rows = self.db[DELIVERIES].find({"subscription_id": subscription_id, "state": DEAD})
        return [render_delivery(row) for row in rows.sort("created_at", 1).limit(500)]

    def replay(self, subscription_id: str, delivery_id: str) -> dict:
        replayed = self.db[DELIVERIES].find_one_and_update(
            {"_id": delivery_id, "subscription_id": subscription_id, "state": DEAD},
            {"$set": {"state": PENDING, "attempts": 0, "next_attempt_at": self.clock()}},
            return_document=ReturnDocument.AFTER,
        )
        if replayed is None:
            raise LookupError(delivery_id)
        return render_delivery(replayed)

    # ------------------------------------------------------------------ delivering
    def accept_event(self, envelope: Mapping) -> int:
        return self.accept_events([envelope])

    def accept_events(self, envelopes: list[Mapping]) -> int:
        """Record a delivery for every subscription each event matches (idempotent): one
        read of the subscriptions and one insert for the lot."""
        subscriptions = list(self.db[SUBSCRIPTIONS].find({"active": True}))
        if not subscriptions:
            return 0
        now = self.clock()
        deliveries = [
            {
                "_id": f"{subscription['_id']}:{envelope['id']}",
                "subscription_id": subscription["_id"],
                "envelope": dict(envelope),
                "state": PENDING,
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
            for envelope in envelopes
            for subscription in subscriptions
            if matches(subscription, envelope)
        ]
        if not deliveries:
            return 0
        try:
            self.db[DELIVERIES].insert_many(deliveries, ordered=False)
        except BulkWriteError as exc:
            errors = exc.details["writeErrors"]
            if any(error.get("code") != DUPLICATE_KEY for error in errors):
                raise
            return len(deliveries) - len(errors)  # the same events redelivered by the broker
        return len(deliveries)

    def send_due(self, http: urllib3.PoolManager, limit: int = 100) -> int:
        sent = 0
        while sent < limit:
            now = self.clock()
            delivery = self.db[DELIVERIES].find_one_and_update(
                {
                    "$or": [
                        {"state": PENDING, "next_attempt_at": {"$lte": now}},
                        {"state": SENDING, "lease_until": {"$lt": now}},
                    ]
                },
                {"$set": {"state": SENDING, "lease_until": now + LEASE}},
                sort=[("next_attempt_at", 1)],
                return_document=ReturnDocument.AFTER,
            )
            if delivery is None:
                return sent
            self._send(http, delivery)
            sent += 1
        return sent

    def _send(self, http: urllib3.PoolManager, delivery: Mapping) -> None:
        subscription = self.db[SUBSCRIPTIONS].find_one({"_id": delivery["subscription_id"]})
        if subscription is None or not subscription.get("active"):
            self.db[DELIVERIES].update_one(
                {"_id": delivery["_id"]},
                {"$set": {"state": DEAD, "last_error": "subscription removed"}},
            )
            return
        body = json.dumps(delivery["envelope"], ensure_ascii=False).encode()
        signed = signed_headers(subscription["secret"], delivery["_id"], self.clock(), body)
        error = None
        try:
            check_url(subscription["url"])
            response = http.request(
                "POST",
                subscription["url"],
                body=body,
                headers={
                    "Content-Type": "application/cloudevents+json; charset=utf-8",
                    **signed,
                    "X-Gridwork-Delivery": delivery["_id"],
                },
                timeout=SEND_TIMEOUT_S,
                retries=False,
                redirect=False,
            )
            if 200 <= response.status < 300:
                self.db[DELIVERIES].update_one(
                    {"_id": delivery["_id"]},
                    {
                        "$set": {"state": DELIVERED, "delivered_at": self.clock()},
                        "$inc": {"attempts": 1},
                    },
                )
                WEBHOOK_DELIVERIES.labels(DELIVERED).inc()
                return
            error = f"HTTP {response.status}"
        except (urllib3.exceptions.HTTPError, InvalidSubscription, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"[:300]
        attempts = delivery["attempts"] + 1
        if attempts >= MAX_ATTEMPTS:
            update = {"state": DEAD, "attempts": attempts, "last_error": error}
        else:
            delay = retry_delay(attempts, self.jitter)
            update = {
                "state": PENDING,
                "attempts": attempts,
                "last_error": error,
                "next_attempt_at": self.clock() + timedelta(seconds=delay),
            }
        self.db[DELIVERIES].update_one({"_id": delivery["_id"]}, {"$set": update})
        WEBHOOK_DELIVERIES.labels(DEAD if update["state"] == DEAD else "retry").inc()


def render_subscription(document: Mapping) -> dict:
    return {
        "id": document["_id"],
        "url": document["url"],
        "event_types": document["event_types"],
        "territory": document.get("territory"),
        "department": document.get("department"),
        "created_at": document["created_at"].isoformat(),
    }


def render_delivery(document: Mapping) -> dict:
    return {
        "id": document["_id"],
        "event_id": document["envelope"]["id"],
        "event_type": document["envelope"]["type"],
        "state": document["state"],
        "attempts": document["attempts"],
        "last_error": document.get("last_error"),
    }
