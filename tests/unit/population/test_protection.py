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
    with pytest.raises(CorruptCiphertext, match="not configured"):
        cipher.decrypt("v0:" + token.partition(":")[2], "phone")


def test_the_index_depends_on_the_key():
    other = PersonalDataCipher(os.urandom(32), os.urandom(32))
    assert other.blind_index("x", "id_number") != cipher.blind_index("x", "id_number")


def test_previous_keys_read_and_find_but_never_write():
    old_encryption, old_index = os.urandom(32), os.urandom(32)
    before = PersonalDataCipher(old_encryption, old_index)
    after = PersonalDataCipher(os.urandom(32), os.urandom(32), (old_encryption,), (old_index,))
    token, sealed = before.encrypt("13812345678", "phone"), before.seal(b"rows", "import_file")
    assert after.decrypt(token, "phone") == "13812345678"
    assert after.open(sealed, "import_file") == b"rows"
    assert not after.is_current(token) and after.is_current(after.encrypt("1", "phone"))
    assert after.blind_indexes("13812345678", "phone") == [
        after.blind_index("13812345678", "phone"),
        before.blind_index("13812345678", "phone"),
    ]
    assert after.rotating and not before.rotating


def test_legacy_ciphertexts_without_a_key_id_decrypt_with_any_configured_key():
    old_encryption = os.urandom(32)
    legacy = (
        "v1:"
        + PersonalDataCipher(old_encryption, os.urandom(32))
        .encrypt("11010519491231002X", "id_number")
        .partition(":")[2]
    )
    rotated = PersonalDataCipher(os.urandom(32), os.urandom(32), (old_encryption,))
    assert rotated.decrypt(legacy, "id_number") == "11010519491231002X"
    with pytest.raises(CorruptCiphertext):
        PersonalDataCipher(os.urandom(32), os.urandom(32)).decrypt(legacy, "id_number")
