"""A retried creating request never creates a second record, through the gateway on the
real services, mongod, RabbitMQ and S3: the same request twice with one key is one record
and one answer, and so is a retry after the first attempt completed but its answer was
lost (the gateway's own Idempotency-Key record released, as after a 503 from an RPC that
timed out while the service finished): the key reaches the service, which finds what the
first attempt made. The same key with a different request is a 422 naming the header."""

import hashlib
import io
from datetime import timedelta

import pytest
from kombu import Connection
from PIL import Image

from services.gateway import store
from services.gateway.department_accounts import AMQP_ACCOUNTS
from services.gateway.store import gateway_db
from services.gateway.webhooks import SUBSCRIPTIONS
from tests.integration.gateway.test_department_amqp import POLICE, _uri
from tests.integration.gateway.test_population_api import csv_upload, register
from tests.population_data import GRID_A1, random_resident_ids, resident_id

pytestmark = pytest.mark.integration

HEADER = "Idempotency-Key"


def _photo(color=(10, 120, 10)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), color).save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.fixture
def lose_answer(settings):
    """Forget the gateway's record of every finished request, as a first attempt whose
    answer was lost leaves it: the retry reaches the service again."""

    def lose() -> None:
        gateway_db(settings)[store.IDEMPOTENCY].delete_many({})

    return lose


@pytest.fixture
def incident_id(as_user, county):
    reported = as_user("worker-a1").post(
        "/api/v1/incidents",
        key="report-1",
        json={"category": "04.01", "description": "垃圾", "location": [102.505, 24.305]},
    )
    assert reported.status_code == 201, reported.get_json()
    return reported.get_json()["incident"]["id"]


def _same_answer_three_ways(post, lose_answer, body, other_body, id_of):
    """First attempt, its replay, and a retry after a lost answer: one record, one answer.
    Then the same key with a different request: refused, naming the header."""
    first = post(body)
    assert first.status_code in (201, 202), first.get_json()
    replayed = post(body)
    assert replayed.headers.get("Idempotent-Replayed") == "true"
    assert replayed.get_json() == first.get_json()
    lose_answer()
    retried = post(body)
    assert retried.status_code == first.status_code, retried.get_json()
    assert "Idempotent-Replayed" not in retried.headers  # the service answered again
    assert id_of(retried.get_json()) == id_of(first.get_json())
    lose_answer()
    different = post(other_body)
    assert different.status_code == 422, different.get_json()
    assert different.get_json()["field"] == HEADER
    return first.get_json(), retried.get_json()


def test_an_upload_slot_and_a_direct_upload_are_made_once(
    as_user, incident_id, settings, lose_answer
):
    worker = as_user("worker-a1")
    media = gateway_db(settings).client[settings.database_name("media")]["media"]
    slot = {
        "content_type": "image/jpeg",
        "size": 1000,
        "purpose": "incident_report",
        "owner": {"kind": "incident", "id": incident_id},
    }
    first, retried = _same_answer_three_ways(
        lambda body: worker.post("/api/v1/media/uploads", key="slot-1", json=body),
        lose_answer,
        slot,
        {**slot, "size": 2000},
        lambda answer: answer["media_id"],
    )
    assert retried["expires_at"] == first["expires_at"]  # the same slot, a fresh URL
    assert media.count_documents({}) == 1

    # A declared SHA-256 is part of the request the key stands for; the retry's URL goes
    # to the same content address, signed over the same checksum header.
    sha256 = hashlib.sha256(b"bytes never uploaded before").hexdigest()
    declared = {**slot, "sha256": sha256}
    first, retried = _same_answer_three_ways(
        lambda body: worker.post("/api/v1/media/uploads", key="slot-2", json=body),
        lose_answer,
        declared,
        {**declared, "sha256": hashlib.sha256(b"other bytes").hexdigest()},
        lambda answer: answer["media_id"],
    )
    assert f"/objects/{sha256}?" in first["upload_url"]
    assert f"/objects/{sha256}?" in retried["upload_url"]
    assert retried["headers"] == first["headers"]
    assert first["headers"]["x-amz-checksum-sha256"]
    assert media.count_documents({}) == 2

    data = _photo()

    def direct(fields):
        return worker.post(
            "/api/v1/media",
            key="direct-1",
            content_type="multipart/form-data",
            data={
                "file": (io.BytesIO(fields.pop("bytes")), "a.jpg"),
                "content_type": "image/jpeg",
                "purpose": "incident_report",
                "owner_kind": "incident",
                "owner_id": incident_id,
                **fields,
            },
        )

    first, retried = _same_answer_three_ways(
        lambda fields: direct(dict(fields)),
        lose_answer,
        {"bytes": data},
        {"bytes": _photo((200, 200, 0))},
        lambda answer: answer["id"],
    )
    # The thumbnail and EXIF are made after the confirm: the retry may find them made.
    described_later = ("thumbnail", "metadata")
    assert {k: v for k, v in retried.items() if k not in described_later} == {
        k: v for k, v in first.items() if k not in described_later
    }
    assert first["state"] == "stored"
    assert media.count_documents({}) == 3  # the two slots and the one direct upload


def test_an_import_job_is_made_once(as_user, county, settings, lose_answer):
    operator = as_user("village-a")
    jobs = gateway_db(settings).client[settings.database_name("population")]["import_jobs"]
    ids = random_resident_ids(2, seed=11)

    def start(rows):
        return operator.post(
            "/api/v1/imports?kind=residents",
            key="import-1",
            data=csv_upload(rows, "名单.csv"),
            content_type="multipart/form-data",
        )

    _same_answer_three_ways(
        start,
        lose_answer,
        [[ids[0], "张三", GRID_A1, ""]],
        [[ids[1], "李四", GRID_A1, ""]],
        lambda answer: answer["id"],
    )
    assert jobs.count_documents({}) == 1


def test_a_visit_without_its_own_id_is_recorded_once(as_user, county, settings, clock, lose_answer):
    worker = as_user("worker-a1")
    resident = register(worker, resident_id())
    flagged = worker.post(
        "/api/v1/groups",
        key="group-1",
        json={
            "resident_id": resident["id"],
            "group": "severe_mental_disorder",
            "risk_level": "high",
            "responsible_worker_id": "worker-a1",
        },
    )
    assert flagged.status_code == 201, flagged.get_json()
    visit = {
        "membership_id": flagged.get_json()["id"],
        "at": (clock() - timedelta(minutes=5)).replace(microsecond=0).isoformat(),
        "location": {"type": "Point", "coordinates": [102.505, 24.305]},
        "notes": "情况稳定",
    }
    first, retried = _same_answer_three_ways(
        lambda body: worker.post("/api/v1/visits", key="visit-1", json=body),
        lose_answer,
        visit,
        {**visit, "notes": "另一次"},
        lambda answer: answer["id"],
    )
    assert retried == first
    visits = gateway_db(settings).client[settings.database_name("population")]["visits"]
    assert visits.count_documents({}) == 1


def test_a_webhook_subscription_is_made_once(as_user, county, settings, lose_answer, monkeypatch):
    monkeypatch.setenv("WEBHOOK_ALLOW_PRIVATE_URLS", "true")
    police = as_user("police-a")
    body = {"url": "http://127.0.0.1:9/hook", "event_types": ["incident.*"]}
    first, retried = _same_answer_three_ways(
        lambda body: police.post("/api/v1/subscriptions", key="sub-1", json=body),
        lose_answer,
        body,
        {**body, "event_types": ["incident.closed"]},
        lambda answer: answer["id"],
    )
    assert retried == first  # with the secret it signs with, shown again
    assert gateway_db(settings)[SUBSCRIPTIONS].count_documents({}) == 1


def test_an_open311_client_is_made_once_with_one_api_key(as_user, county, settings, lose_answer):
    admin = as_user("admin")
    first, retried = _same_answer_three_ways(
        lambda body: admin.post("/open311/v2/clients", key="client-1", json=body),
        lose_answer,
        {"name": "市民随手拍"},
        {"name": "另一个"},
        lambda answer: answer["client_id"],
    )
    assert retried == first  # the same API key: the first answer's key works
    assert gateway_db(settings)[store.OPEN311_CLIENTS].count_documents({}) == 1
    # Another key is another client, with another API key.
    other = admin.post("/open311/v2/clients", key="client-2", json={"name": "市民随手拍"})
    assert other.status_code == 201 and other.get_json()["api_key"] != first["api_key"]


def test_a_department_amqp_account_is_made_once_with_one_password(
    as_user, county, settings, lose_answer
):
    admin = as_user("admin")
    first, retried = _same_answer_three_ways(
        lambda body: admin.post("/api/v1/amqp-accounts", key="account-1", json=body),
        lose_answer,
        {"department": POLICE},
        {"department": POLICE, "territory": GRID_A1},
        lambda answer: answer["username"],
    )
    assert retried["password"] == first["password"]
    assert gateway_db(settings)[AMQP_ACCOUNTS].count_documents({}) == 1
    with Connection(_uri(settings, retried), connect_timeout=5) as connection:
        connection.connect()  # the password shown by both answers is the broker's
    # Another key is still refused while the department's account is in force.
    again = admin.post("/api/v1/amqp-accounts", key="account-2", json={"department": POLICE})
    assert again.status_code == 409 and again.get_json()["field"] == "department"
