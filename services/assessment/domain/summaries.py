"""Live summaries: every fact folded, as it arrives, into running totals per subject and
period, so a board of any level and period is read, not recomputed from the facts.

The indicators (`domain/indicators.py`) are not all additive: a case counts once per
subject and period with what it did in that period (closed and never late, say), and
p90, rates, averages and coverage are not sums. So two kinds of summary are kept:

- per case: what the case did in each period it touched (day, ISO week, month, quarter,
  year; `CaseState`), the union of its facts there (types, flags, maxima, the subjects
  at every level, who reported it);
- per subject and period: additive parts only. When a fact changes a case's state in a
  period, each subject of the case gets the difference between the case's new and old
  contribution (`cases_closed` +1, `closed_on_time` -1 ...). Handling time is kept as
  an exact histogram of working minutes (value -> cases), from which the count, the
  total and the nearest-rank p90 are finished at read time, identically to the plain
  definition; visits required and done stay uncapped sums per risk (capped at read
  time, as the definition caps the subject's sums); the subject's people are a set.
  Account activity is kept per person and period (the days with a login, an action or
  a report of theirs: `indicators.is_activity`), and intersected with the working days
  when read: the calendar is asked at read time.

Folding is pure: `fold` turns facts into `Changes` (increments, set additions) and the
new case states; a store applies them (MongoDB in `services/assessment/summaries.py`,
`MemorySummaries` here for the property tests). Every fact is folded once (its id is
stored once); facts may come in any order, since every case state is a union.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import replace
from datetime import date
from functools import lru_cache
from typing import Any

from gridwork_common.errors import InvalidInput
from services.assessment.domain import patrols as patrolling
from services.assessment.domain.indicators import (
    GRID_WORK_TYPES,
    HANDLING_MINUTES,
    LEVELS,
    P90,
    RECORD_TYPES,
    RISK_LEVELS,
    URGENT,
    VISIT_OBLIGATIONS,
    VISIT_RECORDED,
    Indicators,
    is_action,
    is_activity,
    patrol_indicators,
    subject_of,
)
from services.assessment.domain.periods import Period, periods_of

Key = tuple[Any, str, Any]  # (period or tuple of periods, level, subject)
CaseState = dict[str, Any]  # one case in one period, as stored (see `_copy`)

CLOSED, OVERDUE, EXTENDED = "incident.closed", "incident.overdue", "incident.extended"
REPORTED, REWORKED, EVALUATED = "incident.reported", "incident.reworked", "incident.evaluated"
COUNTED_BY_TYPE = {
    VISIT_RECORDED: "visits_recorded",
    **dict.fromkeys(RECORD_TYPES, "records_collected"),
    "account.login": "logins",
}
ACTIONS = "actions"  # an account.action, or a case its actor reported (`is_action`)


# The summaries' handling-time histogram: `minutes.<value // 100>.<value>` = cases, with
# `minute_counts.<bucket>` the bucket's cases and `minute_sum` the minutes of them all (a
# read takes the bucket totals and one bucket, not the histogram).
MINUTES_BUCKET = 100


class Changes:
    """What a batch of facts adds to the summaries: per subject and period its increments
    exactly as the summary takes them (`$inc` field -> value: `counts.<name>`,
    `required.<risk>`, `done.<risk>`, `minutes.<bucket>.<minutes>`,
    `minute_counts.<bucket>`, `minute_sum`), built once, and its set additions; the days
    people were active, per person and period."""

    def __init__(self) -> None:
        # every subject summary touched (to create if missing), with its increments; a
        # key's period may be several (`each_period`: the periods shared by the batch)
        self.increments: dict[Key, dict[str, int]] = {}
        self.people: dict[Key, set] = defaultdict(set)
        # per grid and period, the people whose grid work was there (a worker's grids,
        # the denominator of the grids they patrolled)
        self.grid_workers: dict[Key, set] = defaultdict(set)
        self.active: dict[tuple[str, Any], set[str]] = defaultdict(set)  # (period, person)

    @property
    def touched(self) -> Collection[Key]:
        return self.increments.keys()

    def inc(self, key: Key, fields: Mapping[str, int]) -> None:
        """Add `$inc` fields to a subject's increments."""
        mine = self.increments.get(key)
        if mine is None:
            self.increments[key] = dict(fields)
            return
        for field, value in fields.items():
            mine[field] = mine.get(field, 0) + value

    def add(self, key: Key, counts: Mapping[str, int]) -> None:
        """Add counts by name (`cases_closed` ...)."""
        self.inc(key, {COUNT_FIELDS[name]: value for name, value in counts.items()})

    def minute(self, key: Key, value: int | None, change: int) -> None:
        fields: dict[str, int] = {}
        add_minute(fields, value, change)
        self.inc(key, fields)

    def person(self, key: Key, person) -> None:
        if key not in self.increments:
            self.increments[key] = {}
        self.people[key].add(person)


class _CountFields(dict):
    """A count's `$inc` field by its name, made once."""

    def __missing__(self, name: str) -> str:
        self[name] = field = f"counts.{name}"
        return field


COUNT_FIELDS = _CountFields()


def add_minute(fields: dict[str, int], value: int | None, change: int) -> None:
    """`change` cases of `value` handling minutes, added to the histogram's fields."""
    if value is None or not change:
        return
    bucket = value // MINUTES_BUCKET
    for field, added in (
        (f"minutes.{bucket}.{value}", change),
        (f"minute_counts.{bucket}", change),
        ("minute_sum", value * change),
    ):
        fields[field] = fields.get(field, 0) + added


@lru_cache(maxsize=4096)
def fact_periods(day: str) -> tuple[str, ...]:
    """The day, ISO week, month, quarter and year a fact dated `day` counts in."""
    return tuple(periods_of(date.fromisoformat(day)))


def is_case_fact(fact: Mapping) -> bool:
    return fact["type"].startswith("incident.") and fact.get("incident_id") not in (None, "")


def fold(facts: Iterable[Mapping], cases: dict[Any, dict[str, Any]], changes: Changes) -> None:
    """Fold (new) facts into `changes`; `cases` maps a case id to its table of subjects
    (`who`) and its states by period (`periods`), as read before; updated here. A case's
    facts in the batch are folded into its states first, then each subject gets the
    difference once per case and period.

    The periods every fact of the batch counts in (its month, quarter and year; its day
    and week too when the batch lies within a day) are one key in `changes` (a tuple of
    periods: `each_period`), not one each: what the batch adds to them is the same, but
    for a case whose states differ between them (facts of it before the batch in the
    month, not the day), which adds to each of them apart."""
    facts = facts if isinstance(facts, list) else list(facts)
    shared = _shared_periods(facts)
    targets: dict[str, tuple] = {}  # a day -> its periods not shared, then the shared ones
    before: dict[Any, dict[str, CaseState | None]] = {}  # the states as they were read
    # Facts alike for the subjects' counts and people (same day, subjects, actor, kind of
    # count) are tallied first and spread over their levels and periods once: a batch
    # holds many visits and case steps of the same worker, grid and day.
    tallies: dict[tuple, int] = defaultdict(int)
    for fact in facts:
        kind = fact["type"]
        if kind == VISIT_OBLIGATIONS:
            _fold_obligations(fact, changes)
            continue
        day = fact["day"]
        actor = fact.get("actor")
        if is_activity(kind, actor):
            if day not in targets:
                targets[day] = _targets(day, shared)
            for period in targets[day]:  # wherever the person logged in
                changes.active[(period, actor)].add(day)
        subjects = tuple(subject_of(fact, level) for level in LEVELS)
        case = is_case_fact(fact)
        counted = COUNTED_BY_TYPE.get(kind) if not case else None
        if is_action(kind, actor):  # a report is its reporter's action
            counted = ACTIONS
        grid_work = actor is not None and kind in GRID_WORK_TYPES
        if counted is not None or (actor is not None and (case or grid_work)):
            tallies[(day, subjects, actor, case, grid_work, counted)] += 1
        if case:
            kept = cases.setdefault(fact["incident_id"], {"who": [], "periods": {}})
            states = kept["periods"]
            originals = before.setdefault(fact["incident_id"], {})
            found = [
                _who(kept["who"], (level, subject))
                for level, subject in zip(LEVELS, subjects, strict=True)
                if subject is not None
            ]
            periods = fact_periods(day)
            for period in periods:
                if period not in originals:  # the state as read stays as it was
                    originals[period] = original = states.get(period)
                    # every fact of the batch counts in the shared periods: those whose
                    # states were alike stay alike, one state to fold into
                    alike = period in shared and period != shared[0]
                    if alike and originals[shared[0]] == original:
                        states[period] = states[shared[0]]
                    else:
                        states[period] = _copy(original)
            together = states[shared[0]] if shared else None
            for period in periods:
                state = states[period]
                if state is together and period != shared[0]:
                    continue  # folded into once, at the first shared period
                _add_fact(state, fact, found)
    for (day, subjects, actor, case, grid_work, counted), facts_alike in tallies.items():
        if day not in targets:
            targets[day] = _targets(day, shared)
        _spread(targets[day], subjects, actor, case, grid_work, counted, facts_alike, changes)
    for case_id, originals in before.items():
        kept = cases[case_id]
        states = kept["periods"]
        # every fact of the case counts in the shared periods: all are in `originals`
        together = bool(shared) and all(
            originals[period] == originals[shared[0]] and states[period] == states[shared[0]]
            for period in shared[1:]
        )
        last = None
        for period, old in originals.items():
            target: str | tuple = period
            if together and period in shared:
                if period != shared[0]:
                    continue
                target = shared
            new = states[period]
            if last is None or old != last[0] or new != last[1]:  # periods alike: once
                last = (old, new, _difference(old, new))
            _case_changed(target, kept["who"], old, new, last[2], changes)


def _shared_periods(facts: list[Mapping]) -> tuple[str, ...]:
    """The periods every fact of a batch counts in (obligations apart), if two or more."""
    days = {fact["day"] for fact in facts if fact["type"] != VISIT_OBLIGATIONS}
    if not days:
        return ()
    common = set(fact_periods(next(iter(days))))
    for day in days:
        common.intersection_update(fact_periods(day))
    shared = tuple(period for period in fact_periods(next(iter(days))) if period in common)
    return shared if len(shared) > 1 else ()


def _targets(day: str, shared: tuple[str, ...]) -> tuple:
    """Where a fact of the day adds: its periods not shared by the batch, one by one,
    and the shared ones as one."""
    own = tuple(period for period in fact_periods(day) if period not in shared)
    return (*own, shared) if shared else own


def each_period(period: str | tuple[str, ...]) -> tuple[str, ...]:
    """The periods a key of `Changes` adds to: one, or the batch's shared periods."""
    return (period,) if isinstance(period, str) else period


def _spread(periods, subjects, actor, case, grid_work, counted, facts_alike, changes) -> None:
    """Facts alike: their people and counts, for each of their subjects and periods."""
    counts = {COUNT_FIELDS[counted]: facts_alike} if counted is not None else None
    for level, subject in zip(LEVELS, subjects, strict=True):
        if subject is None:
            continue
        person = level == "department" if case else False
        person = actor is not None and (person or (level != "department" and grid_work))
        if not person and counts is None:
            continue
        for period in periods:
            key = (period, level, subject)
            if person:
                changes.person(key, actor)
                if grid_work and level == "grid":
                    changes.grid_workers[key].add(actor)
            if counts is not None:
                changes.inc(key, counts)


def _fold_obligations(fact: Mapping, changes: Changes) -> None:
    """Visits required and done per grid worker and risk level of one grid's month: they
    count for periods made of whole months (that month, its quarter, its year)."""
    try:
        month = Period.parse(fact.get("period"))
    except InvalidInput:
        return
    rows = (fact.get("data") or {}).get("rows")
    if month.kind != "month" or not isinstance(rows, list):
        return
    periods = periods_of(month.first)[2:]
    for row in rows:
        if not isinstance(row, Mapping) or row.get("risk_level") not in RISK_LEVELS:
            continue
        person, risk = row.get("worker_id"), row["risk_level"]
        required, done = _whole(row.get("required")) or 0, _whole(row.get("done")) or 0
        visits = {f"required.{risk}": required, f"done.{risk}": done}
        for level in LEVELS:
            subject = person if level == "worker" else subject_of(fact, level)
            if subject is None:
                continue
            for period in periods:
                key = (period, level, subject)
                changes.inc(key, visits)
                if person is not None and level != "department":
                    changes.person(key, person)


def _whole(value: Any, low: int = 0, high: int | None = None) -> int | None:
    """A whole number in range, or None (booleans are not numbers here)."""
    if type(value) is not int or value < low or (high is not None and value > high):
        return None
    return value


# ------------------------------------------------------------------------ one case


def case_as_stored(kept: Mapping[str, Any]) -> dict[str, Any]:
    """A case as its document holds it: a period whose state equals an earlier one's
    names that period instead (a case within a day has the same state in its day, week,
    month, quarter and year: stored once)."""
    periods: dict[str, Any] = {}
    distinct: list[tuple[str, CaseState]] = []
    for period, state in kept["periods"].items():
        for earlier, seen in distinct:
            if seen == state:
                periods[period] = earlier
                break
        else:
            periods[period] = state
            distinct.append((period, state))
    return {"who": kept["who"], "periods": periods}


def case_as_read(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A case's document with every period's state (`case_as_stored`'s names resolved:
    the same state object, which folding copies before changing it)."""
    periods = doc["periods"]
    return {
        "who": doc["who"],
        "periods": {
            period: periods[state] if isinstance(state, str) else state
            for period, state in periods.items()
        },
    }


def _who(table: list, pair: tuple[str, Any]) -> int:
    """A (level, subject)'s place in the case's table of subjects (added if new): each
    period's state names its subjects by place, so a case stays a small document."""
    level, subject = pair
    for place, (known_level, known) in enumerate(table):
        if known_level == level and known == subject:
            return place
    table.append([level, subject])
    return len(table) - 1


def _copy(state: CaseState | None) -> CaseState:
    """A state to change (stored: `t` the case-step types seen, `s` its subjects and `r`
    those that reported it, by place in the case's table; set only when they are not
    the default: `u` urgent, `w` times sent back, `v` best evaluation, `m` handling
    minutes, `l` late and `d` deferred at closure)."""
    if state is None:
        return {"t": [], "s": [], "r": []}
    return {**state, "t": list(state["t"]), "s": list(state["s"]), "r": list(state["r"])}


CASE_STEP_TYPES = frozenset(
    f"incident.{step}"
    for step in ("closed", "overdue", "extended", "escalated", "supervised", "verified", "reworked")
)


def _add_fact(state: CaseState, fact: Mapping, subjects: Iterable[int]) -> None:
    """One more fact in the case's state (changed in place), given its subjects' places.
    Mirrors `indicators._add_to_case`, for every level at once."""
    kind = fact["type"]
    data = fact.get("data") or {}
    if kind in CASE_STEP_TYPES and kind not in state["t"]:
        state["t"].append(kind)
    for place in subjects:
        if place not in state["s"]:
            state["s"].append(place)
        if kind == REPORTED and place not in state["r"]:
            state["r"].append(place)
    if data.get("urgency") == URGENT:
        state["u"] = True
    if kind == REWORKED:
        state["w"] = state.get("w", 0) + 1
    if kind == EVALUATED:
        satisfaction = _whole(data.get("satisfaction"), 1, 5)
        if satisfaction is not None:
            state["v"] = max(state.get("v") or 0, satisfaction)
    if kind == CLOSED:
        minutes = _whole(data.get(HANDLING_MINUTES))
        if minutes is not None:
            state["m"] = max(state.get("m") or 0, minutes)
        if data.get("ever_overdue") is True:
            state["l"] = True
        if (_whole(data.get("approved_extensions")) or 0) > 0:
            state["d"] = True


def contribution(state: CaseState) -> tuple[dict[str, int], int | None]:
    """What one case adds to each subject it counts for (`cases_reported` apart: it
    depends on the subject), and its handling minutes if closed with them.
    Mirrors `indicators._indicators`."""
    types = state["t"]
    closed = CLOSED in types
    overdue = OVERDUE in types
    late = overdue or state.get("l", False)
    due = closed or overdue
    deferred = due and (EXTENDED in types or state.get("d", False))
    urgent = state.get("u", False)
    reworks = state.get("w", 0)
    satisfaction = state.get("v")
    counts = {
        "cases_handled": 1,
        "cases_due": due,
        "cases_closed": closed,
        "closed_on_time": closed and not late and not deferred,
        "approved_deferrals": deferred,
        "urgent_due": urgent and due,
        "urgent_closed": urgent and closed,
        "urgent_closed_on_time": urgent and closed and not late,
        "overdue": overdue,
        "escalated": "incident.escalated" in types,
        "supervised": "incident.supervised" in types,
        "reworked": reworks,
        "reworked_cases": reworks > 0,
        "verified_or_reworked": "incident.verified" in types or REWORKED in types,
        "satisfaction_total": satisfaction or 0,
        "satisfaction_count": satisfaction is not None,
    }
    minutes = state.get("m") if closed else None
    return {name: int(value) for name, value in counts.items() if value}, minutes


def _difference(old: CaseState | None, new: CaseState) -> tuple[dict, dict]:
    """The `$inc` fields the case's new state adds to a subject it counted for already,
    and to one it did not (its handling minutes included), made once for all its
    subjects."""
    new_counts, new_minutes = contribution(new)
    fresh = {COUNT_FIELDS[name]: value for name, value in new_counts.items()}
    add_minute(fresh, new_minutes, 1)
    if old is None:
        return fresh, fresh
    old_counts, old_minutes = contribution(old)
    changed = {
        COUNT_FIELDS[name]: new_counts.get(name, 0) - old_counts.get(name, 0)
        for name in new_counts.keys() | old_counts.keys()
    }
    if old_minutes != new_minutes:
        add_minute(changed, old_minutes, -1)
        add_minute(changed, new_minutes, 1)
    return {field: value for field, value in changed.items() if value}, fresh


_REPORTED = {COUNT_FIELDS["cases_reported"]: 1}


def _case_changed(
    period: str, who: list, old: CaseState | None, new: CaseState, found: tuple, changes: Changes
) -> None:
    """Each subject of the case gets the difference its new state makes."""
    changed, fresh = found
    before, reported_before = ((), ()) if old is None else (old["s"], old["r"])
    reporters = new["r"]
    for place in new["s"]:
        level, subject = who[place]
        key = (period, level, subject)
        if place in before:
            changes.inc(key, changed)
            reported = place in reporters and place not in reported_before
        else:
            changes.inc(key, fresh)
            reported = place in reporters
        if reported:
            changes.inc(key, _REPORTED)


# ------------------------------------------------------------------- read and finish


def nearest_rank_of_histogram(histogram: Mapping[int, int], rank: int | None = None) -> int | None:
    """`indicators.nearest_rank(values, P90)` of the values a histogram counts (or the
    value at a given 1-based `rank`)."""
    total = sum(histogram.values())
    if total == 0:
        return None
    wanted = rank if rank is not None else _p90_rank(total)
    seen = 0
    for value in sorted(histogram):
        seen += histogram[value]
        if seen >= wanted:
            return value
    raise AssertionError("unreachable: the histogram holds `total` values")


def _p90_rank(total: int) -> int:
    return max(1, -((-P90.numerator * total) // P90.denominator))  # ceil(0.9 n)


def p90_bucket(bucket_counts: Mapping[int, int]) -> tuple[int, int] | None:
    """Where the nearest-rank p90 lies in a histogram kept in buckets, from the buckets'
    totals alone: the bucket and the rank within it (None: no values). Only that
    bucket's values need reading to finish the p90."""
    total = sum(bucket_counts.values())
    if total == 0:
        return None
    wanted, seen = _p90_rank(total), 0
    for bucket in sorted(bucket_counts):
        if seen + bucket_counts[bucket] >= wanted:
            return bucket, wanted - seen
        seen += bucket_counts[bucket]
    raise AssertionError("unreachable: the buckets hold `total` values")


def finish(
    level: str,
    counts: Mapping[str, int],
    handling: tuple[int, int, int | None],
    required: Mapping[str, int],
    done: Mapping[str, int],
    people: Collection,
    active_days: Mapping[Any, Collection[str]],
    working_days: Collection[str],
) -> Indicators | None:
    """A subject's indicators from its summary (None: a worker with no grid work, who
    is assessed through departments, as the plain definition leaves them out);
    `handling`: the count, total minutes and p90 of its handling times."""
    if level == "worker" and not people:
        return None
    handling_count, handling_total, handling_p90 = handling
    working = set(working_days)
    return Indicators(
        **{name: value for name, value in counts.items() if value},
        handling_count=handling_count,
        handling_minutes_total=handling_total,
        handling_minutes_p90=handling_p90,
        visits_required_by_risk={risk: required.get(risk, 0) for risk in RISK_LEVELS},
        visits_done_by_risk={
            risk: min(done.get(risk, 0), required.get(risk, 0)) for risk in RISK_LEVELS
        },
        active_account_days=sum(len(working.intersection(active_days.get(p, ()))) for p in people),
        expected_account_days=len(people) * len(working_days),
    )


def _empty_summary() -> dict[str, Any]:
    parts = ("counts", "minutes", "minute_counts", "required", "done")
    return {name: defaultdict(int) for name in parts} | {"minute_sum": 0, "people": set()}


class MemorySummaries:
    """The summaries in memory: the same folding, applied to dicts (the property tests'
    store; MongoDB applies the same `Changes` with `$inc` and `$addToSet`)."""

    def __init__(self) -> None:
        self.fact_ids: set = set()
        self.facts: list[Mapping] = []
        self.cases: dict[Any, dict[str, Any]] = {}  # id -> the case as stored
        self.subjects: dict[Key, dict[str, Any]] = {}
        self.active: dict[tuple[str, Any], set[str]] = defaultdict(set)

    def record(self, facts: Iterable[Mapping]) -> int:
        """Fold the facts not seen before; how many were new."""
        fresh = []
        for fact in facts:
            if fact["_id"] not in self.fact_ids:
                self.fact_ids.add(fact["_id"])
                fresh.append(fact)
        self.facts.extend(fresh)
        changes = Changes()
        cases = {id_: case_as_read(doc) for id_, doc in self.cases.items()}
        fold(fresh, cases, changes)
        self.cases = {id_: case_as_stored(kept) for id_, kept in cases.items()}
        self.apply(changes)
        return len(fresh)

    def apply(self, changes: Changes) -> None:
        """The changes' `$inc` fields applied as MongoDB applies them, field by field."""
        for (periods, level, subject), added in changes.increments.items():
            people = changes.people.get((periods, level, subject), set())
            for period in each_period(periods):
                summary = self.subjects.setdefault((period, level, subject), _empty_summary())
                for field, value in added.items():
                    part, _, name = field.partition(".")
                    if part == "minute_sum":
                        summary[part] += value
                    elif part == "minutes":
                        summary[part][int(name.partition(".")[2])] += value
                    else:
                        summary[part][name] += value
                summary["people"] |= people
        for (periods, person), days in changes.active.items():
            for period in each_period(periods):
                self.active[(period, person)] |= days

    def indicators_by_subject(
        self, level: str, period: Period, working_days: Collection[str]
    ) -> dict[Any, Indicators]:
        active = {who: days for (text, who), days in self.active.items() if text == period.text}
        found = {}
        for (text, of_level, subject), summary in self.subjects.items():
            if text != period.text or of_level != level:
                continue
            parts = {name: summary[name] for name in ("counts", "required", "done", "people")}
            # count and total from the bucket totals and the sum, as the service reads them
            handling = (
                sum(summary["minute_counts"].values()),
                summary["minute_sum"],
                nearest_rank_of_histogram(summary["minutes"]),
            )
            counted = finish(
                level, **parts, handling=handling, active_days=active, working_days=working_days
            )
            if counted is not None:
                found[subject] = counted
        # patrols are not summarized yet: counted from the facts when read, as the service
        # does (services/assessment/patrol_facts.py)
        first, last = period.day_texts()
        dated = [
            fact
            for fact in self.facts
            if fact["type"] in GRID_WORK_TYPES and first <= fact["day"] <= last
        ]
        known = {
            fact["territory"]
            for fact in self.facts
            if fact["type"] == patrolling.GRID_UPDATED
            and patrolling.grid_code(fact.get("territory"))
        }
        patrol_facts = [fact for fact in dated if fact["type"] in patrolling.PATROL_TYPES]
        patrolled = patrol_indicators(patrol_facts, dated, known, level, None)
        for subject, counts in patrolled.items():
            if subject in found:
                found[subject] = replace(found[subject], **counts)
            elif patrolling.shows_patrolling(counts) and level != "worker":
                found[subject] = Indicators(**counts)
        return dict(sorted(found.items()))
