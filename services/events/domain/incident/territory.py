"""Territory codes as the loop sees them: centres own cases, scopes contain codes. A code's
length names its level and every code starts with its parent's (the grammar is
gridwork_common.territory), so ownership and scope are string operations."""

from __future__ import annotations

from gridwork_common.territory import CODE_LENGTHS, is_ascii_digits

COUNTY_LENGTH = CODE_LENGTHS["county"]
TOWNSHIP_LENGTH = CODE_LENGTHS["township"]
VILLAGE_LENGTH = CODE_LENGTHS["village"]
GRID_LENGTH = CODE_LENGTHS["grid"]
CENTRE_LENGTHS = (COUNTY_LENGTH, TOWNSHIP_LENGTH, VILLAGE_LENGTH)
_SCOPE_LENGTHS = (*CENTRE_LENGTHS, GRID_LENGTH)


def first_centre(grid_code: str) -> str:
    """A new case belongs to the centre of its grid's village or community."""
    return grid_code[:VILLAGE_LENGTH]


def centre_above(centre: str) -> str | None:
    """Village → township → county; None above the county."""
    return centre[:-3] if len(centre) > COUNTY_LENGTH else None


def is_centre_code(code: object) -> bool:
    return isinstance(code, str) and is_ascii_digits(code) and len(code) in CENTRE_LENGTHS


def contains(scope: str | None, code: str) -> bool:
    """Whether territory `scope` contains `code` (or is it). Fails closed: no scope, or a
    scope that is not a whole territory code ("", "53"), contains nothing."""
    if not (isinstance(scope, str) and is_ascii_digits(scope) and len(scope) in _SCOPE_LENGTHS):
        return False
    return code.startswith(scope)
