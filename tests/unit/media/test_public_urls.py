"""Presigned URLs name the address phones reach S3 at, with its own scheme: behind a TLS
ingress the public address is HTTPS while the services reach S3 over plain HTTP."""

from datetime import timedelta

from gridwork_common.config import Settings
from services.media.storage import media_store

DEV = {"GRIDWORK_DEV_MODE": "true", "S3_ENDPOINT": "gridwork-minio:9000"}


def test_upload_urls_use_the_public_address_and_its_scheme():
    settings = Settings.from_env(
        {**DEV, "S3_PUBLIC_ENDPOINT": "media.county.example", "S3_PUBLIC_SECURE": "true"}
    )
    url = media_store(settings).upload_url("uploads/a.jpg", timedelta(minutes=5))
    assert url.startswith("https://media.county.example/gridwork-media/uploads/a.jpg?")


def test_without_a_public_setting_urls_follow_the_internal_one():
    settings = Settings.from_env(DEV)
    assert settings.s3_public_secure is False
    url = media_store(settings).upload_url("uploads/a.jpg", timedelta(minutes=5))
    assert url.startswith("http://gridwork-minio:9000/gridwork-media/uploads/a.jpg?")
