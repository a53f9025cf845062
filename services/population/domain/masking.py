"""Masking of ID and phone numbers for people who may see that a record exists, not the number.

A mask keeps the value's length and a few characters at the ends, enough to tell two
records apart on screen or match a number someone reads out, and replaces the rest with
asterisks. Only values that already consist of asterisks where the mask puts them come
back unchanged; real numbers never do.
"""

import re

_RESIDENT_ID_LENGTH = 18
_MAINLAND_MOBILE = re.compile(r"1[0-9]{10}")


def mask_id_number(value: str) -> str:
    """Resident IDs keep their first 3 and last 4 characters, other numbers 1 and 2."""
    if len(value) == _RESIDENT_ID_LENGTH:
        # The region prefix and the tail stay readable; the birth date is hidden.
        return _keep_ends(value, head=3, tail=4)
    if len(value) <= 3:
        # Keeping 1 + 2 characters of so short a value would show all of it.
        return _asterisks(value)
    return _keep_ends(value, head=1, tail=2)


def mask_phone(value: str) -> str:
    """Mainland mobiles keep their first 3 and last 4 digits, other numbers the last 4."""
    if _MAINLAND_MOBILE.fullmatch(value):
        # The first 3 digits only name the carrier's number block.
        return _keep_ends(value, head=3, tail=4)
    if len(value) <= 4:
        return _asterisks(value)
    return _keep_ends(value, head=0, tail=4)


def _keep_ends(value: str, head: int, tail: int) -> str:
    hidden = len(value) - head - tail
    return value[:head] + "*" * hidden + value[len(value) - tail :]


def _asterisks(value: str) -> str:
    return "*" * len(value)
