"""The territory code grammar the OpenAPI document states (gridwork_common.territory) is
exactly the one the population service enforces (services.population.domain.codes)."""

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridwork_common.territory import CODE_LENGTHS, LEVELS, code_pattern
from services.population.domain.codes import level_of
from services.population.domain.errors import InvalidField

EVERY_LEVEL = re.compile(code_pattern("county", "building"))


def _service_level(code: str) -> str | None:
    try:
        return level_of(code)
    except InvalidField:
        return None


@settings(max_examples=500, derandomize=True)
@given(
    st.sampled_from(sorted(CODE_LENGTHS.values())).flatmap(
        lambda length: st.text("0123456789", min_size=length, max_size=length)
    )
)
def test_pattern_accepts_a_code_exactly_when_the_service_does(code):
    assert bool(EVERY_LEVEL.match(code)) == (_service_level(code) is not None)


@pytest.mark.parametrize(
    "lowest,highest", [("county", "grid"), ("township", "village"), ("grid", "grid")]
)
def test_pattern_of_some_levels_accepts_only_those_levels(lowest, highest):
    pattern = code_pattern(lowest, highest)
    wanted = LEVELS[LEVELS.index(lowest) : LEVELS.index(highest) + 1]

    @settings(max_examples=200, derandomize=True)
    @given(st.from_regex(pattern, fullmatch=True))
    def generated_codes_are_of_those_levels(code):
        assert _service_level(code) in wanted

    generated_codes_are_of_those_levels()


@pytest.mark.parametrize(
    "code", ["530402", "530402001", "530402001001", "530402001001001", "53040200100100100001"]
)
def test_the_demo_county_codes_are_well_formed(code):
    assert EVERY_LEVEL.match(code)
