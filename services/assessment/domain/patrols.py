"""Patrol indicators (巡查), from the population service's `patrol.finished` and
`patrol.updated` facts, dated by when the patrol started.

A patrol is counted once, in its latest revision (a finish, then any number of updates
when late track pieces changed its figures; the latest sent wins, ties by fact id). For
the territory nodes of its worker's grid and for its worker: patrols, patrol seconds,
metres walked and patrols flagged (too fast, stationary).

Share of grids patrolled: for a territory node, the distinct grids under it that any
patrol's track crossed, out of the grids it has (those the population service announced
with `grid.updated`, and any patrolled); for a grid worker, the grids they worked in during
the period (reported, visited, collected records or started patrols there) that their own
patrols crossed, out of those grids.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from gridwork_common.territory import CODE_LENGTHS

PATROL_FINISHED = "patrol.finished"
PATROL_UPDATED = "patrol.updated"
PATROL_TYPES = (PATROL_FINISHED, PATROL_UPDATED)
GRID_UPDATED = "grid.updated"
GRID_LENGTH = CODE_LENGTHS["grid"]
PATROL_FIELDS = (
    "patrols",
    "patrol_seconds",
    "patrol_distance_m",
    "flagged_patrols",
    "grids_patrolled",
    "grids_total",
)


def latest_revisions(facts: Iterable[Mapping]) -> list[Mapping]:
    """Each patrol's latest fact: the last sent, then the greatest fact id."""
    latest: dict[str, Mapping] = {}
    for fact in facts:
        patrol_id = (fact.get("data") or {}).get("patrol_id")
        if fact.get("type") not in PATROL_TYPES or not isinstance(patrol_id, str):
            continue
        known = latest.get(patrol_id)
        if known is None or _revision(fact) > _revision(known):
            latest[patrol_id] = fact
    return [latest[key] for key in sorted(latest)]


def _revision(fact: Mapping) -> tuple:
    return (fact.get("sent") or fact.get("time"), str(fact.get("_id")))


def grid_code(value: Any) -> str | None:
    return (
        value if isinstance(value, str) and len(value) == GRID_LENGTH and value.isdigit() else None
    )


def crossed_grids(fact: Mapping) -> set[str]:
    codes = (fact.get("data") or {}).get("grid_codes")
    found = {grid_code(code) for code in codes} if isinstance(codes, list) else set()
    return found - {None}


def _whole(value: Any) -> int:
    """A count from a producer: a non-negative number, rounded; anything else is 0."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        return 0
    return max(0, round(value))


def shows_patrolling(counts: Mapping[str, int]) -> bool:
    """Whether patrol counts make a subject worth listing on their own (a node or a person
    with nothing else to show but grids is not listed for that alone)."""
    return counts["patrols"] > 0 or counts["grids_patrolled"] > 0


def patrol_totals(
    patrols: Iterable[Mapping],
    level: str,
    known_grids: Collection[str],
    worked: Mapping[str, Collection[str]],
    territory_index: int | None,
    within: str | None = None,
) -> dict[str, dict[str, int]]:
    """The patrol counts of every subject of a level. `patrols` are latest revisions (of
    the period, under `within`); `known_grids` the county's grid codes; `worked` each
    person's grids of the period; `territory_index` the level's place in a territory
    path (None for the worker level; the department level has no patrols)."""
    totals: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(PATROL_FIELDS, 0))
    patrolled: dict[str, set[str]] = defaultdict(set)  # subject -> grids crossed
    for patrol in patrols:
        data = patrol.get("data") or {}
        if territory_index is None:
            subject = patrol.get("actor")
        else:
            path = patrol.get("path") or []
            subject = path[territory_index] if len(path) > territory_index else None
        if subject is not None:
            counts = totals[subject]
            counts["patrols"] += 1
            counts["patrol_seconds"] += _whole(data.get("duration_s"))
            counts["patrol_distance_m"] += _whole(data.get("distance_m"))
            flags = data.get("flags")
            counts["flagged_patrols"] += bool(flags) and isinstance(flags, list)
        for grid in crossed_grids(patrol):
            if territory_index is None:
                if subject is not None and grid in worked.get(subject, ()):
                    patrolled[subject].add(grid)
            elif within is None or grid.startswith(within):
                patrolled[grid[: 6 + 3 * territory_index]].add(grid)
    if territory_index is None:
        for person, grids in worked.items():
            totals[person]["grids_total"] = len(set(grids))
    else:
        has: dict[str, set[str]] = defaultdict(set)
        for grid in known_grids:
            if within is None or grid.startswith(within):
                has[grid[: 6 + 3 * territory_index]].add(grid)
        for subject in set(has) | set(patrolled):
            totals[subject]["grids_total"] = len(has[subject] | patrolled[subject])
    for subject, grids in patrolled.items():
        totals[subject]["grids_patrolled"] = len(grids)
    return dict(totals)


def worked_grids(facts: Iterable[Mapping], grid_work_types: Collection[str]) -> dict[str, set]:
    """Each person's grids: where their grid work of the period was (the facts given)."""
    worked: dict[str, set[str]] = defaultdict(set)
    for fact in facts:
        path = fact.get("path") or []
        actor = fact.get("actor")
        if fact.get("type") in grid_work_types and actor is not None and len(path) > 3:
            worked[actor].add(path[3])
    return dict(worked)
