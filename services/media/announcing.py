"""The media service's events, announced from the media record itself rather than an outbox.

A record confirmed but not yet announced says so (`announced: false`); the steps after the
confirm (describing.py) send `media.stored` (and a photo's `media.described`) first and mark
the record announced after, and a timer runs those steps again for records still not
announced two minutes after their confirm. So nothing confirmed is left unannounced, at
the cost of no extra round trip to MongoDB. An event sent twice (a crash between the send
and the mark) has the same CloudEvent `id` both times, derived from the media id, so
consumers that de-duplicate by `id` see it once.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping

from gridwork_common.events import EventPublisher
from services.media import topics

log = logging.getLogger(__name__)
EVENT_IDS = uuid.UUID("6f1d8a52-94c3-4a4e-9c57-0d1f3b5e7a21")  # namespace of our event ids


def send_once(events: EventPublisher | None, routing_key: str, media: Mapping, data: dict) -> None:
    """Send `routing_key` about `media` with the id every send of it has."""
    if events is None:
        return  # tools that run without a broker
    full_key, envelope = events.envelope(routing_key, media["owner"]["id"], data)
    envelope["id"] = str(uuid.uuid5(EVENT_IDS, f"{routing_key}:{media['_id']}"))
    events.send(full_key, envelope)


def announce_received(events: EventPublisher | None, media: Mapping) -> None:
    """Hand a confirmed upload to the steps after the confirm. A broker that is down does
    not fail the confirm, and the service sends this without waiting for the broker's
    confirm: the record is stored, and if the event is lost the timer takes it up."""
    try:
        send_once(events, topics.MEDIA_RECEIVED, media, {"media_id": media["_id"]})
    except Exception:
        log.warning("media.received not sent; the timer checks %s later", media["_id"])


def stored_event(media: Mapping) -> dict:
    metadata = media.get("metadata", {})
    return {
        "media_id": media["_id"],
        "sha256": media["sha256"],
        "content_type": media["content_type"],
        "size": media["size"],
        "purpose": media["purpose"],
        "owner": media["owner"],
        "uploader": media["uploader"],
        "taken_at": metadata.get("taken_at"),
        "gps": metadata.get("gps"),
    }


def described_event(media: Mapping) -> dict:
    metadata = media["metadata"]
    return {
        "media_id": media["_id"],
        "sha256": media["sha256"],
        "owner": media["owner"],
        "uploader": media["uploader"],
        "thumbnail": media["thumbnail"]["status"],
        "taken_at": metadata.get("taken_at"),
        "gps": metadata.get("gps"),
        "width": metadata.get("width"),
        "height": metadata.get("height"),
    }
