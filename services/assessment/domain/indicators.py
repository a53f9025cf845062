"""Indicators: what one subject (a grid worker, a territory node, a department) did in one
period, counted from facts, and the rates read from those counts.

Every count is a whole number, so the same facts always give the identical indicators
whichever way they are added up: the service keeps them as live summaries, folded fact by
fact (`domain/summaries.py`); `indicators_by_subject` here is the plain-Python definition
of the same counts, used by the unit tests (hand-computed examples), by the property and
integration tests that hold the summaries to it, and as the naive baseline of
`bench/assessment.py`.

A fact is a dict: `type` (the event's topic), `day` ("YYYY-MM-DD", local), `period` (the
month; for `visit.obligations` the month the obligations were for), `path` (territory
codes from county to grid), `department`, `actor`, `incident_id` and `data`.

Cases (from `incident.*` facts dated in the period, grouped per case). A case counts, with
all its facts of the period, for every subject one of those facts belongs to: its grid and
the nodes above, each department it was with, each person who acted on it (system notices,
overdue and escalation, have no person but still make the case late for the others).
  handled         cases with any fact in the period
  reported        cases reported in the period (for a person: reported by them)
  due             cases closed, or reported overdue, in the period
  closed          cases closed in the period
  late            reported overdue in the period, or closed with `ever_overdue` (a stage
                  ran over at any time, in this period or before)
  deferrals       due cases whose deadline was extended (in the period, or `approved_
                  extensions` on the closure): approved deferrals, set apart from on time
  closed on time  closed, not late, not deferred
  urgent ...      the same for cases of urgency "urgent", except that a deferred urgent case
                  closed without running over is on time (its rate has no deferral term)
  overdue, escalated, supervised: cases with such a notice in the period
  reworked        times cases were sent back after failed verification (the deduction)
  reworked cases  cases sent back at least once; rework base: cases verified or sent back
  handling time   working minutes from report to closure, carried by `incident.closed`
  satisfaction    the 1-5 evaluations given in the period
Values of the wrong type (not a whole number, out of range) are left out, not guessed.
Visits: `visit.recorded` facts in the period; required and done (each person's visits
capped at what they needed) from `visit.obligations`, one per grid and month, for the whole
months of the period. Records: residents registered, updated or moved.
People: the grid workers of a territory node or the worker level are those who reported
cases, visited, collected records or were responsible for visits there in the period; a
department's people acted on its cases. Only grid workers are ranked at the worker level.
Account activity: each person's working days with a login, an action or a case they
reported, summed over the subject's people, against people x working days. Actions are
`account.action` facts and the reports a person made: the gateway announces a report by
the events service's `incident.reported` (its actor is the reporter's account), not by an
`account.action` of its own. A report without a person (Open311, the system) is neither.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from types import MappingProxyType
from typing import Any

from gridwork_common.errors import InvalidInput
from services.assessment.domain import patrols as patrolling
from services.assessment.domain.periods import Period

RISK_LEVELS = ("high", "medium", "low")
TERRITORY_LEVELS = {"county": 0, "township": 1, "village": 2, "grid": 3}  # index in path
LEVELS = (*TERRITORY_LEVELS, "department", "worker")
NO_DEPARTMENT = "none"
URGENT = "urgent"
RECORD_TYPES = ("resident.registered", "resident.updated", "resident.moved")
GRID_WORK_TYPES = ("incident.reported", "visit.recorded", *RECORD_TYPES, *patrolling.PATROL_TYPES)
ACCOUNT_TYPES = ("account.login", "account.action")
REPORTED = "incident.reported"
VISIT_RECORDED = "visit.recorded"
VISIT_OBLIGATIONS = "visit.obligations"
HANDLING_MINUTES = "handling_working_minutes"
P90 = Fraction(9, 10)


def is_action(kind: str, actor) -> bool:
    """An action of its actor's account: an `account.action`, or a case they reported."""
    return kind == "account.action" or (kind == REPORTED and actor is not None)


def is_activity(kind: str, actor) -> bool:
    """Makes its day one of its person's active account days."""
    return actor is not None and (kind in ACCOUNT_TYPES or kind == REPORTED)


_COUNT_FIELDS = (
    "cases_handled",
    "cases_reported",
    "cases_due",
    "cases_closed",
    "closed_on_time",
    "approved_deferrals",
    "urgent_due",
    "urgent_closed",
    "urgent_closed_on_time",
    "overdue",
    "escalated",
    "supervised",
    "reworked",
    "reworked_cases",
    "verified_or_reworked",
    "satisfaction_total",
    "satisfaction_count",
    "handling_count",
    "handling_minutes_total",
    "visits_recorded",
    "records_collected",
    "logins",
    "actions",
    "active_account_days",
    "expected_account_days",
    *patrolling.PATROL_FIELDS,
)


def _ratio(numerator: int, denominator: int) -> Fraction | None:
    if denominator <= 0:
        return None
    return min(Fraction(numerator, denominator), Fraction(1))


def _to_float(rate: Fraction | None) -> float | None:
    return None if rate is None else float(rate)


def exact_number(value: int | float) -> Fraction:
    """The number a rule-set author wrote: 0.7 is 7/10, not the nearest binary float."""
    return Fraction(repr(value)) if isinstance(value, float) else Fraction(value)


def _visit_counts(value: Any, name: str) -> Mapping[str, int]:
    if not isinstance(value, Mapping):
        raise InvalidInput(name, "must map high/medium/low to counts")
    counts = {}
    for level, count in value.items():
        if level not in RISK_LEVELS:
            raise InvalidInput(f"{name}.{level}", "unknown risk level (high, medium, low)")
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise InvalidInput(f"{name}.{level}", "must be a whole number >= 0")
        counts[level] = count
    return MappingProxyType({level: counts.get(level, 0) for level in RISK_LEVELS})


def nearest_rank(values: list[int], share: Fraction) -> int | None:
    """The nearest-rank percentile: the smallest value with at least `share` of the values
    at or below it (p90 of 1..10 is 9)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(share * len(ordered))) - 1]


@dataclass(frozen=True)
class Indicators:
    """Work-trace counts of one subject for one period. Missing risk levels count as 0."""

    cases_handled: int = 0
    cases_reported: int = 0
    cases_due: int = 0
    cases_closed: int = 0
    closed_on_time: int = 0
    approved_deferrals: int = 0
    urgent_due: int = 0
    urgent_closed: int = 0
    urgent_closed_on_time: int = 0
    overdue: int = 0
    escalated: int = 0
    supervised: int = 0
    reworked: int = 0  # times cases were sent back after failed verification
    reworked_cases: int = 0
    verified_or_reworked: int = 0
    satisfaction_total: int = 0
    satisfaction_count: int = 0
    handling_count: int = 0
    handling_minutes_total: int = 0
    handling_minutes_p90: int | None = None
    visits_recorded: int = 0
    visits_done_by_risk: Mapping[str, int] = field(default_factory=dict)
    visits_required_by_risk: Mapping[str, int] = field(default_factory=dict)
    records_collected: int = 0
    logins: int = 0
    actions: int = 0
    active_account_days: int = 0
    expected_account_days: int = 0
    patrols: int = 0  # see domain/patrols.py
    patrol_seconds: int = 0
    patrol_distance_m: int = 0
    flagged_patrols: int = 0
    grids_patrolled: int = 0
    grids_total: int = 0

    def __post_init__(self) -> None:
        for name in _COUNT_FIELDS:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise InvalidInput(name, "must be a whole number >= 0")
        p90 = self.handling_minutes_p90
        if p90 is not None and (not isinstance(p90, int) or isinstance(p90, bool) or p90 < 0):
            raise InvalidInput("handling_minutes_p90", "must be a whole number >= 0 or null")
        for name in ("visits_done_by_risk", "visits_required_by_risk"):
            object.__setattr__(self, name, _visit_counts(getattr(self, name), name))
        for part, whole in (
            ("closed_on_time", "cases_closed"),
            ("urgent_closed_on_time", "urgent_closed"),
            ("approved_deferrals", "cases_due"),
            ("reworked_cases", "verified_or_reworked"),
            ("escalated", "cases_handled"),
            ("handling_count", "cases_closed"),
            ("active_account_days", "expected_account_days"),
            ("flagged_patrols", "patrols"),
            ("grids_patrolled", "grids_total"),
        ):
            if getattr(self, part) > getattr(self, whole):
                raise InvalidInput(part, f"cannot exceed {whole}")

    # Exact rates, used for scoring; the public properties give them as floats.
    def _closure(self) -> Fraction | None:
        return _ratio(self.cases_closed, self.cases_due)

    def _on_time(self) -> Fraction | None:
        return _ratio(self.closed_on_time, self.cases_due - self.approved_deferrals)

    def _urgent_closure(self) -> Fraction | None:
        return _ratio(self.urgent_closed, self.urgent_due)

    def _urgent_on_time(self) -> Fraction | None:
        return _ratio(self.urgent_closed_on_time, self.urgent_due)

    def _activity(self) -> Fraction | None:
        return _ratio(self.active_account_days, self.expected_account_days)

    def _patrol_coverage(self) -> Fraction | None:
        return _ratio(self.grids_patrolled, self.grids_total)

    def _coverage(self, weights: Mapping[str, int | float]) -> Fraction | None:
        done = required = Fraction(0)
        for level in RISK_LEVELS:
            weight = exact_number(weights.get(level, 0))
            needed = self.visits_required_by_risk[level]
            # Extra low-risk visits do not make up for missed high-risk ones.
            done += weight * min(self.visits_done_by_risk[level], needed)
            required += weight * needed
        return None if required == 0 else done / required

    @property
    def closure_rate(self) -> float | None:
        """cases_closed / cases_due."""
        return _to_float(self._closure())

    @property
    def on_time_rate(self) -> float | None:
        """closed_on_time / (cases_due - approved_deferrals)."""
        return _to_float(self._on_time())

    @property
    def urgent_closure_rate(self) -> float | None:
        """urgent_closed / urgent_due."""
        return _to_float(self._urgent_closure())

    @property
    def urgent_on_time_rate(self) -> float | None:
        """urgent_closed_on_time / urgent_due."""
        return _to_float(self._urgent_on_time())

    @property
    def rework_rate(self) -> float | None:
        """reworked_cases / verified_or_reworked."""
        return _to_float(_ratio(self.reworked_cases, self.verified_or_reworked))

    @property
    def escalation_rate(self) -> float | None:
        """escalated / cases_handled."""
        return _to_float(_ratio(self.escalated, self.cases_handled))

    @property
    def handling_hours_average(self) -> float | None:
        """Mean working hours from report to closure, two decimals."""
        if self.handling_count == 0:
            return None
        return round(self.handling_minutes_total / self.handling_count / 60, 2)

    @property
    def handling_hours_p90(self) -> float | None:
        """Nearest-rank 90th percentile of working hours from report to closure."""
        p90 = self.handling_minutes_p90
        return None if p90 is None else round(p90 / 60, 2)

    @property
    def satisfaction(self) -> float | None:
        """Mean evaluation (1-5), two decimals."""
        if self.satisfaction_count == 0:
            return None
        return round(self.satisfaction_total / self.satisfaction_count, 2)

    @property
    def account_activity_rate(self) -> float | None:
        """active_account_days / expected_account_days."""
        return _to_float(self._activity())

    @property
    def patrol_coverage(self) -> float | None:
        """grids_patrolled / grids_total: the share of grids patrolled."""
        return _to_float(self._patrol_coverage())

    @property
    def patrol_hours(self) -> float:
        """Hours patrolled, two decimals."""
        return round(self.patrol_seconds / 3600, 2)

    def visit_coverage(self, weights: Mapping[str, int | float] | None = None) -> float | None:
        """Share of required visits done (each person capped at their need), weighted by
        risk level when weights are given."""
        return _to_float(self._coverage(weights or dict.fromkeys(RISK_LEVELS, 1)))

    def rates(self, weights: Mapping[str, int | float] | None = None) -> dict[str, float | None]:
        """Every rate, by name, for reports."""
        return {
            "closure_rate": self.closure_rate,
            "on_time_rate": self.on_time_rate,
            "urgent_closure_rate": self.urgent_closure_rate,
            "urgent_on_time_rate": self.urgent_on_time_rate,
            "rework_rate": self.rework_rate,
            "escalation_rate": self.escalation_rate,
            "handling_hours_average": self.handling_hours_average,
            "handling_hours_p90": self.handling_hours_p90,
            "satisfaction": self.satisfaction,
            "visit_coverage": self.visit_coverage(weights),
            "account_activity_rate": self.account_activity_rate,
            "patrol_coverage": self.patrol_coverage,
        }


# ------------------------------------------------------------- the counts, defined plainly


def subject_of(fact: Mapping, level: str) -> str | None:
    """Whom a fact counts for at a level: the territory node of that level on its path,
    its department, or the person who acted."""
    if level in TERRITORY_LEVELS:
        path = fact.get("path") or []
        index = TERRITORY_LEVELS[level]
        return path[index] if len(path) > index else None
    if level == "department":
        department = fact.get("department")
        return None if department in (None, NO_DEPARTMENT) else department
    if level == "worker":
        return fact.get("actor")
    raise InvalidInput("level", f"must be one of {', '.join(LEVELS)}")


def indicators_by_subject(
    facts: Iterable[Mapping],
    level: str,
    period: Period,
    working_days: Collection[str],
    within: str | None = None,
) -> dict[str, Indicators]:
    """Every subject of a level with facts in the period, and its indicators: a plain loop
    over the facts (see the module docstring for each count). `working_days` are the
    period's working dates ("YYYY-MM-DD", from the county's calendar); `within` keeps only
    facts under that territory node (logins count wherever they were made)."""
    first, last = period.day_texts()
    months = set(period.whole_months())
    cases: dict[str, dict] = {}
    totals: dict[str, dict[str, Any]] = defaultdict(_empty_totals)
    active_days: dict[str, set[str]] = defaultdict(set)  # person -> working days active
    patrol_facts, grid_work, known_grids = [], [], set()
    for fact in facts:
        kind = fact["type"]
        actor = fact.get("actor")
        dated = kind != VISIT_OBLIGATIONS and first <= fact["day"] <= last
        if dated and is_activity(kind, actor) and fact["day"] in working_days:
            active_days[actor].add(fact["day"])  # wherever the person logged in
        if kind == patrolling.GRID_UPDATED and patrolling.grid_code(fact.get("territory")):
            known_grids.add(fact["territory"])  # the county's grids, whenever announced
        if within is not None and within not in (fact.get("path") or []):
            continue
        if dated and kind in GRID_WORK_TYPES:
            grid_work.append(fact)
            if kind in patrolling.PATROL_TYPES:
                patrol_facts.append(fact)
        if kind == VISIT_OBLIGATIONS:
            if fact["period"] in months:
                _add_obligations(totals, fact, level)
            continue
        if not first <= fact["day"] <= last:
            continue
        subject = subject_of(fact, level)
        data = fact.get("data") or {}
        works = subject is not None and actor is not None
        if works and level != "department" and kind in GRID_WORK_TYPES:
            totals[subject]["people"].add(actor)  # grid work, for nodes and grid workers
        if subject is not None and is_action(kind, actor):
            totals[subject]["actions"] += 1
        if kind.startswith("incident.") and fact.get("incident_id") not in (None, ""):
            case = cases.setdefault(fact["incident_id"], _empty_case())
            _add_to_case(case, kind, data, subject)
            if works and level == "department":
                totals[subject]["people"].add(actor)  # acted on one of its cases
            continue
        if subject is None:
            continue
        if kind == VISIT_RECORDED:
            totals[subject]["visits_recorded"] += 1
        elif kind in RECORD_TYPES:
            totals[subject]["records_collected"] += 1
        elif kind == "account.login":
            totals[subject]["logins"] += 1
    cases_of: dict[str, list[tuple[dict, bool]]] = defaultdict(list)
    for case in cases.values():
        for subject in case["subjects"]:
            cases_of[subject].append((case, subject in case["reporters"]))
    patrolled = patrol_indicators(patrol_facts, grid_work, known_grids, level, within)
    shown = {
        subject for subject, counts in patrolled.items() if patrolling.shows_patrolling(counts)
    }
    found = {}
    for subject in sorted(set(totals) | set(cases_of) | shown):
        people = totals[subject]["people"]
        if level == "worker" and not people:
            continue  # not a grid worker: handlers and centres are assessed as departments
        active = sum(len(active_days[person]) for person in people)
        found[subject] = _indicators(
            cases_of[subject],
            totals[subject],
            active,
            len(people) * len(working_days),
            patrolled.get(subject, {}),
        )
    return found


def patrol_indicators(
    patrol_facts: Iterable[Mapping],
    grid_work: Iterable[Mapping],
    known_grids: Collection[str],
    level: str,
    within: str | None,
) -> dict[str, dict[str, int]]:
    """The patrol counts of a level's subjects (domain/patrols.py), from the period's
    patrol facts and grid work and the county's grids."""
    if level == "department":
        return {}
    index = TERRITORY_LEVELS.get(level)
    worked = patrolling.worked_grids(grid_work, GRID_WORK_TYPES) if index is None else {}
    latest = patrolling.latest_revisions(patrol_facts)
    return patrolling.patrol_totals(latest, level, known_grids, worked, index, within)


def _whole(value: Any, low: int = 0, high: int | None = None) -> int | None:
    """A whole number in range, or None (booleans are not numbers here)."""
    if type(value) is not int or value < low or (high is not None and value > high):
        return None
    return value


def _empty_totals() -> dict[str, Any]:
    return {
        "visits_recorded": 0,
        "records_collected": 0,
        "logins": 0,
        "actions": 0,
        "people": set(),
        "required": dict.fromkeys(RISK_LEVELS, 0),
        "done": dict.fromkeys(RISK_LEVELS, 0),
    }


def _empty_case() -> dict[str, Any]:
    return {
        "types": set(),
        "urgent": False,
        "reworks": 0,
        "satisfaction": None,
        "minutes": None,
        "late_at_close": False,
        "deferred_at_close": False,
        "subjects": set(),
        "reporters": set(),
    }


def _add_to_case(case: dict, kind: str, data: Mapping, subject: str | None) -> None:
    case["types"].add(kind)
    if subject is not None:
        case["subjects"].add(subject)
        if kind == "incident.reported":
            case["reporters"].add(subject)
    if data.get("urgency") == URGENT:
        case["urgent"] = True
    if kind == "incident.reworked":
        case["reworks"] += 1
    if kind == "incident.evaluated":
        satisfaction = _whole(data.get("satisfaction"), 1, 5)
        if satisfaction is not None:
            case["satisfaction"] = max(case["satisfaction"] or 0, satisfaction)
    if kind == "incident.closed":
        minutes = _whole(data.get(HANDLING_MINUTES))
        if minutes is not None:
            case["minutes"] = max(case["minutes"] or 0, minutes)
        # the case's whole record, carried by its closure: late or deferred in any period
        case["late_at_close"] |= data.get("ever_overdue") is True
        case["deferred_at_close"] |= (_whole(data.get("approved_extensions")) or 0) > 0


def _add_obligations(totals: dict, fact: Mapping, level: str) -> None:
    rows = (fact.get("data") or {}).get("rows")
    for row in rows if isinstance(rows, list) else []:
        if not isinstance(row, Mapping):
            continue
        person = row.get("worker_id")
        subject = person if level == "worker" else subject_of(fact, level)
        risk = row.get("risk_level")
        if subject is None or risk not in RISK_LEVELS:
            continue
        totals[subject]["required"][risk] += _whole(row.get("required")) or 0
        totals[subject]["done"][risk] += _whole(row.get("done")) or 0
        if person is not None and level != "department":
            totals[subject]["people"].add(person)


def _indicators(
    cases: list[tuple[dict, bool]],
    totals: Mapping,
    active: int,
    expected: int,
    patrol_counts: Mapping[str, int],
) -> Indicators:
    counts: dict[str, int] = dict.fromkeys(_COUNT_FIELDS, 0)
    minutes: list[int] = []
    for case, reported in cases:
        types = case["types"]
        closed = "incident.closed" in types
        overdue = "incident.overdue" in types
        late = overdue or case["late_at_close"]
        due = closed or overdue
        deferred = due and ("incident.extended" in types or case["deferred_at_close"])
        counts["cases_handled"] += 1
        counts["cases_reported"] += reported
        counts["cases_due"] += due
        counts["cases_closed"] += closed
        counts["closed_on_time"] += closed and not late and not deferred
        counts["approved_deferrals"] += deferred
        counts["urgent_due"] += case["urgent"] and due
        counts["urgent_closed"] += case["urgent"] and closed
        counts["urgent_closed_on_time"] += case["urgent"] and closed and not late
        counts["overdue"] += overdue
        counts["escalated"] += "incident.escalated" in types
        counts["supervised"] += "incident.supervised" in types
        counts["reworked"] += case["reworks"]
        counts["reworked_cases"] += case["reworks"] > 0
        counts["verified_or_reworked"] += bool(types & {"incident.verified", "incident.reworked"})
        if case["satisfaction"] is not None:
            counts["satisfaction_total"] += case["satisfaction"]
            counts["satisfaction_count"] += 1
        if closed and case["minutes"] is not None:
            minutes.append(case["minutes"])
    counts["handling_count"] = len(minutes)
    counts["handling_minutes_total"] = sum(minutes)
    for name in ("visits_recorded", "records_collected", "logins", "actions"):
        counts[name] = totals[name]
    counts["active_account_days"] = active
    counts["expected_account_days"] = expected
    counts.update(patrol_counts)
    return Indicators(
        **counts,
        handling_minutes_p90=nearest_rank(minutes, P90),
        visits_required_by_risk=totals["required"],
        visits_done_by_risk={
            risk: min(totals["done"][risk], totals["required"][risk]) for risk in RISK_LEVELS
        },
    )
