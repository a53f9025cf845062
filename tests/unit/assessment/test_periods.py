from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gridwork_common.errors import InvalidInput
from services.assessment.domain.periods import KINDS, Period, periods_of


@pytest.mark.parametrize(
    ("text", "kind", "first", "last"),
    [
        ("2026-11-23", "day", date(2026, 11, 23), date(2026, 11, 23)),
        ("2026-W48", "week", date(2026, 11, 23), date(2026, 11, 29)),
        ("2026-W01", "week", date(2025, 12, 29), date(2026, 1, 4)),  # ISO week 1 of 2026
        ("2026-11", "month", date(2026, 11, 1), date(2026, 11, 30)),
        ("2024-02", "month", date(2024, 2, 1), date(2024, 2, 29)),
        ("2026-Q4", "quarter", date(2026, 10, 1), date(2026, 12, 31)),
        ("2026-Q1", "quarter", date(2026, 1, 1), date(2026, 3, 31)),
        ("2026", "year", date(2026, 1, 1), date(2026, 12, 31)),
    ],
)
def test_each_kind_of_period_is_a_range_of_local_dates(text, kind, first, last):
    period = Period.parse(text)
    assert (period.kind, period.first, period.last) == (kind, first, last)


@pytest.mark.parametrize(
    "text", ["2026-13", "2026-02-30", "2026-W54", "2026-Q5", "26-11", "2026-11-", "1999", 202611]
)
def test_malformed_periods_name_the_field(text):
    with pytest.raises(InvalidInput) as caught:
        Period.parse(text, "period")
    assert caught.value.field == "period"


def test_monthly_obligations_count_only_toward_whole_months():
    assert Period.parse("2026-Q4").whole_months() == ["2026-10", "2026-11", "2026-12"]
    assert Period.parse("2026-11").whole_months() == ["2026-11"]
    assert Period.parse("2026-W48").whole_months() == []
    assert Period.parse("2026-11-30").whole_months() == []
    assert len(Period.parse("2026").whole_months()) == 12
    assert [m.text for m in Period.parse("2026-W01").months()] == ["2025-12", "2026-01"]


def test_a_period_is_scored_by_the_rules_of_the_month_it_ends_in():
    assert Period.parse("2026-Q4").rules_month == "2026-12"
    assert Period.parse("2026-W01").rules_month == "2026-01"
    assert Period.parse("2026-11-23").rules_month == "2026-11"


@given(st.dates(min_value=date(2000, 1, 10), max_value=date(2999, 12, 31)))
def test_every_day_lies_in_the_periods_named_after_it(day):
    names = periods_of(day)
    assert [Period.parse(name).kind for name in names] == list(KINDS)
    for name in names:
        period = Period.parse(name)
        assert period.first <= day <= period.last, name
