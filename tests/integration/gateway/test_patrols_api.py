"""/api/v1/patrols over HTTP against the real services: the phone's offline-first steps
(PUT the patrol, PUT track pieces, POST finish), problem+json naming the field, scope,
an incident and a visit linked to the patrol, and the assessment counting it."""

import uuid
from datetime import timedelta

import pytest

from devstack.processes import wait_until
from gridwork_common.clock import CHINA_TIME
from tests.conftest import PINNED_AT
from tests.population_data import GRID_A1, GRID_A2, TOWNSHIP_A, random_resident_ids

pytestmark = pytest.mark.integration

API = "/api/v1"
THIS_MONTH = PINNED_AT.astimezone(CHINA_TIME).strftime("%Y-%m")
PROBLEM = "application/problem+json"


@pytest.fixture
def worker(client, token, county):
    """worker-a1's phone: JSON calls with its token."""

    class Phone:
        headers = {"Authorization": f"Bearer {token('worker-a1')}"}

        def put(self, path, body):
            return client.put(f"{API}{path}", headers=self.headers, json=body)

        def post(self, path, body, key=None):
            headers = {**self.headers, **({"Idempotency-Key": key} if key else {})}
            return client.post(f"{API}{path}", headers=headers, json=body)

        def get(self, path, **query):
            return client.get(f"{API}{path}", headers=self.headers, query_string=query)

    return Phone()


def points(start, count, lon=102.502, lat=24.305, step=0.0001, every_s=10):
    return [
        {
            "lon": round(lon + i * step, 6),
            "lat": lat,
            "at": (start + timedelta(seconds=i * every_s)).isoformat(),
            "accuracy_m": 4.5,
        }
        for i in range(count)
    ]


def test_the_phone_starts_tracks_and_finishes_a_patrol_idempotently(worker, as_user, clock):
    patrol_id = str(uuid.uuid4())
    started = clock() - timedelta(hours=1)
    body = {"started_at": started.isoformat()}

    first = worker.put(f"/patrols/{patrol_id}", body)
    assert first.status_code == 201, first.get_json()
    again = worker.put(f"/patrols/{patrol_id}", body)
    assert again.status_code == 200 and again.get_json() == first.get_json()
    conflict = worker.put(f"/patrols/{patrol_id}", {**body, "grid_code": GRID_A2})
    assert conflict.status_code == 409 and conflict.mimetype == PROBLEM
    assert conflict.get_json()["field"] == "grid_code"

    piece_1 = points(started + timedelta(minutes=5), 30, lon=102.505)
    piece_0 = points(started, 30)
    assert worker.put(f"/patrols/{patrol_id}/track/1", {"points": piece_1}).status_code == 200
    stored = worker.put(f"/patrols/{patrol_id}/track/0", {"points": piece_0})
    assert stored.get_json() == {"patrol_id": patrol_id, "piece": 0, "point_count": 30}
    assert worker.put(f"/patrols/{patrol_id}/track/0", {"points": piece_0}).get_json() == (
        stored.get_json()
    )
    other = worker.put(f"/patrols/{patrol_id}/track/0", {"points": piece_1})
    assert other.status_code == 409 and other.get_json()["field"] == "points"

    ended = {"ended_at": (started + timedelta(minutes=45)).isoformat()}
    finished = worker.post(f"/patrols/{patrol_id}/finish", ended)
    assert finished.status_code == 200, finished.get_json()
    patrol = finished.get_json()
    assert worker.post(f"/patrols/{patrol_id}/finish", ended).get_json() == patrol
    assert patrol["state"] == "finished" and patrol["duration_s"] == 45 * 60
    assert patrol["point_count"] == 60 and patrol["grid_codes"] == [GRID_A1]
    assert patrol["track"]["type"] == "LineString"
    assert worker.get(f"/patrols/{patrol_id}").get_json() == patrol
    mine = worker.get("/patrols", worker="me", period=THIS_MONTH).get_json()
    assert [item["id"] for item in mine["items"]] == [patrol_id]

    # out of scope: 404 exactly as elsewhere; a role without patrols: 403
    outsider = as_user("township-b").get(f"{API}/patrols/{patrol_id}")
    assert outsider.status_code == 404 and outsider.mimetype == PROBLEM
    assert as_user("police-a").get(f"{API}/patrols").status_code == 403
    layer = as_user("township-a").get(
        f"{API}/patrol-tracks?territory={TOWNSHIP_A}&period={THIS_MONTH}"
    )
    assert [feature["id"] for feature in layer.get_json()["features"]] == [patrol_id]

    # the assessment counts it: for the grid (one of its two grids patrolled in the
    # village) and for the worker on the scorecards
    leader = as_user("leader")
    indicators = f"{API}/assessment/indicators?territory={GRID_A1}&period={THIS_MONTH}"

    def counted() -> bool:
        return leader.get(indicators).get_json().get("patrols") == 1

    wait_until(counted, timeout_s=15, what="the patrol counted by the assessment")
    grid = leader.get(indicators).get_json()
    assert (grid["patrol_seconds"], grid["patrol_distance_m"]) == (
        2700,
        round(patrol["distance_m"]),
    )
    assert grid["rates"]["patrol_coverage"] == 1.0
    village = leader.get(
        f"{API}/assessment/indicators?territory={GRID_A1[:12]}&period={THIS_MONTH}"
    ).get_json()
    assert (village["grids_patrolled"], village["grids_total"]) == (1, 2)
    board = leader.get(f"{API}/assessment/scorecards?level=worker&period={THIS_MONTH}").get_json()
    (card,) = [item for item in board["items"] if item["subject"] == "worker-a1"]
    assert card["scorecard"]["parts"]["patrols"] == 5.0  # the one grid worked in, patrolled


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/patrols/{id}", {"started_at": "2026-11-18T10:00:00"}, "started_at"),  # no offset
        ("/patrols/{id}", {"started_at": "2026-11-18T10:00:00+08:00", "grid": "x"}, "grid"),
        (
            "/patrols/{id}/track/0",
            {"points": [{"lon": 200, "lat": 24.3, "at": "x"}]},
            "points.0.lon",
        ),
        ("/patrols/{id}/track/zero", {"points": []}, "piece"),
        ("/patrols/{id}/track/0", {"points": [{"lon": 102.5, "lat": 24.3}] * 501}, "points"),
        ("/patrols/not-a-uuid", {"started_at": "2026-11-18T10:00:00+08:00"}, "patrol_id"),
    ],
)
def test_bad_input_is_a_problem_naming_the_field(worker, path, body, field):
    response = worker.put(path.format(id=uuid.uuid4()), body)
    assert response.status_code in (400, 422), response.get_json()
    assert response.mimetype == PROBLEM
    assert response.get_json()["field"] == field


def test_an_incident_and_a_visit_made_on_the_patrol_are_listed_on_it(worker, as_user, clock):
    patrol_id = str(uuid.uuid4())
    started = clock() - timedelta(minutes=40)
    # offline, the phone reported the incident before the patrol itself was synced
    report = {
        "category": "04.01",
        "description": "巡查发现垃圾乱堆",
        "location": [102.505, 24.305],
        "patrol_id": patrol_id,
    }
    incident = worker.post("/incidents", report, key=f"report-{patrol_id}")
    assert incident.status_code == 201, incident.get_json()
    incident_id = incident.get_json()["incident"]["id"]
    assert incident.get_json()["incident"]["patrol_id"] == patrol_id
    assert worker.put(f"/patrols/{patrol_id}", {"started_at": started.isoformat()}).status_code == (
        201
    )

    admin = as_user("admin")
    resident = admin.post(
        f"{API}/residents",
        key=f"resident-{patrol_id}",
        json={
            "id_number": random_resident_ids(1, seed=61)[0],
            "name": "巡查走访",
            "grid_code": GRID_A1,
        },
    ).get_json()
    membership = worker.post(
        "/groups",
        {
            "resident_id": resident["id"],
            "group": "elderly_alone",
            "risk_level": "medium",
            "responsible_worker_id": "worker-a1",
        },
        key=f"group-{patrol_id}",
    ).get_json()
    visit = worker.post(
        "/visits",
        {
            "membership_id": membership["id"],
            "at": (clock() - timedelta(minutes=10)).isoformat(),
            "location": {"type": "Point", "coordinates": [102.505, 24.305]},
            "patrol_id": patrol_id,
        },
        key=f"visit-{patrol_id}",
    )
    assert visit.status_code == 201, visit.get_json()
    visit_id = visit.get_json()["id"]

    def linked() -> bool:
        return worker.get(f"/patrols/{patrol_id}").get_json()["incident_ids"] == [incident_id]

    wait_until(linked, timeout_s=15, what="the incident listed on the patrol")
    assert worker.get(f"/patrols/{patrol_id}").get_json()["visit_ids"] == [visit_id]
    worker.put(f"/patrols/{patrol_id}/track/0", {"points": points(started, 20)})
    finished = worker.post(
        f"/patrols/{patrol_id}/finish", {"ended_at": (started + timedelta(minutes=30)).isoformat()}
    ).get_json()
    assert (finished["incident_ids"], finished["visit_ids"]) == ([incident_id], [visit_id])


def test_a_patrol_that_never_moved_is_an_integrity_signal(worker, as_user, clock):
    patrol_id = str(uuid.uuid4())
    started = clock() - timedelta(minutes=50)
    worker.put(f"/patrols/{patrol_id}", {"started_at": started.isoformat()})
    worker.put(f"/patrols/{patrol_id}/track/0", {"points": points(started, 30, step=0.000001)})
    ended = {"ended_at": (started + timedelta(minutes=30)).isoformat()}
    assert worker.post(f"/patrols/{patrol_id}/finish", ended).get_json()["flags"] == ["stationary"]
    leader = as_user("leader")
    flags_url = f"{API}/assessment/integrity-flags?period={THIS_MONTH}"

    def signalled() -> bool:
        items = leader.get(flags_url).get_json()["items"]
        return any(flag.get("patrol_id") == patrol_id for flag in items)

    wait_until(signalled, timeout_s=15, what="the stationary patrol among the integrity flags")
    items = leader.get(flags_url).get_json()["items"]
    (flag,) = [f for f in items if f.get("patrol_id") == patrol_id]
    assert (flag["signal"], flag["worker_id"], flag["grid_code"]) == (
        "patrol_stationary",
        "worker-a1",
        GRID_A1,
    )
