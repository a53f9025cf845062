"""The grammar of territory codes, shared by the population service (which checks every
code it is given), the events service (whose centres own cases by code) and the gateway
(whose OpenAPI document states the same grammar as a pattern, so a client can tell a
well-formed code before sending it).

A county's GB/T 2260 code is extended by statistical division serials; a code's length
names its level and every code starts with its parent's code:

    530402               county    (6 digits, GB/T 2260)
    530402001            township  (+3)
    530402001001         village   (+3)
    530402001001001      grid      (+3, serial within the village)
    53040200100100100001 building  (+5, serial within the grid)

Well-formed: digits 1-2 name a province, digits 5-6 are not 00 (that would name a
prefecture), and no serial is all zeros (that would mean "no division at this level").
"""

from __future__ import annotations

LEVELS = ("county", "township", "village", "grid", "building")
CODE_LENGTHS = {"county": 6, "township": 9, "village": 12, "grid": 15, "building": 20}

# Province-level prefixes of GB/T 2260 (mainland, Taiwan, Hong Kong, Macao).
_PROVINCE_RANGES = ((11, 15), (21, 23), (31, 37), (41, 46), (50, 54), (61, 65), (71, 71), (81, 82))
PROVINCE_CODES = frozenset(
    f"{number:02d}" for first, last in _PROVINCE_RANGES for number in range(first, last + 1)
)


def _nonzero_serial(width: int) -> str:
    """`width` ASCII digits, not all zeros, as a regular expression without lookarounds
    (which not every JSON Schema tool generates from)."""
    choices = ["0" * zeros + "[1-9]" + "[0-9]" * (width - zeros - 1) for zeros in range(width)]
    return "(?:" + "|".join(choices) + ")"


_COUNTY = (
    "(?:" + "|".join(sorted(PROVINCE_CODES)) + ")"  # digits 1-2: a province
    "[0-9]{2}"  # digits 3-4: a prefecture, or 00 within the province
    "(?:0[1-9]|[1-9][0-9])"  # digits 5-6: a county, never 00
)


def is_ascii_digits(text: str) -> bool:
    # str.isdigit() also accepts full-width and other Unicode digits; codes are ASCII.
    return text.isascii() and text.isdigit()


def code_pattern(lowest: str = "county", highest: str = "building") -> str:
    """A regular expression (anchored, ECMA 262 and Python alike) matching exactly the
    well-formed codes of the levels from `lowest` down to `highest`, e.g.
    code_pattern("county", "grid") for any code a case may be filed under."""
    first, last = LEVELS.index(lowest), LEVELS.index(highest)
    if first > last:
        raise ValueError(f"{lowest} is below {highest}")
    serials = [
        _nonzero_serial(CODE_LENGTHS[LEVELS[i]] - CODE_LENGTHS[LEVELS[i - 1]])
        for i in range(1, last + 1)
    ]
    required = _COUNTY + "".join(serials[:first])
    optional = ""
    for serial in reversed(serials[first:]):
        optional = f"(?:{serial}{optional})?"
    return f"^{required}{optional}$"


def describe(lowest: str = "county", highest: str = "building") -> str:
    """What code_pattern(lowest, highest) accepts, in words, for the document."""
    levels = LEVELS[LEVELS.index(lowest) : LEVELS.index(highest) + 1]
    lengths = ", ".join(f"{level} {CODE_LENGTHS[level]}" for level in levels)
    return (
        f"A territory code ({lengths} digits): a province's two digits, a county part "
        "that is not 00, and no division serial of all zeros."
    )
