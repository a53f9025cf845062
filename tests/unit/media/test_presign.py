"""Presigned PUTs signed over extra headers: with none, the same signature as the MinIO
SDK's own presigned URL (so the signing is AWS Signature V4 as servers check it)."""

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

from minio import Minio

from services.media.presign import presigned_put

NOW = datetime(2026, 11, 30, 8, 0, 0, tzinfo=UTC)
KEYS = {"access_key": "gridwork", "secret_key": "a-secret-of-the-test"}


def _signed(**headers) -> dict:
    url = presigned_put(
        base_url="http://s3.example.cn:9000",
        host="s3.example.cn:9000",
        path="/media/objects/abc",
        region="us-east-1",
        headers=headers,
        expires=timedelta(minutes=15),
        now=NOW,
        **KEYS,
    )
    parts = urlsplit(url)
    assert (
        f"{parts.scheme}://{parts.netloc}{parts.path}"
        == "http://s3.example.cn:9000/media/objects/abc"
    )
    return {name: values[0] for name, values in parse_qs(parts.query).items()}


def test_without_headers_it_signs_as_the_minio_sdk_does():
    sdk = Minio("s3.example.cn:9000", secure=False, region="us-east-1", **KEYS)
    url = sdk.get_presigned_url(
        "PUT", "media", "objects/abc", timedelta(minutes=15), request_date=NOW
    )
    expected = {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}
    assert _signed() == expected


def test_extra_headers_are_signed_and_change_the_signature():
    plain = _signed()
    with_checksum = _signed(**{"x-amz-checksum-sha256": "AAAA", "Content-Type": "image/jpeg"})
    assert with_checksum["X-Amz-SignedHeaders"] == "content-type;host;x-amz-checksum-sha256"
    assert with_checksum["X-Amz-Signature"] != plain["X-Amz-Signature"]
    other = _signed(**{"x-amz-checksum-sha256": "BBBB", "Content-Type": "image/jpeg"})
    assert other["X-Amz-Signature"] != with_checksum["X-Amz-Signature"]
