"""Identity numbers: resident IDs (GB 11643-1999), passports, social credit codes (GB 32100-2015).

Each parser normalises what people type (surrounding spaces, lowercase letters) and
refuses everything else with a reason. Reasons about personal numbers never quote the
number or its expected check character: error messages end up in logs, and telling a
caller the right check character would turn the check into a generator of valid IDs.
"""

import re
from dataclasses import dataclass
from datetime import date

from services.population.domain.codes import PROVINCE_CODES, is_ascii_digits
from services.population.domain.errors import InvalidField

# --- Resident ID: 6-digit region, 8-digit birth date, 3-digit sequence, check character.

RESIDENT_ID_LENGTH = 18
EARLIEST_BIRTH_DATE = date(1900, 1, 1)
_RESIDENT_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_RESIDENT_ID_CHECK_CHARACTERS = "10X98765432"  # indexed by the weighted sum modulo 11
_RESIDENT_ID_SHAPE = re.compile(r"[0-9]{17}[0-9X]")


@dataclass(frozen=True)
class ResidentId:
    number: str
    region_code: str
    birth_date: date
    gender: str  # "male" | "female"


def resident_id_check_character(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character completing the first 17 digits of an ID."""
    if len(first17) != 17 or not is_ascii_digits(first17):
        raise ValueError("a resident ID check character needs exactly 17 digits")
    total = sum(
        int(digit) * weight for digit, weight in zip(first17, _RESIDENT_ID_WEIGHTS, strict=True)
    )
    return _RESIDENT_ID_CHECK_CHARACTERS[total % 11]


def parse_resident_id(value: str, today: date, field: str = "id_number") -> ResidentId:
    """Validate a resident ID number and read the birth date and gender it encodes."""
    if not isinstance(value, str):
        raise InvalidField(field, "must be a string")
    number = _normalise(value)
    if len(number) != RESIDENT_ID_LENGTH:
        raise InvalidField(field, f"must be {RESIDENT_ID_LENGTH} characters, got {len(number)}")
    if not _RESIDENT_ID_SHAPE.fullmatch(number):
        raise InvalidField(field, "must be 17 digits followed by a digit or X")
    if number[:2] not in PROVINCE_CODES:
        raise InvalidField(field, "region code (digits 1-6) does not start with a province code")
    birth_date = _birth_date(number[6:14], today, field)  # today: the China date
    if resident_id_check_character(number[:17]) != number[17]:
        raise InvalidField(field, "check character does not match")
    return ResidentId(
        number=number,
        region_code=number[:6],
        birth_date=birth_date,
        gender=_gender(number[16]),
    )


def _birth_date(digits: str, today: date, field: str) -> date:
    try:
        born = date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
    except ValueError:
        raise InvalidField(field, "birth date (digits 7-14) is not a real calendar date") from None
    if born < EARLIEST_BIRTH_DATE:
        raise InvalidField(field, f"birth date is before {EARLIEST_BIRTH_DATE.isoformat()}")
    if born > today:
        raise InvalidField(field, "birth date is in the future")
    return born


def _gender(sequence_digit: str) -> str:
    # The last digit of the 3-digit sequence: odd for men, even for women.
    return "male" if int(sequence_digit) % 2 else "female"


# --- Passports of foreign nationals.

_PASSPORT_NUMBER = re.compile(r"[A-Z0-9]{5,17}")
_ALPHA_3 = re.compile(r"[A-Z]{3}")


def validate_passport(
    number: str, nationality: str, field: str = "passport_number"
) -> tuple[str, str]:
    """The normalised (passport number, ISO 3166-1 alpha-3 nationality) of a foreigner."""
    if not isinstance(number, str):
        raise InvalidField(field, "must be a string")
    normalised = _normalise(number)
    if not 5 <= len(normalised) <= 17:
        raise InvalidField(field, f"must be 5 to 17 characters, got {len(normalised)}")
    if not _PASSPORT_NUMBER.fullmatch(normalised):
        raise InvalidField(field, "must contain only letters A-Z and digits 0-9")
    return normalised, _nationality(nationality)


def _nationality(value: str) -> str:
    if not isinstance(value, str):
        raise InvalidField("nationality", "must be a string")
    country = _normalise(value)
    if not _ALPHA_3.fullmatch(country):
        raise InvalidField("nationality", "must be an ISO 3166-1 alpha-3 code of 3 letters")
    if country == "CHN":
        # Chinese citizens are registered by their resident ID, never by passport.
        raise InvalidField("nationality", "CHN is not allowed: Chinese citizens use a resident ID")
    return country


# --- Unified social credit code of organisations.

CREDIT_CODE_LENGTH = 18
CREDIT_CODE_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # no I, O, S, V, Z: easily misread
_CREDIT_CODE_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


@dataclass(frozen=True)
class CreditCode:
    number: str
    registration_authority: str
    entity_type: str
    region_code: str
    organization_code: str


def credit_code_check_character(first17: str) -> str:
    """The GB 32100 MOD 31 check character completing the first 17 characters of a code."""
    if len(first17) != 17 or any(char not in CREDIT_CODE_CHARSET for char in first17):
        raise ValueError("a credit code check character needs 17 characters of the charset")
    total = sum(
        CREDIT_CODE_CHARSET.index(char) * weight
        for char, weight in zip(first17, _CREDIT_CODE_WEIGHTS, strict=True)
    )
    return CREDIT_CODE_CHARSET[(31 - total % 31) % 31]


def parse_credit_code(value: str, field: str = "credit_code") -> CreditCode:
    """Validate a unified social credit code and split it into its parts."""
    if not isinstance(value, str):
        raise InvalidField(field, "must be a string")
    number = _normalise(value)
    if len(number) != CREDIT_CODE_LENGTH:
        raise InvalidField(field, f"must be {CREDIT_CODE_LENGTH} characters, got {len(number)}")
    for position, char in enumerate(number, start=1):
        if char not in CREDIT_CODE_CHARSET:
            raise InvalidField(
                field,
                f"character {char!r} at position {position} is not allowed "
                "(digits and capital letters except I, O, S, V, Z)",
            )
    if number[0] == "0":
        raise InvalidField(field, "registration authority (position 1) must not be 0")
    if not is_ascii_digits(number[2:8]):
        raise InvalidField(field, "region code (positions 3-8) must be 6 digits")
    if credit_code_check_character(number[:17]) != number[17]:
        raise InvalidField(field, "check character does not match")
    return CreditCode(
        number=number,
        registration_authority=number[0],
        entity_type=number[1],
        region_code=number[2:8],
        organization_code=number[8:17],
    )


def _normalise(value: str) -> str:
    # Uppercase ASCII only: str.upper() maps some non-ASCII letters onto ASCII ones
    # (dotless "\u0131" -> "I", long "\u017f" -> "S"), letting look-alikes through.
    stripped = value.strip()
    return stripped.upper() if stripped.isascii() else stripped
