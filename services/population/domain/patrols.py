"""Patrols (巡查): a grid worker's walk through their grid, its input rules and the
figures read from its track. Pure: the use cases hand in points and times."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from gridwork_common import roles
from services.population.domain import tracks
from services.population.domain.errors import InvalidField
from services.population.domain.tracks import TrackPoint

RUNNING = "running"
FINISHED = "finished"
MAX_POINTS_PER_PIECE = 500
MAX_PIECE = 100_000  # a point every 5 s for a week, in pieces of 500
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
# The phone makes the id (UUID4) so what it records offline can name the patrol.
PATROL_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
LINK_KINDS = ("incident", "visit")

# Who walks patrols, and who reads them.
PATROLLERS = (roles.GRID_WORKER, roles.GRID_LEADER)
READERS = (
    roles.GRID_WORKER,
    roles.GRID_LEADER,
    roles.CENTRE_OPERATOR,
    roles.LEADER,
    roles.ADMIN,
    roles.SYSTEM,
)


def patrol_id(value, field: str = "patrol_id") -> str:
    if not isinstance(value, str) or not PATROL_ID.match(value.lower()):
        raise InvalidField(field, "must be a UUID like 0b6f1c4e-8d1a-4c3e-9f57-2a1d5e7c9b30")
    return value.lower()


def moment(value, field: str) -> datetime:
    """An ISO 8601 time with a UTC offset, from 2000, as UTC."""
    try:
        parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None or parsed < EARLIEST:
        raise InvalidField(field, "must be an ISO 8601 time with a UTC offset, from 2000")
    # milliseconds, as MongoDB keeps them: a retried request compares equal to the stored
    return parsed.astimezone(UTC).replace(microsecond=parsed.microsecond // 1000 * 1000)


def piece_number(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_PIECE:
        raise InvalidField("piece", f"must be a whole number from 0 to {MAX_PIECE}")
    return value


def track_points(raw) -> list[TrackPoint]:
    """A piece's points, checked (each field named with its index)."""
    if not isinstance(raw, list) or len(raw) > MAX_POINTS_PER_PIECE:
        raise InvalidField("points", f"must be a list of at most {MAX_POINTS_PER_PIECE} points")
    points = []
    for index, point in enumerate(raw):
        where = f"points[{index}]"
        if not isinstance(point, Mapping):
            raise InvalidField(where, "must be an object with lon, lat and at")
        lon = _number(point.get("lon"), f"{where}.lon", -180, 180)
        lat = _number(point.get("lat"), f"{where}.lat", -90, 90)
        accuracy = point.get("accuracy_m")
        if accuracy is not None:
            accuracy = _number(accuracy, f"{where}.accuracy_m", 0, 100_000)
        points.append(TrackPoint(lon, lat, moment(point.get("at"), f"{where}.at"), accuracy))
    return points


def _number(value, field: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise InvalidField(field, f"must be a number from {low} to {high}")
    return float(value)


@dataclass(frozen=True)
class Figures:
    """What a patrol's track says: read again whenever a piece arrives."""

    point_count: int
    distance_m: float
    flags: tuple[str, ...]
    track: dict | None  # simplified GeoJSON LineString for display

    def as_fields(self) -> dict:
        return {
            "point_count": self.point_count,
            "distance_m": self.distance_m,
            "flags": list(self.flags),
            "track": self.track,
        }


def figures(points: Sequence[TrackPoint], finished: bool) -> Figures:
    """The figures of a track from all its pieces' points (any order, repeats allowed).
    Flags are judged once the patrol is finished: a patrol just begun has not left its
    starting spot yet."""
    ordered = tracks.in_order(points)
    return Figures(
        point_count=len(ordered),
        distance_m=round(tracks.distance_m(ordered), 1),
        flags=tuple(tracks.flags(ordered)) if finished else (),
        track=tracks.line_string(tracks.simplified(ordered, tracks.DISPLAY_TOLERANCE_M)),
    )


def coverage_geometry(track: Mapping | None, points: Sequence[TrackPoint]) -> dict | None:
    """What to ask the territory which grids a patrol crossed: its line, or its one spot."""
    if track is not None:
        return dict(track)
    if points:
        return {"type": "Point", "coordinates": [points[0].lon, points[0].lat]}
    return None


def duration_s(started_at: datetime, ended_at: datetime | None) -> int | None:
    if ended_at is None:
        return None
    return max(0, round((ended_at - started_at).total_seconds()))
