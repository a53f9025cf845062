"""The event envelope: every event is a CloudEvents 1.0 structured-mode JSON object.

A service publishes `incident.reported`; nameko routes it on the `events.events` topic
exchange with that routing key, and the payload is the envelope with
`type = "gridwork.incident.reported"`, so a department's system in any language can
consume it without knowing nameko.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

from nameko.events import EventDispatcher
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gridwork_common import event_format
from gridwork_common.clock import Clock, clock_from_config, utc_now
from gridwork_common.config import Settings
from gridwork_common.context import REQUEST_ID_KEY

log = logging.getLogger(__name__)

TYPE_PREFIX = "gridwork."
ROUTING_KEY = re.compile(r"[a-z][a-z_]*\.[a-z][a-z_]*")
# Words appended to a routing key so plain AMQP consumers can bind by them (e.g. a
# department code or territory codes); no dots, which separate words.
ROUTE_WORD = re.compile(r"[A-Za-z0-9_-]{1,64}")
# CloudEvents extension attribute names: lower-case letters and digits, at most 20.
EXTENSION_NAME = re.compile(r"[a-z0-9]{1,20}")
CONTEXT_ATTRIBUTES = frozenset(
    {"specversion", "id", "source", "type", "time", "subject", "datacontenttype", "data"}
)


class CloudEvent(BaseModel):
    # Extra attributes are CloudEvents extensions (checked below), e.g. `department`.
    model_config = ConfigDict(extra="allow", frozen=True)

    specversion: Literal["1.0"] = "1.0"
    id: uuid.UUID
    source: str = Field(pattern=r"^/counties/\d{6}/[a-z_]+$")
    type: str = Field(pattern=r"^gridwork\.[a-z][a-z_]*\.[a-z][a-z_]*$")
    time: datetime
    subject: str = Field(min_length=1)
    datacontenttype: Literal["application/json"] = "application/json"
    data: dict[str, Any]

    @field_validator("time")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None or value.utcoffset() != UTC.utcoffset(None):
            raise ValueError("must be a UTC timestamp")
        return value

    @model_validator(mode="after")
    def _extensions(self) -> CloudEvent:
        for name, value in (self.model_extra or {}).items():
            if not EXTENSION_NAME.fullmatch(name):
                raise ValueError(f"extension attribute {name!r}: lower-case letters and digits")
            if not isinstance(value, str | int | bool) and value is not None:
                raise ValueError(f"extension attribute {name!r}: must be a string, int or bool")
        return self

    @property
    def extensions(self) -> dict:
        return dict(self.model_extra or {})

    @property
    def routing_key(self) -> str:
        return self.type.removeprefix(TYPE_PREFIX)

    def to_json_dict(self) -> dict:
        payload = self.model_dump(mode="json")
        # RFC 3339 with a Z, as CloudEvents SDKs in other languages print it.
        payload["time"] = self.time.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return payload


def new_event(
    *,
    source: str,
    routing_key: str,
    subject: str,
    data: dict,
    now: datetime | None = None,
    extensions: dict | None = None,
) -> CloudEvent:
    if not ROUTING_KEY.fullmatch(routing_key):
        raise ValueError(f"event routing key must look like 'entity.action', got {routing_key!r}")
    clashes = CONTEXT_ATTRIBUTES & set(extensions or {})
    if clashes:
        raise ValueError(f"extensions may not replace {sorted(clashes)}")
    return CloudEvent(
        id=uuid.uuid4(),
        source=source,
        type=TYPE_PREFIX + routing_key,
        time=(now or utc_now()).astimezone(UTC),
        subject=subject,
        data=data,
        **(extensions or {}),
    )


def parse_event(payload: dict) -> CloudEvent:
    """Validate an incoming envelope; raises pydantic.ValidationError naming the field."""
    return CloudEvent.model_validate(payload)


class EventPublisher:
    """What a worker holds: `publish("incident.reported", subject, data)`."""

    # Deletes outbox entries once the broker confirms them, off the request path (a
    # publisher with asynchronous confirms, gridwork_common.confirmed_events); here None:
    # the outbox deletes what `send` returned from, at once.
    sent_entries = None

    def __init__(self, dispatch, source: str, clock: Clock = utc_now):
        self._dispatch = dispatch
        self.source = source
        self.clock = clock  # the event's `time`

    def publish(
        self,
        routing_key: str,
        subject: str,
        data: dict,
        *,
        route: tuple[str, ...] = (),
        extensions: dict | None = None,
    ) -> dict:
        """Publish `data` as a CloudEvent. `route` words extend the AMQP routing key
        (`incident.dispatched` + ("530402-police", "530402", ...)) so consumers can bind
        to a department or a territory subtree; `extensions` become CloudEvents
        extension attributes."""
        full_key, envelope = self.envelope(
            routing_key, subject, data, route=route, extensions=extensions
        )
        self.send(full_key, envelope)
        return envelope

    def envelope(
        self,
        routing_key: str,
        subject: str,
        data: dict,
        *,
        route: tuple[str, ...] = (),
        extensions: dict | None = None,
    ) -> tuple[str, dict]:
        """The full routing key and the envelope, without sending: for an outbox that
        stores events with the change they announce and sends them after commit."""
        for word in route:
            if not ROUTE_WORD.fullmatch(word):
                raise ValueError(f"routing key word {word!r} must be letters, digits, - or _")
        envelope = new_event(
            source=self.source,
            routing_key=routing_key,
            subject=subject,
            data=data,
            now=self.clock(),
            extensions=extensions,
        ).to_json_dict()
        return ".".join((routing_key, *route)), envelope

    def send(self, full_routing_key: str, envelope: dict) -> None:
        self._dispatch(full_routing_key, envelope)

    def send_confirmed(
        self, full_routing_key: str, envelope: dict, on_confirmed: Callable[[], None]
    ) -> bool:
        """Send, then call back once the broker has the event; False if it could not be
        sent (no callback). Here `send` waits for the broker (nameko's dispatcher): the
        callback runs before this returns; gridwork_common.confirmed_events returns at
        once and calls back on the broker's confirm."""
        try:
            self.send(full_routing_key, envelope)
        except Exception:  # the broker is down: the caller's outbox keeps the event
            log.warning("event left for resend", exc_info=True)
            return False
        on_confirmed()
        return True


class CloudEventDispatcher(EventDispatcher):
    """nameko's event dispatcher, wrapping every payload in the CloudEvents envelope and
    publishing it in the CloudEvents AMQP binding's structured mode, with none of the
    worker's context data in the headers but its request id (gridwork_common.event_format
    says why)."""

    def __init__(self, **options):
        super().__init__(**{"serializer": event_format.SERIALIZER, **options})

    def get_message_headers(self, worker_ctx) -> dict:
        # Departments read these exchanges: no caller, roles or scope; the request id only.
        request_id = worker_ctx.data.get(REQUEST_ID_KEY)
        return {event_format.REQUEST_ID_HEADER: request_id} if request_id else {}

    def setup(self):
        super().setup()
        settings = Settings.from_nameko_config(self.container.config)
        self.source = settings.event_source(self.container.service_name)
        self.clock = clock_from_config(self.container.config)

    def get_dependency(self, worker_ctx) -> EventPublisher:
        return EventPublisher(super().get_dependency(worker_ctx), self.source, self.clock)
