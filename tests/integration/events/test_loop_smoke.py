import pytest

from tests.integration.events.conftest import (
    POLICE_STATION_A,
    TOWNSHIP_A_CENTRE,
    VILLAGE_A_CENTRE,
    WORKER_A1,
)
from tests.population_data import GRID_A1, TOWNSHIP_A

pytestmark = pytest.mark.integration


def test_a_case_runs_the_whole_loop(county, as_user, department_tap):
    police = department_tap(f"incident.*.{TOWNSHIP_A}-police-station.#")
    worker = as_user(WORKER_A1).events
    reported = worker.report_incident(
        {"category": "02.01", "description": "可疑包裹", "location": [102.505, 24.305]}, "k1"
    )
    case = reported["incident"]
    assert case["grid_code"] == GRID_A1 and case["state"] == "reported"
    village = as_user(VILLAGE_A_CENTRE).events
    case = village.act(case["id"], "accept", 1, "a1")
    case = village.act(case["id"], "register", 2, "a2")
    case = village.act(case["id"], "escalate", 3, "a3", {"reason": "派出所处置"})
    township = as_user(TOWNSHIP_A_CENTRE).events
    case = township.act(
        case["id"],
        "dispatch",
        case["version"],
        "t1",
        {"department_code": f"{TOWNSHIP_A}-police-station"},
    )
    handler = as_user(POLICE_STATION_A).events
    case = handler.act(case["id"], "sign", case["version"], "h1")
    case = handler.act(case["id"], "feedback", case["version"], "h2", {"result": "已处置"})
    case = worker.act(case["id"], "verify", case["version"], "w1", {"passed": True})
    case = township.act(case["id"], "close", case["version"], "t2")
    assert case["state"] == "closed"
    keys = [key.split(".")[1] for key, _ in police()]
    assert keys == ["dispatched", "signed", "handled", "verified", "closed"]
