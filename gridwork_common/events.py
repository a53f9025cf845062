"""The event envelope: every event is a CloudEvents 1.0 structured-mode JSON object.

A service publishes `incident.reported`; nameko routes it on the `events.events` topic
exchange with that routing key, and the payload is the envelope with
`type = "gridwork.incident.reported"`, so a department's system in any language can
consume it without knowing nameko.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from nameko.events import EventDispatcher
from pydantic import BaseModel, ConfigDict, Field, field_validator

from gridwork_common.config import Settings

TYPE_PREFIX = "gridwork."
ROUTING_KEY = re.compile(r"[a-z][a-z_]*\.[a-z][a-z_]*")


class CloudEvent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

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

    @property
    def routing_key(self) -> str:
        return self.type.removeprefix(TYPE_PREFIX)

    def to_json_dict(self) -> dict:
        payload = self.model_dump(mode="json")
        # RFC 3339 with a Z, as CloudEvents SDKs in other languages print it.
        payload["time"] = self.time.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return payload


def new_event(
    *, source: str, routing_key: str, subject: str, data: dict, now: datetime | None = None
) -> CloudEvent:
    if not ROUTING_KEY.fullmatch(routing_key):
        raise ValueError(f"event routing key must look like 'entity.action', got {routing_key!r}")
    return CloudEvent(
        id=uuid.uuid4(),
        source=source,
        type=TYPE_PREFIX + routing_key,
        time=(now or datetime.now(UTC)).astimezone(UTC),
        subject=subject,
        data=data,
    )


def parse_event(payload: dict) -> CloudEvent:
    """Validate an incoming envelope; raises pydantic.ValidationError naming the field."""
    return CloudEvent.model_validate(payload)


class EventPublisher:
    """What a worker holds: `publish("incident.reported", subject, data)`."""

    def __init__(self, dispatch, source: str):
        self._dispatch = dispatch
        self.source = source

    def publish(self, routing_key: str, subject: str, data: dict) -> dict:
        envelope = new_event(
            source=self.source, routing_key=routing_key, subject=subject, data=data
        ).to_json_dict()
        self._dispatch(routing_key, envelope)
        return envelope


class CloudEventDispatcher(EventDispatcher):
    """nameko's event dispatcher, wrapping every payload in the CloudEvents envelope."""

    def setup(self):
        super().setup()
        settings = Settings.from_nameko_config(self.container.config)
        self.source = settings.event_source(self.container.service_name)

    def get_dependency(self, worker_ctx) -> EventPublisher:
        return EventPublisher(super().get_dependency(worker_ctx), self.source)
