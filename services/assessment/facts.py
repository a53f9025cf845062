"""Facts: the other services' events, stored once each (the CloudEvent `id` is the key,
so a redelivered message never counts twice), reduced to who, where, when and what."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, timedelta, timezone

from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from gridwork_common.events import parse_event
from services.assessment import store

CHINA_TIME = timezone(timedelta(hours=8))
GRID_LENGTH = 15


def territory_path(code: str | None) -> list[str]:
    """The codes of a territory node and its ancestors (county 6, township 9, village 12,
    grid 15 digits), for "everything under this node" queries."""
    if not code or not code.isdigit():
        return []
    return [code[:length] for length in (6, 9, 12, 15) if len(code) >= length]


def fact_from_event(payload: Mapping) -> dict:
    event = parse_event(payload)  # refuses anything that is not a CloudEvent
    data = event.data
    local = event.time.astimezone(CHINA_TIME)
    territory = data.get("grid_code") or event.subject
    fact = {
        "_id": str(event.id),
        "type": event.routing_key,
        "source": event.source,
        "time": event.time.astimezone(UTC),
        "day": local.strftime("%Y-%m-%d"),
        "period": local.strftime("%Y-%m"),
        "territory": territory,
        "path": territory_path(territory),
        "department": data.get("department") or event.extensions.get("department"),
        "actor": data.get("actor_id")
        or data.get("worker_id")
        or data.get("user_id")
        or data.get("reporter_id")
        or data.get("imported_by")
        or data.get("uploader"),
        "data": dict(data),
    }
    if "incident_id" in data:
        fact["incident_id"] = data["incident_id"]
    return fact


def record(db: Database, payload: Mapping) -> bool:
    """Store the fact an event carries; False when it was stored before."""
    try:
        db[store.FACTS].insert_one(fact_from_event(payload))
    except DuplicateKeyError:
        return False
    return True


SUBJECT_KINDS = ("territory", "department", "worker")


def subject_match(kind: str, subject: str) -> dict:
    """The facts about a subject: everything under a territory node, a department's
    cases, or what a person did."""
    return {
        "territory": {"path": subject},
        "department": {"department": subject},
        "worker": {"actor": subject},
    }[kind]


def incident_indicators(db: Database, territory: str, period: str, kind: str = "territory") -> dict:
    """Case indicators for a territory node and month, by one aggregation over the facts:
    cases reported; due (closed, plus open cases that passed a deadline); closed; closed
    on time (no overdue notice ever); urgent variants; reworked; escalated; supervised;
    satisfaction."""
    pipeline = [
        {
            "$match": {
                **subject_match(kind, territory),
                "period": period,
                "type": {"$regex": r"^incident\."},
            }
        },
        {
            "$group": {
                "_id": "$incident_id",
                "types": {"$addToSet": "$type"},
                "urgency": {"$max": "$data.urgency"},
                "reworks": {"$sum": {"$cond": [{"$eq": ["$type", "incident.reworked"]}, 1, 0]}},
                "satisfaction": {"$max": "$data.satisfaction"},
            }
        },
        {
            "$project": {
                "reported": {"$in": ["incident.reported", "$types"]},
                "closed": {"$in": ["incident.closed", "$types"]},
                "overdue": {"$in": ["incident.overdue", "$types"]},
                "escalated": {"$in": ["incident.escalated", "$types"]},
                "supervised": {"$in": ["incident.supervised", "$types"]},
                "extended": {"$in": ["incident.extended", "$types"]},
                "urgent": {"$eq": ["$urgency", "urgent"]},
                "reworks": 1,
                "satisfaction": 1,
            }
        },
        {
            "$group": {
                "_id": None,
                "cases_reported": {"$sum": {"$cond": ["$reported", 1, 0]}},
                "cases_closed": {"$sum": {"$cond": ["$closed", 1, 0]}},
                "cases_due": {"$sum": {"$cond": [{"$or": ["$closed", "$overdue"]}, 1, 0]}},
                "closed_on_time": {
                    "$sum": {"$cond": [{"$and": ["$closed", {"$not": ["$overdue"]}]}, 1, 0]}
                },
                "approved_deferrals": {"$sum": {"$cond": ["$extended", 1, 0]}},
                "urgent_due": {
                    "$sum": {
                        "$cond": [{"$and": ["$urgent", {"$or": ["$closed", "$overdue"]}]}, 1, 0]
                    }
                },
                "urgent_closed": {"$sum": {"$cond": [{"$and": ["$urgent", "$closed"]}, 1, 0]}},
                "urgent_closed_on_time": {
                    "$sum": {
                        "$cond": [{"$and": ["$urgent", "$closed", {"$not": ["$overdue"]}]}, 1, 0]
                    }
                },
                "overdue": {"$sum": {"$cond": ["$overdue", 1, 0]}},
                "escalated": {"$sum": {"$cond": ["$escalated", 1, 0]}},
                "supervised": {"$sum": {"$cond": ["$supervised", 1, 0]}},
                "reworked": {"$sum": "$reworks"},
                "satisfaction": {"$avg": "$satisfaction"},
            }
        },
    ]
    rows = list(db[store.FACTS].aggregate(pipeline))
    empty = {
        "cases_reported": 0,
        "cases_closed": 0,
        "cases_due": 0,
        "closed_on_time": 0,
        "approved_deferrals": 0,
        "urgent_due": 0,
        "urgent_closed": 0,
        "urgent_closed_on_time": 0,
        "overdue": 0,
        "escalated": 0,
        "supervised": 0,
        "reworked": 0,
        "satisfaction": None,
    }
    result = {**empty, **(rows[0] if rows else {})}
    result.pop("_id", None)
    return result


def visit_indicators(db: Database, territory: str, period: str, kind: str = "territory") -> dict:
    """Visits done by risk level, and obligations missed (from visit.overdue notices)."""
    rows = db[store.FACTS].aggregate(
        [
            {
                "$match": {
                    "path": territory,
                    "period": period,
                    "type": {"$in": ["visit.recorded", "visit.overdue"]},
                }
            },
            {"$group": {"_id": {"type": "$type", "risk": "$data.risk_level"}, "n": {"$sum": 1}}},
        ]
    )
    done: dict[str, int] = {}
    missed: dict[str, int] = {}
    for row in rows:
        target = done if row["_id"]["type"] == "visit.recorded" else missed
        target[row["_id"]["risk"]] = row["n"]
    return {"visits_done_by_risk": done, "visits_missed_by_risk": missed}


def activity_indicators(db: Database, territory: str, period: str, kind: str = "territory") -> dict:
    """Account activity: distinct active user-days, logins and actions."""
    rows = list(
        db[store.FACTS].aggregate(
            [
                {
                    "$match": {
                        "path": territory,
                        "period": period,
                        "type": {"$in": ["account.login", "account.action"]},
                    }
                },
                {
                    "$group": {
                        "_id": None,
                        "days": {"$addToSet": {"user": "$actor", "day": "$day"}},
                        "logins": {"$sum": {"$cond": [{"$eq": ["$type", "account.login"]}, 1, 0]}},
                        "actions": {
                            "$sum": {"$cond": [{"$eq": ["$type", "account.action"]}, 1, 0]}
                        },
                    }
                },
                {
                    "$project": {
                        "_id": 0,
                        "active_user_days": {"$size": "$days"},
                        "logins": 1,
                        "actions": 1,
                    }
                },
            ]
        )
    )
    return rows[0] if rows else {"active_user_days": 0, "logins": 0, "actions": 0}


def subjects(db: Database, kind: str, level_length: int | None, period: str) -> list[str]:
    """Everyone with facts in a period: territory nodes of one level (by code length),
    departments, or people."""
    if kind == "territory":
        rows = db[store.FACTS].aggregate(
            [
                {"$match": {"period": period}},
                {"$unwind": "$path"},
                {"$match": {"path": {"$regex": f"^\\d{{{level_length}}}$"}}},
                {"$group": {"_id": "$path"}},
                {"$sort": {"_id": 1}},
            ]
        )
    else:
        field = "$department" if kind == "department" else "$actor"
        rows = db[store.FACTS].aggregate(
            [
                {"$match": {"period": period, field[1:]: {"$nin": [None, "none"]}}},
                {"$group": {"_id": field}},
                {"$sort": {"_id": 1}},
            ]
        )
    return [row["_id"] for row in rows]
