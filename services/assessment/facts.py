"""Facts: the other services' events, stored once each (the CloudEvent `id` is the key,
so a redelivered message never counts twice), reduced to who, where, when and what; and
the indicators of every subject of a level, counted from them by aggregation pipelines.

The counts are defined in `domain/indicators.py`, whose plain loop is the reference the
pipelines are tested against."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping
from datetime import UTC, datetime, timedelta, timezone

from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from gridwork_common.events import parse_event
from services.assessment import store
from services.assessment.domain import indicators
from services.assessment.domain.indicators import (
    ACCOUNT_TYPES,
    HANDLING_MINUTES,
    RECORD_TYPES,
    RISK_LEVELS,
    TERRITORY_LEVELS,
    URGENT,
    VISIT_OBLIGATIONS,
    VISIT_RECORDED,
    Indicators,
)
from services.assessment.domain.periods import Period

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
    happened = event.time
    if event.routing_key == VISIT_RECORDED:
        # A visit counts when it was made (a phone may upload it days later), as the
        # population service counts it against the month's obligations.
        happened = _moment(data.get("at")) or happened
    local = happened.astimezone(CHINA_TIME)
    territory = data.get("grid_code") or event.subject
    month = local.strftime("%Y-%m")
    if event.routing_key == indicators.VISIT_OBLIGATIONS:
        month = data.get("period") or month  # the month the obligations were for
    fact = {
        "_id": str(event.id),
        "type": event.routing_key,
        "source": event.source,
        "time": happened.astimezone(UTC),
        "day": local.strftime("%Y-%m-%d"),
        "period": month,
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


def _moment(text) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text) if isinstance(text, str) else None
    except ValueError:
        return None
    return moment if moment is not None and moment.tzinfo is not None else None


def record(db: Database, payload: Mapping) -> bool:
    """Store the fact an event carries; False when it was stored before."""
    try:
        db[store.FACTS].insert_one(fact_from_event(payload))
    except DuplicateKeyError:
        return False
    return True


def _subject(level: str, field: str = "") -> dict:
    """The pipeline expression for whom a fact counts at a level (null for no one);
    `indicators.subject_of` in MongoDB's words."""
    if level in TERRITORY_LEVELS:
        return {"$ifNull": [{"$arrayElemAt": ["$path", TERRITORY_LEVELS[level]]}, None]}
    if level == "department":
        department = {"$ifNull": ["$department", None]}
        return {"$cond": [{"$eq": [department, indicators.NO_DEPARTMENT]}, None, department]}
    if level == "worker":
        return {"$ifNull": [field or "$actor", None]}
    indicators.subject_of({}, level)  # raises, naming the field
    raise AssertionError(level)


def _is(type_: str) -> dict:
    return {"$eq": ["$type", type_]}


def _has(type_: str) -> dict:
    return {"$in": [type_, "$types"]}


def _count(condition) -> dict:
    return {"$sum": {"$cond": [condition, 1, 0]}}


def _whole_number(path: str) -> dict:
    return {"$in": [{"$type": path}, ["int", "long"]]}


def _case_pipeline(match: dict, level: str) -> list[dict]:
    subject = _subject(level)
    closed = _has("incident.closed")
    overdue = _has("incident.overdue")
    due = {"$or": [closed, overdue]}
    deferred = {"$and": [due, _has("incident.extended")]}
    urgent = "$urgent"
    minutes = {"$filter": {"input": "$minutes", "cond": {"$ne": ["$$this", None]}}}
    count = {"$size": "$minutes"}
    # nearest rank: the ceil(9n/10)-th smallest, in integers
    rank = {"$max": [1, {"$floor": {"$divide": [{"$add": [{"$multiply": [9, count]}, 9]}, 10]}}]}
    return [
        {
            "$match": {
                **match,
                "type": {"$regex": r"^incident\."},
                "incident_id": {"$nin": [None, ""]},
            }
        },
        {
            "$group": {
                "_id": "$incident_id",
                "types": {"$addToSet": "$type"},
                "urgent": {"$max": {"$eq": ["$data.urgency", URGENT]}},
                "reworks": _count(_is("incident.reworked")),
                "satisfaction": {
                    "$max": {
                        "$cond": [
                            {
                                "$and": [
                                    _is("incident.evaluated"),
                                    _whole_number("$data.satisfaction"),
                                ]
                            },
                            "$data.satisfaction",
                            None,
                        ]
                    }
                },
                "minutes": {
                    "$max": {
                        "$cond": [
                            {
                                "$and": [
                                    _is("incident.closed"),
                                    _whole_number(f"$data.{HANDLING_MINUTES}"),
                                ]
                            },
                            f"$data.{HANDLING_MINUTES}",
                            None,
                        ]
                    }
                },
                "subjects": {"$addToSet": subject},
                "reporters": {"$addToSet": {"$cond": [_is("incident.reported"), subject, None]}},
            }
        },
        {"$unwind": "$subjects"},
        {"$match": {"subjects": {"$ne": None}}},
        {
            "$group": {
                "_id": "$subjects",
                "cases_handled": {"$sum": 1},
                "cases_reported": _count({"$in": ["$subjects", "$reporters"]}),
                "cases_due": _count(due),
                "cases_closed": _count(closed),
                "closed_on_time": _count(
                    {"$and": [closed, {"$not": [overdue]}, {"$not": [deferred]}]}
                ),
                "approved_deferrals": _count(deferred),
                "urgent_due": _count({"$and": [urgent, due]}),
                "urgent_closed": _count({"$and": [urgent, closed]}),
                "urgent_closed_on_time": _count({"$and": [urgent, closed, {"$not": [overdue]}]}),
                "overdue": _count(overdue),
                "escalated": _count(_has("incident.escalated")),
                "supervised": _count(_has("incident.supervised")),
                "reworked": {"$sum": "$reworks"},
                "reworked_cases": _count({"$gt": ["$reworks", 0]}),
                "verified_or_reworked": _count(
                    {"$or": [_has("incident.verified"), _has("incident.reworked")]}
                ),
                "satisfaction_total": {"$sum": {"$ifNull": ["$satisfaction", 0]}},
                "satisfaction_count": _count({"$ne": ["$satisfaction", None]}),
                "minutes": {"$push": {"$cond": [closed, "$minutes", None]}},
            }
        },
        {"$set": {"minutes": minutes}},
        {
            "$project": {
                "cases_handled": 1,
                "cases_reported": 1,
                "cases_due": 1,
                "cases_closed": 1,
                "closed_on_time": 1,
                "approved_deferrals": 1,
                "urgent_due": 1,
                "urgent_closed": 1,
                "urgent_closed_on_time": 1,
                "overdue": 1,
                "escalated": 1,
                "supervised": 1,
                "reworked": 1,
                "reworked_cases": 1,
                "verified_or_reworked": 1,
                "satisfaction_total": 1,
                "satisfaction_count": 1,
                "handling_count": count,
                "handling_minutes_total": {"$sum": "$minutes"},
                "handling_minutes_p90": {
                    "$arrayElemAt": [
                        {"$sortArray": {"input": "$minutes", "sortBy": 1}},
                        {"$toInt": {"$subtract": [rank, 1]}},
                    ]
                },
            }
        },
    ]


def indicators_by_subject(
    db: Database,
    level: str,
    period: Period,
    working_days: Collection[str],
    within: str | None = None,
) -> dict[str, Indicators]:
    """Every subject of a level with facts in the period, and its indicators, by
    aggregation pipelines (one per kind of fact; Python only merges their per-subject
    rows). The same answer as `domain.indicators.indicators_by_subject` over the facts."""
    first, last = period.day_texts()
    dated = {"day": {"$gte": first, "$lte": last}}
    if within is not None:
        dated["path"] = within
    facts = db[store.FACTS]
    counts: dict[str, dict] = defaultdict(dict)
    for row in facts.aggregate(_case_pipeline(dated, level), allowDiskUse=True):
        subject = row.pop("_id")
        if row["handling_count"] == 0:
            row["handling_minutes_p90"] = None
        counts[subject].update(row)
    for row in facts.aggregate(
        [
            {"$match": {**dated, "type": {"$in": [VISIT_RECORDED, *RECORD_TYPES]}}},
            {
                "$group": {
                    "_id": {"s": _subject(level), "visit": _is(VISIT_RECORDED)},
                    "n": {"$sum": 1},
                }
            },
            {"$match": {"_id.s": {"$ne": None}}},
        ]
    ):
        name = "visits_recorded" if row["_id"]["visit"] else "records_collected"
        counts[row["_id"]["s"]][name] = row["n"]
    required: dict[str, dict[str, int]] = defaultdict(dict)
    done: dict[str, dict[str, int]] = defaultdict(dict)
    obligations = {"type": VISIT_OBLIGATIONS, "period": {"$in": period.whole_months()}}
    if within is not None:
        obligations["path"] = within
    for row in facts.aggregate(
        [
            {"$match": obligations},
            {"$unwind": "$data.rows"},
            {"$match": {"data.rows.risk_level": {"$in": list(RISK_LEVELS)}}},
            {
                "$group": {
                    "_id": {
                        "s": _subject(level, "$data.rows.worker_id"),
                        "risk": "$data.rows.risk_level",
                    },
                    "required": {"$sum": "$data.rows.required"},
                    "done": {"$sum": "$data.rows.done"},
                }
            },
            {"$match": {"_id.s": {"$ne": None}}},
        ]
    ):
        subject, risk = row["_id"]["s"], row["_id"]["risk"]
        required[subject][risk] = row["required"]
        done[subject][risk] = min(row["done"], row["required"])
        counts.setdefault(subject, {})  # obligations alone still make a scorecard
    working = sorted(working_days)
    for row in facts.aggregate(
        [
            {"$match": {**dated, "type": {"$in": list(ACCOUNT_TYPES)}}},
            {
                "$group": {
                    "_id": _subject(level),
                    "logins": _count(_is("account.login")),
                    "actions": _count(_is("account.action")),
                    "accounts": {"$addToSet": "$actor"},
                    "days": {
                        "$addToSet": {
                            "$cond": [
                                {"$in": ["$day", working]},
                                {"a": "$actor", "d": "$day"},
                                None,
                            ]
                        }
                    },
                }
            },
            {"$match": {"_id": {"$ne": None}}},
        ]
    ):
        accounts = 1 if level == "worker" else len(row["accounts"])
        counts[row["_id"]].update(
            logins=row["logins"],
            actions=row["actions"],
            active_account_days=len([day for day in row["days"] if day is not None]),
        )
        counts[row["_id"]]["expected_account_days"] = accounts * len(working)
    result = {}
    for subject in sorted(counts):
        values = counts[subject]
        if level == "worker":
            values["expected_account_days"] = len(working)
        values.setdefault("expected_account_days", 0)
        result[subject] = Indicators(
            **values,
            visits_required_by_risk=required.get(subject, {}),
            visits_done_by_risk=done.get(subject, {}),
        )
    return result
