"""Patrol indicators read from the facts: each patrol's latest revision and the county's
grids by aggregation pipelines (each person's grids of the period come from the grids'
summaries, `summaries.py`); the counts per
subject by `domain/patrols.py`, as the plain definition in `domain/indicators.py` does."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from pymongo.client_session import ClientSession
from pymongo.collection import Collection as MongoCollection

from services.assessment.domain import patrols as patrolling
from services.assessment.domain.indicators import TERRITORY_LEVELS

Key = tuple[str, str]  # (level, subject)


def patrol_counts(
    collection: MongoCollection,
    dated: dict,
    levels: Collection[str],
    within: str | None,
    worked: Mapping[str, Collection[str]],
    session: ClientSession | None = None,
) -> dict[Key, dict[str, int]]:
    """The patrol counts of every subject of each level (departments have none);
    `worked`: each person's grids of the period (kept in the grids' summaries); read in
    the caller's `session` (a board's snapshot)."""
    latest = list(
        collection.aggregate(
            [
                {
                    "$match": {
                        **dated,
                        "type": {"$in": list(patrolling.PATROL_TYPES)},
                        "data.patrol_id": {"$type": "string"},
                    }
                },
                {"$sort": {"sent": 1, "_id": 1}},
                {"$group": {"_id": "$data.patrol_id", "fact": {"$last": "$$ROOT"}}},
                {"$replaceWith": "$fact"},
                {"$project": {"type": 1, "actor": 1, "path": 1, "data": 1}},
            ],
            allowDiskUse=True,
            session=session,
        )
    )
    known = [
        code
        for code in collection.distinct(
            "territory", {"type": patrolling.GRID_UPDATED}, session=session
        )
        if patrolling.grid_code(code)
    ]
    counts: dict[Key, dict[str, int]] = {}
    for level in levels:
        if level == "department":
            continue
        index = TERRITORY_LEVELS.get(level)
        totals = patrolling.patrol_totals(
            latest, level, known, worked if index is None else {}, index, within
        )
        for subject, row in totals.items():
            counts[(level, subject)] = row
    return counts
