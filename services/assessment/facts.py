"""Facts: the other services' events, stored once each (the CloudEvent `id` is the key,
so a redelivered message never counts twice), reduced to who, where, when and what, and
folded into the live summaries the boards are read from (`summaries.py`).

The counts are defined in `domain/indicators.py`, whose plain loop is the reference the
summaries are tested against."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from pydantic import ValidationError
from pymongo.database import Database

from gridwork_common.events import parse_event
from gridwork_common.territory import CODE_LENGTHS
from services.assessment import summaries
from services.assessment.domain import patrols as patrolling
from services.assessment.domain.indicators import VISIT_OBLIGATIONS, VISIT_RECORDED
from services.assessment.domain.periods import CHINA_TIME

GRID_LENGTH = CODE_LENGTHS["grid"]
_PATH_LENGTHS = tuple(CODE_LENGTHS[level] for level in ("county", "township", "village", "grid"))
_log = logging.getLogger(__name__)


def territory_path(code: str | None) -> list[str]:
    """The codes of a territory node and its ancestors (county 6, township 9, village 12,
    grid 15 digits), for "everything under this node" queries."""
    if not code or not code.isdigit():
        return []
    return [code[:length] for length in _PATH_LENGTHS if len(code) >= length]


def fact_from_event(payload: Mapping) -> dict:
    event = parse_event(payload)  # refuses anything that is not a CloudEvent
    data = event.data
    happened = event.time
    if event.routing_key == VISIT_RECORDED:
        # A visit counts when it was made (a phone may upload it days later), as the
        # population service counts it against the month's obligations.
        happened = _moment(data.get("at")) or happened
    if event.routing_key in patrolling.PATROL_TYPES:
        happened = _moment(data.get("started_at")) or happened  # when it was walked
    local = happened.astimezone(CHINA_TIME)
    territory = data.get("grid_code") or event.subject
    month = local.strftime("%Y-%m")
    key = str(event.id)
    if event.routing_key == VISIT_OBLIGATIONS:
        month = data.get("period") or month  # the month the obligations were for
        # one per grid and month, however often the population service sends it
        key = f"{VISIT_OBLIGATIONS}:{territory}:{month}"
    fact = {
        "_id": key,
        "type": event.routing_key,
        "source": event.source,
        "time": happened.astimezone(UTC),
        "day": local.strftime("%Y-%m-%d"),
        "period": month,
        "territory": territory,
        "path": territory_path(territory),
        "department": data.get("department") or event.extensions.get("department"),
        "actor": _actor(event.routing_key, data),
        "data": dict(data),
    }
    if "incident_id" in data:
        fact["incident_id"] = data["incident_id"]
    if event.routing_key in patrolling.PATROL_TYPES:
        fact["sent"] = event.time.astimezone(UTC)  # a patrol's latest revision counts
    return fact


def _actor(routing_key: str, data: Mapping) -> str | None:
    """The person a fact is about: for a case, whoever took this step (none for the
    system's deadline notices, never the reporter by default)."""
    if routing_key.startswith("incident."):
        return data.get("actor_id")
    return (
        data.get("actor_id")
        or data.get("worker_id")
        or data.get("user_id")
        or data.get("imported_by")
        or data.get("uploader")
    )


def _moment(text) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text) if isinstance(text, str) else None
    except ValueError:
        return None
    return moment if moment is not None and moment.tzinfo is not None else None


def record(db: Database, payload: Mapping) -> bool:
    """Store the fact an event carries and fold it into the live summaries (one
    transaction); False when it was stored before."""
    return summaries.record(db, [fact_from_event(payload)]) == 1


def record_all(db: Database, payloads: Iterable[Mapping]) -> int:
    """The facts of a batch of deliveries, stored and folded in one transaction; how
    many were new. A payload that is not a CloudEvent is logged and left out (it would
    be refused however often it came back); the others are folded."""
    made = []
    for payload in payloads:
        try:
            made.append(fact_from_event(payload))
        except ValidationError as error:
            _log.error("not a CloudEvent, left out: %s", error)
    return summaries.record(db, made) if made else 0
