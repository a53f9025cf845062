"""The append-only access audit: who saw whose full ID or phone number, and why."""

from __future__ import annotations

from gridwork_common.errors import InvalidInput
from gridwork_common.paging import page_limit
from services.population import store
from services.population.domain import access
from services.population.usecases.base import UseCases, iso_time


class AuditUseCases(UseCases):
    def access_audit(
        self,
        resident_id: str | None = None,
        actor: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> dict:
        self.require(access.AUDITORS, "reading the access audit")
        query: dict = {**access.scope_filter(self.caller)}
        if resident_id:
            query["resident_id"] = resident_id
        if actor:
            query["actor"] = actor
        if cursor:
            query["_id"] = {"$lt": _object_id(cursor)}
        rows = list(
            self.db[store.ACCESS_AUDIT].find(query).sort("_id", -1).limit(page_limit(limit))
        )
        return {
            "items": [
                {
                    "id": str(row["_id"]),
                    "at": iso_time(row["at"]),
                    "actor": row["actor"],
                    "roles": row["roles"],
                    "resident_id": row["resident_id"],
                    "fields": row["fields"],
                    "purpose": row["purpose"],
                    "request_id": row.get("request_id"),
                }
                for row in rows
            ],
            "next_cursor": str(rows[-1]["_id"]) if len(rows) == limit else None,
        }


def _object_id(cursor: str):
    from bson import ObjectId
    from bson.errors import InvalidId

    try:
        return ObjectId(cursor)
    except InvalidId:
        raise InvalidInput("cursor", "is not a cursor this list returned") from None
