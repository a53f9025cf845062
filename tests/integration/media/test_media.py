"""The media service over a real broker, mongod and S3 server, with the population and
events services it asks about scope."""

import base64
import hashlib
import io
import json

import pytest
import requests
from nameko.exceptions import RemoteError
from nameko.standalone.rpc import ClusterRpcProxy
from PIL import Image
from prometheus_client import REGISTRY

from devstack.processes import wait_until
from gridwork_common.context import CallerContext
from gridwork_common.mongo import new_client
from services.events.service import EventsService
from services.media.domain.kinds import size_limits
from services.media.service import MediaService
from services.media.storage import media_store
from services.media.usecases import MediaDesk
from services.population.service import PopulationService
from tests.population_data import (
    COUNTY,
    GRID_A1,
    TOWNSHIP_A,
    TOWNSHIP_B,
    VILLAGE_A,
    county_features,
)

pytestmark = pytest.mark.integration

WORKER = CallerContext(user_id="worker-a1", roles=("grid_worker",), scope=GRID_A1)
OTHER_TOWNSHIP = CallerContext(user_id="centre-b", roles=("centre_operator",), scope=TOWNSHIP_B)
SETUP = CallerContext(user_id="setup", roles=("admin", "system"), scope=COUNTY)


def jpeg(color=(200, 30, 30), gps=(24.305, 102.505), size=(1600, 1200)) -> bytes:
    image = Image.new("RGB", size, color)
    exif = Image.Exif()
    exif[0x0132] = "2026:11:20 09:30:00"
    gps_ifd = {1: "N", 2: (24.0, 18.0, 18.0), 3: "E", 4: (102.0, 30.0, 18.0)}
    exif[0x8825] = gps_ifd
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif, quality=90)
    return buffer.getvalue()


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (0, 0, 255)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def stack(runner_factory, settings, config):
    media_store(settings).ensure_bucket()
    runner_factory(config, PopulationService, EventsService, MediaService).start()
    with ClusterRpcProxy(config, context_data=SETUP.to_context_data(), timeout=30) as rpc:
        rpc.population.import_territory(county_features())
        rpc.events.ensure_default_departments([COUNTY, TOWNSHIP_A, VILLAGE_A])
    return config


@pytest.fixture
def rpc_as(stack, cluster_as):
    return cluster_as


@pytest.fixture
def incident(rpc_as):
    reported = rpc_as(WORKER).events.report_incident(
        {"category": "04.01", "description": "垃圾", "location": [102.505, 24.305]}, "m1"
    )
    return reported["incident"]["id"]


@pytest.fixture
def media_db(settings):
    client = new_client(settings, app_name="media-tests")  # tz-aware, as the service's
    yield client[settings.database_name("media")]
    client.close()


def _upload(
    media,
    data,
    incident_id,
    content_type="image/jpeg",
    purpose="incident_report",
    declared_size=None,
):
    slot = media.request_upload(
        content_type, declared_size or len(data), purpose, {"kind": "incident", "id": incident_id}
    )
    put = requests.put(slot["upload_url"], data=data, headers=slot["headers"], timeout=10)
    assert put.status_code in (200, 204), put.text
    return slot


def described(media, media_id: str) -> dict:
    """The media record once its photo's thumbnail and metadata are made (after the
    confirm, by the media service's handler of its own media.stored)."""
    wait_until(
        lambda: media.get_media(media_id)["thumbnail"]["status"] != "pending",
        30,
        "the photo's thumbnail",
    )
    return media.get_media(media_id)


def test_a_photo_is_uploaded_checked_hashed_and_described(rpc_as, incident, settings):
    media = rpc_as(WORKER).media
    data = jpeg()
    slot = _upload(media, data, incident)
    bytes_before = _stored_bytes()
    stored = media.confirm_upload(slot["media_id"])
    assert stored["state"] == "stored"
    assert stored["sha256"] == hashlib.sha256(data).hexdigest()
    assert stored["thumbnail"] == {"status": "pending"}  # made after the confirm
    assert media.confirm_upload(slot["media_id"])["sha256"] == stored["sha256"]  # once
    assert _stored_bytes() - bytes_before == len(data)  # /metrics, counted once too

    record = described(media, slot["media_id"])
    assert record["thumbnail"] == {"status": "ready"}
    assert record["metadata"]["gps"] == pytest.approx({"lat": 24.305, "lon": 102.505}, abs=1e-4)
    assert record["metadata"]["taken_at"] == "2026-11-20T09:30:00"
    link = media.download_link(slot["media_id"])
    assert requests.get(link["url"], timeout=10).content == data
    thumb = requests.get(media.download_link(slot["media_id"], "thumbnail")["url"], timeout=10)
    image = Image.open(io.BytesIO(thumb.content))
    assert max(image.size) <= 512
    assert not image.getexif()  # no EXIF at all, so no GPS in what is served widely


def test_a_retried_direct_upload_with_the_same_key_is_stored_once(rpc_as, incident, media_db):
    """The first attempt's reply was lost (the fault suite's broker scenarios): the retry
    with the same Idempotency-Key gets the stored record, not a second one."""
    media = rpc_as(WORKER).media
    data = base64.b64encode(jpeg(color=(9, 9, 9))).decode()
    owner = {"kind": "incident", "id": incident}
    first = media.upload("image/jpeg", "incident_report", owner, data, "key-1")
    again = media.upload("image/jpeg", "incident_report", owner, data, "key-1")
    other = media.upload("image/jpeg", "incident_report", owner, data, "key-2")
    # The thumbnail and EXIF come after the confirm: the retry may find them made.
    described_later = ("thumbnail", "metadata")
    assert {k: v for k, v in again.items() if k not in described_later} == {
        k: v for k, v in first.items() if k not in described_later
    }
    assert other["id"] != first["id"]
    assert media_db.media.count_documents({"owner.id": incident}) == 2


def test_a_declared_sha256_lands_at_the_content_address_without_a_copy(
    rpc_as, incident, settings, media_db
):
    media = rpc_as(WORKER).media
    data = jpeg(color=(21, 22, 23))
    sha256 = hashlib.sha256(data).hexdigest()
    owner = {"kind": "incident", "id": incident}
    slot = media.request_upload("image/jpeg", len(data), "incident_report", owner, sha256=sha256)
    assert f"/objects/{sha256}?" in slot["upload_url"]
    assert slot["headers"]["x-amz-checksum-sha256"]  # signed: the PUT must carry it
    unsigned = requests.put(slot["upload_url"], data=data, timeout=10)
    assert unsigned.status_code == 403
    put = requests.put(slot["upload_url"], data=data, headers=slot["headers"], timeout=10)
    assert put.status_code in (200, 204), put.text
    stored = media.confirm_upload(slot["media_id"])
    assert stored["sha256"] == sha256
    storage = media_store(settings)
    assert storage.size_of(f"objects/{sha256}") == len(data)
    assert storage.size_of(f"uploads/{slot['media_id']}") is None
    assert media_db.objects.find_one({"_id": sha256})["state"] == "stored"
    assert described(media, stored["id"])["metadata"]["width"] == 1600

    # The same bytes again: stored content is never a PUT's target, the upload is
    # checked on its own and refers to the copy kept.
    again = media.request_upload("image/jpeg", len(data), "feedback", owner, sha256=sha256.upper())
    assert f"/uploads/{again['media_id']}?" in again["upload_url"]
    requests.put(again["upload_url"], data=data, headers=again["headers"], timeout=10)
    second = media.confirm_upload(again["media_id"])
    assert second["sha256"] == sha256
    assert second["thumbnail"] == {"status": "ready"}  # described once, for both
    assert second["metadata"]["gps"] is not None
    assert storage.size_of(f"uploads/{again['media_id']}") is None


def test_bytes_that_are_not_the_declared_sha256_are_refused(rpc_as, incident, settings):
    media = rpc_as(WORKER).media
    data, other = jpeg(color=(31, 32, 33)), jpeg(color=(34, 35, 36))
    sha256 = hashlib.sha256(data).hexdigest()
    owner = {"kind": "incident", "id": incident}
    with pytest.raises(RemoteError) as raised:
        media.request_upload("image/jpeg", len(data), "incident_report", owner, sha256="abc")
    assert raised.value.exc_type == "InvalidInput" and "sha256" in raised.value.value
    slot = media.request_upload("image/jpeg", len(other), "incident_report", owner, sha256=sha256)
    put = requests.put(slot["upload_url"], data=other, headers=slot["headers"], timeout=10)
    storage = media_store(settings)
    if put.status_code in (200, 204):  # a server that does not check checksums took them
        assert not storage.checks_sha256()
        with pytest.raises(RemoteError) as raised:
            media.confirm_upload(slot["media_id"])
        assert raised.value.exc_type == "InvalidInput" and "sha256" in raised.value.value
    else:  # MinIO and S3 refuse them as they arrive
        assert storage.checks_sha256()
    assert storage.size_of(f"objects/{sha256}") is None  # nothing of it stays


def test_identical_bytes_are_stored_once(rpc_as, incident, media_db):
    media = rpc_as(WORKER).media
    data = jpeg(color=(1, 2, 3))
    first = media.confirm_upload(_upload(media, data, incident)["media_id"])
    second = media.confirm_upload(_upload(media, data, incident)["media_id"])
    assert first["id"] != second["id"] and first["sha256"] == second["sha256"]
    assert media_db.objects.count_documents({"_id": first["sha256"]}) == 1
    for stored in (first, second):
        assert requests.get(media.download_link(stored["id"])["url"], timeout=10).content == data


def test_a_type_or_size_mismatch_is_refused_and_leaves_nothing(rpc_as, incident, settings):
    media = rpc_as(WORKER).media
    slot = _upload(media, png(), incident, content_type="image/jpeg")
    with pytest.raises(RemoteError) as raised:
        media.confirm_upload(slot["media_id"])
    assert raised.value.exc_type == "InvalidInput" and "content_type" in raised.value.value
    assert media_store(settings).size_of(f"uploads/{slot['media_id']}") is None

    data = jpeg(color=(9, 9, 9))
    slot = _upload(media, data, incident, declared_size=len(data) + 10)
    with pytest.raises(RemoteError, match="size"):
        media.confirm_upload(slot["media_id"])
    with pytest.raises(RemoteError, match="size"):
        media.request_upload(
            "image/jpeg", 500 * 1024 * 1024, "incident_report", {"kind": "incident", "id": incident}
        )
    with pytest.raises(RemoteError, match="content_type"):
        media.request_upload(
            "application/pdf", 1000, "incident_report", {"kind": "incident", "id": incident}
        )


def test_expired_slots_are_refused_and_their_objects_removed(
    rpc_as, incident, media_db, settings, runner_factory, clock
):
    from datetime import timedelta

    media = rpc_as(WORKER).media
    slot = _upload(media, jpeg(color=(5, 5, 5)), incident)
    media_db.media.update_one(
        {"_id": slot["media_id"]},
        {"$set": {"expires_at": clock() - timedelta(minutes=1)}},
    )
    with pytest.raises(RemoteError, match="expired"):
        media.confirm_upload(slot["media_id"])

    desk = MediaDesk(
        media_db,
        media_store(settings),
        None,
        lambda kind, id_: {},
        SETUP,
        size_limits(None),
        clock,
    )
    assert desk.expire_slots() == 1
    assert media_store(settings).size_of(f"uploads/{slot['media_id']}") is None


def test_changed_bytes_are_reported_not_served(rpc_as, incident, settings):
    media = rpc_as(WORKER).media
    stored = media.confirm_upload(_upload(media, jpeg(color=(7, 7, 7)), incident)["media_id"])
    media_store(settings).put(f"objects/{stored['sha256']}", b"tampered", "image/jpeg")
    report = media.verify_integrity(stored["id"])
    assert report["intact"] is False and report["expected"] == stored["sha256"]
    with pytest.raises(RemoteError, match="no longer match"):
        media.download_link(stored["id"])


def test_scope_is_the_owners_and_open_cases_keep_their_evidence(rpc_as, incident):
    media = rpc_as(WORKER).media
    stored = media.confirm_upload(_upload(media, jpeg(color=(8, 8, 8)), incident)["media_id"])
    outsider = rpc_as(OTHER_TOWNSHIP).media
    for call in (
        lambda: outsider.get_media(stored["id"]),
        lambda: outsider.download_link(stored["id"]),
        lambda: outsider.pairs(incident),
    ):
        with pytest.raises(RemoteError) as raised:
            call()
        assert raised.value.exc_type == "NotFound"
    with pytest.raises(RemoteError, match="while the case is open"):
        media.delete_media(stored["id"])


def test_before_and_after_pairs_for_the_verifier(rpc_as, incident):
    media = rpc_as(WORKER).media
    before = media.confirm_upload(_upload(media, jpeg(color=(11, 0, 0)), incident)["media_id"])
    after = media.confirm_upload(
        _upload(media, jpeg(color=(0, 11, 0)), incident, purpose="verification")["media_id"]
    )
    pairs = media.pairs(incident)
    assert [m["id"] for m in pairs["before"]] == [before["id"]]
    assert [m["id"] for m in pairs["after"]] == [after["id"]]
    assert json.dumps(pairs)  # plain JSON for the gateway


def test_retention_removes_old_media_but_keeps_open_cases_evidence(
    rpc_as, incident, media_db, settings, clock
):
    from datetime import timedelta

    media = rpc_as(WORKER).media
    stored = media.confirm_upload(_upload(media, jpeg(color=(3, 3, 3)), incident)["media_id"])
    media_db.media.update_one(
        {"_id": stored["id"]}, {"$set": {"stored_at": clock() - timedelta(days=40)}}
    )
    storage = media_store(settings)

    def desk(case_state):
        return MediaDesk(
            media_db,
            storage,
            None,
            lambda kind, id_: {"state": case_state},
            SETUP,
            size_limits(None),
            clock,
        )

    assert desk("handling").apply_retention({"incident_report": 30}) == 0  # open case: kept
    assert desk("closed").apply_retention({"incident_report": 60}) == 0  # not old enough
    assert desk("closed").apply_retention({"incident_report": 30}) == 1
    assert media_db.media.find_one({"_id": stored["id"]})["state"] == "deleted"
    assert storage.size_of(f"objects/{stored['sha256']}") is None


def test_unreachable_storage_is_a_clear_503_and_nothing_half_written(
    rpc_as, incident, media_db, settings, clock
):
    from devstack.processes import free_port
    from services.media.storage import StorageUnavailable

    media = rpc_as(WORKER).media
    slot = _upload(media, jpeg(color=(4, 4, 4)), incident)
    dead = media_store(settings.with_changes(s3_endpoint=f"127.0.0.1:{free_port()}"))
    desk = MediaDesk(media_db, dead, None, lambda kind, id_: {}, WORKER, size_limits(None), clock)
    reading = {"action": "reading"}  # a confirm's first storage call reads the upload
    errors_before = REGISTRY.get_sample_value("gridwork_storage_errors_total", reading)
    with pytest.raises(StorageUnavailable):
        desk.confirm(slot["media_id"])
    assert media_db.media.find_one({"_id": slot["media_id"]})["state"] == "pending"
    errors = REGISTRY.get_sample_value("gridwork_storage_errors_total", reading)
    assert errors - (errors_before or 0) == 1  # /metrics, for the StorageErrors alert
    assert media.confirm_upload(slot["media_id"])["state"] == "stored"  # once storage is back


def _stored_bytes() -> float:
    return REGISTRY.get_sample_value("gridwork_media_stored_bytes_total", {"kind": "photo"}) or 0
