"""The media service's business metrics: bytes stored and object storage failures."""

from __future__ import annotations

from prometheus_client import Counter

MEDIA_BYTES = Counter(
    "gridwork_media_stored_bytes_total",
    "Bytes of confirmed uploads, by kind (a copy already held counts too)",
    ("kind",),
)
STORAGE_ERRORS = Counter(
    "gridwork_storage_errors_total",
    "Object storage calls that failed or could not reach the server, by action",
    ("action",),
)
