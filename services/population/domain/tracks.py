"""Patrol tracks: the maths over a phone's GPS points, with no storage or time source.

A point is (lon, lat, at, accuracy_m): degrees, an aware datetime, metres or None.
Distances are great-circle (haversine) metres over the raw points; the track drawn on a
map is simplified with Douglas-Peucker in metres; the raw points are kept compactly as
delta-encoded whole numbers (a microdegree is about 0.1 m, a millisecond is below what a
phone's clock means), which a long patrol's thousands of points shrink to a few bytes each.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import accumulate, pairwise

EARTH_RADIUS_M = 6_371_008.8  # mean radius (IUGG)
MICRODEGREES = 1_000_000
# Flags, as named in the API and the `patrol.finished` event.
TOO_FAST = "too_fast"
STATIONARY = "stationary"
# A person on foot or a bicycle stays under this; faster for a sustained stretch is a car.
MAX_PATROL_SPEED_KMH = 30.0
# Faster than the limit for at least this long, and this far, is "sustained" (a single
# GPS jump of a few seconds is noise, not a ride).
SUSTAINED_S = 60.0
SUSTAINED_M = 300.0
# A track whose every point stays within this of its first never left one spot.
STATIONARY_RADIUS_M = 50.0
# What the displayed track may deviate from the raw points.
DISPLAY_TOLERANCE_M = 5.0
COORDINATE_DECIMALS = 6


@dataclass(frozen=True)
class TrackPoint:
    lon: float
    lat: float
    at: datetime
    accuracy_m: float | None = None


def haversine_m(a: TrackPoint, b: TrackPoint) -> float:
    """Great-circle distance between two points, in metres."""
    lon1, lat1, lon2, lat2 = map(math.radians, (a.lon, a.lat, b.lon, b.lat))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def distance_m(points: Sequence[TrackPoint]) -> float:
    """The length of the track through every point, in order."""
    return sum(haversine_m(a, b) for a, b in pairwise(points))


def in_order(points: Sequence[TrackPoint]) -> list[TrackPoint]:
    """Points by time (pieces arrive in any order; a piece's own order is kept for equal
    times), without exact repeats (a piece sent twice, or overlapping pieces)."""
    seen: set[tuple] = set()
    ordered = []
    for point in sorted(points, key=lambda p: p.at):
        key = (point.lon, point.lat, point.at)
        if key in seen:
            continue
        seen.add(key)
        ordered.append(point)
    return ordered


# ------------------------------------------------------------------ simplification
def simplified(points: Sequence[TrackPoint], tolerance_m: float) -> list[TrackPoint]:
    """Douglas-Peucker: the fewest points such that every dropped point lies within
    `tolerance_m` of the kept polyline; the first and last points are always kept."""
    if tolerance_m < 0:
        raise ValueError("tolerance must be >= 0")
    if len(points) <= 2:
        return list(points)
    origin = points[0]
    xy = [_projected(origin, point) for point in points]
    keep = [False] * len(points)
    keep[0] = keep[-1] = True
    stack = [(0, len(points) - 1)]
    while stack:  # iterative: a long straight walk must not exhaust the recursion limit
        first, last = stack.pop()
        farthest, index = -1.0, -1
        for i in range(first + 1, last):
            gap = _segment_distance(xy[i], xy[first], xy[last])
            if gap > farthest:
                farthest, index = gap, i
        if index != -1 and farthest > tolerance_m:
            keep[index] = True
            stack.append((first, index))
            stack.append((index, last))
    return [point for point, kept in zip(points, keep, strict=True) if kept]


def _projected(origin: TrackPoint, point: TrackPoint) -> tuple[float, float]:
    """Metres east and north of `origin` (equirectangular: exact enough over a patrol)."""
    scale = math.radians(1) * EARTH_RADIUS_M
    east = (point.lon - origin.lon) * scale * math.cos(math.radians(origin.lat))
    return east, (point.lat - origin.lat) * scale


def _segment_distance(p, a, b) -> float:
    (px, py), (ax, ay), (bx, by) = p, a, b
    dx, dy = bx - ax, by - ay
    length2 = dx * dx + dy * dy
    if length2 == 0:
        return math.hypot(px - ax, py - ay)
    t = max(0.0, min(1.0, ((px - ax) * dx + (py - ay) * dy) / length2))
    return math.hypot(px - (ax + t * dx), py - (ay + t * dy))


def distance_to_polyline_m(point: TrackPoint, line: Sequence[TrackPoint]) -> float:
    """How far a point lies from a polyline, in the same projection `simplified` uses."""
    origin = line[0]
    p = _projected(origin, point)
    if len(line) == 1:
        return math.hypot(*p)
    xy = [_projected(origin, q) for q in line]
    return min(_segment_distance(p, a, b) for a, b in pairwise(xy))


def line_string(points: Sequence[TrackPoint]) -> dict | None:
    """A GeoJSON LineString for drawing (consecutive repeats dropped), None without a
    line to draw."""
    coordinates: list[list[float]] = []
    for point in points:
        position = [
            round(point.lon, COORDINATE_DECIMALS),
            round(point.lat, COORDINATE_DECIMALS),
        ]
        if not coordinates or coordinates[-1] != position:
            coordinates.append(position)
    if len(coordinates) < 2:
        return None
    return {"type": "LineString", "coordinates": coordinates}


# ------------------------------------------------------------------ integrity checks
def too_fast(points: Sequence[TrackPoint], limit_kmh: float = MAX_PATROL_SPEED_KMH) -> bool:
    """Whether consecutive points show a sustained stretch faster than a person patrols:
    a run of segments each above the limit lasting at least SUSTAINED_S and SUSTAINED_M."""
    limit_ms = limit_kmh / 3.6
    run_s = run_m = 0.0
    for a, b in pairwise(points):
        seconds = (b.at - a.at).total_seconds()
        metres = haversine_m(a, b)
        if seconds > 0 and metres / seconds > limit_ms:
            run_s += seconds
            run_m += metres
            if run_s >= SUSTAINED_S and run_m >= SUSTAINED_M:
                return True
        elif seconds > 0:
            run_s = run_m = 0.0
    return False


def stationary(points: Sequence[TrackPoint], radius_m: float = STATIONARY_RADIUS_M) -> bool:
    """Whether the track never leaves `radius_m` of where it began (no track at all
    never left either)."""
    if not points:
        return True
    return all(haversine_m(points[0], point) <= radius_m for point in points)


def flags(points: Sequence[TrackPoint]) -> list[str]:
    found = []
    if too_fast(points):
        found.append(TOO_FAST)
    if stationary(points):
        found.append(STATIONARY)
    return found


# ------------------------------------------------------------------ compact encoding
def encode(points: Sequence[TrackPoint]) -> dict[str, list[int]]:
    """Points as delta-encoded whole numbers: microdegrees, milliseconds since the epoch,
    decimetres of accuracy (-1 for none); the first value of each list is absolute."""
    lon = [round(p.lon * MICRODEGREES) for p in points]
    lat = [round(p.lat * MICRODEGREES) for p in points]
    at = [_milliseconds(p.at) for p in points]
    accuracy = [-1 if p.accuracy_m is None else round(p.accuracy_m * 10) for p in points]
    return {"lon": _deltas(lon), "lat": _deltas(lat), "at": _deltas(at), "acc": accuracy}


def decode(encoded: Mapping[str, Sequence[int]]) -> list[TrackPoint]:
    lon = list(accumulate(encoded["lon"]))
    lat = list(accumulate(encoded["lat"]))
    at = list(accumulate(encoded["at"]))
    return [
        TrackPoint(
            lon=x / MICRODEGREES,
            lat=y / MICRODEGREES,
            at=datetime.fromtimestamp(ms / 1000, UTC),
            accuracy_m=None if acc < 0 else acc / 10,
        )
        for x, y, ms, acc in zip(lon, lat, at, encoded["acc"], strict=True)
    ]


def _deltas(values: list[int]) -> list[int]:
    return values[:1] + [b - a for a, b in pairwise(values)]


def _milliseconds(moment: datetime) -> int:
    delta = moment.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return delta.days * 86_400_000 + delta.seconds * 1000 + delta.microseconds // 1000
