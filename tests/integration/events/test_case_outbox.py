"""A case carries its commands' idempotency records and the events of its changes until
they are sent (services/events/repository.py): sent events leave the case, what a crash
or a broker outage left is sent by the outbox timer, and an older release's records (in
a collection of their own) are still honoured and moved into their cases."""

from datetime import timedelta

import pytest
from kombu import Connection, Exchange, Queue

from devstack.processes import wait_until
from gridwork_common.events import EventPublisher
from services.events import topics
from services.events.repository import CASE_STATE, Cases
from tests.integration.events.conftest import VILLAGE_A_CENTRE
from tests.integration.events.support import (
    EVENT_SOURCE,
    action_of,
    check_envelope,
    run_timer,
)
from tests.population_data import GRID_A1

pytestmark = pytest.mark.integration


def stored(db, case: dict) -> dict:
    return db["incidents"].find_one({"_id": case["id"]})


def test_a_steps_events_leave_its_case_once_sent_and_its_key_stays_with_it(
    desk, events_db, department_tap
):
    tap = department_tap("incident.#")
    case = desk.report()
    case = desk.act(VILLAGE_A_CENTRE, case, "accept", key="accept-1")

    assert [action_of(key) for key, _ in tap()] == ["reported", "accepted"]
    wait_until(lambda: not stored(events_db, case).get("outbox"), 10, "sent events pulled")
    commands = stored(events_db, case)["commands"]
    assert [(c["_id"], c["action"], c["version"]) for c in commands] == [
        (f"{VILLAGE_A_CENTRE.user_id}:accept-1", "accept", case["version"])
    ]


def test_events_left_in_a_case_are_sent_by_the_outbox_timer(
    desk, services, events_db, department_tap, clock
):
    # As if the process had died between writing a step and sending its event.
    case = desk.report()
    full_key, envelope = EventPublisher(lambda key, payload: None, EVENT_SOURCE).envelope(
        "incident.closed",
        GRID_A1,
        {"incident_id": case["id"], "event": "closed", "grid_code": GRID_A1, "department": None},
        route=topics.route(GRID_A1, None),
        extensions={"department": topics.NO_DEPARTMENT},
    )
    entry = {
        "_id": envelope["id"],
        "routing_key": full_key,
        "envelope": envelope,
        "created_at": clock() - timedelta(minutes=5),
    }
    events_db["incidents"].update_one({"_id": case["id"]}, {"$push": {"outbox": entry}})
    tap = department_tap("incident.closed.#")

    assert run_timer(services, "resend_outbox") == 1
    received = tap()
    assert [key for key, _ in received] == [full_key]
    assert received[0][1] == envelope
    check_envelope(*received[0])
    assert stored(events_db, case)["outbox"] == []
    assert run_timer(services, "resend_outbox") == 0


def test_an_older_releases_idempotency_record_is_honoured_and_moved_into_its_case(
    desk, services, events_db
):
    case = desk.report()
    accepted = desk.act(VILLAGE_A_CENTRE, case, "accept", key="old-accept")
    # The layout of the release before: the record in the `commands` collection.
    key = f"{VILLAGE_A_CENTRE.user_id}:old-accept"
    (record,) = stored(events_db, case)["commands"]
    events_db["incidents"].update_one({"_id": case["id"]}, {"$unset": {"commands": ""}})
    events_db["commands"].insert_one({**record, "incident_id": case["id"]})

    retry = desk.events(VILLAGE_A_CENTRE).act(case["id"], "accept", 1, "old-accept", None)
    assert retry["replayed_version"] == accepted["version"]

    run_timer(services, "resend_outbox")
    assert events_db["commands"].count_documents({}) == 0
    assert [c["_id"] for c in stored(events_db, case)["commands"]] == [key]
    retry = desk.events(VILLAGE_A_CENTRE).act(case["id"], "accept", 1, "old-accept", None)
    assert retry["replayed_version"] == accepted["version"]


def test_a_step_read_before_the_deadline_timer_marked_the_case_is_not_written(desk, events_db):
    # The step's events were decided on the marks it read (a closed case's events say
    # whether it ever ran late): the desk decides it again on what is stored.
    case = desk.report()
    before = events_db["incidents"].find_one({"_id": case["id"]})
    events_db["incidents"].update_one({"_id": case["id"]}, {"$set": {"overdue_seq": 1}})
    after = {**before, "description": "changed"}

    assert Cases(events_db).save_step(before, after, None, []) is False
    assert stored(events_db, case)["description"] == before["description"]
    assert Cases(events_db).version_of(case["id"]) == (before["version"], False)


def test_a_merge_between_a_steps_read_and_its_write_is_kept(desk, events_db):
    # A merge adds to `merged_ids` without a new version, so the step's write at the
    # version it read succeeds: it must not write back the list it read.
    case = desk.report()
    before = events_db["incidents"].find_one({"_id": case["id"]})
    events_db["incidents"].update_one({"_id": case["id"]}, {"$addToSet": {"merged_ids": "dup"}})
    after = {**before, "description": "changed", "version": before["version"] + 1}

    assert Cases(events_db).save_step(before, after, None, []) is True
    assert stored(events_db, case)["description"] == "changed"
    assert stored(events_db, case)["merged_ids"] == ["dup"]


def test_a_step_appends_its_timeline_entry_and_never_rewrites_the_history(desk, events_db):
    # A step reads the case without its timeline and pushes the entry it adds: what is
    # stored before it stays as it is, even if the step's copy of it were different.
    case = desk.report()
    history = stored(events_db, case)["timeline"]
    before = events_db["incidents"].find_one({"_id": case["id"]}, CASE_STATE)
    entry = {**history[0], "action": "accept", "from_state": "reported", "to_state": "accepted"}
    after = {**before, "state": "accepted", "version": before["version"] + 1, "timeline": [entry]}

    assert "timeline" not in before
    assert Cases(events_db).save_step(before, after, None, []) is True
    assert stored(events_db, case)["timeline"] == [*history, entry]


def test_events_the_broker_refuses_stay_in_their_case_until_the_timer_sends_them(
    desk, services, events_db, config, clock, department_tap
):
    """The step answers without waiting for the broker; an event it nacks is never
    pulled off its case, and the outbox timer sends it once the broker takes it."""
    connection = Connection(config["AMQP_URI"])
    exchange = Exchange("events.events", type="topic", durable=True)
    # A full queue that refuses what is routed to it: the broker nacks the event.
    refusing = Queue(
        "refuses-reports",
        exchange,
        routing_key="incident.reported.#",
        queue_arguments={"x-max-length": 0, "x-overflow": "reject-publish"},
    )
    refusing(connection.default_channel).declare()
    try:
        case = desk.report()
        case = desk.act(VILLAGE_A_CENTRE, case, "accept", key="accept-refused")
        # The accept's event (routed elsewhere) is confirmed and pulled; the report's stays.
        wait_until(lambda: len(stored(events_db, case)["outbox"]) == 1, 10, "accept pulled")
        (left,) = stored(events_db, case)["outbox"]
        assert left["routing_key"].startswith("incident.reported.")

        clock.advance(timedelta(minutes=1))
        assert run_timer(services, "resend_outbox") == 0  # refused again: kept
        assert [entry["_id"] for entry in stored(events_db, case)["outbox"]] == [left["_id"]]
    finally:
        refusing(connection.default_channel).delete()
    tap = department_tap("incident.reported.#")
    assert run_timer(services, "resend_outbox") == 1
    assert [payload["id"] for _, payload in tap()] == [left["_id"]]
    assert stored(events_db, case)["outbox"] == []
    connection.release()
