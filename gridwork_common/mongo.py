"""MongoDB dependency provider: one client per service container, one database per
service, indexes declared next to the service and created idempotently at start."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import eventlet
import pymongo
from nameko.extensions import DependencyProvider
from pymongo import IndexModel, MongoClient
from pymongo.database import Database
from pymongo.errors import PyMongoError

from gridwork_common.config import Settings
from gridwork_common.health import probe

log = logging.getLogger(__name__)

IndexSpec = Mapping[str, Sequence[IndexModel]]
INDEX_RETRY_INTERVAL_S = 5.0


def new_client(settings: Settings, app_name: str) -> MongoClient:
    # Majority writes: an acknowledged write (and a transaction's commit, the outbox's
    # included) survives the loss of the primary; a replica set's failover never rolls it
    # back. The URI cannot weaken it: the keyword wins. A few writes opt out (w=1, no
    # journal wait), where losing one is harmless: deleting sent outbox entries (a resend
    # follows), an Idempotency-Key's claim and kept response (the retry runs again and
    # the services de-duplicate), and the gateway's account-activity events (statistics).
    return MongoClient(
        settings.mongo_uri,
        appname=app_name,
        tz_aware=True,
        uuidRepresentation="standard",
        serverSelectionTimeoutMS=settings.mongo_timeout_ms,
        connectTimeoutMS=settings.mongo_timeout_ms,
        w="majority",
    )


def ensure_indexes(database: Database, indexes: IndexSpec) -> None:
    # create_indexes is a no-op for an index that already exists with the same spec.
    for collection, models in indexes.items():
        if models:
            database[collection].create_indexes(list(models))


def ping(database: Database, timeout_s: float = 1.5) -> None:
    # pymongo.timeout bounds server selection too, so a dead mongod answers fast.
    with pymongo.timeout(timeout_s):
        database.command("ping")


class MongoDatabase(DependencyProvider):
    """Gives each worker the service's own `pymongo.database.Database`."""

    def __init__(self, indexes: IndexSpec | None = None):
        self.indexes = dict(indexes or {})
        self.client: MongoClient | None = None
        self.database: Database | None = None

    def setup(self):
        settings = Settings.from_nameko_config(self.container.config)
        service_name = self.container.service_name
        self.client = new_client(settings, app_name=f"gridwork-{service_name}")
        self.database = self.client[settings.database_name(service_name)]

    def start(self):
        # A service whose mongod is down (restarting, failing over) still starts, answers
        # `health` with mongo down, and builds its indexes once mongod is back.
        try:
            self._ensure_indexes()
        except PyMongoError as exc:
            log.warning("mongo unreachable at start; retrying indexes", extra={"error": str(exc)})
            self.container.spawn_managed_thread(self._ensure_indexes_until_done)

    def _ensure_indexes(self) -> None:
        ensure_indexes(self.database, self.indexes)
        log.info("mongo database ready", extra={"database": self.database.name})

    def _ensure_indexes_until_done(self) -> None:
        while self.client is not None:
            eventlet.sleep(INDEX_RETRY_INTERVAL_S)
            try:
                self._ensure_indexes()
            except PyMongoError:
                continue
            return

    def stop(self):
        self._close()

    def kill(self):
        self._close()

    def _close(self):
        if self.client is not None:
            self.client.close()
            self.client = None

    def get_dependency(self, worker_ctx) -> Database:
        return self.database


def mongo_health(database: Database) -> dict:
    return probe(lambda: ping(database))
