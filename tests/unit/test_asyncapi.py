"""docs/asyncapi.yaml documents exactly the topics the services publish."""

from pathlib import Path

import yaml

from services.population import topics as population_topics

ROOT = Path(__file__).resolve().parents[2]
PUBLISHED = {"population.events": population_topics.TOPICS}


def _document():
    return yaml.safe_load((ROOT / "docs/asyncapi.yaml").read_text())


def test_every_published_topic_is_documented_on_its_exchange():
    channels = _document()["channels"]
    for exchange, published in PUBLISHED.items():
        documented = {
            channel["address"]
            for channel in channels.values()
            if channel["bindings"]["amqp"]["exchange"]["name"] == exchange
        }
        assert documented == set(published), exchange


def test_is_asyncapi_3_with_a_send_operation_per_channel():
    document = _document()
    assert document["asyncapi"].startswith("3.")
    sent = {
        operation["channel"]["$ref"].removeprefix("#/channels/")
        for operation in document["operations"].values()
        if operation["action"] == "send"
    }
    assert sent == set(document["channels"])


def test_every_channel_carries_a_message_with_the_cloudevents_envelope():
    document = _document()
    messages = document["components"]["messages"]
    for name, channel in document["channels"].items():
        for reference in channel["messages"].values():
            payload = messages[reference["$ref"].rsplit("/", 1)[-1]]["payload"]
            assert payload["allOf"][0] == {"$ref": "#/components/schemas/envelope"}, name
