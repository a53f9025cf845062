"""What the command centre's map draws: open and overdue cases per grid, and the cases
themselves as points, under one territory node and within the caller's scope."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from gridwork_common.errors import InvalidInput
from services.events import store
from services.events.domain import incident as loop

# Points beyond this are left off (the answer says so): a wall map of a county shows
# where cases cluster, and a few thousand circles is what a browser draws smoothly.
MAX_POINTS = 2000
# A case's current stage is overdue when the timer's overdue mark is this stage's.
OVERDUE = {
    "$and": [
        {"$eq": [{"$ifNull": ["$overdue_seq", 0]}, "$stage_seq"]},
        {"$ne": [{"$ifNull": ["$stage", None]}, None]},
    ]
}
POINT_FIELDS = {
    "location": 1,
    "state": 1,
    "category": 1,
    "urgency": 1,
    "grid_code": 1,
    "reported_at": 1,
    "open": 1,
    "stage": 1,
    "stage_seq": 1,
    "overdue_seq": 1,
}


def summary(desk, territory_code: str, filters: Mapping | None = None) -> dict:
    """{"grids": {grid_code: {"open", "overdue"}}, "cases": [...], "truncated"}: the
    newest cases first, each with its point (lon, lat; None when reported without one).

    `filters`: state (without it, open cases only), category, urgency, reported_from and
    reported_to (ISO 8601 with offset; from inclusive, to exclusive). Every count and
    point is within the desk caller's scope: the desk's own scope rule, the one its
    `search` and `counts` use."""
    if not isinstance(territory_code, str) or not territory_code.isdigit():
        raise InvalidInput("territory", "must be a territory code")
    match = {"$and": [{"path": territory_code}, _query(filters), desk.reads.scope_query()]}
    incidents = desk.context.db[store.INCIDENTS]
    grids = {
        row["_id"]: {"open": row["open"], "overdue": row["overdue"]}
        for row in incidents.aggregate(
            [
                {"$match": {"$and": [match, {"open": True}]}},
                {
                    "$group": {
                        "_id": "$grid_code",
                        "open": {"$sum": 1},
                        "overdue": {"$sum": {"$cond": [OVERDUE, 1, 0]}},
                    }
                },
            ]
        )
    }
    rows = list(
        incidents.find(match, POINT_FIELDS)
        .sort([("reported_at", -1), ("_id", 1)])
        .limit(MAX_POINTS + 1)
    )
    return {
        "territory": territory_code,
        "grids": grids,
        "cases": [_point(row) for row in rows[:MAX_POINTS]],
        "truncated": len(rows) > MAX_POINTS,
    }


def _query(filters: Mapping | None) -> dict:
    filters = dict(filters or {})
    query: dict = {}
    state = filters.pop("state", None)
    if state is None:
        query["open"] = True
    elif state in loop.STATES:
        query["state"] = state
    else:
        raise InvalidInput("state", f"must be one of {', '.join(loop.STATES)}")
    if "category" in filters:
        query["category"] = str(filters.pop("category"))
    if "urgency" in filters:
        urgency = filters.pop("urgency")
        if urgency not in loop.URGENCIES:
            raise InvalidInput("urgency", f"must be one of {', '.join(loop.URGENCIES)}")
        query["urgency"] = urgency
    window = {}
    for name, operator in (("reported_from", "$gte"), ("reported_to", "$lt")):
        if name in filters:
            window[operator] = _moment(filters.pop(name), name)
    if window:
        query["reported_at"] = window
    if filters:
        raise InvalidInput(sorted(filters)[0], "is not a filter")
    return query


def _moment(value, field: str) -> datetime:
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise InvalidInput(field, "must be an ISO 8601 time with a UTC offset")
    return moment.astimezone(UTC)


def _point(row: Mapping) -> dict:
    overdue = (
        bool(row.get("open"))
        and row.get("stage") is not None
        and row.get("overdue_seq", 0) == row.get("stage_seq")
    )
    reported_at = row["reported_at"]
    if reported_at.tzinfo is None:  # pymongo reads naive UTC
        reported_at = reported_at.replace(tzinfo=UTC)
    lon, lat = row.get("location") or (None, None)  # a case may be reported without one
    return {
        "id": row["_id"],
        "lon": lon,
        "lat": lat,
        "state": row["state"],
        "category": row["category"],
        "urgency": row.get("urgency", "normal"),
        "grid_code": row["grid_code"],
        "reported_at": reported_at.isoformat(),
        "overdue": overdue,
    }
