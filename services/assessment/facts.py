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
    GRID_WORK_TYPES,
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
    key = str(event.id)
    if event.routing_key == VISIT_OBLIGATIONS:
        # one per grid and month, however often the population service sends it
        key = f"{VISIT_OBLIGATIONS}:{territory}:{month}"
    fact = {
        "_id": key,
        "type": event.routing_key,
        "source": event.source,
        "time": happened.astimezone(UTC),
        "day": local.strftime("%Y-%m-%d"),
        "period": month,
        "territory": territory,
        "path": territory_path(territory),
        "department": data.get("department") or event.extensions.get("department"),
        "actor": _actor(event.routing_key, data),
        "data": dict(data),
    }
    if "incident_id" in data:
        fact["incident_id"] = data["incident_id"]
    return fact


def _actor(routing_key: str, data: Mapping) -> str | None:
    """The person a fact is about: for a case, whoever took this step (none for the
    system's deadline notices, never the reporter by default)."""
    if routing_key.startswith("incident."):
        return data.get("actor_id")
    return (
        data.get("actor_id")
        or data.get("worker_id")
        or data.get("user_id")
        or data.get("imported_by")
        or data.get("uploader")
    )


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


def _whole(path: str, low: int = 0, high: int | None = None) -> dict:
    """`domain.indicators._whole` as a condition: a whole number (not a boolean) in range."""
    checks = [{"$in": [{"$type": path}, ["int", "long"]]}, {"$gte": [path, low]}]
    if high is not None:
        checks.append({"$lte": [path, high]})
    return {"$and": checks}


def _whole_or_zero(path: str) -> dict:
    return {"$cond": [_whole(path), path, 0]}


def _pairs(levels: Collection[str], subject_of=_subject) -> list[dict]:
    """[{l: level, s: subject}, ...]: whom a fact counts for at each level, to unwind so
    one pipeline groups every level at once."""
    return [{"l": level, "s": subject_of(level)} for level in levels]


def _by_level(pairs: list[dict]) -> list[dict]:
    return [
        {"$set": {"pair": pairs}},
        {"$unwind": "$pair"},
        {"$match": {"pair.s": {"$ne": None}}},
    ]


def _case_pipeline(match: dict, levels: Collection[str]) -> list[dict]:
    closed = _has("incident.closed")
    overdue = _has("incident.overdue")
    late = {"$or": [overdue, "$late_at_close"]}
    due = {"$or": [closed, overdue]}
    deferred = {"$and": [due, {"$or": [_has("incident.extended"), "$deferred_at_close"]}]}
    urgent = "$urgent"
    minutes = {"$filter": {"input": "$minutes", "cond": {"$ne": ["$$this", None]}}}
    count = {"$size": "$minutes"}
    # nearest rank: the ceil(9n/10)-th smallest, in integers
    rank = {"$max": [1, {"$floor": {"$divide": [{"$add": [{"$multiply": [9, count]}, 9]}, 10]}}]}
    reported = _is("incident.reported")
    per_case = {f"subjects_{level}": {"$addToSet": _subject(level)} for level in levels}
    per_case |= {
        f"reporters_{level}": {"$addToSet": {"$cond": [reported, _subject(level), None]}}
        for level in levels
    }
    # every (level, subject) the case counts for, and whether that subject reported it
    pairs = {
        "$concatArrays": [
            {
                "$map": {
                    "input": f"$subjects_{level}",
                    "as": "subject",
                    "in": {
                        "l": level,
                        "s": "$$subject",
                        "r": {"$in": ["$$subject", f"$reporters_{level}"]},
                    },
                }
            }
            for level in levels
        ]
    }
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
                                    _whole("$data.satisfaction", 1, 5),
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
                            {"$and": [_is("incident.closed"), _whole(f"$data.{HANDLING_MINUTES}")]},
                            f"$data.{HANDLING_MINUTES}",
                            None,
                        ]
                    }
                },
                # the case's whole record, carried by its closure (see domain/indicators.py)
                "late_at_close": {
                    "$max": {
                        "$and": [_is("incident.closed"), {"$eq": ["$data.ever_overdue", True]}]
                    }
                },
                "deferred_at_close": {
                    "$max": {
                        "$and": [
                            _is("incident.closed"),
                            _whole("$data.approved_extensions"),
                            {"$gt": ["$data.approved_extensions", 0]},
                        ]
                    }
                },
                **per_case,
            }
        },
        {"$set": {"pair": pairs}},
        {"$unwind": "$pair"},
        {"$match": {"pair.s": {"$ne": None}}},
        {
            "$group": {
                "_id": {"l": "$pair.l", "s": "$pair.s"},
                "cases_handled": {"$sum": 1},
                "cases_reported": _count("$pair.r"),
                "cases_due": _count(due),
                "cases_closed": _count(closed),
                "closed_on_time": _count(
                    {"$and": [closed, {"$not": [late]}, {"$not": [deferred]}]}
                ),
                "approved_deferrals": _count(deferred),
                "urgent_due": _count({"$and": [urgent, due]}),
                "urgent_closed": _count({"$and": [urgent, closed]}),
                "urgent_closed_on_time": _count({"$and": [urgent, closed, {"$not": [late]}]}),
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
            "$set": {
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
        {"$unset": "minutes"},
    ]


def indicators_by_subject(
    db: Database,
    level: str,
    period: Period,
    working_days: Collection[str],
    within: str | None = None,
) -> dict[str, Indicators]:
    """Every subject of a level with facts in the period, and its indicators: the same
    answer as `domain.indicators.indicators_by_subject` over the facts."""
    return indicators_by_level(db, [level], period, working_days, within)[level]


def indicators_by_level(
    db: Database,
    levels: Collection[str],
    period: Period,
    working_days: Collection[str],
    within: str | None = None,
) -> dict[str, dict[str, Indicators]]:
    """The indicators of every subject of each level, by aggregation pipelines that read
    the period's facts once for all the levels (one per kind of fact; Python only merges
    their per-subject rows). `within` keeps only facts under that territory node."""
    for level in levels:
        _subject(level)  # an unknown level is refused, naming the field
    first, last = period.day_texts()
    dated = {"day": {"$gte": first, "$lte": last}}
    if within is not None:
        dated["path"] = within
    facts = db[store.FACTS]
    counts: dict[tuple[str, str], dict] = defaultdict(dict)
    people: dict[tuple[str, str], set[str]] = defaultdict(set)
    for row in facts.aggregate(_case_pipeline(dated, levels), allowDiskUse=True):
        key = (row["_id"]["l"], row["_id"]["s"])
        del row["_id"]
        if row["handling_count"] == 0:
            row["handling_minutes_p90"] = None
        counts[key].update(row)
    for row in facts.aggregate(
        [
            {"$match": {**dated, "type": {"$in": [VISIT_RECORDED, *RECORD_TYPES]}}},
            *_by_level(_pairs(levels)),
            {"$group": {"_id": {"p": "$pair", "visit": _is(VISIT_RECORDED)}, "n": {"$sum": 1}}},
        ],
        allowDiskUse=True,
    ):
        name = "visits_recorded" if row["_id"]["visit"] else "records_collected"
        counts[row["_id"]["p"]["l"], row["_id"]["p"]["s"]][name] = row["n"]
    required: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    done: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    obligations = {
        "type": VISIT_OBLIGATIONS,
        "period": {"$in": period.whole_months()},
        "data.rows": {"$type": "array"},
    }
    if within is not None:
        obligations["path"] = within
    responsible = "$data.rows.worker_id"
    for row in facts.aggregate(
        [
            {"$match": obligations},
            {"$unwind": "$data.rows"},
            {"$match": {"data.rows.risk_level": {"$in": list(RISK_LEVELS)}}},
            *_by_level(_pairs(levels, lambda level: _subject(level, responsible))),
            {
                "$group": {
                    "_id": {"p": "$pair", "risk": "$data.rows.risk_level"},
                    "required": {"$sum": _whole_or_zero("$data.rows.required")},
                    "done": {"$sum": _whole_or_zero("$data.rows.done")},
                    "people": {"$addToSet": {"$ifNull": [responsible, None]}},
                }
            },
        ],
        allowDiskUse=True,
    ):
        key, risk = (row["_id"]["p"]["l"], row["_id"]["p"]["s"]), row["_id"]["risk"]
        required[key][risk] = row["required"]
        done[key][risk] = min(row["done"], row["required"])
        counts.setdefault(key, {})  # obligations alone still make a scorecard
        if key[0] != "department":
            people[key].update(person for person in row["people"] if person is not None)
    # The people of each subject: a department's acted on its cases; the others' are the
    # grid workers, their grid work first folded to its distinct (person, place), a few
    # per person, before it is spread over the levels.
    if "department" in levels:
        for row in facts.aggregate(
            [
                {
                    "$match": {
                        **dated,
                        "type": {"$regex": r"^incident\."},
                        "incident_id": {"$nin": [None, ""]},
                        "actor": {"$ne": None},
                        "department": {"$nin": [None, indicators.NO_DEPARTMENT]},
                    }
                },
                {"$group": {"_id": "$department", "people": {"$addToSet": "$actor"}}},
            ],
            allowDiskUse=True,
        ):
            people["department", row["_id"]].update(row["people"])
    grid_levels = [level for level in levels if level != "department"]
    for row in (
        facts.aggregate(
            [
                {
                    "$match": {
                        **dated,
                        "actor": {"$ne": None},
                        "type": {"$in": list(GRID_WORK_TYPES)},
                    }
                },
                {"$group": {"_id": {"actor": "$actor", "path": "$path"}}},
                {"$replaceWith": "$_id"},
                *_by_level(_pairs(grid_levels)),
                {"$group": {"_id": "$pair", "people": {"$addToSet": "$actor"}}},
            ],
            allowDiskUse=True,
        )
        if grid_levels
        else []
    ):
        key = (row["_id"]["l"], row["_id"]["s"])
        counts.setdefault(key, {})
        people[key].update(row["people"])
    # logins and actions per subject; each person's active working days
    for row in facts.aggregate(
        [
            {"$match": {**dated, "type": {"$in": list(ACCOUNT_TYPES)}}},
            *_by_level(_pairs(levels)),
            {
                "$group": {
                    "_id": "$pair",
                    "logins": _count(_is("account.login")),
                    "actions": _count(_is("account.action")),
                }
            },
        ],
        allowDiskUse=True,
    ):
        counts[row["_id"]["l"], row["_id"]["s"]].update(
            logins=row["logins"], actions=row["actions"]
        )
    working = sorted(working_days)
    active_days = {
        row["_id"]: row["days"]
        for row in facts.aggregate(
            [
                {
                    "$match": {
                        **dated,
                        "type": {"$in": list(ACCOUNT_TYPES)},
                        "actor": {"$ne": None},
                        "day": {"$gte": first, "$lte": last, "$in": working},
                    }
                },
                {"$group": {"_id": "$actor", "days": {"$addToSet": "$day"}}},
                {"$project": {"days": {"$size": "$days"}}},
            ],
            allowDiskUse=True,
        )
    }
    result: dict[str, dict[str, Indicators]] = {level: {} for level in levels}
    for key in sorted(counts):
        level, subject = key
        if level == "worker" and not people[key]:
            continue  # not a grid worker: handlers and centres are assessed as departments
        result[level][subject] = Indicators(
            **counts[key],
            active_account_days=sum(active_days.get(person, 0) for person in people[key]),
            expected_account_days=len(people[key]) * len(working),
            visits_required_by_risk=required.get(key, {}),
            visits_done_by_risk=done.get(key, {}),
        )
    return result
