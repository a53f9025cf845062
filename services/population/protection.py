"""Personal data at rest: AES-256-GCM encryption and keyed-hash blind indexes.

ID and phone numbers are stored only encrypted (with a random nonce, so equal numbers
give different ciphertexts) and found through an HMAC-SHA256 of the normalised value:
equality search without storing anything an attacker with the database could reverse.
Each value is bound to its field name (AES-GCM associated data, HMAC prefix), so a
ciphertext or index copied from one field into another does not verify.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_VERSION = "v1"  # written with each ciphertext so keys can be rotated later
_NONCE_BYTES = 12


class CorruptCiphertext(Exception):
    """Stored personal data does not decrypt with this key: tampered or wrong key."""


class PersonalDataCipher:
    def __init__(self, encryption_key: bytes, index_key: bytes):
        self._aead = AESGCM(encryption_key)
        self._index_key = index_key

    def encrypt(self, plaintext: str, field: str) -> str:
        sealed = self.seal(plaintext.encode(), field)
        return f"{KEY_VERSION}:{base64.b64encode(sealed).decode()}"

    def decrypt(self, token: str, field: str) -> str:
        version, _, payload = token.partition(":")
        if version != KEY_VERSION:
            raise CorruptCiphertext(f"unknown key version {version!r}")
        try:
            raw = base64.b64decode(payload, validate=True)
        except ValueError as exc:
            raise CorruptCiphertext(f"{field} does not decrypt") from exc
        return self.open(raw, field).decode()

    def seal(self, data: bytes, field: str) -> bytes:
        """Encrypt bytes (e.g. an uploaded import file holding ID numbers)."""
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, data, field.encode())

    def open(self, sealed: bytes, field: str) -> bytes:
        try:
            return self._aead.decrypt(sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], field.encode())
        except (ValueError, InvalidTag) as exc:
            raise CorruptCiphertext(f"{field} does not decrypt") from exc

    def blind_index(self, value: str, field: str) -> str:
        message = f"{field}\x00{value}".encode()
        return hmac.new(self._index_key, message, hashlib.sha256).hexdigest()
