import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from gridwork_common.events import EventPublisher, new_event, parse_event

SOURCE = "/counties/530402/events"


def test_new_event_is_a_cloudevents_1_0_structured_object():
    now = datetime(2026, 11, 23, 8, 30, 15, 123456, tzinfo=UTC)
    event = new_event(
        source=SOURCE, routing_key="incident.reported", subject="INC-1", data={"a": 1}, now=now
    )
    payload = event.to_json_dict()
    assert set(payload) == {
        "specversion", "id", "source", "type", "time", "subject", "datacontenttype", "data",
    }  # fmt: skip
    assert payload["specversion"] == "1.0"
    assert uuid.UUID(payload["id"]).version == 4
    assert payload["source"] == SOURCE
    assert payload["type"] == "gridwork.incident.reported"
    assert payload["time"] == "2026-11-23T08:30:15.123456Z"
    assert payload["subject"] == "INC-1"
    assert payload["datacontenttype"] == "application/json"
    assert payload["data"] == {"a": 1}
    assert event.routing_key == "incident.reported"


def test_every_event_gets_its_own_id():
    ids = {new_event(source=SOURCE, routing_key="a.b", subject="s", data={}).id for _ in range(50)}
    assert len(ids) == 50


@pytest.mark.parametrize("key", ["incident", "Incident.Reported", "incident.reported.x", ".a", ""])
def test_routing_keys_must_be_entity_dot_action(key):
    with pytest.raises(ValueError, match=r"entity\.action"):
        new_event(source=SOURCE, routing_key=key, subject="s", data={})


def _valid_payload():
    return new_event(
        source=SOURCE, routing_key="visit.recorded", subject="V1", data={}
    ).to_json_dict()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("specversion", "0.3"),
        ("id", "not-a-uuid"),
        ("source", "events"),
        ("type", "incident.reported"),
        ("time", "2026-11-23T08:30:15"),
        ("time", "2026-11-23T08:30:15+08:00"),
        ("subject", ""),
        ("datacontenttype", "text/plain"),
        ("data", "a string"),
    ],
)
def test_parse_event_names_the_bad_field(field, value):
    payload = _valid_payload()
    payload[field] = value
    with pytest.raises(ValidationError) as raised:
        parse_event(payload)
    assert [error["loc"][0] for error in raised.value.errors()] == [field]


def test_parse_event_refuses_missing_fields_and_badly_named_extensions():
    payload = _valid_payload()
    del payload["subject"]
    with pytest.raises(ValidationError) as raised:
        parse_event(payload)
    assert [error["loc"][0] for error in raised.value.errors()] == ["subject"]
    with pytest.raises(ValidationError, match="Extra_Field"):
        parse_event({**_valid_payload(), "Extra_Field": "x"})


def test_extensions_travel_as_top_level_attributes():
    event = new_event(
        source=SOURCE, routing_key="incident.dispatched", subject="530402001001001", data={},
        extensions={"department": "530402-police"},
    )  # fmt: skip
    payload = event.to_json_dict()
    assert payload["department"] == "530402-police"
    assert parse_event(payload).extensions == {"department": "530402-police"}
    with pytest.raises(ValueError, match="may not replace"):
        new_event(source=SOURCE, routing_key="a.b", subject="s", data={},
                  extensions={"subject": "x"})  # fmt: skip


def test_route_words_extend_the_routing_key_only():
    sent = []
    publisher = EventPublisher(lambda key, payload: sent.append((key, payload)), SOURCE)
    envelope = publisher.publish(
        "incident.dispatched", "530402001001001", {}, route=("530402-police", "530402")
    )
    assert sent == [("incident.dispatched.530402-police.530402", envelope)]
    assert envelope["type"] == "gridwork.incident.dispatched"
    with pytest.raises(ValueError, match="routing key word"):
        publisher.publish("incident.dispatched", "s", {}, route=("a.b",))


@given(
    entity=st.from_regex(r"[a-z][a-z_]{0,15}", fullmatch=True),
    action=st.from_regex(r"[a-z][a-z_]{0,15}", fullmatch=True),
    subject=st.text(min_size=1, max_size=40),
    data=st.dictionaries(
        st.text(max_size=10),
        st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20)),
        max_size=5,
    ),
    when=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ),
)
def test_envelope_round_trips_through_json(entity, action, subject, data, when):
    event = new_event(
        source=SOURCE, routing_key=f"{entity}.{action}", subject=subject, data=data, now=when
    )
    parsed = parse_event(event.to_json_dict())
    assert parsed == event
    assert parsed.routing_key == f"{entity}.{action}"


def test_publisher_dispatches_the_envelope_under_the_routing_key():
    sent = []
    publisher = EventPublisher(lambda key, payload: sent.append((key, payload)), SOURCE)
    envelope = publisher.publish("incident.closed", "INC-9", {"on_time": True})
    assert sent == [("incident.closed", envelope)]
    assert parse_event(envelope).type == "gridwork.incident.closed"


def test_local_times_are_published_in_utc():
    east8 = timezone(timedelta(hours=8))
    event = new_event(
        source=SOURCE, routing_key="a.b", subject="s", data={},
        now=datetime(2026, 1, 1, 8, tzinfo=east8),
    )  # fmt: skip
    assert event.to_json_dict()["time"] == "2026-01-01T00:00:00.000000Z"
