"""Personal data at rest: AES-256-GCM encryption and keyed-hash blind indexes.

ID and phone numbers are stored only encrypted (with a random nonce, so equal numbers
give different ciphertexts) and found through an HMAC-SHA256 of the normalised value:
equality search without storing anything an attacker with the database could reverse.
Each value is bound to its field name (AES-GCM associated data, HMAC prefix), so a
ciphertext or index copied from one field into another does not verify.

Keys rotate (docs/operations.md "Key rotation"): a ciphertext names its key
(`k<key id>:`), new writes use the current key, previous keys still decrypt, and a search
looks under the current and every previous index key until `python -m
services.population.rekey` has rewritten everything.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gridwork_common.config import Settings, key_id

LEGACY_VERSION = "v1"  # before key ids: written by one key, whichever it was
_NONCE_BYTES = 12


class CorruptCiphertext(Exception):
    """Stored personal data does not decrypt with this key: tampered or wrong key."""


class PersonalDataCipher:
    def __init__(
        self,
        encryption_key: bytes,
        index_key: bytes,
        previous_encryption_keys: tuple[bytes, ...] = (),
        previous_index_keys: tuple[bytes, ...] = (),
    ):
        keys = (encryption_key, *previous_encryption_keys)
        self._aeads = {key_id(key): AESGCM(key) for key in keys}  # current first
        self.encryption_key_id = key_id(encryption_key)
        self._index_keys = (index_key, *previous_index_keys)
        self.index_key_id = key_id(index_key)

    @classmethod
    def from_settings(cls, settings: Settings) -> PersonalDataCipher:
        return cls(
            settings.pii_encryption_key,
            settings.pii_index_key,
            settings.pii_encryption_keys_previous,
            settings.pii_index_keys_previous,
        )

    @property
    def key_ids(self) -> str:
        """What a resident written now is protected under (`<encryption>.<index>`)."""
        return f"{self.encryption_key_id}.{self.index_key_id}"

    @property
    def rotating(self) -> bool:
        return len(self._aeads) > 1 or len(self._index_keys) > 1

    def encrypt(self, plaintext: str, field: str) -> str:
        sealed = self._seal_with(self._aeads[self.encryption_key_id], plaintext.encode(), field)
        return f"k{self.encryption_key_id}:{base64.b64encode(sealed).decode()}"

    def decrypt(self, token: str, field: str) -> str:
        version, _, payload = token.partition(":")
        if version == LEGACY_VERSION:
            candidates = list(self._aeads.values())
        elif version[1:] in self._aeads and version.startswith("k"):
            candidates = [self._aeads[version[1:]]]
        else:
            raise CorruptCiphertext(f"{field}: key {version!r} is not configured")
        try:
            raw = base64.b64decode(payload, validate=True)
        except ValueError as exc:
            raise CorruptCiphertext(f"{field} does not decrypt") from exc
        return self._open_with(candidates, raw, field).decode()

    def is_current(self, token: str) -> bool:
        return token.startswith(f"k{self.encryption_key_id}:")

    def seal(self, data: bytes, field: str) -> bytes:
        """Encrypt bytes (e.g. an uploaded import file holding ID numbers)."""
        return self._seal_with(self._aeads[self.encryption_key_id], data, field)

    def open(self, sealed: bytes, field: str) -> bytes:
        """Decrypt sealed bytes: GCM's tag tells which of the configured keys sealed them."""
        return self._open_with(list(self._aeads.values()), sealed, field)

    @staticmethod
    def _seal_with(aead: AESGCM, data: bytes, field: str) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + aead.encrypt(nonce, data, field.encode())

    @staticmethod
    def _open_with(candidates: list[AESGCM], sealed: bytes, field: str) -> bytes:
        for aead in candidates:
            try:
                return aead.decrypt(sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], field.encode())
            except (ValueError, InvalidTag):
                continue
        raise CorruptCiphertext(f"{field} does not decrypt")

    def blind_index(self, value: str, field: str) -> str:
        """The index written now (current key)."""
        return _index(self._index_keys[0], value, field)

    def blind_indexes(self, value: str, field: str) -> list[str]:
        """Every index the value may be stored under during a rotation, current first."""
        return [_index(key, value, field) for key in self._index_keys]


def _index(key: bytes, value: str, field: str) -> str:
    message = f"{field}\x00{value}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()
