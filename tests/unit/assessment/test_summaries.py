"""The live summaries against the plain definition of every indicator: random fact
streams (malformed values, duplicates, any order) folded one by one or in batches give,
for every level and period kind, exactly what `indicators_by_subject` counts."""

from datetime import date, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.assessment.domain import indicators as reference
from services.assessment.domain.indicators import nearest_rank
from services.assessment.domain.periods import Period, periods_of
from services.assessment.domain.summaries import (
    MemorySummaries,
    case_as_read,
    case_as_stored,
    nearest_rank_of_histogram,
    p90_bucket,
)

GRIDS = ["530402001001001", "530402001001002", "530402002001001"]
START = date(2026, 12, 24)  # the days run over a month, quarter, year and ISO-year end
DAYS = [(START + timedelta(days=n)).isoformat() for n in range(14)]
WORKING_DAYS = {day for day in DAYS if date.fromisoformat(day).weekday() < 5}
PERIODS = sorted({text for day in DAYS for text in periods_of(date.fromisoformat(day))})
PERIODS += ["2026-Q4", "2026-12", "2027-01"]
INCIDENT_TYPES = [
    f"incident.{action}"
    for action in (
        "reported",
        "verified",
        "reworked",
        "closed",
        "evaluated",
        "overdue",
        "escalated",
        "supervised",
        "extended",
        "accepted",
    )
]
OTHER_TYPES = [
    "visit.recorded",
    *reference.RECORD_TYPES,
    *reference.ACCOUNT_TYPES,
    "media.stored",
    "import.finished",
]
ODD = st.sampled_from([None, True, -5, "12", 4.5, 0])


@st.composite
def a_fact(draw, number: int) -> dict:
    grid = draw(st.sampled_from(GRIDS))
    path = draw(st.sampled_from([[grid[:6], grid[:9], grid[:12], grid], [grid[:6], grid[:9]], []]))
    kind = draw(st.sampled_from([*INCIDENT_TYPES, *INCIDENT_TYPES, *OTHER_TYPES, "obligations"]))
    day = draw(st.sampled_from(DAYS))
    fact = {
        "_id": f"fact-{number}",
        "type": kind,
        "day": day,
        "period": day[:7],
        "path": path,
        "department": draw(st.sampled_from(["530402-police", "530402001-roads", "none", None])),
        "actor": draw(st.sampled_from(["w1", "w2", "h1", None])),
        "data": {},
    }
    data = fact["data"]
    if kind.startswith("incident."):
        fact["incident_id"] = draw(st.sampled_from(["c1", "c2", "c3", "c4", "", None]))
        data["urgency"] = draw(st.sampled_from(["urgent", "normal"]))
    if kind == "incident.closed":
        data["handling_working_minutes"] = draw(st.integers(0, 3000) | ODD)
        data["ever_overdue"] = draw(st.booleans())
        data["approved_extensions"] = draw(st.sampled_from([0, 0, 1, 2, True, "1"]))
    if kind == "incident.evaluated":
        data["satisfaction"] = draw(st.integers(1, 5) | ODD | st.just(6))
    if kind == "obligations":
        fact["type"] = reference.VISIT_OBLIGATIONS
        fact["period"] = draw(st.sampled_from(["2026-12", "2027-01", "2026-11", "bad", 202612]))
        rows = [
            {
                "worker_id": draw(st.sampled_from(["w1", "w2", None])),
                "risk_level": draw(st.sampled_from(["high", "medium", "low", "none"])),
                "required": draw(st.integers(0, 9) | ODD),
                "done": draw(st.integers(0, 12) | ODD),
            }
            for _ in range(draw(st.integers(0, 3)))
        ]
        data["rows"] = draw(st.sampled_from([rows, rows, [*rows, "not a row"], None]))
    return fact


@st.composite
def fact_streams(draw) -> tuple[list[dict], list[dict]]:
    """(the facts, the order they arrive in: shuffled, some delivered twice or more)."""
    count = draw(st.integers(1, 60))
    facts = [draw(a_fact(number)) for number in range(count)]
    again = draw(st.lists(st.sampled_from(facts), max_size=20))
    arrivals = draw(st.permutations(facts + again))
    return facts, arrivals


def assert_as_defined(summaries: MemorySummaries, facts: list[dict]) -> None:
    for text in PERIODS:
        period = Period.parse(text)
        first, last = period.day_texts()
        working = {day for day in WORKING_DAYS if first <= day <= last}
        for level in reference.LEVELS:
            expected = reference.indicators_by_subject(facts, level, period, working)
            assert summaries.indicators_by_subject(level, period, working) == expected, (
                text,
                level,
            )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fact_streams())
def test_folded_one_by_one_the_summaries_equal_the_plain_definition(stream):
    facts, arrivals = stream
    summaries = MemorySummaries()
    recorded = [summaries.record([fact]) for fact in arrivals]
    assert sum(recorded) == len(facts)  # each fact once, however often it came
    assert_as_defined(summaries, facts)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fact_streams(), st.integers(1, 25))
def test_folded_in_batches_the_summaries_equal_the_plain_definition(stream, size):
    facts, arrivals = stream
    summaries = MemorySummaries()
    for start in range(0, len(arrivals), size):
        summaries.record(arrivals[start : start + size])
    assert_as_defined(summaries, facts)


@given(st.lists(st.integers(0, 50), max_size=40))
def test_the_p90_of_a_histogram_is_the_p90_of_its_values(values):
    histogram: dict[int, int] = {}
    for value in values:
        histogram[value] = histogram.get(value, 0) + 1
    assert nearest_rank_of_histogram(histogram) == nearest_rank(values, reference.P90)


@given(st.lists(st.integers(0, 999), max_size=60), st.sampled_from([1, 7, 100]))
def test_the_p90_read_from_bucket_totals_and_one_bucket_is_the_p90_of_the_values(values, width):
    """As the boards read it: the buckets' totals say which bucket holds the p90 and its
    rank there; that bucket's values alone finish it."""
    buckets: dict[int, dict[int, int]] = {}
    for value in values:
        bucket = buckets.setdefault(value // width, {})
        bucket[value] = bucket.get(value, 0) + 1
    place = p90_bucket({number: sum(bucket.values()) for number, bucket in buckets.items()})
    if place is None:
        assert not values
        return
    number, rank = place
    assert nearest_rank_of_histogram(buckets[number], rank) == nearest_rank(values, reference.P90)


def test_a_case_going_late_moves_from_on_time_to_late_in_every_period():
    """Worked by hand: closed on time on 28 December, reported overdue on 2 January: the
    December board keeps it on time; the week (Monday 28 December to 3 January) and the
    new facts' January count it due and late."""
    grid = GRIDS[0]
    path = [grid[:6], grid[:9], grid[:12], grid]

    def fact(number, kind, day, **data):
        return {
            "_id": number,
            "type": kind,
            "day": day,
            "period": day[:7],
            "path": path,
            "department": None,
            "actor": "w1",
            "incident_id": "c1",
            "data": data,
        }

    summaries = MemorySummaries()
    summaries.record([fact(2, "incident.overdue", "2027-01-02")])  # arrives first
    summaries.record([fact(1, "incident.closed", "2026-12-28", handling_working_minutes=90)])
    december = summaries.indicators_by_subject("grid", Period.parse("2026-12"), ())[grid]
    week = summaries.indicators_by_subject("grid", Period.parse("2026-W53"), ())[grid]
    january = summaries.indicators_by_subject("grid", Period.parse("2027-01"), ())[grid]
    assert (december.cases_closed, december.closed_on_time, december.overdue) == (1, 1, 0)
    assert (week.cases_closed, week.closed_on_time, week.overdue, week.cases_due) == (1, 0, 1, 1)
    assert (january.cases_closed, january.cases_due, january.handling_count) == (0, 1, 0)
    assert week.handling_minutes_p90 == 90


def test_a_case_s_periods_alike_are_stored_once():
    """Worked by hand: a state equal to an earlier period's is stored as that period's
    name, and read back as the state."""
    reported = {"t": [], "s": [0, 1], "r": [0]}
    closed = {"t": ["incident.closed"], "s": [0, 1], "r": []}
    kept = {
        "who": [["grid", "g1"], ["worker", "w1"]],
        "periods": {"2026-11-03": dict(reported), "2026-W45": dict(reported)}
        | {"2026-11-04": closed, "2026-11": dict(reported), "2026-Q4": dict(reported)},
    }
    stored = case_as_stored(kept)
    assert stored["periods"] == {
        "2026-11-03": reported,
        "2026-W45": "2026-11-03",
        "2026-11-04": closed,
        "2026-11": "2026-11-03",
        "2026-Q4": "2026-11-03",
    }
    assert case_as_read(stored) == kept
