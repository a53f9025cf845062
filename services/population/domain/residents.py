"""A resident as a grid worker records them: validation and normalisation, no I/O."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from services.population.domain.codes import level_of
from services.population.domain.errors import InvalidField
from services.population.domain.identity import parse_resident_id, validate_passport

RESIDENT_ID = "resident_id"
PASSPORT = "passport"
ID_TYPES = (RESIDENT_ID, PASSPORT)

RESIDENCE_TYPES = {
    "registered": "户籍",  # registered household here and lives here
    "floating": "流动",  # lives here, registered elsewhere
    "separated": "人户分离",  # registered here, lives elsewhere
    "overseas": "境外",  # foreigners and residents from outside the mainland
}
RELATIONS = {
    "head": "户主",
    "spouse": "配偶",
    "child": "子女",
    "parent": "父母",
    "grandchild": "孙子女",
    "grandparent": "祖父母",
    "sibling": "兄弟姐妹",
    "child_in_law": "儿媳女婿",
    "other": "其他",
}
GENDERS = {
    "male": "male",
    "female": "female",
    "m": "male",
    "f": "female",
    "男": "male",
    "女": "female",
}

ACTIVE, MOVED_OUT, DEREGISTERED = "active", "moved_out", "deregistered"

_MOBILE = re.compile(r"1[3-9]\d{9}")
_LANDLINE = re.compile(r"0\d{2,3}-?\d{7,8}")

# Fields a grid worker may change on an existing record (identity fields are fixed:
# a wrong ID number means a different person, handled by deregistering a duplicate).
EDITABLE_FIELDS = (
    "name",
    "phone",
    "ethnicity",
    "household_registration_place",
    "residence_type",
    "employment",
    "notes",
)


@dataclass(frozen=True)
class ResidentData:
    id_type: str
    id_number: str
    nationality: str
    name: str
    gender: str | None
    birth_date: date | None
    phone: str | None
    ethnicity: str | None
    household_registration_place: str | None
    residence_type: str
    grid_code: str
    house_id: str | None = None
    household_id: str | None = None
    relation_to_head: str | None = None
    employment: str | None = None
    notes: str | None = None

    def as_dict(self) -> dict:
        # A shallow copy: every field is immutable (dataclasses.asdict deep-copies, and
        # was a quarter of a bulk import's time per row).
        return dict(vars(self))


def _text(raw: Mapping, name: str, max_length: int, required: bool = False) -> str | None:
    value = raw.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise InvalidField(name, "is required")
        return None
    if not isinstance(value, str):
        raise InvalidField(name, "must be text")
    value = value.strip()
    if len(value) > max_length:
        raise InvalidField(name, f"must be at most {max_length} characters")
    return value


def normalise_phone(value: str, field: str = "phone") -> str:
    digits = re.sub(r"[\s()]", "", value)
    digits = digits.removeprefix("+86").removeprefix("0086")
    if _MOBILE.fullmatch(digits) or _LANDLINE.fullmatch(digits):
        return digits
    raise InvalidField(
        field, "must be a mainland mobile (11 digits) or a landline like 0877-1234567"
    )


def _parse_date(value: str, field: str) -> date:
    text = value.strip()
    try:
        if re.fullmatch(r"\d{8}", text):
            return date(int(text[:4]), int(text[4:6]), int(text[6:]))
        return date.fromisoformat(text[:10])
    except ValueError:
        raise InvalidField(field, "must be a date like 1990-03-07") from None


def _identity(raw: Mapping, today: date) -> tuple[str, str, str, str | None, date | None]:
    id_type = (_text(raw, "id_type", 20) or RESIDENT_ID).lower()
    if id_type not in ID_TYPES:
        raise InvalidField("id_type", f"must be one of {', '.join(ID_TYPES)}")
    number = _text(raw, "id_number", 32, required=True)
    if id_type == PASSPORT:
        number, nationality = validate_passport(
            number, _text(raw, "nationality", 3, required=True) or "", field="id_number"
        )
        gender = _gender(raw)
        birth = raw.get("birth_date")
        birth_date = _parse_date(birth, "birth_date") if isinstance(birth, str) and birth else None
        return id_type, number, nationality, gender, birth_date
    parsed = parse_resident_id(number, today=today)
    given_gender = _gender(raw)
    if given_gender is not None and given_gender != parsed.gender:
        raise InvalidField("gender", f"does not agree with the ID number ({parsed.gender})")
    given_birth = raw.get("birth_date")
    if (
        isinstance(given_birth, str)
        and given_birth.strip()
        and _parse_date(given_birth, "birth_date") != parsed.birth_date
    ):
        raise InvalidField("birth_date", "does not agree with the ID number")
    nationality = (_text(raw, "nationality", 3) or "CHN").upper()
    if nationality != "CHN":
        raise InvalidField("nationality", "a resident ID number belongs to a Chinese citizen (CHN)")
    return id_type, parsed.number, "CHN", parsed.gender, parsed.birth_date


def _gender(raw: Mapping) -> str | None:
    value = _text(raw, "gender", 10)
    if value is None:
        return None
    gender = GENDERS.get(value.lower())
    if gender is None:
        raise InvalidField("gender", "must be male or female")
    return gender


def _choice(raw: Mapping, name: str, choices: Mapping[str, str], default: str | None = None):
    value = _text(raw, name, 40)
    if value is None:
        if default is None:
            return None
        return default
    key = value.lower()
    if key in choices:
        return key
    by_label = {label: code for code, label in choices.items()}
    if value in by_label:
        return by_label[value]
    raise InvalidField(name, f"must be one of {', '.join(choices)}")


def _grid(raw: Mapping) -> str:
    code = _text(raw, "grid_code", 15, required=True) or ""
    if level_of(code, field="grid_code") != "grid":
        raise InvalidField("grid_code", "must be a 15-digit grid code")
    return code


def _phone(raw: Mapping) -> str | None:
    value = _text(raw, "phone", 40)
    return None if value is None else normalise_phone(value)


_FIELD_CHECKS = (
    ("identity", None),
    ("name", lambda raw: _text(raw, "name", 50, required=True)),
    ("phone", _phone),
    ("ethnicity", lambda raw: _text(raw, "ethnicity", 20)),
    (
        "household_registration_place",
        lambda raw: _text(raw, "household_registration_place", 200),
    ),
    ("residence_type", lambda raw: _choice(raw, "residence_type", RESIDENCE_TYPES, "registered")),
    ("grid_code", _grid),
    ("house_id", lambda raw: _text(raw, "house_id", 64)),
    ("household_id", lambda raw: _text(raw, "household_id", 64)),
    ("relation_to_head", lambda raw: _choice(raw, "relation_to_head", RELATIONS)),
    ("employment", lambda raw: _text(raw, "employment", 100)),
    ("notes", lambda raw: _text(raw, "notes", 1000)),
)


def check_resident(raw: Mapping, today: date) -> tuple[ResidentData | None, list[InvalidField]]:
    """Validate every field; return the normalised record or all the problems found."""
    values: dict = {}
    problems: list[InvalidField] = []
    for name, check in _FIELD_CHECKS:
        try:
            if name == "identity":
                keys = ("id_type", "id_number", "nationality", "gender", "birth_date")
                values.update(zip(keys, _identity(raw, today), strict=True))
            else:
                values[name] = check(raw)
        except InvalidField as problem:
            problems.append(problem)
    if problems:
        return None, problems
    return ResidentData(**values), []


def resident_from_input(raw: Mapping, today: date) -> ResidentData:
    record, problems = check_resident(raw, today)
    if problems:
        raise problems[0]
    return record


def changed_fields(before: Mapping, after: Mapping, fields=EDITABLE_FIELDS) -> dict:
    """{field: (old, new)} for every field whose value differs."""
    return {
        name: (before.get(name), after.get(name))
        for name in fields
        if name in after and before.get(name) != after.get(name)
    }
