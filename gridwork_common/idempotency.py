"""A creating request's Idempotency-Key, kept with what it created.

The gateway replays a finished request's answer from its own record, but that record is
released when an attempt fails, e.g. a 503 after the service did its work but before the
answer came back. The retry then reaches the service again: the record it created must be
found, not made twice. So a record made under a key takes an id that follows from who asked
and the key (`keyed_id`, unique as the `_id`), and keeps the request's fingerprint: the
same key with a different request is refused (`check_replay`)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Mapping

from gridwork_common.errors import InvalidInput

FIELD = "idempotency_key"  # the gateway names it as the Idempotency-Key header
MAX_KEY_LENGTH = 100
_NAMESPACE = uuid.UUID("0f6a7f0e-52d4-4c0b-8d3e-2b9a4f1c7e61")


def checked_key(value: object) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_KEY_LENGTH:
        raise InvalidInput(FIELD, f"1 to {MAX_KEY_LENGTH} characters")
    return value


def keyed_id(kind: str, owner: str, key: str) -> str:
    """The id of the `kind` of record `owner` creates under `key`: the same every retry."""
    return uuid.uuid5(_NAMESPACE, f"{kind}:{owner}:{checked_key(key)}").hex


def fingerprint(request: Mapping) -> str:
    """What makes two requests under one key the same request."""
    canonical = json.dumps(request, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def check_replay(stored: Mapping, request_fingerprint: str) -> None:
    """A record found under the key answers a retry only if the retry asks the same."""
    if stored.get("request_fingerprint", request_fingerprint) != request_fingerprint:
        raise InvalidInput(FIELD, "already used for a different request")


def keyed_secret(secret_key: bytes, kind: str, owner: str, key: str, size: int = 24) -> str:
    """A credential shown once (an API key, a password) that a retry under the same key
    shows again without it being kept anywhere: derived from the deployment's secret key,
    so only the holder of that key could derive it, as it could sign any token anyway."""
    message = f"{kind}:{owner}:{checked_key(key)}".encode()
    digest = hmac.new(secret_key, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:size]).decode().rstrip("=")
