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
    confirm, by the media service's handler of its own media.received)."""
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


def _declared_slot(media, data, incident, sha256=None, purpose="incident_report"):
    sha256 = sha256 or hashlib.sha256(data).hexdigest()
    owner = {"kind": "incident", "id": incident}
    slot = media.request_upload("image/jpeg", len(data), purpose, owner, sha256=sha256)
    put = requests.put(slot["upload_url"], data=data, headers=slot["headers"], timeout=10)
    return slot, put


def checked(media, media_id: str) -> dict | None:
    """The record once its bytes were checked against their SHA-256 (at once on a server
    that checks checksums, else by the media service's handler of its media.received);
    None when they were rejected."""
    wait_until(
        lambda: media_state(media, media_id) != ("stored", "pending"), 30, "the SHA-256 check"
    )
    state, _ = media_state(media, media_id)
    return None if state == "gone" else media.get_media(media_id)


def assert_not_served(media, media_id: str) -> None:
    """No link to the bytes: refused while they are checked (409), gone once rejected."""
    with pytest.raises(RemoteError) as raised:
        media.download_link(media_id)
    refused = raised.value.exc_type, raised.value.value
    assert refused[0] == "NotFound" or "being checked" in refused[1], refused


def media_state(media, media_id: str) -> tuple[str, str | None]:
    try:
        record = media.get_media(media_id)
    except RemoteError as exc:  # rejected: no longer a stored record
        assert exc.exc_type == "NotFound"
        return ("gone", None)
    return (record["state"], record["integrity"])


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
    storage = media_store(settings)
    confirmed = media.confirm_upload(slot["media_id"])
    assert confirmed["state"] == "stored" and confirmed["sha256"] == sha256
    # A server that checks checksums compared the bytes; on one that does not, they are
    # checked after the confirm by the step that reads them for the thumbnail anyway.
    assert confirmed["integrity"] == ("verified" if storage.checks_sha256() else "pending")
    stored = described(media, slot["media_id"])
    assert stored["integrity"] == "verified"
    assert storage.size_of(f"objects/{sha256}") == len(data)
    assert storage.size_of(f"uploads/{slot['media_id']}") is None
    assert media_db.objects.find_one({"_id": sha256})["state"] == "stored"
    assert stored["metadata"]["width"] == 1600
    assert media_db.media.find_one({"_id": slot["media_id"]})["announced"] is True
    assert requests.get(media.download_link(stored["id"])["url"], timeout=10).content == data

    # The same bytes again: stored content is never a PUT's target, the upload is
    # checked on its own and refers to the copy kept.
    again = media.request_upload("image/jpeg", len(data), "feedback", owner, sha256=sha256.upper())
    assert f"/uploads/{again['media_id']}?" in again["upload_url"]
    requests.put(again["upload_url"], data=data, headers=again["headers"], timeout=10)
    media.confirm_upload(again["media_id"])
    second = described(media, again["media_id"])
    assert second["sha256"] == sha256 and second["integrity"] == "verified"
    assert second["thumbnail"] == {"status": "ready"}  # described once, for both
    assert second["metadata"]["gps"] is not None
    assert storage.size_of(f"uploads/{again['media_id']}") is None
    link = media.download_link(again["media_id"])
    assert requests.get(link["url"], timeout=10).content == data


def test_bytes_that_are_not_the_declared_sha256_are_refused(rpc_as, incident, settings):
    media = rpc_as(WORKER).media
    data, other = jpeg(color=(31, 32, 33)), jpeg(color=(34, 35, 36))
    sha256 = hashlib.sha256(data).hexdigest()
    owner = {"kind": "incident", "id": incident}
    with pytest.raises(RemoteError) as raised:
        media.request_upload("image/jpeg", len(data), "incident_report", owner, sha256="abc")
    assert raised.value.exc_type == "InvalidInput" and "sha256" in raised.value.value
    slot, put = _declared_slot(media, other, incident, sha256=sha256)
    storage = media_store(settings)
    if put.status_code in (200, 204):  # a server that does not check checksums took them
        assert not storage.checks_sha256()
        confirmed = media.confirm_upload(slot["media_id"])  # size and type are right
        assert confirmed["integrity"] == "pending"
        assert_not_served(media, slot["media_id"])
        assert checked(media, slot["media_id"]) is None
    else:  # MinIO and S3 refuse them as they arrive
        assert storage.checks_sha256()
    assert storage.size_of(f"objects/{sha256}") is None  # nothing of it stays


def test_a_wrong_sha256_never_gets_bytes_served_under_another_uploads_address(
    rpc_as, incident, settings, media_db
):
    """Someone declaring the SHA-256 of another's photo with other bytes: before that photo
    is uploaded, while it is being checked, and once it is stored. Their bytes are never
    served as that content, and the photo's own upload is never disturbed."""
    media = rpc_as(WORKER).media
    storage = media_store(settings)
    photo, forged = jpeg(color=(41, 42, 43)), jpeg(color=(44, 45, 46))
    sha256 = hashlib.sha256(photo).hexdigest()

    # First: the forger holds the content address, until the check rejects the bytes.
    early, put = _declared_slot(media, forged, incident, sha256=sha256)
    if put.status_code in (200, 204):
        media.confirm_upload(early["media_id"])
        assert_not_served(media, early["media_id"])
        assert checked(media, early["media_id"]) is None
        rejected = media_db.media.find_one({"_id": early["media_id"]})
        assert (rejected["state"], rejected["integrity"]) == ("rejected", "mismatch")
    assert storage.size_of(f"objects/{sha256}") is None
    assert media_db.objects.find_one({"_id": sha256}) is None  # nobody holds it now

    # While the genuine upload holds the address, a forger's PUT goes elsewhere.
    genuine, put = _declared_slot(media, photo, incident, sha256=sha256)
    assert put.status_code in (200, 204) and f"/objects/{sha256}?" in genuine["upload_url"]
    during, put = _declared_slot(media, forged, incident, sha256=sha256)
    assert f"/uploads/{during['media_id']}?" in during["upload_url"]
    media.confirm_upload(genuine["media_id"])
    assert checked(media, genuine["media_id"])["integrity"] == "verified"
    if put.status_code in (200, 204):
        media.confirm_upload(during["media_id"])
        assert checked(media, during["media_id"]) is None

    # Once stored, the same: checked on its own key, rejected, the photo untouched.
    late, put = _declared_slot(media, forged, incident, sha256=sha256)
    assert f"/uploads/{late['media_id']}?" in late["upload_url"]
    if put.status_code in (200, 204):
        media.confirm_upload(late["media_id"])
        assert checked(media, late["media_id"]) is None
    link = media.download_link(genuine["media_id"])
    assert requests.get(link["url"], timeout=10).content == photo
    for forger in (during, late):
        assert storage.size_of(f"uploads/{forger['media_id']}") is None


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


def test_an_unchecked_upload_is_not_served_until_its_check_and_a_mismatch_is_rejected(
    rpc_as, incident, media_db, settings, clock
):
    """The steps after the confirm run here by hand (the desk announces nothing), so the
    record is seen between its confirm and its check."""
    from gridwork_common.errors import Conflict
    from services.media.describing import MediaDescriber

    storage = media_store(settings)
    desk = MediaDesk(
        media_db, storage, None, lambda kind, id_: {}, WORKER, size_limits(None), clock
    )
    owner = {"kind": "incident", "id": incident}
    photo, forged = jpeg(color=(51, 52, 53)), jpeg(color=(54, 55, 56))
    results = []
    for data in (photo, forged):
        declared = hashlib.sha256(photo).hexdigest()
        slot = desk.request_upload(
            "image/jpeg", len(data), "incident_report", owner, None, declared
        )
        put = requests.put(slot["upload_url"], data=data, headers=slot["headers"], timeout=10)
        if put.status_code not in (200, 204):
            assert storage.checks_sha256() and data is forged  # refused as they arrived
            continue
        confirmed = desk.confirm(slot["media_id"])
        if storage.checks_sha256():
            assert confirmed["integrity"] == "verified"
            continue
        assert confirmed["integrity"] == "pending"
        with pytest.raises(Conflict, match="being checked"):
            desk.download_link(slot["media_id"])
        results.append(MediaDescriber(media_db, storage, None, clock).describe(slot["media_id"]))
        record = media_db.media.find_one({"_id": slot["media_id"]})
        results.append((record["state"], record["integrity"]))
    if not storage.checks_sha256():
        assert results == [1, ("stored", "verified"), 0, ("rejected", "mismatch")]
    assert storage.read(f"objects/{hashlib.sha256(photo).hexdigest()}") == photo


def test_a_content_address_is_claimed_by_one_open_slot_and_freed_when_it_expires(
    media_db, settings, clock
):
    from datetime import timedelta

    from services.media.contents import ContentIndex

    storage = media_store(settings)
    storage.ensure_bucket()
    contents = ContentIndex(media_db, storage, clock)
    sha256 = hashlib.sha256(b"claimed").hexdigest()
    soon = clock() + timedelta(minutes=15)
    assert contents.claim(sha256, "slot-1", soon) == f"objects/{sha256}"
    assert contents.claim(sha256, "slot-1", soon) == f"objects/{sha256}"  # its own retry
    assert contents.claim(sha256, "slot-2", soon) == "uploads/slot-2"
    storage.put(f"objects/{sha256}", b"first slot's bytes", "image/jpeg")

    # slot-1 expired unconfirmed: slot-3 takes the address, and the expiry of slot-1
    # then leaves alone what slot-3 puts there.
    media_db.objects.update_one({"_id": sha256}, {"$set": {"expires_at": clock()}})
    clock.advance(timedelta(seconds=1))
    assert contents.claim(sha256, "slot-3", soon) == f"objects/{sha256}"
    contents.release({"_id": "slot-1", "object_key": f"objects/{sha256}"})
    assert storage.size_of(f"objects/{sha256}") is not None
    contents.release({"_id": "slot-3", "object_key": f"objects/{sha256}"})
    assert storage.size_of(f"objects/{sha256}") is None
    assert media_db.objects.find_one({"_id": sha256}) is None


def test_a_confirm_whose_event_was_lost_is_checked_and_announced_by_the_timer(
    rpc_as, incident, media_db, settings, clock
):
    from datetime import timedelta

    from services.media.describing import OVERDUE_AFTER, MediaDescriber

    storage = media_store(settings)
    desk = MediaDesk(
        media_db, storage, None, lambda kind, id_: {}, WORKER, size_limits(None), clock
    )
    data = jpeg(color=(61, 62, 63))
    owner = {"kind": "incident", "id": incident}
    declared = hashlib.sha256(data).hexdigest()
    slot = desk.request_upload("image/jpeg", len(data), "incident_report", owner, None, declared)
    requests.put(slot["upload_url"], data=data, headers=slot["headers"], timeout=10)
    desk.confirm(slot["media_id"])  # announces nothing: as if media.received were lost
    describer = MediaDescriber(media_db, storage, None, clock)
    assert describer.describe_overdue() == 0  # not overdue yet
    clock.advance(OVERDUE_AFTER + timedelta(seconds=1))
    assert describer.describe_overdue() == 1
    record = media_db.media.find_one({"_id": slot["media_id"]})
    assert (record["announced"], record["integrity"]) == (True, "verified")
    assert record["thumbnail"] == {"status": "ready"} and record["metadata"]["gps"]
    assert describer.describe_overdue() == 0  # once
