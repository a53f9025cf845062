"""Object storage for media: a MinIO client built once per container.

Works against a genuine MinIO and any S3 server that checks SigV4 (the local stack uses
`rclone serve s3`); region and endpoint come from configuration.
"""

from __future__ import annotations

import urllib3
from minio import Minio
from minio.error import MinioException
from nameko.extensions import DependencyProvider

from gridwork_common.config import Settings


class StorageUnavailable(Exception):
    """Object storage cannot be reached or refused the request."""


def new_client(settings: Settings) -> Minio:
    # Short connect timeout and few retries: a phone is waiting behind every call, and
    # a dead store should be reported within seconds, not after minutes of retries.
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=2.0, read=30.0),
        retries=urllib3.Retry(total=2, backoff_factor=0.2, status_forcelist=(500, 502, 503, 504)),
        maxsize=10,
    )
    return Minio(
        settings.s3_endpoint,
        access_key=settings.s3_access_key,
        secret_key=settings.s3_secret_key,
        secure=settings.s3_secure,
        region=settings.s3_region,
        http_client=http,
    )


class MediaStore:
    """What a media worker holds: the bucket and domain-named operations on it."""

    def __init__(self, client: Minio, bucket: str):
        self.client = client
        self.bucket = bucket

    def check_bucket(self) -> None:
        try:
            exists = self.client.bucket_exists(self.bucket)
        except (MinioException, urllib3.exceptions.HTTPError) as exc:
            raise StorageUnavailable(f"object storage unreachable: {exc}") from exc
        if not exists:
            raise StorageUnavailable(f"bucket {self.bucket!r} does not exist")

    def ensure_bucket(self) -> None:
        try:
            if not self.client.bucket_exists(self.bucket):
                self.client.make_bucket(self.bucket)
        except (MinioException, urllib3.exceptions.HTTPError) as exc:
            raise StorageUnavailable(f"cannot create bucket {self.bucket!r}: {exc}") from exc


def media_store(settings: Settings) -> MediaStore:
    return MediaStore(new_client(settings), settings.s3_bucket)


class ObjectStorage(DependencyProvider):
    def setup(self):
        self.store = media_store(Settings.from_nameko_config(self.container.config))

    def get_dependency(self, worker_ctx) -> MediaStore:
        return self.store
