"""Presigned PUT URLs that bind request headers into the signature (AWS Signature V4,
query-string form).

The MinIO SDK signs presigned URLs over the `host` header only. An upload slot that names
the SHA-256 of its bytes signs `x-amz-checksum-sha256` too, so a PUT must carry exactly
that header, and an S3 server that checks checksums (MinIO, AWS S3) refuses bytes that do
not match it: what lands at a content address is that content.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime, timedelta
from urllib.parse import quote

ALGORITHM = "AWS4-HMAC-SHA256"


def _encode(text: str) -> str:
    return quote(text, safe="-_.~")


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def presigned_put(
    *,
    base_url: str,
    host: str,
    path: str,
    region: str,
    access_key: str,
    secret_key: str,
    headers: Mapping[str, str],
    expires: timedelta,
    now: datetime,
) -> str:
    """A URL for `PUT path` signed over `host` and `headers` (names any case; the client
    sends them as given), valid `expires` from `now` (UTC)."""
    stamp, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    scope = f"{day}/{region}/s3/aws4_request"
    signed = {"host": host, **{name.lower(): value.strip() for name, value in headers.items()}}
    signed_names = ";".join(sorted(signed))
    query = {
        "X-Amz-Algorithm": ALGORITHM,
        "X-Amz-Credential": f"{access_key}/{scope}",
        "X-Amz-Date": stamp,
        "X-Amz-Expires": str(int(expires.total_seconds())),
        "X-Amz-SignedHeaders": signed_names,
    }
    canonical_query = "&".join(f"{_encode(k)}={_encode(v)}" for k, v in sorted(query.items()))
    canonical_headers = "".join(f"{name}:{signed[name]}\n" for name in sorted(signed))
    canonical_path = quote(path, safe="/-_.~")
    canonical_request = "\n".join(
        ("PUT", canonical_path, canonical_query, canonical_headers, signed_names)
    )
    canonical_request += "\nUNSIGNED-PAYLOAD"
    to_sign = "\n".join(
        (ALGORITHM, stamp, scope, hashlib.sha256(canonical_request.encode()).hexdigest())
    )
    key = ("AWS4" + secret_key).encode()
    for part in (day, region, "s3", "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return f"{base_url}{canonical_path}?{canonical_query}&X-Amz-Signature={signature}"
