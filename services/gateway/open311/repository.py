"""The gateway's Open311 records: trusted clients (by the hash of their API key) and the
service requests they created (with the citizen's contact, never shown to the public).
The only Open311 module touching pymongo."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import datetime

from pymongo import DESCENDING
from pymongo.database import Database

from services.gateway import store
from services.gateway.open311.requests import RequestQuery


def key_digest(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


class Open311Records:
    def __init__(self, db: Database):
        self.clients = db[store.OPEN311_CLIENTS]
        self.requests = db[store.OPEN311_REQUESTS]

    # ------------------------------------------------------------------ clients
    def client_by_key(self, api_key: str) -> dict | None:
        return self.clients.find_one({"_id": key_digest(api_key), "disabled": False})

    def add_client(
        self, api_key: str, client_id: str, name: str, created_by: str, at: datetime
    ) -> None:
        self.clients.insert_one(
            {
                "_id": key_digest(api_key),
                "client_id": client_id,
                "name": name,
                "disabled": False,
                "created_by": created_by,
                "created_at": at,
            }
        )

    # ------------------------------------------------------------------ requests
    def add_request(self, record: dict) -> None:
        self.requests.insert_one(record)

    def request(self, service_request_id: str) -> dict | None:
        return self.requests.find_one({"_id": service_request_id})

    def by_token(self, token: str) -> dict | None:
        return self.requests.find_one({"token": token})

    def by_ids(self, ids: tuple[str, ...]) -> list[dict]:
        """The requests with these ids, in the order asked (unknown ids left out)."""
        found = {row["_id"]: row for row in self.requests.find({"_id": {"$in": list(ids)}})}
        return [found[request_id] for request_id in dict.fromkeys(ids) if request_id in found]

    def newest_in_window(self, query: RequestQuery) -> Iterator[dict]:
        """Requests made in the query's window, of its service codes, newest first."""
        criteria: dict = {"requested_at": {"$gte": query.start, "$lte": query.end}}
        if query.service_codes:
            criteria["service_code"] = {"$in": list(query.service_codes)}
        return self.requests.find(criteria).sort("requested_at", DESCENDING)
