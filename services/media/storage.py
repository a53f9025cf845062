"""Object storage for media: a MinIO client built once per container.

Works against a genuine MinIO and any S3 server that checks SigV4 (the local stack uses
`rclone serve s3`); region and endpoint come from configuration.
"""

from __future__ import annotations

import base64
import hashlib
import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import urllib3
from minio import Minio
from minio.commonconfig import CopySource
from minio.error import MinioException, S3Error
from nameko.extensions import DependencyProvider

from gridwork_common.config import Settings
from gridwork_common.errors import Unavailable
from services.media.metrics import STORAGE_ERRORS
from services.media.presign import presigned_put

log = logging.getLogger(__name__)
READ_CHUNK = 1024 * 1024
CHECKSUM_HEADER = "x-amz-checksum-sha256"
CHECKSUM_PROBE_KEY = "uploads/.checksum-probe"
# How S3 servers refuse bytes that are not their checksum (AWS S3: BadDigest; MinIO:
# XAmzContentChecksumMismatch). Any other error (a 500 from a busy server) is no answer.
CHECKSUM_MISMATCH_CODES = frozenset({"BadDigest", "XAmzContentChecksumMismatch"})


class StorageUnavailable(Unavailable):
    """Object storage cannot be reached or refused the request."""


@contextmanager
def _storage_errors(action: str) -> Iterator[None]:
    try:
        yield
    except (MinioException, urllib3.exceptions.HTTPError, OSError) as exc:
        STORAGE_ERRORS.labels(action).inc()
        raise StorageUnavailable(f"object storage: {action} failed: {exc}"[:300]) from exc


@contextmanager
def _missing_is_none(action: str) -> Iterator[None]:
    """Like `_storage_errors`, but a missing object leaves the block early, its result
    None (use in a function that returns inside the block)."""
    try:
        yield
    except S3Error as exc:
        if exc.code not in ("NoSuchKey", "NoSuchObject", "NotFound"):
            STORAGE_ERRORS.labels(action).inc()
            raise StorageUnavailable(f"object storage: {action} failed: {exc}"[:300]) from exc
    except (MinioException, urllib3.exceptions.HTTPError, OSError) as exc:
        STORAGE_ERRORS.labels(action).inc()
        raise StorageUnavailable(f"object storage: {action} failed: {exc}"[:300]) from exc


def new_client(
    settings: Settings, endpoint: str | None = None, secure: bool | None = None
) -> Minio:
    # Short connect timeout and few retries: a phone is waiting behind every call, and
    # a dead store should be reported within seconds, not after minutes of retries.
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=2.0, read=30.0),
        retries=urllib3.Retry(total=2, backoff_factor=0.2, status_forcelist=(500, 502, 503, 504)),
        maxsize=10,
    )
    return Minio(
        endpoint or settings.s3_endpoint,
        access_key=settings.s3_access_key,
        secret_key=settings.s3_secret_key,
        secure=settings.s3_secure if secure is None else secure,
        region=settings.s3_region,
        http_client=http,
    )


def checksum_header(sha256: str) -> dict[str, str]:
    """The header that makes an S3 server check a PUT's bytes against a SHA-256 (hex)."""
    return {CHECKSUM_HEADER: base64.b64encode(bytes.fromhex(sha256)).decode("ascii")}


@dataclass(frozen=True)
class SlotSigning:
    """What signing an upload URL over extra headers needs: the address clients reach."""

    base_url: str  # scheme://host[:port]
    host: str
    region: str
    access_key: str
    secret_key: str


class MediaStore:
    """What a media worker holds: the bucket and domain-named operations on it."""

    def __init__(
        self,
        client: Minio,
        bucket: str,
        signer: Minio | None = None,
        slot_signing: SlotSigning | None = None,
    ):
        self.client = client
        self.bucket = bucket
        # Presigned URLs name the host clients reach, which may differ from ours.
        self.signer = signer or client
        self.slot_signing = slot_signing
        self._checks_sha256: bool | None = None

    def upload_url(
        self, key: str, expires: timedelta, headers: dict[str, str] | None = None
    ) -> str:
        """A presigned PUT; with `headers`, signed over them too (the client must send them)."""
        if headers and self.slot_signing is not None:
            signing = self.slot_signing
            return presigned_put(
                base_url=signing.base_url,
                host=signing.host,
                path=f"/{self.bucket}/{key}",
                region=signing.region,
                access_key=signing.access_key,
                secret_key=signing.secret_key,
                headers=headers,
                expires=expires,
                now=datetime.now(UTC),  # the signature's own time, as the SDK takes it
            )
        with _storage_errors("signing an upload"):
            return self.signer.presigned_put_object(self.bucket, key, expires=expires)

    def checks_sha256(self) -> bool:
        """Whether the server refuses a PUT whose bytes differ from its
        `x-amz-checksum-sha256` (MinIO and AWS S3 do; `rclone serve s3` stores the header
        unchecked). Found out once, by sending a wrong checksum; unknown counts as no."""
        if self._checks_sha256 is None:
            wrong = checksum_header(hashlib.sha256(b"not the probe").hexdigest())
            try:
                self.client.put_object(
                    self.bucket, CHECKSUM_PROBE_KEY, io.BytesIO(b"probe"), 5, metadata=wrong
                )
            except S3Error as exc:
                if exc.code not in CHECKSUM_MISMATCH_CODES:  # a failure, not a refusal
                    log.warning("cannot tell whether object storage checks checksums: %s", exc)
                    return False  # asked again next time
                self._checks_sha256 = True  # refused: the server compares the bytes
            except (MinioException, urllib3.exceptions.HTTPError, OSError) as exc:
                log.warning("cannot tell whether object storage checks checksums: %s", exc)
                return False  # asked again next time
            else:
                self._checks_sha256 = False
                self.remove(CHECKSUM_PROBE_KEY)
        return self._checks_sha256

    def head(self, key: str, size: int = 64) -> tuple[int, bytes] | None:
        """The object's size and first `size` bytes (enough to recognise its type), in one
        ranged GET; None when there is no such object."""
        with _missing_is_none("reading"):
            response = self.client.get_object(self.bucket, key, offset=0, length=size)
            try:
                total = response.headers.get("Content-Range", "").rpartition("/")[2]
                first = response.read()
            finally:
                response.close()
                response.release_conn()
            return (int(total) if total.isdigit() else len(first)), first

    def download_url(self, key: str, expires: timedelta, content_type: str) -> str:
        with _storage_errors("signing a download"):
            return self.signer.presigned_get_object(
                self.bucket,
                key,
                expires=expires,
                response_headers={"response-content-type": content_type},
            )

    def size_of(self, key: str) -> int | None:
        """The object's size, or None when there is no such object."""
        try:
            return self.client.stat_object(self.bucket, key).size
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchObject", "NotFound"):
                return None
            STORAGE_ERRORS.labels("stat").inc()
            raise StorageUnavailable(f"object storage: stat failed: {exc}") from exc
        except (MinioException, urllib3.exceptions.HTTPError, OSError) as exc:
            STORAGE_ERRORS.labels("stat").inc()
            raise StorageUnavailable(f"object storage: stat failed: {exc}"[:300]) from exc

    def digest(self, key: str, keep_up_to: int = 0) -> tuple[str, int, bytes]:
        """Stream an object: its SHA-256, its size, and its bytes when it is no larger
        than `keep_up_to` (else only the first 64 bytes, enough to recognise it)."""
        found = self.digest_if_any(key, keep_up_to)
        if found is None:
            STORAGE_ERRORS.labels("reading").inc()
            raise StorageUnavailable(f"object storage: {key} is missing")
        return found

    def digest_if_any(self, key: str, keep_up_to: int = 0) -> tuple[str, int, bytes] | None:
        """`digest`, or None when there is no such object."""
        sha = hashlib.sha256()
        size = 0
        kept = io.BytesIO()
        with _missing_is_none("reading"):
            response = self.client.get_object(self.bucket, key)
            try:
                for chunk in response.stream(READ_CHUNK):
                    sha.update(chunk)
                    if size < max(keep_up_to, 64):
                        kept.write(chunk)
                    size += len(chunk)
            finally:
                response.close()
                response.release_conn()
            data = kept.getvalue()
            return sha.hexdigest(), size, (data if size <= keep_up_to else data[:64])

    def read(self, key: str) -> bytes:
        """The whole object (photos, which are decoded in memory anyway)."""
        with _storage_errors("reading"):
            response = self.client.get_object(self.bucket, key)
            try:
                return response.read()
            finally:
                response.close()
                response.release_conn()

    def put(self, key: str, data: bytes, content_type: str) -> None:
        with _storage_errors("writing"):
            self.client.put_object(
                self.bucket, key, io.BytesIO(data), len(data), content_type=content_type
            )

    def copy(self, source: str, target: str) -> None:
        with _storage_errors("copying"):
            self.client.copy_object(self.bucket, target, CopySource(self.bucket, source))

    def remove(self, key: str) -> None:
        with _storage_errors("removing"):
            self.client.remove_object(self.bucket, key)

    def check_bucket(self) -> None:
        try:
            exists = self.client.bucket_exists(self.bucket)
        except (MinioException, urllib3.exceptions.HTTPError) as exc:
            STORAGE_ERRORS.labels("check_bucket").inc()
            raise StorageUnavailable(f"object storage unreachable: {exc}") from exc
        if not exists:
            raise StorageUnavailable(f"bucket {self.bucket!r} does not exist")

    def ensure_bucket(self) -> None:
        try:
            if not self.client.bucket_exists(self.bucket):
                self.client.make_bucket(self.bucket)
            # S3 servers on a file system (rclone) drop an emptied "directory" and can fail
            # an upload into it at that moment; a placeholder keeps `uploads/` in place.
            self.client.put_object(self.bucket, "uploads/.keep", io.BytesIO(b""), 0)
        except (MinioException, urllib3.exceptions.HTTPError) as exc:
            raise StorageUnavailable(f"cannot create bucket {self.bucket!r}: {exc}") from exc


def media_store(settings: Settings) -> MediaStore:
    signer = None
    public = (settings.s3_public_endpoint, settings.s3_public_secure)
    if public != (settings.s3_endpoint, settings.s3_secure):
        signer = new_client(settings, *public)
    scheme = "https" if settings.s3_public_secure else "http"
    # Clients leave a scheme's default port out of the Host header they send.
    host = settings.s3_public_endpoint.removesuffix(":443" if scheme == "https" else ":80")
    signing = SlotSigning(
        base_url=f"{scheme}://{host}",
        host=host,
        region=settings.s3_region,
        access_key=settings.s3_access_key,
        secret_key=settings.s3_secret_key,
    )
    return MediaStore(new_client(settings), settings.s3_bucket, signer, signing)


class ObjectStorage(DependencyProvider):
    def setup(self):
        self.store = media_store(Settings.from_nameko_config(self.container.config))

    def get_dependency(self, worker_ctx) -> MediaStore:
        return self.store
