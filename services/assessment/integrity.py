"""Integrity signals over the facts, flagged for a supervisor and never deducted
automatically: the same photo used for several visits or reports, visits whose GPS points
are implausibly far apart for the time between them, many visits logged from one spot, and
patrols flagged too fast or stationary."""

from __future__ import annotations

import itertools
import math
from datetime import datetime

from pymongo.database import Database

from services.assessment import store
from services.assessment.domain import patrols as patrolling

MAX_SPEED_KMH = 120.0  # faster than a grid worker on county roads
SAME_SPOT_DECIMALS = 4  # about 11 m
SAME_SPOT_VISITS = 5
# The population service's patrol flags, as integrity signals.
PATROL_SIGNALS = {"too_fast": "patrol_too_fast", "stationary": "patrol_stationary"}


def _distance_km(a: list[float], b: list[float]) -> float:
    lon1, lat1, lon2, lat2 = map(math.radians, (a[0], a[1], b[0], b[1]))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * 6371.0 * math.asin(math.sqrt(h))


def reused_photos(db: Database, period: str) -> list[dict]:
    rows = db[store.FACTS].aggregate(
        [
            {"$match": {"type": "media.stored", "period": period}},
            {
                "$group": {
                    "_id": "$data.sha256",
                    "owners": {"$addToSet": "$data.owner"},
                    "uploaders": {"$addToSet": "$actor"},
                }
            },
            {"$match": {"owners.1": {"$exists": True}}},
        ]
    )
    return [
        {
            "signal": "reused_photo",
            "sha256": row["_id"],
            "owners": row["owners"],
            "uploaders": row["uploaders"],
        }
        for row in rows
    ]


def visits_by_worker(db: Database, period: str) -> dict[str, list[dict]]:
    visits: dict[str, list[dict]] = {}
    for fact in db[store.FACTS].find(
        {"type": "visit.recorded", "period": period}, {"actor": 1, "data": 1}
    ):
        data = fact["data"]
        if data.get("location") and data.get("at"):
            visits.setdefault(fact["actor"], []).append(data)
    for worker_visits in visits.values():
        worker_visits.sort(key=lambda v: v["at"])
    return visits


def impossible_journeys(visits: dict[str, list[dict]]) -> list[dict]:
    flags = []
    for worker, sequence in visits.items():
        for before, after in itertools.pairwise(sequence):
            hours = (
                datetime.fromisoformat(after["at"]) - datetime.fromisoformat(before["at"])
            ).total_seconds() / 3600
            km = _distance_km(before["location"]["coordinates"], after["location"]["coordinates"])
            if km > 1 and (hours <= 0 or km / hours > MAX_SPEED_KMH):
                flags.append(
                    {
                        "signal": "implausible_journey",
                        "worker_id": worker,
                        "visits": [before["visit_id"], after["visit_id"]],
                        "km": round(km, 2),
                        "hours": round(hours, 3),
                    }
                )
    return flags


def visits_from_one_spot(visits: dict[str, list[dict]]) -> list[dict]:
    flags = []
    for worker, sequence in visits.items():
        spots: dict[tuple[float, float], set[str]] = {}
        for visit in sequence:
            lon, lat = visit["location"]["coordinates"]
            spot = (round(lon, SAME_SPOT_DECIMALS), round(lat, SAME_SPOT_DECIMALS))
            spots.setdefault(spot, set()).add(visit["membership_id"])
        for spot, people in spots.items():
            if len(people) >= SAME_SPOT_VISITS:
                flags.append(
                    {
                        "signal": "many_visits_one_spot",
                        "worker_id": worker,
                        "location": list(spot),
                        "people_visited": len(people),
                    }
                )
    return flags


def flagged_patrols(db: Database, period: str) -> list[dict]:
    """Patrols the population service flagged (moving faster than a person patrols, or
    never leaving one spot), in their latest revision: one signal per flag."""
    found = db[store.FACTS].find(
        {"type": {"$in": list(patrolling.PATROL_TYPES)}, "period": period},
        {"type": 1, "actor": 1, "data": 1, "sent": 1, "time": 1},
    )
    flags = []
    for fact in patrolling.latest_revisions(found):
        data = fact["data"]
        for flag in data.get("flags") or []:
            if flag in PATROL_SIGNALS:
                flags.append(
                    {
                        "signal": PATROL_SIGNALS[flag],
                        "worker_id": fact.get("actor"),
                        "patrol_id": data["patrol_id"],
                        "grid_code": data.get("grid_code"),
                        "started_at": data.get("started_at"),
                        "distance_m": data.get("distance_m"),
                    }
                )
    return flags


def signals(db: Database, period: str) -> list[dict]:
    visits = visits_by_worker(db, period)
    return [
        *reused_photos(db, period),
        *impossible_journeys(visits),
        *visits_from_one_spot(visits),
        *flagged_patrols(db, period),
    ]
