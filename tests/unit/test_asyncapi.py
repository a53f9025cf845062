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
            name
            for name, channel in channels.items()
            if channel["bindings"]["amqp"]["exchange"]["name"] == exchange
        }
        assert documented == set(published), exchange


def test_every_channel_has_a_message_with_the_cloudevents_envelope():
    document = _document()
    messages = document["components"]["messages"]
    for name, channel in document["channels"].items():
        reference = channel["subscribe"]["message"]["$ref"].rsplit("/", 1)[-1]
        payload = messages[reference]["payload"]
        assert payload["allOf"][0] == {"$ref": "#/components/schemas/envelope"}, name
