from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.population.domain.codes import (
    CODE_LENGTHS,
    LEVELS,
    ancestors,
    child_level,
    in_scope,
    level_of,
    parent_code,
    path_codes,
    validate_child,
)
from services.population.domain.errors import InvalidField

# An independent description of well-formed codes, written out rather than imported, so a
# mistake in the module's tables is not silently shared by the tests.
PROVINCES = [
    *range(11, 16), *range(21, 24), *range(31, 38), *range(41, 47),
    *range(50, 55), *range(61, 66), 71, 81, 82,
]  # fmt: skip
SERIAL_WIDTHS = {"township": 3, "village": 3, "grid": 3, "building": 5}
BELOW_COUNTY = ("township", "village", "grid", "building")
DEPTH_BY_LENGTH = {6: 0, 9: 1, 12: 2, 15: 3, 20: 4}

COUNTY = "530402"
TOWNSHIP = "530402001"
VILLAGE = "530402001002"
GRID = "530402001002003"
BUILDING = "53040200100200300004"


def serials(width):
    return st.integers(1, 10**width - 1).map(lambda n: f"{n:0{width}d}")


def full_width(text):
    """The same digits in full-width form (U+FF10..), which str.isdigit() also accepts."""
    return "".join(chr(ord(char) + 0xFEE0) for char in text)


counties = st.builds(
    lambda province, prefecture, county: f"{province:02d}{prefecture:02d}{county:02d}",
    st.sampled_from(PROVINCES),
    st.integers(0, 99),
    st.integers(1, 99),
)


@st.composite
def codes_at(draw, level):
    """A valid code of `level`, built by appending a non-zero serial per level."""
    code = draw(counties)
    for below in BELOW_COUNTY[: LEVELS.index(level)]:
        code += draw(serials(SERIAL_WIDTHS[below]))
    return code


@st.composite
def codes_under(draw, code, min_depth=0):
    """`code` extended by at least `min_depth` levels of random serials (when there are)."""
    below = BELOW_COUNTY[DEPTH_BY_LENGTH[len(code)] :]
    depth = draw(st.integers(min(min_depth, len(below)), len(below)))
    return code + "".join(draw(serials(SERIAL_WIDTHS[level])) for level in below[:depth])


any_level = st.sampled_from(LEVELS)
any_code = any_level.flatmap(codes_at)
parent_levels = st.sampled_from(LEVELS[:-1])


# --- level_of


def test_levels_are_ordered_from_county_to_building():
    assert LEVELS == ("county", "township", "village", "grid", "building")
    assert CODE_LENGTHS == {"county": 6, "township": 9, "village": 12, "grid": 15, "building": 20}


@pytest.mark.parametrize(
    ("code", "level"),
    [
        (COUNTY, "county"),
        (TOWNSHIP, "township"),
        (VILLAGE, "village"),
        (GRID, "grid"),
        (BUILDING, "building"),
        ("110105", "county"),
        ("820001", "county"),
    ],
)
def test_level_of_known_codes(code, level):
    assert level_of(code) == level


@given(any_level.flatmap(lambda level: st.tuples(st.just(level), codes_at(level))))
def test_every_generated_code_has_the_level_it_was_built_at(level_and_code):
    level, code = level_and_code
    assert level_of(code) == level


@pytest.mark.parametrize(
    ("code", "problem"),
    [
        ("5304021", "must be 6, 9, 12, 15 or 20 digits, got 7"),
        ("", "must be 6, 9, 12, 15 or 20 digits, got 0"),
        ("5304020010", "must be 6, 9, 12, 15 or 20 digits, got 10"),
        ("53040a", "must contain digits 0-9 only"),
        (full_width("530402"), "must contain digits 0-9 only"),
        (" 53040", "must contain digits 0-9 only"),
        ("-53040", "must contain digits 0-9 only"),
        ("990402", "99 (digits 1-2) is not a province-level code"),
        ("100402", "10 (digits 1-2) is not a province-level code"),
        ("000402001", "00 (digits 1-2) is not a province-level code"),
        ("530400", "county part (digits 5-6) must not be 00"),
        ("530400001", "county part (digits 5-6) must not be 00"),
        ("530402000", "township serial (digits 7-9) must not be all zeros"),
        ("530402001000", "village serial (digits 10-12) must not be all zeros"),
        ("530402001002000", "grid serial (digits 13-15) must not be all zeros"),
        ("53040200100200300000", "building serial (digits 16-20) must not be all zeros"),
        ("53040200000200300004", "township serial (digits 7-9) must not be all zeros"),
    ],
)
def test_level_of_refuses_malformed_codes_with_a_reason(code, problem):
    with pytest.raises(InvalidField) as error:
        level_of(code, field="territory_code")
    assert error.value.field == "territory_code"
    assert error.value.problem == problem
    assert str(error.value) == f"territory_code: {problem}"


def test_level_of_names_the_code_field_by_default():
    with pytest.raises(InvalidField) as error:
        level_of("12")
    assert error.value.field == "code"


@pytest.mark.parametrize("value", [None, 530402, b"530402"])
def test_level_of_refuses_non_strings(value):
    with pytest.raises(InvalidField) as error:
        level_of(value)
    assert error.value.field == "code"


@pytest.mark.parametrize("province", ["16", "20", "24", "30", "38", "40", "47", "49", "55", "60"])
def test_prefixes_between_province_ranges_are_refused(province):
    with pytest.raises(InvalidField, match="not a province-level code"):
        level_of(f"{province}0101")


# --- parent_code, ancestors, path_codes


def test_path_of_a_building_runs_from_the_county_down():
    assert path_codes(BUILDING) == [COUNTY, TOWNSHIP, VILLAGE, GRID, BUILDING]
    assert ancestors(BUILDING) == [COUNTY, TOWNSHIP, VILLAGE, GRID]
    assert parent_code(BUILDING) == GRID
    assert parent_code(GRID) == VILLAGE
    assert parent_code(TOWNSHIP) == COUNTY


def test_a_county_has_no_parent_and_no_ancestors():
    assert parent_code(COUNTY) is None
    assert ancestors(COUNTY) == []
    assert path_codes(COUNTY) == [COUNTY]


@pytest.mark.parametrize("function", [parent_code, ancestors, path_codes])
def test_ancestry_of_a_malformed_code_is_refused(function):
    with pytest.raises(InvalidField):
        function("530402000")


@given(any_code)
def test_path_codes_walk_down_one_level_at_a_time(code):
    path = path_codes(code)
    assert path[-1] == code
    assert path[:-1] == ancestors(code)
    assert [level_of(step) for step in path] == list(LEVELS[: len(path)])
    for above, below in pairwise(path):
        assert below.startswith(above)
        assert parent_code(below) == above


@given(any_code)
def test_parent_code_is_the_last_ancestor(code):
    chain = ancestors(code)
    assert parent_code(code) == (chain[-1] if chain else None)


# --- child_level


def test_child_levels_follow_the_hierarchy():
    assert [child_level(level) for level in LEVELS] == [
        "township", "village", "grid", "building", None,
    ]  # fmt: skip


def test_child_level_of_an_unknown_level_is_refused():
    with pytest.raises(InvalidField) as error:
        child_level("province")
    assert error.value.field == "level"
    assert "unknown level 'province'" in error.value.problem


# --- validate_child


@pytest.mark.parametrize(
    ("parent", "child"),
    [(COUNTY, TOWNSHIP), (TOWNSHIP, VILLAGE), (VILLAGE, GRID), (GRID, BUILDING)],
)
def test_known_children_are_accepted(parent, child):
    validate_child(parent, child)


@given(parent_levels.flatmap(codes_at), st.data())
def test_a_valid_serial_under_a_valid_parent_is_accepted(parent, data):
    width = SERIAL_WIDTHS[child_level(level_of(parent))]
    validate_child(parent, parent + data.draw(serials(width)))


@given(parent_levels.flatmap(codes_at), st.data())
def test_a_child_of_another_parent_is_refused(parent, data):
    level = level_of(parent)
    other_parent = data.draw(codes_at(level).filter(lambda code: code != parent))
    child = other_parent + data.draw(serials(SERIAL_WIDTHS[child_level(level)]))
    with pytest.raises(InvalidField) as error:
        validate_child(parent, child, field="grid_code")
    assert error.value.field == "grid_code"
    assert error.value.problem == f"{child} does not extend parent {parent}"


def test_a_child_under_a_sibling_names_both_codes():
    with pytest.raises(InvalidField) as error:
        validate_child("530402002", "530402001001")
    assert str(error.value) == "code: 530402001001 does not extend parent 530402002"


@given(st.sampled_from(LEVELS[:-2]).flatmap(codes_at), st.data())
def test_a_descendant_further_down_is_not_a_child(parent, data):
    # Grandchildren and below extend the parent but skip a level.
    descendant = data.draw(codes_under(parent, min_depth=2))
    with pytest.raises(InvalidField, match=r"must be a \w+ code \(\d+ digits\) under .* got a"):
        validate_child(parent, descendant)


def test_a_grandchild_is_refused_with_the_expected_level():
    with pytest.raises(InvalidField) as error:
        validate_child(TOWNSHIP, GRID)
    assert error.value.problem == (
        "must be a village code (12 digits) under township 530402001, got a grid code"
    )


def test_the_parent_itself_or_an_ancestor_is_not_a_child():
    with pytest.raises(InvalidField, match="got a township code"):
        validate_child(TOWNSHIP, TOWNSHIP)
    with pytest.raises(InvalidField, match="got a county code"):
        validate_child(TOWNSHIP, COUNTY)


def test_a_building_has_no_children():
    with pytest.raises(InvalidField) as error:
        validate_child(BUILDING, BUILDING + "001")
    assert error.value.field == "code"
    assert "cannot contain" in error.value.problem


def test_a_malformed_child_is_refused_under_the_callers_field():
    with pytest.raises(InvalidField) as error:
        validate_child(TOWNSHIP, "530402001000", field="village_code")
    assert error.value.field == "village_code"
    assert error.value.problem == "village serial (digits 10-12) must not be all zeros"


def test_a_malformed_parent_is_refused_under_the_parent_field():
    with pytest.raises(InvalidField) as error:
        validate_child("530400", "530400001")
    assert error.value.field == "parent_code"
    with pytest.raises(InvalidField) as error:
        validate_child("530400", "530400001", parent_field="township")
    assert error.value.field == "township"


# --- in_scope


@given(any_code)
def test_a_code_is_in_the_scope_of_itself_and_of_each_ancestor(code):
    assert all(in_scope(code, scope) for scope in path_codes(code))


@given(any_code, st.data())
def test_in_scope_means_the_scope_is_on_the_codes_path(code, data):
    # Scopes on the code's path, on branches leaving it, and unrelated ones.
    nearby = st.sampled_from(path_codes(code)).flatmap(codes_under)
    scope = data.draw(st.one_of(any_code, nearby))
    assert in_scope(code, scope) == (scope in path_codes(code))
    assert in_scope(code, scope) == code.startswith(scope)


@given(any_code, any_code)
def test_in_scope_is_prefix_semantics_for_valid_codes(code, scope):
    assert in_scope(code, scope) == code.startswith(scope)


@given(any_code)
def test_nothing_is_visible_without_a_scope(code):
    assert in_scope(code, None) is False


@pytest.mark.parametrize("scope", ["", "5", "53", "5304", "53040", "5304020", "53040200100"])
def test_a_scope_that_is_not_a_valid_code_sees_nothing(scope):
    assert BUILDING.startswith(scope)
    assert in_scope(BUILDING, scope) is False


def test_a_malformed_code_is_never_in_scope():
    assert in_scope("530402001000", TOWNSHIP) is False
    assert in_scope("5304020019", TOWNSHIP) is False


def test_a_scope_does_not_see_its_parent_or_siblings():
    assert in_scope(COUNTY, TOWNSHIP) is False
    assert in_scope("530402002001", TOWNSHIP) is False
    assert in_scope("530403001", COUNTY) is False


@settings(max_examples=50)
@given(any_code)
def test_in_scope_sees_children_but_not_parents(code):
    parent = parent_code(code)
    if parent is not None:
        assert in_scope(code, parent)
        assert not in_scope(parent, code)
