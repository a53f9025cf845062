"""Territory codes: a county's GB/T 2260 code extended by statistical division serials
(the grammar, shared with the gateway's OpenAPI document, is gridwork_common.territory).

A code's length names its level and every code starts with its parent's code, so the
code prefix *is* the subtree: ancestry and scope checks are plain string operations.

    530402               county    (6 digits, GB/T 2260)
    530402001            township  (+3)
    530402001001         village   (+3)
    530402001001001      grid      (+3, serial within the village)
    53040200100100100001 building  (+5, serial within the grid)
"""

from gridwork_common.territory import CODE_LENGTHS, LEVELS, PROVINCE_CODES, is_ascii_digits
from services.population.domain.errors import InvalidField

_LEVEL_BY_LENGTH = {length: level for level, length in CODE_LENGTHS.items()}
_LENGTHS_TEXT = "6, 9, 12, 15 or 20"


def level_of(code: str, field: str = "code") -> str:
    """The level a territory code names; InvalidField if it is not a well-formed code.

    Every part is checked, not only the last one, so each ancestor of a valid code is valid.
    """
    if not isinstance(code, str):
        raise InvalidField(field, "must be a string of digits")
    level = _LEVEL_BY_LENGTH.get(len(code))
    if level is None:
        raise InvalidField(field, f"must be {_LENGTHS_TEXT} digits, got {len(code)}")
    if not is_ascii_digits(code):
        raise InvalidField(field, "must contain digits 0-9 only")
    _check_county_part(code, field)
    _check_serials(code, level, field)
    return level


def _check_county_part(code: str, field: str) -> None:
    if code[:2] not in PROVINCE_CODES:
        raise InvalidField(field, f"{code[:2]} (digits 1-2) is not a province-level code")
    # Digits 5-6 of "00" name a prefecture (or the province itself), not a county.
    if code[4:6] == "00":
        raise InvalidField(field, "county part (digits 5-6) must not be 00")


def _check_serials(code: str, level: str, field: str) -> None:
    # A serial of all zeros would be indistinguishable from "no division at this level".
    for position in range(1, LEVELS.index(level) + 1):
        current = LEVELS[position]
        start, end = CODE_LENGTHS[LEVELS[position - 1]], CODE_LENGTHS[current]
        if set(code[start:end]) == {"0"}:
            raise InvalidField(
                field, f"{current} serial (digits {start + 1}-{end}) must not be all zeros"
            )


def child_level(level: str) -> str | None:
    """The level directly below `level`; None for a building, which has no children."""
    if level not in LEVELS:
        raise InvalidField("level", f"unknown level {level!r}, expected one of {', '.join(LEVELS)}")
    position = LEVELS.index(level)
    return LEVELS[position + 1] if position + 1 < len(LEVELS) else None


def parent_code(code: str) -> str | None:
    """The code of the territory directly containing `code`; None for a county."""
    chain = ancestors(code)
    return chain[-1] if chain else None


def ancestors(code: str) -> list[str]:
    """The codes containing `code`, county first, `code` itself excluded."""
    level = level_of(code)
    return [code[: CODE_LENGTHS[above]] for above in LEVELS[: LEVELS.index(level)]]


def path_codes(code: str) -> list[str]:
    """The ancestors of `code` followed by `code`: the path from the county down to it."""
    return [*ancestors(code), code]


def validate_child(
    parent: str, child: str, field: str = "code", *, parent_field: str = "parent_code"
) -> None:
    """Refuse `child` unless it is a valid code exactly one level below `parent`, under it."""
    parent_level = level_of(parent, parent_field)
    expected_level = child_level(parent_level)
    if expected_level is None:
        raise InvalidField(field, f"a building ({parent}) cannot contain other territories")
    actual_level = level_of(child, field)
    if actual_level != expected_level:
        raise InvalidField(
            field,
            f"must be a {expected_level} code ({CODE_LENGTHS[expected_level]} digits) "
            f"under {parent_level} {parent}, got a {actual_level} code",
        )
    if not child.startswith(parent):
        raise InvalidField(field, f"{child} does not extend parent {parent}")


def in_scope(code: str, scope: str | None) -> bool:
    """Whether a caller scoped to the territory `scope` may see the territory `code`.

    Fails closed: no scope, or a scope or code that is not a valid territory code, sees
    nothing (a stray "" or "53" must never open up a whole province). Callers with
    system-wide rights do not come through here.
    """
    if scope is None or not (_is_valid(scope) and _is_valid(code)):
        return False
    return code.startswith(scope)


def _is_valid(code: str) -> bool:
    try:
        level_of(code)
    except InvalidField:
        return False
    return True
