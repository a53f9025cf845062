"""Business metrics computed from a real MongoDB: the incident gauges per township and
the outbox backlog."""

from datetime import timedelta

import pymongo
import pytest
from nameko.testing.services import entrypoint_hook
from prometheus_client import REGISTRY

from gridwork_common.outbox import OUTBOX, Outbox
from services.events import store
from services.events.metrics import publish_incident_gauges
from services.events.service import EventsService
from tests.conftest import PINNED_AT

pytestmark = pytest.mark.integration

TOWNSHIP_A, TOWNSHIP_B = "530402001", "530402002"


@pytest.fixture
def db(settings):
    client = pymongo.MongoClient(settings.mongo_uri, tz_aware=True)  # as the services
    yield client[settings.database_name("events")]
    client.close()


def incident(number, township, state, *, open_=True, overdue=False, supervised=0):
    grid = f"{township}001001"
    return {
        "_id": f"inc-{number}",
        "path": ["530402", township, grid[:12], grid],
        "state": state,
        "open": open_,
        "stage_seq": 3,
        "overdue_seq": 3 if overdue else 2,
        "supervision_count": supervised,
    }


def sample(name, **labels):
    return REGISTRY.get_sample_value(name, labels)


def test_open_incidents_are_counted_per_township_and_state(db):
    db[store.INCIDENTS].insert_many(
        [
            incident(1, TOWNSHIP_A, "dispatched", overdue=True),
            incident(2, TOWNSHIP_A, "dispatched", supervised=2),
            incident(3, TOWNSHIP_A, "reported"),
            incident(4, TOWNSHIP_B, "handling", overdue=True, supervised=1),
            incident(5, TOWNSHIP_B, "closed", open_=False, overdue=True),
        ]
    )
    rows = store.open_incidents_by_township(db)
    assert sorted((r["township"], r["state"], r["count"]) for r in rows) == [
        (TOWNSHIP_A, "dispatched", 2),
        (TOWNSHIP_A, "reported", 1),
        (TOWNSHIP_B, "handling", 1),
    ]
    publish_incident_gauges(rows)
    assert sample("gridwork_incidents_open", township=TOWNSHIP_A, state="dispatched") == 2
    assert sample("gridwork_incidents_overdue", township=TOWNSHIP_A) == 1
    assert sample("gridwork_incidents_supervised", township=TOWNSHIP_A) == 1
    assert sample("gridwork_incidents_overdue", township=TOWNSHIP_B) == 1
    assert sample("gridwork_incidents_supervised", township=TOWNSHIP_B) == 1

    # Once township B has no open case, its series go rather than freeze at old values.
    db[store.INCIDENTS].update_one({"_id": "inc-4"}, {"$set": {"open": False}})
    publish_incident_gauges(store.open_incidents_by_township(db))
    assert sample("gridwork_incidents_open", township=TOWNSHIP_B, state="handling") is None
    assert sample("gridwork_incidents_overdue", township=TOWNSHIP_B) is None


def test_the_outbox_backlog_is_what_waits_in_the_collection(db):
    now = PINNED_AT  # a clock standing still: the age is exact, not read off a running one
    outbox = Outbox(db, publisher=None, clock=lambda: now)
    outbox.record_backlog()
    assert sample("gridwork_outbox_backlog", database=db.name) == 0
    assert sample("gridwork_outbox_oldest_age_seconds", database=db.name) == 0
    written = now - timedelta(minutes=5)
    db[OUTBOX].insert_many([{"_id": f"e{n}", "created_at": written} for n in range(3)])
    outbox.record_backlog()
    assert sample("gridwork_outbox_backlog", database=db.name) == 3
    assert sample("gridwork_outbox_oldest_age_seconds", database=db.name) == 300


def test_the_events_service_refreshes_the_gauges_on_its_timer(db, container_factory, config):
    db[store.INCIDENTS].insert_many(
        [incident(n, TOWNSHIP_B, "verified", overdue=True) for n in range(10, 13)]
    )
    container = container_factory(EventsService, config)
    container.start()
    with entrypoint_hook(container, "refresh_incident_metrics") as refresh:
        assert refresh() == 1  # one township and state
    assert sample("gridwork_incidents_open", township=TOWNSHIP_B, state="verified") == 3
    assert sample("gridwork_incidents_overdue", township=TOWNSHIP_B) == 3
