"""The patrol track maths: distance, simplification, the speed and stationary checks and
the compact encoding, as properties over generated tracks and hand-worked examples."""

import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.population.domain import tracks
from services.population.domain.tracks import TrackPoint

START = datetime(2026, 11, 18, 2, 0, tzinfo=UTC)
# About 111.2 km per degree of latitude on the mean sphere.
METRES_PER_DEGREE_LAT = math.radians(1) * tracks.EARTH_RADIUS_M


def walk(steps, start=START, lon=102.5, lat=24.3, every_s=10):
    """A track from (dlon, dlat) steps in microdegrees, a point every `every_s` seconds."""
    points = [TrackPoint(lon, lat, start)]
    for index, (dx, dy) in enumerate(steps, 1):
        lon, lat = lon + dx / 1e6, lat + dy / 1e6
        points.append(TrackPoint(lon, lat, start + timedelta(seconds=index * every_s)))
    return points


steps = st.lists(
    st.tuples(st.integers(-2000, 2000), st.integers(-2000, 2000)), min_size=0, max_size=60
)


# ------------------------------------------------------------------ distance
def test_a_tenth_of_a_degree_north_is_about_eleven_kilometres():
    a = TrackPoint(102.5, 24.3, START)
    b = TrackPoint(102.5, 24.4, START)
    assert tracks.haversine_m(a, b) == pytest.approx(0.1 * METRES_PER_DEGREE_LAT, rel=1e-9)


@given(steps, st.integers(0, 60))
def test_the_distance_of_a_split_track_is_the_sum_of_its_parts(moves, cut):
    points = walk(moves)
    cut = min(cut, len(points) - 1)
    # the piece boundary point belongs to both halves, as consecutive pieces join
    whole = tracks.distance_m(points)
    halves = tracks.distance_m(points[: cut + 1]) + tracks.distance_m(points[cut:])
    assert whole == pytest.approx(halves, abs=1e-6)


@given(steps)
def test_distance_is_never_shorter_than_the_straight_line(moves):
    points = walk(moves)
    straight = tracks.haversine_m(points[0], points[-1])
    assert tracks.distance_m(points) >= straight - 1e-6


def test_in_order_sorts_by_time_and_drops_repeats():
    points = walk([(100, 0), (100, 0), (100, 0)])
    shuffled = [points[2], points[0], points[3], points[1], points[2]]
    assert tracks.in_order(shuffled) == points


# ------------------------------------------------------------------ simplification
@given(steps, st.floats(0, 200))
@settings(max_examples=150)
def test_simplification_keeps_the_ends_and_stays_within_tolerance(moves, tolerance):
    points = walk(moves)
    kept = tracks.simplified(points, tolerance)
    assert kept[0] == points[0] and kept[-1] == points[-1]
    assert all(point in points for point in kept)
    assert [points.index(p) for p in kept] == sorted(points.index(p) for p in kept)
    for point in points:
        assert tracks.distance_to_polyline_m(point, kept) <= tolerance + 1e-6


def test_a_straight_walk_simplifies_to_its_two_ends():
    points = walk([(0, 100)] * 50)
    assert tracks.simplified(points, 1.0) == [points[0], points[-1]]


def test_a_corner_is_kept():
    points = walk([(0, 500)] * 5 + [(500, 0)] * 5)
    assert points[5] in tracks.simplified(points, 5.0)


def test_the_line_string_drops_repeated_positions():
    points = walk([(0, 0), (100, 0), (0, 0)])
    assert tracks.line_string(points)["coordinates"] == [[102.5, 24.3], [102.5001, 24.3]]
    assert tracks.line_string(walk([(0, 0)])) is None


# ------------------------------------------------------------------ integrity checks
def test_walking_pace_is_not_too_fast():
    # 10 m every 10 s: 3.6 km/h for ten minutes
    walker = walk([(0, 90)] * 60)
    assert not tracks.too_fast(walker)
    assert tracks.flags(walker) == []


def test_a_sustained_ride_is_too_fast():
    # about 150 m every 10 s (54 km/h) for two minutes
    rider = walk([(0, 1350)] * 12)
    assert tracks.too_fast(rider)
    assert tracks.TOO_FAST in tracks.flags(rider)


def test_a_single_gps_jump_is_not_sustained():
    # walking, one 500 m jump within 5 s (a bad fix), walking on
    points = walk([(0, 90)] * 10)
    jump = TrackPoint(points[-1].lon, points[-1].lat + 0.0045, points[-1].at + timedelta(seconds=5))
    later = walk([(0, 90)] * 10, start=jump.at + timedelta(seconds=10), lat=jump.lat)
    assert not tracks.too_fast([*points, jump, *later])


def test_fast_stretches_broken_by_a_stop_do_not_add_up():
    fast = [(0, 1350)] * 3  # 30 s fast
    stop = [(0, 0)]
    assert not tracks.too_fast(walk(fast + stop + fast + stop + fast))


def test_staying_within_fifty_metres_is_stationary():
    # wandering around a point, never more than about 30 m away
    points = walk([(200, 0), (-200, 200), (-200, -200), (200, 0)] * 10)
    assert tracks.stationary(points)
    assert tracks.flags(points) == [tracks.STATIONARY]
    assert tracks.stationary([])


def test_leaving_the_spot_is_not_stationary():
    assert not tracks.stationary(walk([(0, 90)] * 10))  # 90 m away in the end


# ------------------------------------------------------------------ encoding
microdegrees = st.integers(-180 * 10**6, 180 * 10**6)
raw_points = st.lists(
    st.tuples(
        microdegrees,
        st.integers(-90 * 10**6, 90 * 10**6),
        st.integers(0, 4_000_000_000_000),  # milliseconds since 1970, to the 2090s
        st.one_of(st.none(), st.integers(0, 100_000)),  # decimetres
    ),
    max_size=80,
)


@given(raw_points)
def test_encoding_round_trips(raw):
    points = [
        TrackPoint(
            lon / 1e6,
            lat / 1e6,
            datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms),
            None if acc is None else acc / 10,
        )
        for lon, lat, ms, acc in raw
    ]
    encoded = tracks.encode(points)
    assert all(isinstance(v, int) for values in encoded.values() for v in values)
    assert tracks.decode(encoded) == points


def test_encoding_is_compact_for_a_walk():
    points = walk([(30, 40)] * 499, every_s=5)
    encoded = tracks.encode(points)
    assert set(encoded["lon"][1:]) == {30} and set(encoded["at"][1:]) == {5000}
