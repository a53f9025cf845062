import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.population.protection import CorruptCiphertext, PersonalDataCipher

cipher = PersonalDataCipher(os.urandom(32), os.urandom(32))


@given(st.text(max_size=40))
def test_encryption_round_trips_and_hides_the_value(value):
    token = cipher.encrypt(value, "id_number")
    assert cipher.decrypt(token, "id_number") == value
    if len(value) >= 4:
        assert value not in token


def test_equal_values_encrypt_differently_but_index_equally():
    number = "11010519491231002X"
    assert cipher.encrypt(number, "id_number") != cipher.encrypt(number, "id_number")
    assert cipher.blind_index(number, "id_number") == cipher.blind_index(number, "id_number")
    assert cipher.blind_index(number, "id_number") != cipher.blind_index(number, "phone")


def test_a_ciphertext_moved_to_another_field_does_not_decrypt():
    token = cipher.encrypt("13812345678", "phone")
    with pytest.raises(CorruptCiphertext):
        cipher.decrypt(token, "id_number")


def test_tampered_or_foreign_ciphertexts_are_refused():
    token = cipher.encrypt("13812345678", "phone")
    flipped = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    with pytest.raises(CorruptCiphertext):
        cipher.decrypt(flipped, "phone")
    other = PersonalDataCipher(os.urandom(32), os.urandom(32))
    with pytest.raises(CorruptCiphertext):
        other.decrypt(token, "phone")
    with pytest.raises(CorruptCiphertext, match="key version"):
        cipher.decrypt("v0:" + token[3:], "phone")


def test_the_index_depends_on_the_key():
    other = PersonalDataCipher(os.urandom(32), os.urandom(32))
    assert other.blind_index("x", "id_number") != cipher.blind_index("x", "id_number")
