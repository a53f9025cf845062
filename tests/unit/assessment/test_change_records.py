"""Change records against the plain definition: batches' changes kept as records and
merged into the summaries at any points, many batches a merge, give exactly what the
changes applied one batch at a time give, and what `indicators_by_subject` counts."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.assessment.domain import change_records
from services.assessment.domain.change_records import (
    Totals,
    compacted,
    periods_of_record,
    records_of,
)
from services.assessment.domain.summaries import Changes, MemorySummaries, each_period, fold
from tests.unit.assessment.test_summaries import assert_as_defined, fact_streams


class RecordedSummaries(MemorySummaries):
    """The summaries as the service keeps them: each batch's changes as records, merged
    every `merge_every` batches (many records added up, then applied once) and, if
    `compact_every`, the pending records compacted every so many batches."""

    def __init__(self, merge_every: int, compact_every: int = 0) -> None:
        super().__init__()
        self.merge_every, self.compact_every = merge_every, compact_every
        self.pending: list[dict] = []
        self.batches = 0

    def apply(self, changes: Changes) -> None:
        self.pending.extend(records_of(changes))
        self.batches += 1
        if self.compact_every and self.batches % self.compact_every == 0:
            self.pending = compacted(self.pending)
        if self.batches % self.merge_every == 0:
            self.merge()

    def merge(self) -> None:
        super().apply(as_changes(Totals(self.pending)))
        self.pending = []


def as_changes(totals: Totals) -> Changes:
    """Totals as the changes they sum."""
    changes = Changes()
    for key, added in totals.increments.items():
        changes.inc(key, added)
    for name in ("people", "grid_workers"):
        for key, found in getattr(totals, name).items():
            getattr(changes, name)[key].update(found)
    for key, days in totals.active.items():
        changes.active[key].update(days)
    return changes


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fact_streams(), st.integers(1, 12), st.integers(1, 6))
def test_records_merged_many_batches_at_a_time_equal_the_plain_definition(stream, size, every):
    facts, arrivals = stream
    summaries = RecordedSummaries(every)
    for start in range(0, len(arrivals), size):
        summaries.record(arrivals[start : start + size])
    summaries.merge()
    assert_as_defined(summaries, facts)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fact_streams(), st.integers(1, 12), st.integers(1, 4), st.integers(2, 8))
def test_records_compacted_then_merged_equal_the_plain_definition(stream, size, every, merge):
    facts, arrivals = stream
    summaries = RecordedSummaries(merge_every=merge * every, compact_every=every)
    for start in range(0, len(arrivals), size):
        summaries.record(arrivals[start : start + size])
    summaries.merge()
    assert_as_defined(summaries, facts)


def _totals(records: list[dict]) -> tuple:
    totals = Totals(records)
    return totals.increments, totals.people, totals.grid_workers, dict(totals.active)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fact_streams(), st.integers(1, 12), st.sampled_from([1, 3, 2000]))
def test_compacted_records_add_up_exactly_as_the_records_they_replace(stream, size, entries):
    """Zero sums included (a `$inc` of 0 creates its field), records of periods alike
    kept alike, and a compacted record's entries within `ENTRIES_PER_RECORD`."""
    _, arrivals = stream
    records = []
    for start in range(0, len(arrivals), size):
        changes = Changes()
        fold(arrivals[start : start + size], {}, changes)
        records.extend(records_of(changes))
    original = change_records.ENTRIES_PER_RECORD
    change_records.ENTRIES_PER_RECORD = entries
    try:
        compact = compacted(records)
    finally:
        change_records.ENTRIES_PER_RECORD = original
    assert _totals(compact) == _totals(records)
    assert all(len(record["subjects"]) <= entries for record in compact)
    named = {str(record["period"]) for record in records}
    assert {str(record["period"]) for record in compact} == named
    if entries == original:  # never more records than it replaces, at the same bound
        assert len(compact) <= len(records)


def _by_period(changes: Changes) -> Changes:
    """The changes with a key per period (a key of periods shared, added to each)."""
    apart = Changes()
    for (periods, level, subject), added in changes.increments.items():
        for period in each_period(periods):
            key = (period, level, subject)
            apart.inc(key, added)
            for name in ("people", "grid_workers"):
                found = getattr(changes, name).get((periods, level, subject))
                if found:
                    getattr(apart, name)[key].update(found)
    for (periods, person), days in changes.active.items():
        for period in each_period(periods):
            apart.active[(period, person)].update(days)
    return apart


def _plain(changes: Changes) -> dict:
    """The changes per period without their zeros (what a summary would hold of them)."""
    changes = _by_period(changes)
    return {
        "touched": set(changes.touched),
        "increments": {
            key: {field: value for field, value in added.items() if value}
            for key, added in changes.increments.items()
            if any(added.values())
        },
        **{
            name: {key: found for key, found in getattr(changes, name).items() if found}
            for name in ("people", "grid_workers", "active")
        },
    }


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fact_streams(), st.sampled_from([1, 3, 2000]))
def test_a_batch_s_records_add_up_to_its_changes(stream, entries_per_record):
    facts, _ = stream
    original = change_records.ENTRIES_PER_RECORD
    change_records.ENTRIES_PER_RECORD = entries_per_record
    try:
        changes = Changes()
        fold(facts, {}, changes)
        records = records_of(changes)
        assert all(len(record["subjects"]) <= entries_per_record for record in records)
        assert _plain(as_changes(Totals(records))) == _plain(changes)
    finally:
        change_records.ENTRIES_PER_RECORD = original


def test_pending_totals_add_to_a_summary_as_read():
    """Worked by hand: a grid's stored month and two pending records of it."""
    key = ("2026-11", "grid", "g1")
    first, second = Changes(), Changes()
    first.add(key, {"cases_closed": 1, "cases_handled": 1})
    first.minute(key, 150, 1)
    first.person(key, "w2")
    second.add(key, {"cases_closed": -1, "overdue": 1})
    second.minute(key, 150, -1)
    second.minute(key, 40, 1)
    second.active[("2026-11", "w2")].add("2026-11-03")
    totals = Totals(records_of(first) + records_of(second))
    stored = {
        "level": "grid",
        "subject": "g1",
        "counts": {"cases_closed": 2, "cases_handled": 3},
        "people": ["w1"],
        "minute_counts": {"1": 2},
        "minute_sum": 300,
    }
    read = totals.apply("2026-11", stored)
    assert read["counts"] == {"cases_closed": 2, "cases_handled": 4, "overdue": 1}
    assert sorted(read["people"]) == ["w1", "w2"]
    assert read["minute_counts"] == {"0": 1, "1": 2}
    assert read["minute_sum"] == 340
    assert totals.bucket("2026-11", "grid", "g1", 0) == {40: 1}
    assert totals.bucket("2026-11", "grid", "g1", 1) == {150: 0}
    assert totals.subjects("2026-11", {"grid"}) == [("grid", "g1")]
    assert totals.subjects("2026-11", {"village"}) == []
    assert totals.subjects("2026-12", {"grid"}) == []
    assert totals.active_days("2026-11") == {"w2": {"2026-11-03"}}
    assert stored["counts"] == {"cases_closed": 2, "cases_handled": 3}  # left as read


def _visit(id_: str, day: str) -> dict:
    grid = "530402001001001"
    return {
        "_id": id_,
        "type": "visit.recorded",
        "day": day,
        "territory": grid,
        "path": [grid[:6], grid[:9], grid[:12], grid],
        "department": None,
        "actor": "w1",
        "data": {},
    }


def test_periods_alike_share_one_record():
    """Worked by hand: visits on two days of two weeks of November (one, then two): the
    month, quarter and year they share are one record, and each day is alike its week
    (a record for both)."""
    changes = Changes()
    visits = [_visit("v1", "2026-11-03"), _visit("v2", "2026-11-10"), _visit("v3", "2026-11-10")]
    fold(visits, {}, changes)
    records = records_of(changes)
    assert sorted(sorted(periods_of_record(record)) for record in records) == [
        ["2026", "2026-11", "2026-Q4"],
        ["2026-11-03", "2026-W45"],
        ["2026-11-10", "2026-W46"],
    ]
    totals = Totals(records)
    grid = ("grid", "530402001001001")
    for period, visited in (("2026-11-03", 1), ("2026-W45", 1), ("2026-11-10", 2), ("2026-W46", 2)):
        assert totals.increments[(period, *grid)] == {"counts.visits_recorded": visited}
    for period in ("2026-11", "2026-Q4", "2026"):
        assert totals.increments[(period, *grid)] == {"counts.visits_recorded": 3}
        assert totals.people[(period, *grid)] == {"w1"}
