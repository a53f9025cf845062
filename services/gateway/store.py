"""The gateway's own MongoDB database (users, tokens, idempotent responses, webhook
subscriptions). One client per gunicorn worker process, made on first use, so nothing
is shared across gunicorn's fork."""

from __future__ import annotations

import os
import threading

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.database import Database

from gridwork_common.config import Settings
from gridwork_common.mongo import ensure_indexes, new_client
from gridwork_common.outbox import OUTBOX_INDEXES
from services.gateway.department_accounts import INDEXES as AMQP_ACCOUNT_INDEXES
from services.gateway.webhooks import DELIVERIES, SUBSCRIPTIONS

USERS = "users"
REFRESH_TOKENS = "refresh_tokens"
REVOKED_TOKENS = "revoked_tokens"
RATE_COUNTERS = "rate_counters"  # services/gateway/ratelimits.py
IDEMPOTENCY = "idempotency"
OPEN311_CLIENTS = "open311_clients"  # trusted clients, by the hash of their API key
OPEN311_REQUESTS = "open311_requests"  # requests they created, with the citizen's contact
UI_SESSIONS = "ui_sessions"  # the command centre's browser sessions (services/gateway/ui)

IDEMPOTENCY_TTL_S = 24 * 3600
INDEXES = {
    REFRESH_TOKENS: [
        IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0, name="expiry"),
        IndexModel([("user", ASCENDING)], name="user"),
    ],
    REVOKED_TOKENS: [IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0, name="expiry")],
    RATE_COUNTERS: [IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0, name="expiry")],
    UI_SESSIONS: [
        IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0, name="expiry"),
        IndexModel([("user", ASCENDING)], name="user"),
    ],
    IDEMPOTENCY: [
        IndexModel([("created_at", ASCENDING)], expireAfterSeconds=IDEMPOTENCY_TTL_S, name="ttl")
    ],
    SUBSCRIPTIONS: [IndexModel([("owner", ASCENDING), ("active", ASCENDING)], name="owner")],
    DELIVERIES: [
        IndexModel([("state", ASCENDING), ("next_attempt_at", ASCENDING)], name="due"),
        IndexModel([("subscription_id", ASCENDING), ("state", ASCENDING)], name="subscription"),
    ],
    **AMQP_ACCOUNT_INDEXES,  # departments' RabbitMQ users (services/gateway/department_accounts.py)
    **OUTBOX_INDEXES,  # account activity, written with its change (gridwork_common.outbox)
    OPEN311_REQUESTS: [
        IndexModel([("client_id", ASCENDING), ("created_at", ASCENDING)], name="client"),
        IndexModel([("token", ASCENDING)], name="token"),
        IndexModel([("requested_at", DESCENDING)], name="requested"),  # public reads
    ],
}

_lock = threading.Lock()
_databases: dict[tuple[int, str], Database] = {}


def gateway_db(settings: Settings) -> Database:
    """This process's handle on the gateway database (indexes made once per process)."""
    key = (os.getpid(), settings.database_name("gateway") + settings.mongo_uri)
    database = _databases.get(key)
    if database is None:
        with _lock:
            database = _databases.get(key)
            if database is None:
                client = new_client(settings, app_name="gridwork-gateway")
                database = client[settings.database_name("gateway")]
                ensure_indexes(database, INDEXES)
                _databases[key] = database
    return database
