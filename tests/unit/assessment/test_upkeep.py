"""What falls due for compaction and merging, from what a process folded."""

from services.assessment.domain.upkeep import Upkeep


def test_a_period_is_compacted_every_so_many_records():
    upkeep = Upkeep()
    due = [upkeep.folded(100, {"2026-11": 1}, compact_after=3, quiet_after=10**6) for _ in range(7)]
    assert [d.compact for d in due] == [[], [], ["2026-11"], [], [], ["2026-11"], []]
    assert all(d.merge == [] for d in due)


def test_a_batch_of_several_records_counts_them_all():
    upkeep = Upkeep()
    assert upkeep.folded(10, {"2026-11": 2}, 3, 10**6).compact == []
    assert upkeep.folded(10, {"2026-11": 2}, 3, 10**6).compact == ["2026-11"]
    assert upkeep.folded(10, {"2026-11": 2}, 3, 10**6).compact == []  # counted again from 0


def test_a_period_left_behind_is_merged_once_when_quiet():
    """Day by day: a day is merged once the folds have gone `quiet_after` facts past its
    last record; the month, written by every batch, never goes quiet."""
    upkeep = Upkeep()
    seen = []
    for day in ("2026-11-01", "2026-11-01", "2026-11-02", "2026-11-02", "2026-11-03"):
        seen.append(upkeep.folded(500, {day: 1, "2026-11": 1}, 10**6, quiet_after=1000).merge)
    assert seen == [[], [], [], ["2026-11-01"], []]
    late = upkeep.folded(500, {"2026-11-01": 1, "2026-11": 1}, 10**6, 1000)  # a late fact
    assert late.merge == ["2026-11-02"]
    assert upkeep.folded(1000, {"2026-11": 1}, 10**6, 1000).merge == ["2026-11-03", "2026-11-01"]
    assert upkeep.folded(1000, {"2026-11": 1}, 10**6, 1000).merge == []  # merged once


def test_a_merged_period_starts_its_record_count_again():
    upkeep = Upkeep()
    upkeep.folded(10, {"2026-11-01": 2}, compact_after=3, quiet_after=10)
    assert upkeep.folded(10, {"2026-11-02": 1}, 3, 10).merge == ["2026-11-01"]
    assert upkeep.folded(10, {"2026-11-01": 1}, 3, 10).compact == []  # not 2 + 1
