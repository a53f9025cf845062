"""Patrols in the population service, on a real broker and mongod: idempotent starts,
track pieces out of order and twice, a finish announced once (a late piece as an
update), scope, visits linked to a patrol."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from nameko.exceptions import RemoteError

from gridwork_common.context import CallerContext
from services.population.domain import tracks
from services.population.domain.tracks import TrackPoint
from tests.conftest import PINNED_AT
from tests.integration.population.conftest import LEADER, OPERATOR_B, WORKER_A1
from tests.integration.population.test_groups_and_visits import events_named, register, visit
from tests.population_data import GRID_A1, GRID_A2, random_resident_ids

pytestmark = pytest.mark.integration

WORKER_A2 = CallerContext(user_id="worker-a2", roles=("grid_worker",), scope=GRID_A2)
# another grid worker of GRID_A1: sees the patrol, may not add to it
COLLEAGUE_A1 = CallerContext(user_id="worker-a1b", roles=("grid_worker",), scope=GRID_A1)
START = PINNED_AT.astimezone(UTC) - timedelta(hours=2)


def walk(start: datetime, lon: float, lat: float, count: int, dlon: float = 0.0001, every_s=10):
    """`count` points heading east from (lon, lat), 0.0001 degree (about 10 m) a step."""
    return [
        {
            "lon": round(lon + i * dlon, 6),
            "lat": lat,
            "at": (start + timedelta(seconds=i * every_s)).isoformat(),
            "accuracy_m": 5.0,
        }
        for i in range(count)
    ]


def distance_of(*pieces) -> float:
    points = [
        TrackPoint(p["lon"], p["lat"], datetime.fromisoformat(p["at"]))
        for piece in pieces
        for p in piece
    ]
    return round(tracks.distance_m(tracks.in_order(points)), 1)


def remote(call, *args, **kwargs) -> RemoteError:
    with pytest.raises(RemoteError) as caught:
        call(*args, **kwargs)
    return caught.value


def test_a_start_repeated_answers_the_same_patrol_and_another_body_conflicts(as_user, county):
    worker = as_user(WORKER_A1)
    patrol_id = str(uuid.uuid4())
    first = worker.start_patrol(patrol_id, START.isoformat())
    again = worker.start_patrol(patrol_id, START.astimezone(PINNED_AT.tzinfo).isoformat())
    assert first["created"] is True and again["created"] is False
    assert first["patrol"] == again["patrol"]
    patrol = first["patrol"]
    assert (patrol["worker_id"], patrol["grid_code"], patrol["state"]) == (
        "worker-a1",
        GRID_A1,
        "running",
    )
    assert patrol["point_count"] == 0 and patrol["track"] is None

    moved = remote(worker.start_patrol, patrol_id, (START + timedelta(minutes=1)).isoformat())
    assert moved.exc_type == "Conflict" and moved.value.startswith("started_at:")
    elsewhere = remote(worker.start_patrol, patrol_id, START.isoformat(), GRID_A2)
    assert elsewhere.exc_type == "Conflict" and elsewhere.value.startswith("grid_code:")
    # a grid outside the worker's scope, a bad id, a leader (no patrols) are refused
    other_grid = remote(worker.start_patrol, str(uuid.uuid4()), START.isoformat(), GRID_A2)
    assert other_grid.exc_type == "NotFound"
    assert remote(worker.start_patrol, "not-a-uuid", START.isoformat()).exc_type == "InvalidInput"
    assert remote(as_user(LEADER).start_patrol, str(uuid.uuid4()), START.isoformat()).exc_type == (
        "Forbidden"
    )


def test_pieces_out_of_order_and_twice_make_one_track(as_user, county):
    worker = as_user(WORKER_A1)
    patrol_id = str(uuid.uuid4())
    worker.start_patrol(patrol_id, START.isoformat())
    first = walk(START, 102.501, 24.305, 20)
    second = walk(START + timedelta(seconds=200), 102.503, 24.305, 20)

    assert worker.put_patrol_track(patrol_id, 1, second)["point_count"] == 20
    assert worker.put_patrol_track(patrol_id, 0, first) == {
        "patrol_id": patrol_id,
        "piece": 0,
        "point_count": 20,
    }
    assert worker.put_patrol_track(patrol_id, 1, second)["point_count"] == 20  # again
    changed = remote(worker.put_patrol_track, patrol_id, 1, first)
    assert changed.exc_type == "Conflict" and changed.value.startswith("points:")

    patrol = worker.get_patrol(patrol_id)
    assert patrol["point_count"] == 40
    assert patrol["distance_m"] == distance_of(first, second)
    assert 350 < patrol["distance_m"] < 450  # 39 steps of about 10 m
    # a straight walk east: the displayed track is its two ends
    assert patrol["track"] == {
        "type": "LineString",
        "coordinates": [[102.501, 24.305], [102.5049, 24.305]],
    }
    assert patrol["flags"] == []  # judged once finished
    # a colleague of the same grid sees it but cannot add to it; others do not see it
    assert as_user(COLLEAGUE_A1).get_patrol(patrol_id)["id"] == patrol_id
    assert remote(as_user(COLLEAGUE_A1).put_patrol_track, patrol_id, 2, first).exc_type == (
        "NotFound"
    )
    for outsider in (WORKER_A2, OPERATOR_B):
        assert remote(as_user(outsider).get_patrol, patrol_id).exc_type == "NotFound"
        listed = as_user(outsider).list_patrols()
        assert patrol_id not in [item["id"] for item in listed["items"]]
    assert remote(worker.put_patrol_track, str(uuid.uuid4()), 0, first).exc_type == "NotFound"
    too_many = remote(worker.put_patrol_track, patrol_id, 3, walk(START, 102.5, 24.3, 501))
    assert too_many.exc_type == "InvalidInput" and too_many.value.startswith("points:")


def test_the_finish_is_announced_once_and_a_late_piece_as_an_update(as_user, county, events_tap):
    worker = as_user(WORKER_A1)
    patrol_id = str(uuid.uuid4())
    worker.start_patrol(patrol_id, START.isoformat())
    # from GRID_A1 into GRID_A2 (the border is lon 102.51)
    across = walk(START, 102.508, 24.305, 40)
    worker.put_patrol_track(patrol_id, 0, across)
    ended = START + timedelta(minutes=30)

    finished = worker.finish_patrol(patrol_id, ended.isoformat())
    assert worker.finish_patrol(patrol_id, ended.isoformat()) == finished
    late_end = remote(worker.finish_patrol, patrol_id, (ended + timedelta(minutes=1)).isoformat())
    assert late_end.exc_type == "Conflict" and late_end.value.startswith("ended_at:")
    assert finished["state"] == "finished"
    assert finished["duration_s"] == 1800
    assert finished["grid_codes"] == [GRID_A1, GRID_A2]
    assert finished["flags"] == []

    announced = events_named(events_tap, "patrol.finished", 1)
    assert len(announced) == 1
    data = announced[0]["data"]
    assert data == {
        "patrol_id": patrol_id,
        "worker_id": "worker-a1",
        "grid_code": GRID_A1,
        "grid_codes": [GRID_A1, GRID_A2],
        "distance_m": finished["distance_m"],
        "duration_s": 1800,
        "started_at": START.isoformat(),
        "ended_at": ended.isoformat(),
        "point_count": 40,
        "flags": [],
        "incident_ids": [],
        "visit_ids": [],
    }

    # points the phone kept offline arrive after the finish: figures change, announced
    # as an update, never as a second finish
    late = walk(START + timedelta(seconds=400), 102.5119, 24.305, 10)
    worker.put_patrol_track(patrol_id, 1, late)
    worker.put_patrol_track(patrol_id, 1, late)
    updated = worker.get_patrol(patrol_id)
    assert updated["point_count"] == 50
    assert updated["distance_m"] == distance_of(across, late) > finished["distance_m"]
    seen = events_named(events_tap, ("patrol.finished", "patrol.updated"), 1)
    assert [event["type"] for event in seen] == ["gridwork.patrol.updated"]
    assert seen[0]["data"]["point_count"] == 50


def test_a_patrol_that_never_moves_or_moves_by_car_is_flagged(as_user, county):
    worker = as_user(WORKER_A1)
    idle, ride = str(uuid.uuid4()), str(uuid.uuid4())
    for patrol_id in (idle, ride):
        worker.start_patrol(patrol_id, START.isoformat())
    worker.put_patrol_track(idle, 0, walk(START, 102.505, 24.305, 30, dlon=0.000001))
    # 0.0015 degree (about 150 m) every 10 s: 54 km/h for three minutes
    worker.put_patrol_track(ride, 0, walk(START, 102.501, 24.302, 18, dlon=0.0015))
    end = (START + timedelta(minutes=10)).isoformat()
    assert worker.finish_patrol(idle, end)["flags"] == ["stationary"]
    assert worker.finish_patrol(ride, end)["flags"] == ["too_fast"]


def test_lists_filter_by_worker_grid_and_month_in_pages(as_user, county, clock):
    worker = as_user(WORKER_A1)
    ids = sorted(str(uuid.uuid4()) for _ in range(3))
    for patrol_id in ids:
        worker.start_patrol(patrol_id, START.isoformat())
    month = PINNED_AT.strftime("%Y-%m")
    first = worker.list_patrols(worker_id="me", period=month, limit=2)
    second = worker.list_patrols(worker_id="me", period=month, limit=2, cursor=first["next_cursor"])
    assert [p["id"] for p in first["items"] + second["items"]] == ids
    assert second["next_cursor"] is None
    assert as_user(LEADER).list_patrols(grid_code=GRID_A1)["items"]
    assert as_user(LEADER).list_patrols(grid_code=GRID_A2)["items"] == []
    assert worker.list_patrols(period="2020-01")["items"] == []
    assert remote(worker.list_patrols, period="November").exc_type == "InvalidInput"
    tracks_layer = as_user(LEADER).patrol_tracks(GRID_A1[:6], month)
    assert tracks_layer == {"type": "FeatureCollection", "features": []}  # no tracks yet


def test_a_visit_made_on_a_patrol_is_listed_on_it(as_user, county, clock):
    worker = as_user(WORKER_A1)
    patrol_id = str(uuid.uuid4())
    worker.start_patrol(patrol_id, START.isoformat())
    resident = register(county, random_resident_ids(1, seed=23)[0])
    membership = worker.flag_group(resident["id"], "elderly_alone", "high", "worker-a1")
    at = clock() - timedelta(minutes=5)
    recorded = worker.record_visit(visit(membership["id"], at, patrol_id=patrol_id.upper()))
    assert recorded["patrol_id"] == patrol_id
    worker.record_visit(visit(membership["id"], at, patrol_id=patrol_id, visit_id=recorded["id"]))
    assert worker.get_patrol(patrol_id)["visit_ids"] == [recorded["id"]]
    bad = remote(worker.record_visit, visit(membership["id"], at, patrol_id="x"))
    assert bad.exc_type == "InvalidInput" and bad.value.startswith("patrol_id:")
