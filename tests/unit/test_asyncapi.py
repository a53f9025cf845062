"""docs/asyncapi.yaml documents exactly the topics the services publish."""

from datetime import UTC, datetime
from pathlib import Path

import yaml

from gridwork_common import event_format
from services.assessment import topics as assessment_topics
from services.events import topics as events_topics
from services.events.domain import incident as loop
from services.events.domain.calendar import DEFAULT_CALENDAR
from services.events.usecases.case_rendering import event_data
from services.gateway import activity
from services.media import topics as media_topics
from services.population import topics as population_topics

ROOT = Path(__file__).resolve().parents[2]
PUBLISHED = {
    "population.events": population_topics.TOPICS,
    "events.events": events_topics.TOPICS,
    "media.events": media_topics.TOPICS,
    "gateway.events": activity.TOPICS,
    "assessment.events": assessment_topics.TOPICS,
}
# The words after `incident.<action>` in an incident routing key, in order (topics.route).
ROUTE_PARAMETERS = ("department", "county", "township", "village", "grid")


def _document():
    return yaml.safe_load((ROOT / "docs/asyncapi.yaml").read_text())


def _deref(document, node):
    """The node a local `$ref` points to (or the node itself)."""
    while isinstance(node, dict) and "$ref" in node:
        target = document
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def _topic(channel) -> str:
    """The topic a channel documents: its address up to the first parameter."""
    return channel["address"].split(".{", 1)[0]


def _channels_on(document, exchange: str) -> dict:
    return {
        name: channel
        for name, channel in document["channels"].items()
        if channel["bindings"]["amqp"]["exchange"]["name"] == exchange
    }


def test_every_published_topic_is_documented_on_its_exchange_and_nothing_else():
    document = _document()
    exchanges = {
        channel["bindings"]["amqp"]["exchange"]["name"] for channel in document["channels"].values()
    }
    assert exchanges == set(PUBLISHED)
    for exchange, published in PUBLISHED.items():
        channels = _channels_on(document, exchange)
        documented = [_topic(channel) for channel in channels.values()]
        assert sorted(documented) == sorted(published), exchange
        for name, channel in channels.items():
            assert name == _topic(channel), name
            binding = channel["bindings"]["amqp"]
            assert binding["is"] == "routingKey", name
            assert binding["exchange"]["type"] == "topic" and binding["exchange"]["durable"]


def test_population_addresses_are_plain_routing_keys():
    for name, channel in _channels_on(_document(), "population.events").items():
        assert channel["address"] == name
        assert "parameters" not in channel, name


def test_incident_addresses_append_the_route_words_as_parameters():
    document = _document()
    pattern = ".".join(f"{{{word}}}" for word in ROUTE_PARAMETERS)
    for name, channel in _channels_on(document, "events.events").items():
        assert channel["address"].startswith(name + ".")
        assert channel["address"] == f"{name}.{pattern}", name
        assert tuple(channel["parameters"]) == ROUTE_PARAMETERS, name
        for word, parameter in channel["parameters"].items():
            parameter = _deref(document, parameter)
            assert parameter["description"].strip() and parameter["examples"], (name, word)


def test_the_parameter_examples_are_a_routing_key_the_service_builds():
    document = _document()
    parameters = document["components"]["parameters"]
    example = {word: parameters[word]["examples"][0] for word in ROUTE_PARAMETERS}
    words = events_topics.route(example["grid"], example["department"])
    assert words == tuple(example[word] for word in ROUTE_PARAMETERS)
    assert events_topics.route(example["grid"], None)[0] in parameters["department"]["examples"]


def test_is_asyncapi_3_with_a_send_operation_per_channel():
    document = _document()
    assert document["asyncapi"].startswith("3.")
    sent = {
        operation["channel"]["$ref"].removeprefix("#/channels/")
        for operation in document["operations"].values()
        if operation["action"] == "send"
    }
    assert sent == set(document["channels"])


def test_messages_are_documented_in_the_content_type_they_are_published_in():
    # gridwork_common.event_format is what every dispatcher publishes with.
    assert _document()["defaultContentType"] == event_format.CONTENT_TYPE
    assert all("contentType" not in message for message in _messages().values())


def _messages() -> dict:
    return _document()["components"]["messages"]


def test_every_channel_carries_a_message_with_the_cloudevents_envelope():
    document = _document()
    messages = document["components"]["messages"]
    for name, channel in document["channels"].items():
        for reference in channel["messages"].values():
            payload = messages[reference["$ref"].rsplit("/", 1)[-1]]["payload"]
            assert payload["allOf"][0] == {"$ref": "#/components/schemas/envelope"}, name


def _data_schema_fields(document, channel) -> tuple[set[str], set[str]]:
    """(required, all) field names of `data` in the channel's message payload."""
    (reference,) = channel["messages"].values()
    payload = _deref(document, _deref(document, reference)["payload"])
    required: set[str] = set()
    names: set[str] = set()

    def collect(schema):
        schema = _deref(document, schema)
        required.update(schema.get("required", ()))
        names.update(schema.get("properties", {}))
        for part in schema.get("allOf", ()):
            collect(part)

    for part in payload["allOf"]:
        data = _deref(document, part).get("properties", {}).get("data")
        if data is not None:
            collect(data)
    return required, names


def _sample_change(name: str) -> loop.Change:
    at = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
    entry = loop.TimelineEntry(
        action="act",
        from_state="reported",
        to_state="accepted",
        actor_id="someone",
        actor_roles=("centre_operator",),
        at=at,
        details={"hours": 4.0},
    )
    incident = loop.Incident(
        incident_id="0" * 32,
        category="04.01",
        urgency="normal",
        grid_code="530402001001001",
        description="垃圾乱堆乱放",
        location=(102.505, 24.305),
        reporter_id="worker-1",
        reported_at=at,
        state="accepted",
        version=2,
        owning_centre="530402001001",
        timeline=(entry, entry),
        closed_at=at if name == "closed" else None,
    )
    return loop.Change(action=name, incident=incident, events=(name,))


def test_every_incident_message_documents_the_data_the_service_sends():
    document = _document()
    for name, channel in _channels_on(document, "events.events").items():
        action = name.removeprefix("incident.")
        sent = set(event_data({}, action, _sample_change(action), DEFAULT_CALENDAR))
        required, documented = _data_schema_fields(document, channel)
        assert documented == sent, (name, documented ^ sent)
        assert required == sent, (name, required ^ sent)


def test_incident_messages_carry_the_department_extension_attribute():
    document = _document()
    envelope = document["components"]["schemas"]["incidentEnvelope"]
    assert "department" in envelope["required"]
    for channel in _channels_on(document, "events.events").values():
        (reference,) = channel["messages"].values()
        payload = _deref(document, reference)["payload"]
        assert {"$ref": "#/components/schemas/incidentEnvelope"} in payload["allOf"]
