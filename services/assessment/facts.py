"""Facts: the other services' events, stored once each (the CloudEvent `id` is the key,
so a redelivered message never counts twice), reduced to who, where, when and what; and
the indicators of every subject of a level, counted from them by aggregation pipelines.

The counts are defined in `domain/indicators.py`, whose plain loop is the reference the
pipelines are tested against."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping
from datetime import UTC, datetime

from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from gridwork_common.events import parse_event
from services.assessment import store
from services.assessment.domain import indicators
from services.assessment.domain import patrols as patrolling
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
from services.assessment.domain.periods import CHINA_TIME, Period
from services.assessment.patrol_facts import patrol_counts

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
    if event.routing_key in patrolling.PATROL_TYPES:
        happened = _moment(data.get("started_at")) or happened  # when it was walked
    local = happened.astimezone(CHINA_TIME)
    territory = data.get("grid_code") or event.subject
    month = local.strftime("%Y-%m")
    key = str(event.id)
    if event.routing_key == VISIT_OBLIGATIONS:
        month = data.get("period") or month  # the month the obligations were for
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
    if event.routing_key in patrolling.PATROL_TYPES:
        fact["sent"] = event.time.astimezone(UTC)  # a patrol's latest revision counts
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


CASE_STEPS = ("closed", "overdue", "extended", "escalated", "supervised", "verified", "reworked")


def _has(type_: str) -> str:
    """Whether the case had a fact of that type in the period (a flag of its group)."""
    return f"$has_{type_.removeprefix('incident.')}"


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


def _nodes_at(paths: str, index: int) -> dict:
    """The distinct territory codes at `index` of a set of paths (none for short paths)."""
    long_enough = {"$gt": [{"$size": {"$ifNull": ["$$path", []]}}, index]}
    return {
        "$setUnion": [
            {
                "$map": {
                    "input": {"$filter": {"input": paths, "as": "path", "cond": long_enough}},
                    "as": "path",
                    "in": {"$arrayElemAt": ["$$path", index]},
                }
            }
        ]
    }


def _people_of(subject: str) -> dict:
    """Those of a case's `department_people` who acted for that department."""
    return {
        "$map": {
            "input": {
                "$filter": {
                    "input": "$department_people",
                    "as": "acted",
                    "cond": {"$eq": ["$$acted.d", subject]},
                }
            },
            "as": "acted",
            "in": "$$acted.a",
        }
    }


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
    # Who a case counts for: departments and people as collected; territory nodes read off
    # the case's paths afterwards (one small set serves all four territory levels).
    others = [level for level in levels if level not in TERRITORY_LEVELS]
    per_case = {f"subjects_{level}": {"$addToSet": _subject(level)} for level in others}
    per_case |= {
        f"reporters_{level}": {"$addToSet": {"$cond": [reported, _subject(level), None]}}
        for level in others
    }
    nodes = {}
    if len(others) < len(levels):
        per_case["paths"] = {"$addToSet": "$path"}
        per_case["reporter_paths"] = {"$addToSet": {"$cond": [reported, "$path", "$$REMOVE"]}}
        for level in levels:
            if level in TERRITORY_LEVELS:
                nodes[f"subjects_{level}"] = _nodes_at("$paths", TERRITORY_LEVELS[level])
                nodes[f"reporters_{level}"] = _nodes_at("$reporter_paths", TERRITORY_LEVELS[level])
    if "department" in levels:  # who acted for which department on the case
        department = _subject("department")
        per_case["department_people"] = {
            "$addToSet": {
                "$cond": [
                    {"$and": [{"$ne": [department, None]}, {"$ne": [_subject("worker"), None]}]},
                    {"d": department, "a": "$actor"},
                    "$$REMOVE",
                ]
            }
        }
    # every (level, subject) the case counts for, whether that subject reported it, and
    # for a department the people who acted for it
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
                        **({"p": _people_of("$$subject")} if level == "department" else {}),
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
                **{f"has_{step}": {"$max": _is(f"incident.{step}")} for step in CASE_STEPS},
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
        *([{"$set": nodes}] if nodes else []),
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
                "people": {"$push": "$pair.p"},  # departments only: missing elsewhere
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
        {
            "$set": {
                "people": {
                    "$reduce": {
                        "input": "$people",
                        "initialValue": [],
                        "in": {"$setUnion": ["$$value", "$$this"]},
                    }
                }
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
    """The indicators of every subject of each level, by aggregation pipelines that serve
    all the levels at once (one or two per kind of fact; Python only merges their
    per-subject rows). `within` keeps only facts under that territory node (logins count
    wherever they were made)."""
    for level in levels:
        _subject(level)  # an unknown level is refused, naming the field
    first, last = period.day_texts()
    dated = {"day": {"$gte": first, "$lte": last}}
    if within is not None:
        dated["path"] = within
    collection = db[store.FACTS]
    counts: dict[Key, dict] = defaultdict(dict)
    people: dict[Key, set[str]] = defaultdict(set)  # a department's: who acted on its cases
    _count_cases(collection, dated, levels, counts, people)
    _count_visits_and_records(collection, dated, levels, counts)
    _count_logins_and_actions(collection, dated, levels, counts)
    required, done, responsible = _obligations(collection, period, within, levels)
    patrolled = patrol_counts(collection, dated, levels, within)
    for key, persons in (*_grid_workers(collection, dated, levels).items(), *responsible.items()):
        people[key] |= persons
    working = sorted(working_days)
    # a person's activity wherever they logged in (a village's staff working in a grid)
    active_days = _active_days(collection, {"day": {**dated["day"], "$in": working}})
    result: dict[str, dict[str, Indicators]] = {level: {} for level in levels}
    shown = {key for key, row in patrolled.items() if patrolling.shows_patrolling(row)}
    for key in sorted(set(counts) | set(required) | set(people) | shown):
        level, subject = key
        if level == "worker" and not people[key]:
            continue  # not a grid worker: handlers and centres are assessed as departments
        result[level][subject] = Indicators(
            **counts[key],
            **patrolled.get(key, {}),
            active_account_days=sum(active_days.get(person, 0) for person in people[key]),
            expected_account_days=len(people[key]) * len(working),
            visits_required_by_risk=required.get(key, {}),
            visits_done_by_risk=done.get(key, {}),
        )
    return result


Key = tuple[str, str]  # (level, subject)


def _key(pair: Mapping) -> Key:
    return pair["l"], pair["s"]


def _count_cases(
    collection, dated: dict, levels, counts: dict[Key, dict], people: dict[Key, set[str]]
) -> None:
    for row in collection.aggregate(_case_pipeline(dated, levels), allowDiskUse=True):
        key = _key(row.pop("_id"))
        people[key].update(row.pop("people"))
        if row["handling_count"] == 0:
            row["handling_minutes_p90"] = None
        counts[key].update(row)


def _count_visits_and_records(collection, dated: dict, levels, counts: dict[Key, dict]) -> None:
    for row in collection.aggregate(
        [
            {"$match": {**dated, "type": {"$in": [VISIT_RECORDED, *RECORD_TYPES]}}},
            *_by_level(_pairs(levels)),
            {"$group": {"_id": {"p": "$pair", "visit": _is(VISIT_RECORDED)}, "n": {"$sum": 1}}},
        ],
        allowDiskUse=True,
    ):
        name = "visits_recorded" if row["_id"]["visit"] else "records_collected"
        counts[_key(row["_id"]["p"])][name] = row["n"]


def _count_logins_and_actions(collection, dated: dict, levels, counts: dict[Key, dict]) -> None:
    for row in collection.aggregate(
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
        counts[_key(row["_id"])].update(logins=row["logins"], actions=row["actions"])


def _obligations(collection, period: Period, within: str | None, levels):
    """Visits required and done (capped at the need) by risk level, and the workers
    responsible, per subject, over the period's whole months."""
    match = {
        "type": VISIT_OBLIGATIONS,
        "period": {"$in": period.whole_months()},
        "data.rows": {"$type": "array"},
    }
    if within is not None:
        match["path"] = within
    worker = "$data.rows.worker_id"
    required: dict[Key, dict[str, int]] = defaultdict(dict)
    done: dict[Key, dict[str, int]] = defaultdict(dict)
    responsible: dict[Key, set[str]] = defaultdict(set)
    for row in collection.aggregate(
        [
            {"$match": match},
            {"$unwind": "$data.rows"},
            {"$match": {"data.rows.risk_level": {"$in": list(RISK_LEVELS)}}},
            *_by_level(_pairs(levels, lambda level: _subject(level, worker))),
            {
                "$group": {
                    "_id": {"p": "$pair", "risk": "$data.rows.risk_level"},
                    "required": {"$sum": _whole_or_zero("$data.rows.required")},
                    "done": {"$sum": _whole_or_zero("$data.rows.done")},
                    "people": {"$addToSet": {"$ifNull": [worker, None]}},
                }
            },
        ],
        allowDiskUse=True,
    ):
        key, risk = _key(row["_id"]["p"]), row["_id"]["risk"]
        required[key][risk] = row["required"]
        done[key][risk] = min(row["done"], row["required"])
        if key[0] != "department":
            responsible[key].update(person for person in row["people"] if person is not None)
    return required, done, responsible


def _grid_workers(collection, dated: dict, levels) -> dict[Key, set[str]]:
    """The grid workers of each subject (not departments): their grid work is first
    folded to its distinct (person, place), a few per person, before it is spread over
    the levels."""
    grid_levels = [level for level in levels if level != "department"]
    people: dict[Key, set[str]] = defaultdict(set)
    if not grid_levels:
        return people
    for row in collection.aggregate(
        [
            {"$match": {**dated, "actor": {"$ne": None}, "type": {"$in": list(GRID_WORK_TYPES)}}},
            {"$group": {"_id": {"actor": "$actor", "path": "$path"}}},
            {"$replaceWith": "$_id"},
            *_by_level(_pairs(grid_levels)),
            {"$group": {"_id": "$pair", "people": {"$addToSet": "$actor"}}},
        ],
        allowDiskUse=True,
    ):
        people[_key(row["_id"])].update(row["people"])
    return people


def _active_days(collection, match: dict) -> dict[str, int]:
    """Each person's working days with a login or action."""
    rows = collection.aggregate(
        [
            {"$match": {**match, "type": {"$in": list(ACCOUNT_TYPES)}, "actor": {"$ne": None}}},
            {"$group": {"_id": "$actor", "days": {"$addToSet": "$day"}}},
            {"$project": {"days": {"$size": "$days"}}},
        ],
        allowDiskUse=True,
    )
    return {row["_id"]: row["days"] for row in rows}
