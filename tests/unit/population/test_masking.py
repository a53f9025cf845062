import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.population.domain.masking import mask_id_number, mask_phone

# Real numbers never contain asterisks; a value made of asterisks where the mask puts
# them is the one input a length-preserving mask cannot change.
visible_characters = st.characters(exclude_characters="*", codec="utf-8")
DIGITS = "0123456789"


def text_of_length(minimum, maximum=None):
    return st.text(visible_characters, min_size=minimum, max_size=maximum)


# --- ID numbers


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("110105199003071234", "110***********1234"),
        ("11010519491231002X", "110***********002X"),
        ("E12345678", "E******78"),
        ("G1234567", "G*****67"),
        ("A" * 17, "A" + "*" * 14 + "AA"),
        ("ABCD", "A*CD"),
        ("ABC", "***"),
        ("AB", "**"),
        ("A", "*"),
        ("", ""),
    ],
)
def test_known_id_numbers_are_masked(value, masked):
    assert mask_id_number(value) == masked


@given(text_of_length(18, 18))
def test_resident_ids_keep_the_first_3_and_last_4_characters(value):
    masked = mask_id_number(value)
    assert masked == value[:3] + "*" * 11 + value[-4:]


@given(text_of_length(4, 40).filter(lambda value: len(value) != 18))
def test_other_numbers_keep_the_first_1_and_last_2_characters(value):
    masked = mask_id_number(value)
    assert masked[0] == value[0]
    assert masked[-2:] == value[-2:]
    assert set(masked[1:-2]) == {"*"}


@given(text_of_length(1, 40))
def test_an_id_mask_keeps_the_length_and_always_hides_something(value):
    masked = mask_id_number(value)
    assert len(masked) == len(value)
    assert masked != value
    assert "*" in masked


@given(text_of_length(0, 40))
def test_an_id_mask_only_replaces_characters_by_asterisks(value):
    masked = mask_id_number(value)
    assert all(shown in (original, "*") for shown, original in zip(masked, value, strict=True))


@given(text_of_length(0, 40))
def test_masking_a_masked_id_changes_nothing(value):
    assert mask_id_number(mask_id_number(value)) == mask_id_number(value)


# --- Phone numbers


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("13812345678", "138****5678"),
        ("19900001111", "199****1111"),
        ("02112345678", "*******5678"),  # 11 digits, but a landline
        ("+8613812345678", "**********5678"),
        ("138-1234-5678", "*********5678"),
        ("0871-1234567", "********4567"),
        ("12345", "*2345"),
        ("1234", "****"),
        ("12", "**"),
        ("", ""),
    ],
)
def test_known_phone_numbers_are_masked(value, masked):
    assert mask_phone(value) == masked


@given(st.text(DIGITS, min_size=10, max_size=10))
def test_mainland_mobiles_keep_the_first_3_and_last_4_digits(rest):
    mobile = "1" + rest
    assert mask_phone(mobile) == mobile[:3] + "****" + mobile[-4:]


@given(text_of_length(5, 40).filter(lambda value: not re.fullmatch("1[0-9]{10}", value)))
def test_other_phone_numbers_keep_only_the_last_4_characters(value):
    masked = mask_phone(value)
    assert masked == "*" * (len(value) - 4) + value[-4:]


@given(text_of_length(1, 40))
def test_a_phone_mask_keeps_the_length_and_always_hides_something(value):
    masked = mask_phone(value)
    assert len(masked) == len(value)
    assert masked != value
    assert "*" in masked


@given(text_of_length(0, 4))
def test_short_phone_numbers_are_hidden_entirely(value):
    assert mask_phone(value) == "*" * len(value)


@given(text_of_length(0, 40))
def test_a_phone_mask_only_replaces_characters_by_asterisks(value):
    masked = mask_phone(value)
    assert all(shown in (original, "*") for shown, original in zip(masked, value, strict=True))


def test_full_width_digits_are_not_taken_for_a_mainland_mobile():
    # U+FF10.. digits pass str.isdigit() and a Unicode \d; they are no mobile number.
    full_width = "".join(chr(ord(char) + 0xFEE0) for char in "3812345678")
    assert mask_phone("1" + full_width) == "*" * 7 + full_width[-4:]
