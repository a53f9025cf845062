"""How an event travels on the broker: the CloudEvents AMQP binding's structured mode.

The message body is the CloudEvent as JSON and the AMQP `content-type` is
`application/cloudevents+json`, so any CloudEvents SDK reads it. The message carries one
other header, the request id of the call that caused the event (`nameko.request_id`, so
nameko's event handlers log it as their own, and a request can be followed through every
process it touched): nameko would add all the publishing worker's context data (call id
stack, user id, roles, territory scope) as `nameko.*` headers, and departments consume
these exchanges, so events are published without the rest (`CloudEventDispatcher`); no
consumer of an event reads the caller (an event is a fact, not a call).

kombu decodes a message by its content type, so every process that publishes or
consumes events registers the `cloudevents` serializer: nameko containers and proxies
through the `SERIALIZERS` entry of their config (`Settings.nameko_config`), plain kombu
consumers by importing this module.
"""

from __future__ import annotations

import json

from kombu import serialization

CONTENT_TYPE = "application/cloudevents+json"
# The one context header an event keeps: nameko's name for the caller's request id.
REQUEST_ID_HEADER = "nameko.request_id"
SERIALIZER = "cloudevents"  # kombu's name for the format


def dumps(envelope: dict) -> str:
    return json.dumps(envelope, ensure_ascii=False, separators=(",", ":"))


def loads(body: str | bytes) -> dict:
    return json.loads(body)


NAMEKO_SERIALIZERS = {
    SERIALIZER: {
        "encoder": f"{__name__}.dumps",
        "decoder": f"{__name__}.loads",
        "content_type": CONTENT_TYPE,
        "content_encoding": "utf-8",
    }
}
# What nameko consumers accept: RPC messages stay plain JSON; events are CloudEvents.
ACCEPT = ["json", SERIALIZER]

serialization.register(
    SERIALIZER, encoder=dumps, decoder=loads, content_type=CONTENT_TYPE, content_encoding="utf-8"
)
