"""The period grammar the OpenAPI document states (gridwork_common.periods) is the one the
assessment service reads (services.assessment.domain.periods), but for the one rule a
pattern cannot state: week 53 exists only in some years."""

import re
from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from gridwork_common.errors import InvalidInput
from gridwork_common.periods import PERIOD_PATTERN
from services.assessment.domain.periods import Period

PERIOD = re.compile(PERIOD_PATTERN)


def _service_reads(text: str) -> bool:
    try:
        Period.parse(text)
    except InvalidInput:
        return False
    return True


def _has_week_53(year: int) -> bool:
    return date(year, 12, 28).isocalendar().week == 53


@settings(max_examples=200, derandomize=True)
@given(st.from_regex(PERIOD_PATTERN, fullmatch=True))
def test_every_period_the_pattern_accepts_is_read(text):
    if text.endswith("-W53") and not _has_week_53(int(text[:4])):
        assert not _service_reads(text)
    else:
        assert _service_reads(text), text


@settings(max_examples=200, derandomize=True)
@given(
    st.one_of(
        st.from_regex(r"\A[0-9]{4}(-[0-9]{2}(-[0-9]{2})?|-W[0-9]{2}|-Q[0-9])?\Z"),
        st.text("0123456789-WQ", max_size=10),
    )
)
def test_every_period_the_service_reads_matches_the_pattern(text):
    if _service_reads(text):
        assert PERIOD.match(text), text
