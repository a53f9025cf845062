"""A county's MEDIA_SIZE_LIMITS through the gateway: the media service runs with a small
photo limit; a larger photo is refused as problem+json naming `size`, a smaller one is
stored (upload slot and the multipart fallback)."""

import io
import os

import pytest
import requests
from PIL import Image

from gridwork_common.config import Settings
from tests.conftest import settings_env

pytestmark = pytest.mark.integration

PHOTO_LIMIT = 40_000  # bytes; the default for photos is 20 MiB


@pytest.fixture
def settings(infra, rabbit_config) -> Settings:
    """The gateway and every service of these tests run with the small photo limit."""
    env = settings_env(infra, rabbit_config["AMQP_URI"], MEDIA_SIZE_LIMITS=f"photo={PHOTO_LIMIT}")
    return Settings.from_env(env)


def _photo(noise: bool) -> bytes:
    if noise:  # noise does not compress: well over the limit
        image = Image.frombytes("RGB", (400, 300), os.urandom(400 * 300 * 3))
    else:
        image = Image.new("RGB", (64, 48), (10, 120, 10))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.fixture
def incident_id(as_user, county):
    reported = as_user("worker-a1").post(
        "/api/v1/incidents",
        key="lim-i",
        json={"category": "04.01", "description": "垃圾", "location": [102.505, 24.305]},
    )
    assert reported.status_code == 201, reported.get_json()
    return reported.get_json()["incident"]["id"]


def _ask_slot(worker, size: int, incident_id: str, key: str):
    return worker.post(
        "/api/v1/media/uploads",
        key=key,
        json={
            "content_type": "image/jpeg",
            "size": size,
            "purpose": "incident_report",
            "owner": {"kind": "incident", "id": incident_id},
        },
    )


def _assert_size_problem(answer) -> None:
    assert answer.status_code == 422, answer.get_json()
    assert answer.mimetype == "application/problem+json"
    problem = answer.get_json()
    assert problem["field"] == "size"
    assert f"at most {PHOTO_LIMIT} bytes" in problem["detail"]


def test_a_photo_over_the_configured_limit_is_refused_naming_the_size(as_user, incident_id):
    worker = as_user("worker-a1")
    _assert_size_problem(_ask_slot(worker, PHOTO_LIMIT + 1, incident_id, "lim-s1"))

    large = _photo(noise=True)
    assert len(large) > PHOTO_LIMIT
    direct = worker.post(
        "/api/v1/media",
        key="lim-m1",
        content_type="multipart/form-data",
        data={
            "file": (io.BytesIO(large), "large.jpg"),
            "content_type": "image/jpeg",
            "purpose": "incident_report",
            "owner_kind": "incident",
            "owner_id": incident_id,
        },
    )
    _assert_size_problem(direct)


def test_a_photo_under_the_configured_limit_is_stored(as_user, incident_id):
    worker = as_user("worker-a1")
    small = _photo(noise=False)
    assert len(small) < PHOTO_LIMIT
    slot = _ask_slot(worker, len(small), incident_id, "lim-s2")
    assert slot.status_code == 201, slot.get_json()
    slot = slot.get_json()
    put = requests.put(slot["upload_url"], data=small, headers=slot["headers"], timeout=10)
    assert put.status_code in (200, 204)
    confirmed = worker.post(f"/api/v1/media/{slot['media_id']}/confirm", key="lim-c2")
    assert confirmed.status_code == 200, confirmed.get_json()
    assert confirmed.get_json()["state"] == "stored"
