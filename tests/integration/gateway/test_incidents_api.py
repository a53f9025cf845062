"""The incidents route family over HTTP (Flask test client) against the real population and
events services: the loop as each role drives it, the errors a client can act on,
idempotent retries, scope, worklists, search, and the county's incident setup."""

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import pytest

from services.gateway import store
from services.gateway.routes.incidents.cases import (
    DuplicateCandidate,
    ExtensionRequest,
    Incident,
    MergeResult,
    ReportResult,
    Timeline,
    TimelineEntry,
)
from services.gateway.routes.incidents.county_setup import (
    Catalogue,
    CatalogueEntry,
    DeadlinePolicy,
    Department,
    WorkingCalendar,
)
from services.gateway.routes.incidents.queries import IncidentCounts, IncidentPage
from services.gateway.store import gateway_db
from tests.population_data import COUNTY, GRID_A1, TOWNSHIP_A, TOWNSHIP_B, VILLAGE_A

pytestmark = pytest.mark.integration

API = "/api/v1"
POINT_A1 = [102.505, 24.305]  # inside GRID_A1 (lon 102.50-102.51, lat 24.30-24.31)
POINT_BEIJING = [116.397, 39.909]
POLICE_STATION_A = f"{TOWNSHIP_A}-police-station"
PROBLEM_JSON = "application/problem+json"


def new_key() -> str:
    return uuid.uuid4().hex


def ids(page: dict) -> set[str]:
    return {item["id"] for item in page["items"]}


def described(model, body: dict) -> None:
    """The response model lists every field the service returns, with the right types."""
    parsed = model.model_validate(body)
    assert not parsed.model_extra, sorted(parsed.model_extra)


def problem_of(response, status: int) -> dict:
    assert response.status_code == status, response.get_json()
    assert response.mimetype == PROBLEM_JSON
    body = response.get_json()
    assert body["status"] == status
    return body


class Loop:
    """Drives cases over HTTP as the demo users."""

    def __init__(self, as_user):
        self.as_user = as_user

    def report_response(self, username="worker-a1", key=None, **fields):
        body = {"category": "02.01", "description": "可疑包裹", "location": POINT_A1, **fields}
        return self.as_user(username).post(f"{API}/incidents", key=key or new_key(), json=body)

    def report(self, username="worker-a1", **fields) -> dict:
        response = self.report_response(username, **fields)
        assert response.status_code == 201, response.get_json()
        return response.get_json()["incident"]

    def post(self, username, case, action, key=None, version=None, **fields):
        body = {"expected_version": case["version"] if version is None else version, **fields}
        return self.as_user(username).post(
            f"{API}/incidents/{case['id']}/{action}", key=key or new_key(), json=body
        )

    def act(self, username, case, action, **fields) -> dict:
        response = self.post(username, case, action, **fields)
        assert response.status_code == 200, response.get_json()
        acted = response.get_json()
        assert acted["version"] == case["version"] + 1
        return acted

    def get(self, username, path, **kwargs):
        return self.as_user(username).get(f"{API}{path}", **kwargs)

    def worklist(self, username, kind) -> set[str]:
        response = self.get(username, f"/incidents/worklists/{kind}")
        assert response.status_code == 200, response.get_json()
        return ids(response.get_json())

    def to_dispatched(self, case: dict) -> dict:
        """Accepted, registered and escalated by village A; dispatched by township A."""
        case = self.act("village-a", case, "accept")
        case = self.act("village-a", case, "register")
        case = self.act("village-a", case, "escalate", reason="派出所处置")
        return self.act("township-a", case, "dispatch", department_code=POLICE_STATION_A)


@pytest.fixture
def loop(county, as_user):
    return Loop(as_user)


# ---------------------------------------------------------------- the loop


def test_a_case_runs_the_whole_loop_by_the_right_users(loop):
    reported = loop.report_response(description="路口可疑包裹", media_ids=["photo-1"])
    assert reported.status_code == 201
    result = reported.get_json()
    case = result["incident"]
    described(ReportResult, result)
    described(Incident, case)
    assert result["possible_duplicates"] == []
    assert (case["state"], case["version"], case["grid_code"]) == ("reported", 1, GRID_A1)
    assert case["reporter_id"] == "worker-a1" and case["owning_centre"] == VILLAGE_A
    assert case["media_ids"] == ["photo-1"] and case["location"] == POINT_A1

    assert set(loop.get("village-a", f"/incidents/{case['id']}").get_json()["allowed_actions"]) >= {
        "accept",
        "reject",
    }
    case = loop.act("village-a", case, "accept", comment="受理")
    assert (case["state"], case["version"]) == ("accepted", 2)
    case = loop.act("village-a", case, "register")
    assert (case["state"], case["version"]) == ("registered", 3)
    case = loop.act("village-a", case, "escalate", reason="需派出所处置")
    assert (case["state"], case["owning_centre"]) == ("registered", TOWNSHIP_A)
    assert case["escalated"] is True and case["escalation_path"] == [VILLAGE_A, TOWNSHIP_A]
    case = loop.act("township-a", case, "dispatch", department_code=POLICE_STATION_A)
    assert (case["state"], case["department"], case["version"]) == (
        "dispatched",
        POLICE_STATION_A,
        5,
    )
    case = loop.act("police-a", case, "sign")
    assert case["state"] == "handling"
    case = loop.act("police-a", case, "feedback", result="已处置", media_ids=["photo-2"])
    assert (case["state"], case["result"]) == ("awaiting_verification", "已处置")
    case = loop.act("worker-a1", case, "verify", passed=True, comment="现场核实")
    assert case["state"] == "verified"
    case = loop.act("township-a", case, "close")
    assert case["state"] == "closed" and case["closed_at"] is not None
    case = loop.act("worker-a1", case, "evaluate", satisfaction=5, comment="满意")
    assert (case["state"], case["satisfaction"], case["version"]) == ("evaluated", 5, 10)

    shown = loop.get("police-a", f"/incidents/{case['id']}")
    assert shown.status_code == 200 and shown.get_json()["version"] == 10
    timeline = loop.get("worker-a1", f"/incidents/{case['id']}/timeline").get_json()["items"]
    assert [entry["action"] for entry in timeline] == [
        "report",
        "accept",
        "register",
        "escalate",
        "dispatch",
        "sign",
        "feedback",
        "verify",
        "close",
        "evaluate",
    ]
    assert [entry["actor_id"] for entry in timeline][4:6] == ["township-a", "police-a"]
    assert timeline[0]["from_state"] is None and timeline[-1]["to_state"] == "evaluated"
    assert timeline[4]["details"] == {"department": POLICE_STATION_A}
    described(Incident, case)
    described(Timeline, {"items": timeline})
    for entry in timeline:
        described(TimelineEntry, entry)


def test_the_side_roads_of_the_loop(loop, clock):
    case = loop.to_dispatched(loop.report())
    case = loop.act("police-a", case, "return", reason="不属本所管辖")
    assert (case["state"], case["department"], case["return_count"]) == ("returned", None, 1)
    case = loop.act("township-a", case, "dispatch", department_code=POLICE_STATION_A)
    case = loop.act("police-a", case, "sign")
    case = loop.act("police-a", case, "request-extension", hours=7, reason="需要调查取证")
    assert case["pending_extension"]["hours"] == 7
    described(ExtensionRequest, case["pending_extension"])
    described(Incident, case)
    assert (
        "decide_extension"
        in loop.get("township-a", f"/incidents/{case['id']}").get_json()["allowed_actions"]
    )
    due_before = datetime.fromisoformat(case["stage_due"])
    case = loop.act("township-a", case, "decide-extension", approve=True)
    assert case["pending_extension"] is None and case["approved_extensions"] == 1
    assert datetime.fromisoformat(case["stage_due"]) > due_before

    case = loop.act("township-a", case, "suspend", reason="等待鉴定结果")
    assert (case["state"], case["resume_state"]) == ("suspended", "handling")
    case = loop.act("township-a", case, "resume")
    assert case["state"] == "handling"

    new_due = (clock() + timedelta(days=3)).replace(microsecond=0)
    case = loop.act("leader", case, "supervise", note="限期办结", new_due=new_due.isoformat())
    assert case["supervised"] is True and case["supervision_count"] == 1
    assert datetime.fromisoformat(case["stage_due"]) == new_due
    assert case["id"] in loop.worklist("leader", "supervised")

    case = loop.act("police-a", case, "feedback", result="已处置")
    case = loop.act("worker-a1", case, "verify", passed=False, comment="包裹仍在原处")
    assert (case["state"], case["rework_count"]) == ("handling", 1)

    spot = loop.report(category="04.01", resolved_on_spot=True, media_ids=["photo-after"])
    assert (spot["state"], spot["resolved_on_spot"]) == ("closed", True)
    no_photo = problem_of(loop.report_response(category="04.01", resolved_on_spot=True), 422)
    assert no_photo["field"] == "media_ids"
    phoned_in = loop.report("village-a", location=None, grid_code=GRID_A1, reporter_id="citizen-1")
    assert (phoned_in["grid_code"], phoned_in["reporter_id"]) == (GRID_A1, "citizen-1")

    other = loop.report(description="误报")
    other = loop.act("village-a", other, "reject", reason="invalid", comment="核实为误报")
    assert (other["state"], other["rejection_reason"]) == ("rejected", "invalid")


# ---------------------------------------------------------------- errors a client acts on


def test_illegal_transitions_and_stale_versions_are_409_naming_state_and_version(loop):
    case = loop.report()
    illegal = problem_of(loop.post("village-a", case, "close"), 409)
    assert illegal["title"] == "Illegal transition"
    assert "'reported'" in illegal["detail"] and "accept" in illegal["detail"]

    accepted = loop.act("village-a", case, "accept")
    stale = problem_of(loop.post("village-a", case, "register"), 409)  # decided on version 1
    assert stale["title"] == "Stale version"
    assert "version 2" in stale["detail"] and "1" in stale["detail"]
    assert loop.post("village-a", accepted, "register").status_code == 200


def test_the_wrong_user_is_403_and_a_case_outside_the_scope_is_404(loop):
    case = loop.report()
    by_role = problem_of(loop.post("worker-a1", case, "accept"), 403)
    assert "centre_operator" in by_role["detail"]
    by_centre = problem_of(loop.post("township-a", case, "accept"), 403)
    assert VILLAGE_A in by_centre["detail"]
    assert problem_of(loop.post("leader", case, "evaluate", satisfaction=3), 409)

    for path in ("", "/timeline", "/duplicates"):
        problem_of(loop.get("township-b", f"/incidents/{case['id']}{path}"), 404)
    problem_of(loop.get("police-a", f"/incidents/{case['id']}"), 404)  # not dispatched yet
    problem_of(loop.post("township-b", case, "supervise", note="督办"), 404)
    problem_of(loop.get("village-a", "/incidents/no-such-case"), 404)
    assert loop.get("township-a", f"/incidents/{case['id']}").status_code == 200


def test_bodies_are_checked_per_action_naming_the_field(loop):
    case = loop.report()
    missing = problem_of(
        loop.as_user("village-a").post(
            f"{API}/incidents/{case['id']}/accept", key=new_key(), json={}
        ),
        400,
    )
    assert missing["field"] == "expected_version"
    unknown = problem_of(loop.post("village-a", case, "accept", department_code="x"), 400)
    assert unknown["field"] == "department_code"
    satisfaction = problem_of(loop.post("worker-a1", case, "evaluate", satisfaction=9), 400)
    assert satisfaction["field"] == "satisfaction"
    naive = problem_of(
        loop.post("leader", case, "supervise", note="督办", new_due="2030-01-01"), 400
    )
    assert naive["field"] == "new_due"
    accepted = loop.act("village-a", case, "accept")
    registered = loop.act("village-a", accepted, "register")
    nowhere = problem_of(
        loop.post("village-a", registered, "dispatch", department_code=POLICE_STATION_A), 422
    )
    assert nowhere["field"] == "department_code" and VILLAGE_A in nowhere["detail"]


def test_a_report_outside_the_county_or_the_catalogue_is_422(loop):
    outside = problem_of(loop.report_response(location=POINT_BEIJING), 422)
    assert outside["field"] == "location" and outside["title"] == "Outside the territory"
    uncatalogued = problem_of(loop.report_response(category="99.01"), 422)
    assert uncatalogued["field"] == "category"
    not_a_point = problem_of(loop.report_response(location=[200, 24.3]), 400)
    assert not_a_point["field"].startswith("location")
    assert problem_of(loop.report_response("police-a"), 403)


# ---------------------------------------------------------------- idempotency


def test_a_retried_action_replays_the_first_answer(loop):
    case = loop.report()
    first = loop.post("village-a", case, "accept", key="accept-1", comment="受理")
    assert first.status_code == 200 and "Idempotent-Replayed" not in first.headers
    again = loop.post("village-a", case, "accept", key="accept-1", comment="受理")
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == first.get_json()
    assert loop.get("village-a", f"/incidents/{case['id']}").get_json()["version"] == 2

    different = problem_of(
        loop.post("village-a", case, "accept", key="accept-1", comment="另一个"), 422
    )
    assert different["field"] == "Idempotency-Key"
    elsewhere = problem_of(
        loop.post("village-a", case, "reject", key="accept-1", reason="invalid"), 422
    )
    assert elsewhere["field"] == "Idempotency-Key"

    no_key = loop.as_user("village-a").post(
        f"{API}/incidents/{case['id']}/register", json={"expected_version": 2}
    )
    assert problem_of(no_key, 400)["field"] == "Idempotency-Key"


def test_a_retried_report_is_the_same_case(loop):
    first = loop.report_response(key="report-1")
    again = loop.report_response(key="report-1")
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json()["incident"]["id"] == first.get_json()["incident"]["id"]
    changed = problem_of(loop.report_response(key="report-1", description="另一件事"), 422)
    assert changed["field"] == "Idempotency-Key"
    missing = loop.as_user("worker-a1").post(
        f"{API}/incidents",
        json={"category": "02.01", "description": "可疑包裹", "location": POINT_A1},
    )
    assert problem_of(missing, 400)["field"] == "Idempotency-Key"
    everything = loop.get("worker-a1", "/incidents").get_json()
    assert len(everything["items"]) == 1


def test_a_report_keeps_only_its_key_and_a_retry_gets_the_case_as_it_stands(loop, settings):
    """The events service finds a report's case by the key: the gateway writes the key's
    record once (what it was used for) and keeps no answer; a retry runs again."""
    first = loop.report_response(key="report-2")
    assert first.status_code == 201 and "Idempotent-Replayed" not in first.headers
    record = gateway_db(settings)[store.IDEMPOTENCY].find_one({"_id": "worker-a1:report-2"})
    assert record["state"] == "keyed" and "body" not in record and "lease_until" not in record
    accepted = loop.act("village-a", first.get_json()["incident"], "accept")

    again = loop.report_response(key="report-2")
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json()["incident"]["id"] == accepted["id"]
    assert again.get_json()["incident"]["state"] == "accepted"
    assert len(loop.get("worker-a1", "/incidents").get_json()["items"]) == 1


def test_a_refused_report_frees_its_key_for_the_corrected_request(loop):
    outside = loop.report_response(key="report-3", location=POINT_BEIJING)
    assert problem_of(outside, 422)["field"] == "location"
    corrected = loop.report_response(key="report-3")
    assert corrected.status_code == 201 and "Idempotent-Replayed" not in corrected.headers


def test_concurrent_duplicates_of_a_report_are_one_case(loop, app, token):
    body = {"category": "02.01", "description": "可疑包裹", "location": POINT_A1}
    headers = {"Authorization": f"Bearer {token('worker-a1')}", "Idempotency-Key": "same"}

    def report(_):
        return app.test_client().post(f"{API}/incidents", json=body, headers=headers)

    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(report, range(6)))
    assert {answer.status_code for answer in answers} == {201}, [a.get_json() for a in answers]
    assert len({answer.get_json()["incident"]["id"] for answer in answers}) == 1
    assert len(loop.get("worker-a1", "/incidents").get_json()["items"]) == 1
    # A key the worker used for a report is refused for anything else, before it runs.
    case = answers[0].get_json()["incident"]
    reused = loop.as_user("worker-a1").post(
        f"{API}/incidents/{case['id']}/evaluate",
        key="same",
        json={"expected_version": case["version"], "satisfaction": 5},
    )
    assert problem_of(reused, 422)["field"] == "Idempotency-Key"


# ---------------------------------------------------------------- queries


def test_worklists_show_each_role_the_cases_waiting_for_it(loop):
    case = loop.report()
    assert case["id"] in loop.worklist("worker-a1", "my_grid")
    assert case["id"] in loop.worklist("village-a", "centre_queue")
    assert case["id"] not in loop.worklist("township-a", "centre_queue")
    assert case["id"] not in loop.worklist("township-b", "my_grid")
    assert case["id"] not in loop.worklist("worker-a1", "verification")

    case = loop.to_dispatched(case)
    assert case["id"] in loop.worklist("police-a", "department_inbox")
    assert case["id"] not in loop.worklist("village-a", "centre_queue")
    case = loop.act("police-a", case, "sign")
    case = loop.act("police-a", case, "feedback", result="已处置")
    assert case["id"] not in loop.worklist("police-a", "department_inbox")
    assert case["id"] in loop.worklist("worker-a1", "verification")
    assert case["id"] in loop.worklist("leader-a1", "verification")
    case = loop.act("worker-a1", case, "verify", passed=True)
    assert case["id"] in loop.worklist("township-a", "centre_queue")
    assert loop.worklist("admin", "overdue") == set()

    unknown = problem_of(loop.get("village-a", "/incidents/worklists/everything"), 404)
    assert unknown["field"] == "kind"
    assert problem_of(loop.get("village-a", "/incidents/worklists/my_grid?limit=0"), 400)


def test_search_pages_with_a_cursor_and_counts_by_state(loop, clock):
    cases = [loop.report(description=f"可疑包裹 {n}") for n in range(3)]
    loop.act("village-a", cases[0], "accept")

    reported = loop.get("village-a", "/incidents", query_string={"state": "reported"}).get_json()
    assert ids(reported) == {cases[1]["id"], cases[2]["id"]}
    everything = loop.get(
        "township-a", "/incidents", query_string={"category": "02.01", "territory": TOWNSHIP_A}
    ).get_json()
    assert ids(everything) == {case["id"] for case in cases}
    assert everything["next_cursor"] is None
    described(IncidentPage, everything)

    seen, cursor = [], None
    while True:
        query = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = loop.get("village-a", "/incidents", query_string=query).get_json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(case["id"] for case in cases) and len(seen) == 3

    since = (clock() - timedelta(hours=1)).isoformat()
    recent = loop.get("admin", "/incidents", query_string={"reported_from": since}).get_json()
    assert len(recent["items"]) == 3
    future = (clock() + timedelta(hours=1)).isoformat()
    later = loop.get("admin", "/incidents", query_string={"reported_from": future}).get_json()
    assert later["items"] == []
    not_overdue = loop.get("admin", "/incidents", query_string={"overdue": "false"}).get_json()
    assert len(not_overdue["items"]) == 3
    assert loop.get("township-b", "/incidents").get_json()["items"] == []

    for bad in ({"limit": "0"}, {"limit": "201"}, {"state": "lost"}, {"colour": "red"}):
        name = next(iter(bad))
        assert problem_of(loop.get("admin", "/incidents", query_string=bad), 400)["field"] == name
    naive = loop.get("admin", "/incidents", query_string={"reported_from": "2030-01-01T00:00"})
    assert problem_of(naive, 400)["field"] == "reported_from"

    counts = loop.get("township-a", "/incidents/counts", query_string={"territory": TOWNSHIP_A})
    described(IncidentCounts, counts.get_json())
    assert counts.get_json() == {
        "territory": TOWNSHIP_A,
        "by_state": {"reported": 2, "accepted": 1},
        "total": 3,
    }
    mine = loop.get("worker-a1", "/incidents/counts").get_json()
    assert (mine["territory"], mine["total"]) == (GRID_A1, 3)
    theirs = loop.get("township-b", "/incidents/counts", query_string={"territory": COUNTY})
    assert theirs.get_json()["total"] == 0


def test_a_report_asking_for_the_case_alone_is_answered_without_duplicates(loop):
    """`Prefer: return=minimal` (as the phone app sends): the case, no search for its
    duplicates, the preference named back; they are found by asking later, and a retry
    under the same key answers the same case the same way."""
    original = loop.report(description="路口可疑包裹")
    body = {"category": "02.01", "description": "路口有个包裹", "location": POINT_A1}
    minimal = {"Prefer": "return=minimal"}
    worker = loop.as_user("worker-a1")
    second = worker.post(f"{API}/incidents", key="minimal-1", json=body, headers=minimal)
    assert second.status_code == 201, second.get_json()
    assert second.headers["Preference-Applied"] == "return=minimal"
    assert set(second.get_json()) == {"incident"}
    described(ReportResult, second.get_json())
    duplicate = second.get_json()["incident"]
    listed = loop.get("village-a", f"/incidents/{duplicate['id']}/duplicates").get_json()
    assert [d["id"] for d in listed["items"]] == [original["id"]]

    retried = worker.post(f"{API}/incidents", key="minimal-1", json=body, headers=minimal)
    assert retried.status_code == 201
    assert set(retried.get_json()) == {"incident"}
    assert retried.get_json()["incident"]["id"] == duplicate["id"]
    assert retried.headers["Preference-Applied"] == "return=minimal"
    full = worker.post(f"{API}/incidents", key="minimal-1", json=body)  # the same, in full
    assert [d["id"] for d in full.get_json()["possible_duplicates"]] == [original["id"]]
    assert "Preference-Applied" not in full.headers


def test_duplicates_are_listed_and_merged(loop):
    original = loop.report(description="路口可疑包裹")
    second = loop.report_response(description="路口有个包裹")
    assert second.status_code == 201
    duplicate = second.get_json()["incident"]
    assert [d["id"] for d in second.get_json()["possible_duplicates"]] == [original["id"]]
    listed = loop.get("village-a", f"/incidents/{duplicate['id']}/duplicates").get_json()
    assert [d["id"] for d in listed["items"]] == [original["id"]]

    merge = {"duplicate_id": duplicate["id"], "expected_version": duplicate["version"]}
    merged = loop.as_user("village-a").post(
        f"{API}/incidents/{original['id']}/merge", key="merge-1", json=merge
    )
    assert merged.status_code == 200, merged.get_json()
    body = merged.get_json()
    described(MergeResult, body)
    described(DuplicateCandidate, listed["items"][0])
    assert body["incident"]["merged_ids"] == [duplicate["id"]]
    assert (body["merged"]["state"], body["merged"]["duplicate_of"]) == (
        "rejected",
        original["id"],
    )
    again = loop.as_user("village-a").post(
        f"{API}/incidents/{original['id']}/merge", key="merge-1", json=merge
    )
    assert again.headers["Idempotent-Replayed"] == "true" and again.get_json() == body
    refused = loop.as_user("worker-a1").post(
        f"{API}/incidents/{original['id']}/merge", key="merge-2", json=merge
    )
    problem_of(refused, 403)


# ---------------------------------------------------------------- setup


def test_catalogue_departments_calendar_and_policy_can_be_read(loop):
    catalogue = loop.get("worker-a1", "/catalogue").get_json()
    assert catalogue["version"] == 1
    described(Catalogue, catalogue)
    for each in catalogue["entries"]:
        described(CatalogueEntry, each)
    entry = next(e for e in catalogue["entries"] if e["code"] == "02.01")
    assert entry["owners"]["township"] == "police-station"
    assert set(entry["time_limits"]) == {"normal", "urgent"}
    public = loop.get("worker-a1", "/catalogue", query_string={"public_only": "true"}).get_json()
    assert all(e["public"] for e in public["entries"])
    assert len(public["entries"]) < len(catalogue["entries"])
    problem_of(loop.get("worker-a1", "/catalogue", query_string={"version": "9"}), 404)

    departments = loop.get(
        "village-a", "/departments", query_string={"territory_code": TOWNSHIP_A}
    ).get_json()["items"]
    police = next(d for d in departments if d["code"] == POLICE_STATION_A)
    described(Department, police)
    assert (police["kind"], police["level"], police["territory_code"]) == (
        "police-station",
        "township",
        TOWNSHIP_A,
    )
    assert all(d["territory_code"] == TOWNSHIP_A for d in departments)
    everywhere = loop.get("village-a", "/departments").get_json()["items"]
    assert {d["territory_code"] for d in everywhere} >= {COUNTY, TOWNSHIP_A, TOWNSHIP_B}

    calendar = loop.get("township-a", "/calendar").get_json()
    described(WorkingCalendar, calendar)
    assert calendar["weekend"] == [5, 6] and calendar["utc_offset_minutes"] == 480
    assert calendar["periods"][0] == ["08:30", "12:00"]
    policy = loop.get("township-a", "/deadline-policy").get_json()
    described(DeadlinePolicy, policy)
    assert set(policy) == {
        "auto_escalate_after_hours",
        "duplicate_radius_m",
        "duplicate_window_hours",
    }


def test_administrators_change_the_setup_and_others_cannot(loop):
    admin = loop.as_user("admin")
    current = loop.get("admin", "/catalogue").get_json()
    document = {"categories": current["categories"], "entries": current["entries"]}
    document["entries"][0] = {**document["entries"][0], "name": "邻里矛盾纠纷"}
    problem_of(loop.as_user("county-centre").post(f"{API}/catalogue", key="c1", json=document), 403)
    published = admin.post(f"{API}/catalogue", key="c1", json=document)
    assert published.status_code == 201, published.get_json()
    assert published.get_json()["version"] == 2
    assert loop.get("worker-a1", "/catalogue").get_json()["entries"][0]["name"] == "邻里矛盾纠纷"
    old = loop.get("worker-a1", "/catalogue", query_string={"version": "1"}).get_json()
    assert old["entries"][0]["name"] == "邻里纠纷"
    bad_owner = {**document, "entries": [{**document["entries"][0], "owners": {"town": "x-y"}}]}
    assert problem_of(admin.post(f"{API}/catalogue", key="c2", json=bad_owner), 400)
    unknown_kind = {
        **document,
        "entries": [{**document["entries"][0], "owners": {"township": "nobody-here"}}],
    }
    assert problem_of(admin.post(f"{API}/catalogue", key="c3", json=unknown_kind), 422)

    registered = admin.post(
        f"{API}/departments",
        key="d1",
        json={"territory_code": TOWNSHIP_B, "kind": "tourism-office", "name": "旅游办"},
    )
    assert registered.status_code == 201, registered.get_json()
    assert registered.get_json()["code"] == f"{TOWNSHIP_B}-tourism-office"
    codes = {
        d["code"]
        for d in loop.get(
            "admin", "/departments", query_string={"territory_code": TOWNSHIP_B}
        ).get_json()["items"]
    }
    assert f"{TOWNSHIP_B}-tourism-office" in codes
    outside = admin.post(
        f"{API}/departments",
        key="d2",
        json={"territory_code": "530403001", "kind": "tourism-office", "name": "旅游办"},
    )
    assert problem_of(outside, 422)["field"] == "territory_code"
    problem_of(
        loop.as_user("township-b").post(
            f"{API}/departments",
            key="d3",
            json={"territory_code": TOWNSHIP_B, "kind": "tourism-office", "name": "旅游办"},
        ),
        403,
    )

    calendar = loop.get("admin", "/calendar").get_json()
    calendar["periods"] = [["09:00", "12:00"], ["14:00", "17:30"]]
    changed = admin.post(f"{API}/calendar", key="cal-1", json=calendar)
    assert changed.status_code == 200, changed.get_json()
    assert loop.get("worker-a1", "/calendar").get_json()["periods"][0] == ["09:00", "12:00"]
    overlapping = {**calendar, "periods": [["09:00", "13:00"], ["12:00", "17:00"]]}
    assert problem_of(admin.post(f"{API}/calendar", key="cal-2", json=overlapping), 422)

    policy = admin.post(f"{API}/deadline-policy", key="p1", json={"duplicate_radius_m": 500})
    assert policy.status_code == 200 and policy.get_json()["duplicate_radius_m"] == 500
    assert loop.get("leader", "/deadline-policy").get_json()["duplicate_radius_m"] == 500
    negative = admin.post(f"{API}/deadline-policy", key="p2", json={"duplicate_radius_m": -1})
    assert problem_of(negative, 400)["field"] == "duplicate_radius_m"
    # Beyond a year of working hours the escalation moment cannot be counted (was a 500).
    huge = admin.post(f"{API}/deadline-policy", key="p4", json={"auto_escalate_after_hours": 1e307})
    assert problem_of(huge, 400)["field"] == "auto_escalate_after_hours"
    problem_of(loop.as_user("leader").post(f"{API}/deadline-policy", key="p3", json={}), 403)


def test_the_openapi_document_shows_each_actions_fields(client):
    document = client.get(f"{API}/openapi.json").get_json()
    paths, schemas = document["paths"], document["components"]["schemas"]
    actions = {
        "accept": set(),
        "reject": {"reason", "duplicate_of"},
        "register": set(),
        "dispatch": {"department_code", "to_centre"},
        "sign": set(),
        "return": {"reason"},
        "feedback": {"result", "media_ids"},
        "verify": {"passed", "media_ids"},
        "close": set(),
        "evaluate": {"satisfaction"},
        "escalate": {"reason"},
        "request-extension": {"hours", "reason"},
        "decide-extension": {"approve"},
        "suspend": {"reason"},
        "resume": set(),
        "supervise": {"note", "new_due"},
    }
    for action, fields in actions.items():
        operation = paths[f"{API}/incidents/{{incident_id}}/{action}"]["post"]
        ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        schema = schemas[ref.rsplit("/", 1)[-1]]
        assert "expected_version" in schema["required"]
        assert fields <= set(schema["properties"]), action
        headers = [p for p in operation["parameters"] if p["in"] == "header"]
        assert headers and headers[0]["name"] == "Idempotency-Key" and headers[0]["required"]
    assert schemas["SuperviseCommand"]["properties"]["new_due"]["anyOf"][0]["format"] == (
        "date-time"
    )
    search = {p["name"] for p in paths[f"{API}/incidents"]["get"]["parameters"]}
    assert search >= {"state", "category", "territory", "reported_from", "cursor", "limit"}
    assert "201" in paths[f"{API}/incidents"]["post"]["responses"]
    for path in ("/catalogue", "/departments", "/calendar", "/deadline-policy"):
        assert set(paths[f"{API}{path}"]) == {"get", "post"}
