"""The content address's claim, written without its own journal wait (contents.py): the
slot's majority write carries it, and a slot whose claim did not survive (a failover
between the two writes) falls back to its own key."""

import hashlib

import pytest
import requests

from services.media.contents import ContentIndex
from services.media.domain.kinds import size_limits
from services.media.storage import media_store
from services.media.usecases import MediaDesk
from tests.integration.media.test_media import WORKER, jpeg

pytestmark = pytest.mark.integration


class FailoverBetweenTheWrites(ContentIndex):
    """A claim the new primary never saw: made, then gone before the slot is written."""

    def claim(self, sha256, media_id, until):
        key = super().claim(sha256, media_id, until)
        self.db.objects.delete_one({"_id": sha256, "media_id": media_id})
        return key


def _desk(media_db, settings, clock) -> MediaDesk:
    storage = media_store(settings)
    storage.ensure_bucket()
    return MediaDesk(
        media_db, storage, None, lambda kind, id_: {}, WORKER, size_limits(None), clock
    )


def _slot(desk, data):
    owner = {"kind": "incident", "id": "claims"}
    sha256 = hashlib.sha256(data).hexdigest()
    return desk.request_upload("image/jpeg", len(data), "incident_report", owner, None, sha256)


def test_a_slot_holds_its_claim_of_the_content_address(media_db, settings, clock):
    desk = _desk(media_db, settings, clock)
    data = jpeg(color=(61, 62, 63), size=(64, 48))
    slot = _slot(desk, data)
    sha256 = hashlib.sha256(data).hexdigest()
    assert f"/objects/{sha256}?" in slot["upload_url"]
    assert desk.contents.holds(sha256, slot["media_id"])
    assert media_db.media.find_one({"_id": slot["media_id"]})["object_key"] == f"objects/{sha256}"


def test_a_slot_whose_claim_was_lost_uploads_to_its_own_key(media_db, settings, clock):
    desk = _desk(media_db, settings, clock)
    desk.contents = FailoverBetweenTheWrites(media_db, desk.storage, clock)
    data = jpeg(color=(64, 65, 66), size=(64, 48))
    slot = _slot(desk, data)
    assert f"/uploads/{slot['media_id']}?" in slot["upload_url"]
    record = media_db.media.find_one({"_id": slot["media_id"]})
    assert record["object_key"] == f"uploads/{slot['media_id']}"
    put = requests.put(slot["upload_url"], data=data, headers=slot["headers"], timeout=10)
    assert put.status_code in (200, 204), put.text
    assert desk.confirm(slot["media_id"])["state"] == "stored"
