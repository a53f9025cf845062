import io

import pytest
import requests
from PIL import Image

pytestmark = pytest.mark.integration


def _photo(color=(120, 10, 10)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (640, 480), color).save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.fixture
def incident_id(as_user, county):
    reported = as_user("worker-a1").post(
        "/api/v1/incidents",
        key="i1",
        json={"category": "04.01", "description": "垃圾", "location": [102.505, 24.305]},
    )
    assert reported.status_code == 201, reported.get_json()
    return reported.get_json()["incident"]["id"]


def test_upload_slot_put_confirm_and_link(as_user, incident_id):
    worker = as_user("worker-a1")
    data = _photo()
    slot = worker.post(
        "/api/v1/media/uploads",
        key="s1",
        json={
            "content_type": "image/jpeg",
            "size": len(data),
            "purpose": "incident_report",
            "owner": {"kind": "incident", "id": incident_id},
        },
    )
    assert slot.status_code == 201, slot.get_json()
    slot = slot.get_json()
    assert requests.put(
        slot["upload_url"], data=data, headers=slot["headers"], timeout=10
    ).status_code in (200, 204)
    confirmed = worker.post(f"/api/v1/media/{slot['media_id']}/confirm", key="c1")
    assert confirmed.status_code == 200 and confirmed.get_json()["state"] == "stored"
    link = worker.get(f"/api/v1/media/{slot['media_id']}/link").get_json()
    assert requests.get(link["url"], timeout=10).content == data
    pairs = worker.get(f"/api/v1/incidents/{incident_id}/media").get_json()
    assert [m["id"] for m in pairs["before"]] == [slot["media_id"]]


def test_the_multipart_fallback_checks_the_bytes(as_user, incident_id):
    worker = as_user("worker-a1")
    stored = worker.post(
        "/api/v1/media",
        key="m1",
        content_type="multipart/form-data",
        data={
            "file": (io.BytesIO(_photo((1, 1, 1))), "a.jpg"),
            "content_type": "image/jpeg",
            "purpose": "incident_report",
            "owner_kind": "incident",
            "owner_id": incident_id,
        },
    )
    assert stored.status_code == 201, stored.get_json()
    lying = worker.post(
        "/api/v1/media",
        key="m2",
        content_type="multipart/form-data",
        data={
            "file": (io.BytesIO(b"%PDF-1.7 not a photo"), "a.jpg"),
            "content_type": "image/jpeg",
            "purpose": "incident_report",
            "owner_kind": "incident",
            "owner_id": incident_id,
        },
    )
    assert lying.status_code == 422 and lying.get_json()["field"] == "content_type"
    deleting = worker.delete(f"/api/v1/media/{stored.get_json()['id']}")
    assert deleting.status_code == 409  # the case is open: its evidence stays
