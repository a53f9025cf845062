"""The reading side of the incident desk: what a caller may see (their scope), a case
rendered for them, its timeline, possible duplicates near a report, worklists, search,
paging and counts."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import timedelta

from gridwork_common import roles
from gridwork_common.errors import InvalidInput, NotFound
from gridwork_common.paging import MAX_PAGE
from services.events import store
from services.events.domain import incident as loop
from services.events.repository import CASE_STATE, WITHOUT_EMBEDDED
from services.events.usecases import case_input, case_rendering
from services.events.usecases.case_context import CaseContext

CENTRE_QUEUE_STATES = (
    loop.REPORTED,
    loop.ACCEPTED,
    loop.REGISTERED,
    loop.RETURNED,
    loop.VERIFIED,
    loop.SUSPENDED,
)
WORKLISTS = ("my_grid", "verification", "centre_queue", "department_inbox", "overdue", "supervised")
RENDERED_FIELDS = tuple(
    field.name for field in dataclasses.fields(loop.Incident) if field.name != "timeline"
)
NEARBY_FIELDS = dict.fromkeys(("state", "category", "grid_code", "reported_at", "description"), 1)


class CaseReads:
    def __init__(self, context: CaseContext):
        self.context = context

    def visible(self, incident_id: str, projection: Mapping = CASE_STATE) -> dict:
        """The case if the caller may see it; without its timeline unless asked for
        (`WITHOUT_EMBEDDED`): a step appends to it, rendering leaves it out."""
        if not isinstance(incident_id, str):
            raise InvalidInput("incident_id", "must be a string")
        document = self.context.db[store.INCIDENTS].find_one({"_id": incident_id}, projection)
        if document is None or not self._sees(document):
            raise NotFound(f"no incident {incident_id}")
        return document

    def _sees(self, document: Mapping) -> bool:
        caller = self.context.caller
        if caller.has_role(roles.SYSTEM):
            return True
        if caller.department and caller.department in document.get("departments_involved", []):
            return True
        if caller.has_role(roles.DEPARTMENT_HANDLER) and not caller.has_role(
            roles.GRID_WORKER, roles.GRID_LEADER, roles.CENTRE_OPERATOR, roles.LEADER, roles.ADMIN
        ):
            return False
        return loop.contains(caller.scope, document["grid_code"])

    def scope_query(self) -> dict:
        caller = self.context.caller
        if caller.has_role(roles.SYSTEM):
            return {}
        clauses = []
        if caller.department:
            clauses.append({"departments_involved": caller.department})
        if caller.scope and caller.has_role(
            roles.GRID_WORKER, roles.GRID_LEADER, roles.CENTRE_OPERATOR, roles.LEADER, roles.ADMIN
        ):
            clauses.append({"path": caller.scope})
        return {"$or": clauses} if clauses else {"_id": {"$in": []}}

    def get(self, incident_id: str) -> dict:
        return self.render(self.visible(incident_id))

    def timeline(self, incident_id: str) -> list[dict]:
        document = self.visible(incident_id, WITHOUT_EMBEDDED)
        return case_rendering.render_timeline(document["timeline"])

    def render(
        self,
        document: Mapping,
        as_of_version: int | None = None,
        incident: loop.Incident | None = None,  # the document's, when the caller has it
    ) -> dict:
        if incident is None:
            incident = loop.from_document(document)
        # The case's fields but its timeline (a call of its own), without turning the
        # whole timeline into plain values to drop it.
        rendered = {
            name: case_rendering.plain_json(getattr(incident, name)) for name in RENDERED_FIELDS
        }
        rendered.update(
            id=incident.incident_id,
            allowed_actions=loop.allowed_actions(incident, self.context.actor),
            escalated=incident.escalated,
            supervised=incident.supervised,
            overdue=document.get("overdue_seq", 0) == incident.stage_seq
            and incident.stage is not None,
            merged_ids=document.get("merged_ids", []),
        )
        if document.get("patrol_id"):
            rendered["patrol_id"] = document["patrol_id"]
        if as_of_version is not None:
            rendered["replayed_version"] = as_of_version
        return rendered

    def possible_duplicates(self, incident_id: str) -> list[dict]:
        """Open cases of the same category near this one, reported within the window."""
        document = self.context.db[store.INCIDENTS].find_one({"_id": incident_id})
        return [] if document is None else self.nearby(document)

    def nearby(self, document: Mapping) -> list[dict]:
        if "geo" not in document:
            return []
        incident_id = document["_id"]
        policy = self.context.setup.policy()
        since = document["reported_at"] - timedelta(hours=policy["duplicate_window_hours"])
        nearby = (
            self.context.db[store.INCIDENTS]
            .find(
                {
                    "_id": {"$ne": incident_id},
                    "category": document["category"],
                    "open": True,
                    "reported_at": {"$gte": since},
                    "geo": {
                        "$nearSphere": {
                            "$geometry": document["geo"],
                            "$maxDistance": policy["duplicate_radius_m"],
                        }
                    },
                    **self.scope_query(),
                },
                NEARBY_FIELDS,  # only what is shown: not the case's events and records
            )
            .limit(10)
        )
        return [
            {
                "id": row["_id"],
                "state": row["state"],
                "category": row["category"],
                "grid_code": row["grid_code"],
                "reported_at": case_rendering.as_json(row["reported_at"]),
                "description": row.get("description", ""),
            }
            for row in nearby
        ]

    def worklist(self, kind: str, cursor: str | None = None, limit: int = 50) -> dict:
        caller = self.context.caller
        queries = {
            "my_grid": {"path": caller.scope, "open": True},
            "verification": {"path": caller.scope, "state": loop.AWAITING_VERIFICATION},
            "centre_queue": {"owning_centre": caller.scope, "state": {"$in": CENTRE_QUEUE_STATES}},
            "department_inbox": {
                "department": caller.department,
                "state": {"$in": [loop.DISPATCHED, loop.HANDLING]},
            },
            "overdue": {"open": True, "$expr": {"$eq": ["$overdue_seq", "$stage_seq"]}},
            "supervised": {"open": True, "supervision_count": {"$gt": 0}},
        }
        if kind not in queries:
            raise InvalidInput("kind", f"must be one of {', '.join(WORKLISTS)}")
        return self._page(queries[kind], cursor, limit)

    def search(
        self, filters: Mapping | None = None, cursor: str | None = None, limit: int = 50
    ) -> dict:
        filters = dict(filters or {})
        query: dict = {}
        if "ids" in filters:  # e.g. the Open311 requests of a page, in one call
            ids = filters.pop("ids")
            if not isinstance(ids, list) or len(ids) > MAX_PAGE:
                raise InvalidInput("ids", f"must be a list of at most {MAX_PAGE} incident ids")
            query["_id"] = {"$in": [str(incident_id) for incident_id in ids]}
        if "state" in filters:
            if filters["state"] not in loop.STATES:
                raise InvalidInput("state", f"must be one of {', '.join(loop.STATES)}")
            query["state"] = filters.pop("state")
        if "category" in filters:
            query["category"] = str(filters.pop("category"))
        if "territory" in filters:
            query["path"] = str(filters.pop("territory"))
        if "overdue" in filters:
            overdue = filters.pop("overdue")
            query["$expr"] = {("$eq" if overdue else "$ne"): ["$overdue_seq", "$stage_seq"]}
            query["open"] = True
        query.update(case_input.queue_filters(filters))
        window = {}
        for name, operator in (("reported_from", "$gte"), ("reported_to", "$lt")):
            if name in filters:
                window[operator] = case_input.aware_time(filters.pop(name), name)
        if window:
            query["reported_at"] = window
        if filters:
            raise InvalidInput(sorted(filters)[0], "is not a filter")
        return self._page(query, cursor, limit)

    def _page(self, query: dict, cursor: str | None, limit: int) -> dict:
        if not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
            raise InvalidInput("limit", f"must be an integer from 1 to {MAX_PAGE}")
        clauses = [query, self.scope_query()]
        if cursor:
            clauses.append({"_id": {"$gt": cursor}})
        rows = list(
            self.context.db[store.INCIDENTS].find({"$and": clauses}).sort("_id", 1).limit(limit)
        )
        return {
            "items": [self.render(row) for row in rows],
            "next_cursor": rows[-1]["_id"] if len(rows) == limit else None,
        }

    def counts(self, territory_code: str) -> dict:
        """Cases per state under a territory node (within the caller's scope)."""
        rows = self.context.db[store.INCIDENTS].aggregate(
            [
                {"$match": {"$and": [{"path": territory_code}, self.scope_query()]}},
                {"$group": {"_id": "$state", "count": {"$sum": 1}}},
            ]
        )
        by_state = {row["_id"]: row["count"] for row in rows}
        return {"territory": territory_code, "by_state": by_state, "total": sum(by_state.values())}
