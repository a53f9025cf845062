from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.population.domain.errors import InvalidField
from services.population.domain.identity import (
    CreditCode,
    ResidentId,
    credit_code_check_character,
    parse_credit_code,
    parse_resident_id,
    resident_id_check_character,
    validate_passport,
)

TODAY = date(2026, 11, 23)

# Independent generators: the tables are written out and the check characters computed
# another way than the module does, so both would have to be wrong in the same way.
PROVINCES = [
    *range(11, 16), *range(21, 24), *range(31, 38), *range(41, 47),
    *range(50, 55), *range(61, 66), 71, 81, 82,
]  # fmt: skip
DIGITS = "0123456789"
CREDIT_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def id_check_character(first17):
    # MOD 11-2: weight of position i (from the left) is 2^(17 - i) mod 11.
    total = sum(int(digit) * (2 ** (17 - i) % 11) for i, digit in enumerate(first17))
    check = (12 - total % 11) % 11
    return "X" if check == 10 else str(check)


def credit_check_character(first17):
    # GB 32100: weight of position i (from 0) is 3^i mod 31.
    total = sum(CREDIT_CHARSET.index(char) * (3**i % 31) for i, char in enumerate(first17))
    return CREDIT_CHARSET[-total % 31]


def resident_id(first17):
    return first17 + id_check_character(first17)


@st.composite
def resident_ids(draw, earliest=date(1900, 1, 1), latest=TODAY):
    province = draw(st.sampled_from(PROVINCES))
    rest_of_region = draw(st.integers(0, 9999))
    born = draw(st.dates(min_value=earliest, max_value=latest))
    sequence = draw(st.integers(0, 999))
    return resident_id(f"{province:02d}{rest_of_region:04d}{born:%Y%m%d}{sequence:03d}")


@st.composite
def credit_codes(draw):
    authority = draw(st.sampled_from(CREDIT_CHARSET[1:]))
    entity_type = draw(st.sampled_from(CREDIT_CHARSET))
    region = draw(st.text(DIGITS, min_size=6, max_size=6))
    organization = draw(st.text(CREDIT_CHARSET, min_size=9, max_size=9))
    first17 = authority + entity_type + region + organization
    return first17 + credit_check_character(first17)


NO_PROVINCE = "region code (digits 1-6) does not start with a province code"
NOT_A_DATE = "birth date (digits 7-14) is not a real calendar date"
NOT_ALLOWED = "is not allowed (digits and capital letters except I, O, S, V, Z)"
UPPERCASE_ALPHANUMERICS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def full_width(text):
    """The same digits in full-width form (U+FF10..), which str.isdigit() also accepts."""
    return "".join(chr(ord(char) + 0xFEE0) for char in text)


def substituted(value, position, replacement):
    return value[:position] + replacement + value[position + 1 :]


# --- Resident IDs


@pytest.mark.parametrize(
    ("number", "region", "born", "gender"),
    [
        ("11010519491231002X", "110105", date(1949, 12, 31), "female"),
        ("110105199003071239", "110105", date(1990, 3, 7), "male"),
        ("530402198811150016", "530402", date(1988, 11, 15), "male"),
        ("440304200002290022", "440304", date(2000, 2, 29), "female"),
        ("650102197101019992", "650102", date(1971, 1, 1), "male"),
        ("810000190001010018", "810000", date(1900, 1, 1), "male"),
        ("530402202611230029", "530402", TODAY, "female"),
    ],
)
def test_known_resident_ids_are_parsed(number, region, born, gender):
    assert parse_resident_id(number, today=TODAY) == ResidentId(
        number=number, region_code=region, birth_date=born, gender=gender
    )


def test_known_examples_agree_with_the_independent_check():
    assert id_check_character("11010519491231002") == "X"
    assert resident_id_check_character("11010519491231002") == "X"
    assert resident_id_check_character("53040219881115001") == "6"


def test_a_lowercase_x_and_surrounding_spaces_are_normalised():
    parsed = parse_resident_id("  11010519491231002x\t", today=TODAY)
    assert parsed.number == "11010519491231002X"


def test_a_birth_date_is_checked_against_the_given_day_not_the_machines():
    # Born 31 December 1949: valid from that day on, refused the day before.
    assert parse_resident_id("11010519491231002X", date(1949, 12, 31)).birth_date == date(
        1949, 12, 31
    )
    with pytest.raises(InvalidField, match="birth date"):
        parse_resident_id("11010519491231002X", date(1949, 12, 30))


@given(resident_ids())
def test_generated_ids_are_accepted_with_their_birth_date_and_gender(number):
    parsed = parse_resident_id(number, today=TODAY)
    assert parsed.number == number
    assert parsed.region_code == number[:6]
    assert parsed.birth_date == date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    assert parsed.gender == ("male" if int(number[14:17]) % 2 == 1 else "female")


@given(resident_ids())
def test_the_check_character_matches_the_independent_computation(number):
    assert resident_id_check_character(number[:17]) == number[17]


@settings(max_examples=200)
@given(resident_ids(), st.data())
def test_any_single_substituted_character_is_refused(number, data):
    position = data.draw(st.integers(0, 17))
    allowed = DIGITS + "X" if position == 17 else DIGITS
    replacement = data.draw(st.sampled_from(allowed).filter(lambda c: c != number[position]))
    with pytest.raises(InvalidField) as error:
        parse_resident_id(substituted(number, position, replacement), today=TODAY)
    assert error.value.field == "id_number"


@given(resident_ids(earliest=date(2000, 1, 1)), st.data())
def test_a_substituted_sequence_or_check_digit_fails_the_check_itself(number, data):
    # Positions that cannot break the region or date rules isolate the checksum.
    position = data.draw(st.integers(14, 17))
    allowed = DIGITS + "X" if position == 17 else DIGITS
    replacement = data.draw(st.sampled_from(allowed).filter(lambda c: c != number[position]))
    with pytest.raises(InvalidField, match=r"^id_number: check character does not match$"):
        parse_resident_id(substituted(number, position, replacement), today=TODAY)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("", "must be 18 characters, got 0"),
        ("11010519491231002", "must be 18 characters, got 17"),
        ("11010519491231002X0", "must be 18 characters, got 19"),
        ("110105194912310021X", "must be 18 characters, got 19"),
        ("1101051949123100XX", "must be 17 digits followed by a digit or X"),
        ("11010519491231-02X", "must be 17 digits followed by a digit or X"),
        (full_width("11") + "0105194912310021", "must be 17 digits followed by a digit or X"),
        (resident_id("99010519491231002"), NO_PROVINCE),
        (resident_id("00010519491231002"), NO_PROVINCE),
        (resident_id("11010519490230002"), NOT_A_DATE),
        (resident_id("11010519491301002"), NOT_A_DATE),
        (resident_id("11010500000101002"), NOT_A_DATE),
        (resident_id("11010518991231002"), "birth date is before 1900-01-01"),
        (resident_id("11010520261124002"), "birth date is in the future"),
        ("110105194912310021", "check character does not match"),
    ],
)  # fmt: skip
def test_malformed_resident_ids_are_refused_with_a_reason(value, problem):
    with pytest.raises(InvalidField) as error:
        parse_resident_id(value, today=TODAY, field="guardian_id_number")
    assert error.value.field == "guardian_id_number"
    assert error.value.problem == problem
    assert str(error.value) == f"guardian_id_number: {problem}"


def test_errors_name_the_id_number_field_by_default():
    with pytest.raises(InvalidField) as error:
        parse_resident_id("123", today=TODAY)
    assert error.value.field == "id_number"


def test_a_wrong_check_character_is_refused_without_revealing_the_right_one():
    with pytest.raises(InvalidField) as error:
        parse_resident_id("110105194912310020", today=TODAY)
    message = str(error.value)
    assert message == "id_number: check character does not match"
    assert "X" not in message


@given(resident_ids(), st.data())
def test_reasons_never_quote_the_number_or_its_birth_date(number, data):
    # Reasons end up in logs: they must not carry personal data.
    position = data.draw(st.integers(0, 16))
    replacement = data.draw(st.sampled_from(DIGITS).filter(lambda c: c != number[position]))
    broken = substituted(number, position, replacement)
    with pytest.raises(InvalidField) as error:
        parse_resident_id(broken, today=TODAY)
    assert broken[:6] not in str(error.value)
    assert broken[6:14] not in str(error.value)


@pytest.mark.parametrize("value", [None, 110105194912310020])
def test_non_string_resident_ids_are_refused(value):
    with pytest.raises(InvalidField, match=r"^id_number: must be a string$"):
        parse_resident_id(value, today=TODAY)


@pytest.mark.parametrize(
    "first17", ["", "1101051949123100", "1101051949123100X", "1101051949123100" + full_width("2")]
)
def test_the_check_character_needs_17_ascii_digits(first17):
    with pytest.raises(ValueError, match="17 digits"):
        resident_id_check_character(first17)


# --- Passports


@pytest.mark.parametrize(
    ("number", "nationality", "expected"),
    [
        ("E12345678", "USA", ("E12345678", "USA")),
        ("  g1234567 ", " gbr", ("G1234567", "GBR")),
        ("12345", "kor", ("12345", "KOR")),
        ("A" * 17, "Jpn", ("A" * 17, "JPN")),
    ],
)
def test_passports_are_normalised(number, nationality, expected):
    assert validate_passport(number, nationality) == expected


@given(
    st.text(UPPERCASE_ALPHANUMERICS + UPPERCASE_ALPHANUMERICS.lower(), min_size=5, max_size=17),
    st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=3, max_size=3).filter(lambda c: c != "CHN"),
)
def test_any_alphanumeric_passport_number_is_accepted_in_capitals(number, nationality):
    assert validate_passport(number, nationality.lower()) == (number.upper(), nationality)


@pytest.mark.parametrize(
    ("number", "problem"),
    [
        ("1234", "must be 5 to 17 characters, got 4"),
        ("   ", "must be 5 to 17 characters, got 0"),
        ("A" * 18, "must be 5 to 17 characters, got 18"),
        ("E1234-567", "must contain only letters A-Z and digits 0-9"),
        ("E1234 567", "must contain only letters A-Z and digits 0-9"),
        ("É12345678", "must contain only letters A-Z and digits 0-9"),
        ("\u0131" + "1234567", "must contain only letters A-Z and digits 0-9"),  # dotless i
    ],
)
def test_malformed_passport_numbers_are_refused(number, problem):
    with pytest.raises(InvalidField) as error:
        validate_passport(number, "USA", field="document_number")
    assert error.value.field == "document_number"
    assert error.value.problem == problem


def test_passport_errors_name_the_passport_number_field_by_default():
    with pytest.raises(InvalidField) as error:
        validate_passport("1", "USA")
    assert error.value.field == "passport_number"


@pytest.mark.parametrize(
    ("nationality", "problem"),
    [
        ("US", "must be an ISO 3166-1 alpha-3 code of 3 letters"),
        ("USAA", "must be an ISO 3166-1 alpha-3 code of 3 letters"),
        ("U5A", "must be an ISO 3166-1 alpha-3 code of 3 letters"),
        ("", "must be an ISO 3166-1 alpha-3 code of 3 letters"),
        ("\u0131rl", "must be an ISO 3166-1 alpha-3 code of 3 letters"),  # dotless i
        ("CHN", "CHN is not allowed: Chinese citizens use a resident ID"),
        (" chn ", "CHN is not allowed: Chinese citizens use a resident ID"),
    ],
)
def test_bad_nationalities_are_refused_under_the_nationality_field(nationality, problem):
    with pytest.raises(InvalidField) as error:
        validate_passport("E12345678", nationality, field="document_number")
    assert error.value.field == "nationality"
    assert error.value.problem == problem


def test_non_string_passport_values_are_refused():
    with pytest.raises(InvalidField) as error:
        validate_passport(12345678, "USA")
    assert error.value.field == "passport_number"
    with pytest.raises(InvalidField) as error:
        validate_passport("E12345678", None)
    assert error.value.field == "nationality"


# --- Unified social credit codes


@pytest.mark.parametrize(
    "number",
    ["91350100M000100Y43", "91110000600037341L", "91440300708461136T", "91310000775785552L"],
)
def test_known_credit_codes_are_accepted(number):
    assert parse_credit_code(number).number == number
    assert credit_check_character(number[:17]) == number[17]


def test_a_credit_code_is_split_into_its_parts():
    assert parse_credit_code(" 91350100m000100y43 ") == CreditCode(
        number="91350100M000100Y43",
        registration_authority="9",
        entity_type="1",
        region_code="350100",
        organization_code="M000100Y4",
    )


@given(credit_codes())
def test_generated_credit_codes_are_accepted_and_split(number):
    parsed = parse_credit_code(number.lower())
    assert parsed.number == number
    assert parsed.registration_authority + parsed.entity_type == number[:2]
    assert parsed.region_code == number[2:8]
    assert parsed.organization_code == number[8:17]


@given(credit_codes())
def test_the_credit_check_character_matches_the_independent_computation(number):
    assert credit_code_check_character(number[:17]) == number[17]


@settings(max_examples=200)
@given(credit_codes(), st.data())
def test_any_single_substituted_credit_code_character_is_refused(number, data):
    position = data.draw(st.integers(0, 17))
    replacement = data.draw(st.sampled_from(CREDIT_CHARSET).filter(lambda c: c != number[position]))
    with pytest.raises(InvalidField) as error:
        parse_credit_code(substituted(number, position, replacement))
    assert error.value.field == "credit_code"


@given(credit_codes(), st.data())
def test_a_substituted_organization_or_check_character_fails_the_check(number, data):
    position = data.draw(st.integers(8, 17))
    replacement = data.draw(st.sampled_from(CREDIT_CHARSET).filter(lambda c: c != number[position]))
    with pytest.raises(InvalidField, match=r"^credit_code: check character does not match$"):
        parse_credit_code(substituted(number, position, replacement))


def with_check(first17):
    return first17 + credit_check_character(first17)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("", "must be 18 characters, got 0"),
        ("91350100M000100Y4", "must be 18 characters, got 17"),
        ("91350100M000100Y430", "must be 18 characters, got 19"),
        ("91350100I000100Y43", f"character 'I' at position 9 {NOT_ALLOWED}"),
        ("9135010OM000100Y43", f"character 'O' at position 8 {NOT_ALLOWED}"),
        ("91350100M000100Y4Z", f"character 'Z' at position 18 {NOT_ALLOWED}"),
        ("91350100M-00100Y43", f"character '-' at position 10 {NOT_ALLOWED}"),
        (with_check("01350100M000100Y4"), "registration authority (position 1) must not be 0"),
        (with_check("9135A100M000100Y4"), "region code (positions 3-8) must be 6 digits"),
        ("91350100M000100Y44", "check character does not match"),
    ],
)  # fmt: skip
def test_malformed_credit_codes_are_refused_with_a_reason(value, problem):
    with pytest.raises(InvalidField) as error:
        parse_credit_code(value, field="employer_credit_code")
    assert error.value.field == "employer_credit_code"
    assert error.value.problem == problem


def test_a_wrong_credit_check_character_does_not_reveal_the_right_one():
    with pytest.raises(InvalidField) as error:
        parse_credit_code("91350100M000100Y44")
    assert str(error.value) == "credit_code: check character does not match"


def test_non_string_credit_codes_are_refused():
    with pytest.raises(InvalidField, match=r"^credit_code: must be a string$"):
        parse_credit_code(None)


@pytest.mark.parametrize(
    "first17", ["", "91350100M000100Y", "91350100I000100Y4", "91350100m000100Y4"]
)
def test_the_credit_check_character_needs_17_charset_characters(first17):
    with pytest.raises(ValueError, match="17 characters"):
        credit_code_check_character(first17)
