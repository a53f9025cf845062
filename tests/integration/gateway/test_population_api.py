"""The population routes over HTTP (Flask test client) against the real population service:
roles, territory scope, masking and audited reveals, problem+json, idempotent replays,
pagination, and file imports."""

import csv
import io
import json
import time
from datetime import timedelta
from urllib.parse import quote

import pytest
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from services.gateway.routes.population.access_audit import AuditPage
from services.gateway.routes.population.groups import GroupMembership, Visit, VisitWorklist
from services.gateway.routes.population.imports import ImportJob, RosterMatchResult
from services.gateway.routes.population.places import Entity, House, Household
from services.gateway.routes.population.residents import HistoryList, Resident, ResidentPage
from services.gateway.routes.population.territory import (
    GridLocation,
    TerritoryNode,
    TerritoryStatistics,
)
from services.population.domain.identity import resident_id_check_character
from tests.population_data import (
    BUILDING_A1,
    COUNTY,
    GRID_A1,
    GRID_A2,
    GRID_B1,
    TOWNSHIP_A,
    VILLAGE_A,
    county_features,
    credit_code,
    random_resident_ids,
    resident_id,
)

pytestmark = pytest.mark.integration

API = "/api/v1"
JOB_TIMEOUT_S = 30
PROBLEM_JSON = "application/problem+json"


def wrong_check_character(number: str) -> str:
    right = resident_id_check_character(number[:17])
    return number[:17] + next(c for c in "0123456789X" if c != right)


def resident_body(number: str, grid_code: str = GRID_A1, name: str = "张三", **extra) -> dict:
    return {"id_number": number, "name": name, "grid_code": grid_code, **extra}


def register(user, number: str, key: str | None = None, **fields) -> dict:
    response = user.post(
        f"{API}/residents", key=key or f"register-{number}", json=resident_body(number, **fields)
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def assert_problem(response, status: int, field: str | None = None) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM_JSON
    problem = response.get_json()
    assert problem["status"] == status
    if field is not None:
        assert problem.get("field") == field, problem
    return problem


def csv_upload(rows: list[list[str]], filename: str = "residents.csv") -> dict:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerow(["id_number", "name", "grid_code", "phone"])
    writer.writerows(rows)
    return {"file": (io.BytesIO(text.getvalue().encode("utf-8")), filename)}


# ------------------------------------------------------------------ territory and grids
def test_admin_imports_the_territory_and_others_read_it_within_scope(as_user):
    admin = as_user("admin")
    imported = admin.post(f"{API}/territories/import", key="t1", json=county_features())
    assert imported.status_code == 200, imported.get_json()
    assert imported.get_json() == {"created": 9, "updated": 0, "unchanged": 0}
    replay = admin.post(f"{API}/territories/import", key="t1", json=county_features())
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.get_json() == imported.get_json()
    assert_problem(
        as_user("worker-a1").post(f"{API}/territories/import", key="t2", json=county_features()),
        403,
    )
    added = admin.post(
        f"{API}/territories", key="t3", json={"code": GRID_A1 + "00002", "name": "2号楼"}
    )
    assert added.status_code == 200 and added.get_json()["created"] == 1

    village = as_user("village-a")
    children = village.get(f"{API}/territories/{VILLAGE_A}/children").get_json()["items"]
    assert [child["code"] for child in children] == [GRID_A1, GRID_A2]
    grid = village.get(f"{API}/territories/{GRID_A1}").get_json()
    TerritoryNode.model_validate(grid)
    assert grid["level"] == "grid" and grid["geometry"]["type"] == "Polygon"
    assert_problem(as_user("township-b").get(f"{API}/territories/{TOWNSHIP_A}"), 404)

    statistics = as_user("county-centre").get(f"{API}/territories/{COUNTY}/statistics")
    assert statistics.get_json()["grids"] == 3
    TerritoryStatistics.model_validate(statistics.get_json())

    located = village.get(f"{API}/locate?lon=102.505&lat=24.305").get_json()
    GridLocation.model_validate(located)
    assert located["grid"]["code"] == GRID_A1
    assert [node["level"] for node in located["path"]] == ["county", "township", "village", "grid"]
    assert_problem(village.get(f"{API}/locate?lon=0&lat=0"), 422, field="location")
    assert_problem(village.get(f"{API}/locate?lon=200&lat=0"), 400, field="lon")


def test_centre_operators_set_grid_rosters_and_staff_see_their_grids(county, as_user):
    roster = {
        "staff": [
            {"person_id": "p-leader", "name": "李网格长", "role": "grid_leader"},
            {"person_id": "p-full", "name": "王专职", "role": "full_time"},
            {"person_id": "p-part", "name": "赵兼职", "role": "part_time"},
        ]
    }
    operator = as_user("township-a")
    staff = operator.post(f"{API}/grids/{GRID_A1}/staff", key="s1", json=roster)
    assert staff.status_code == 200, staff.get_json()
    assert [m["role"] for m in staff.get_json()["items"]] == [
        "grid_leader",
        "full_time",
        "part_time",
    ]
    listed = as_user("worker-a1").get(f"{API}/grids/{GRID_A1}/staff").get_json()
    assert listed["items"] == staff.get_json()["items"]
    served = operator.get(f"{API}/staff/p-full/grids").get_json()["items"]
    assert [row["grid_code"] for row in served] == [GRID_A1]
    assert as_user("township-b").get(f"{API}/staff/p-full/grids").get_json()["items"] == []

    assert_problem(
        as_user("worker-a1").post(f"{API}/grids/{GRID_A1}/staff", key="s2", json=roster), 403
    )
    bad = {"staff": [{"person_id": "p", "name": "x", "role": "boss"}]}
    assert_problem(
        operator.post(f"{API}/grids/{GRID_A1}/staff", key="s3", json=bad),
        400,
        field="staff.0.role",
    )
    two_leaders = {
        "staff": [
            {"person_id": "p1", "name": "甲", "role": "grid_leader"},
            {"person_id": "p2", "name": "乙", "role": "grid_leader"},
        ]
    }
    assert_problem(
        operator.post(f"{API}/grids/{GRID_A1}/staff", key="s4", json=two_leaders),
        422,
        field="staff",
    )


# ------------------------------------------------------------------ residents
def test_registering_is_masked_and_a_replay_returns_the_first_response(county, as_user):
    worker = as_user("worker-a1")
    number = resident_id()
    body = resident_body(number, phone="13812345678", residence_type="floating")
    first = worker.post(f"{API}/residents", key="reg-1", json=body)
    assert first.status_code == 201, first.get_json()
    resident = first.get_json()
    Resident.model_validate(resident)
    assert resident["id_number"] == number[:3] + "*" * 11 + number[-4:]
    assert resident["phone"] == "138****5678"
    assert resident["version"] == 1 and resident["status"] == "active"
    assert resident["gender"] == "male" and resident["birth_date"] == "1990-03-07"

    replay = worker.post(f"{API}/residents", key="reg-1", json=body)
    assert replay.status_code == 201
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.get_json() == resident
    assert "Idempotent-Replayed" not in first.headers
    reused = worker.post(f"{API}/residents", key="reg-1", json={**body, "name": "李四"})
    assert_problem(reused, 422, field="Idempotency-Key")
    page = worker.get(f"{API}/residents?code={GRID_A1}").get_json()
    assert [item["id"] for item in page["items"]] == [resident["id"]]

    read = worker.get(f"{API}/residents/{resident['id']}").get_json()
    assert read["id_number"] == resident["id_number"] and read["groups"] == []
    found = worker.get(f"{API}/residents/search?id_number={number}").get_json()["items"]
    assert [item["id"] for item in found] == [resident["id"]]
    by_phone = worker.get(f"{API}/residents/search?phone=13812345678").get_json()["items"]
    assert [item["id"] for item in by_phone] == [resident["id"]]
    assert_problem(worker.get(f"{API}/residents/search"), 422, field="id_number")


def test_outside_the_scope_a_resident_is_indistinguishable_from_none(county, as_user):
    resident = register(as_user("worker-a1"), resident_id())
    outsider = as_user("township-b")
    hidden = assert_problem(outsider.get(f"{API}/residents/{resident['id']}"), 404)
    missing = assert_problem(outsider.get(f"{API}/residents/{'0' * 32}"), 404)
    assert hidden["title"] == missing["title"]
    assert "detail" in hidden and resident["name"] not in hidden["detail"]
    assert_problem(outsider.get(f"{API}/residents/{resident['id']}/history"), 404)
    search = outsider.get(f"{API}/residents/search?id_number={resident_id()}").get_json()
    assert search["items"] == []
    assert outsider.get(f"{API}/residents?code={GRID_A1}").get_json()["items"] == []
    assert as_user("township-a").get(f"{API}/residents/{resident['id']}").status_code == 200


def test_a_reveal_needs_a_stated_purpose_and_is_audited(county, as_user):
    number = resident_id()
    resident = register(as_user("worker-a1"), number, phone="13812345678")
    worker = as_user("worker-a1")
    path = f"{API}/residents/{resident['id']}"

    assert_problem(worker.get(f"{path}?reveal=id_number"), 400, field="X-Reveal-Purpose")
    assert_problem(
        worker.get(f"{path}?reveal=address", headers={"X-Reveal-Purpose": "visit"}),
        400,
        field="reveal",
    )
    revealed = worker.get(
        f"{path}?reveal=id_number,phone", headers={"X-Reveal-Purpose": "home visit check"}
    )
    assert revealed.status_code == 200, revealed.get_json()
    assert revealed.get_json()["id_number"] == number
    assert revealed.get_json()["phone"] == "13812345678"
    purpose = "核对低保申请"
    chinese = worker.get(f"{path}?reveal=phone", headers={"X-Reveal-Purpose": quote(purpose)})
    assert chinese.get_json()["phone"] == "13812345678"
    assert as_user("leader").get(path).get_json()["id_number"] != number
    assert_problem(
        as_user("leader").get(f"{path}?reveal=phone", headers={"X-Reveal-Purpose": "curious"}),
        403,
    )

    audit = as_user("leader").get(f"{API}/access-audit?resident_id={resident['id']}")
    assert audit.status_code == 200, audit.get_json()
    page = audit.get_json()
    AuditPage.model_validate(page)
    assert [(e["actor"], e["fields"], e["purpose"]) for e in page["items"]] == [
        ("worker-a1", ["phone"], purpose),
        ("worker-a1", ["id_number", "phone"], "home visit check"),
    ]
    assert page["next_cursor"] is None
    first = as_user("leader").get(f"{API}/access-audit?actor=worker-a1&limit=1").get_json()
    rest = as_user("leader").get(
        f"{API}/access-audit?actor=worker-a1&limit=1&cursor={first['next_cursor']}"
    )
    assert rest.get_json()["items"][0]["purpose"] == "home visit check"
    assert_problem(worker.get(f"{API}/access-audit"), 403)


def test_bad_input_is_problem_json_naming_the_field(county, as_user):
    worker = as_user("worker-a1")
    number = resident_id()
    cases = [
        (resident_body(number, grid_code="53040200100100"), 400, "grid_code"),
        ({**resident_body(number), "salary": 100}, 400, "salary"),
        ({"name": "张三", "grid_code": GRID_A1}, 400, "id_number"),
        (resident_body(wrong_check_character(number)), 422, "id_number"),
        (resident_body(number, phone="12345"), 422, "phone"),
        (resident_body(number, gender="female"), 422, "gender"),
    ]
    for index, (body, status, field) in enumerate(cases):
        problem = assert_problem(
            worker.post(f"{API}/residents", key=f"bad-{index}", json=body), status, field
        )
        assert problem["detail"].startswith(field)
        assert number not in problem["detail"]
    not_json = worker.post(
        f"{API}/residents", key="bad-json", data="{", content_type="application/json"
    )
    assert_problem(not_json, 400, field="body")
    assert_problem(worker.post(f"{API}/residents", json=resident_body(number)), 400)
    assert_problem(worker.get(f"{API}/residents?code={GRID_A1}&limit=0"), 400, field="limit")
    assert_problem(worker.get(f"{API}/residents?code={GRID_A1}&limit=201"), 400, field="limit")
    assert_problem(worker.get(f"{API}/residents"), 400, field="code")
    assert_problem(
        as_user("leader").post(f"{API}/residents", key="l", json=resident_body(number)), 403
    )
    assert worker.get(f"{API}/residents?code={GRID_A1}").get_json()["items"] == []


def test_changes_moves_and_deregistration_keep_versions_and_history(county, as_user):
    village = as_user("village-a")
    resident = register(village, resident_id(), phone="13812345678")
    path = f"{API}/residents/{resident['id']}"

    changed = village.patch(
        path, json={"expected_version": 1, "employment": "教师", "phone": "13900001111"}
    )
    assert changed.status_code == 200, changed.get_json()
    assert changed.get_json()["version"] == 2 and changed.get_json()["employment"] == "教师"
    assert changed.get_json()["phone"] == "139****1111"
    assert_problem(
        village.patch(path, json={"expected_version": 1, "notes": "x"}),
        409,
        field="expected_version",
    )
    assert_problem(village.patch(path, json={"expected_version": 2}), 400, field="body")
    assert_problem(
        village.patch(path, json={"expected_version": 2, "grid_code": GRID_A2}), 400, "grid_code"
    )
    assert_problem(as_user("leader").patch(path, json={"expected_version": 2, "notes": "x"}), 403)

    move = {"expected_version": 2, "to_grid_code": GRID_A2}
    moved = village.post(f"{path}/move", key="m1", json=move)
    assert moved.status_code == 200, moved.get_json()
    assert moved.get_json()["grid_code"] == GRID_A2 and moved.get_json()["version"] == 3
    again = village.post(f"{path}/move", key="m1", json=move)
    assert again.headers["Idempotent-Replayed"] == "true" and again.get_json()["version"] == 3
    assert_problem(as_user("worker-a1").get(path), 404)  # no longer in the worker's grid

    assert_problem(
        village.post(f"{path}/deregister", key="d0", json={"expected_version": 3, "reason": "x"}),
        400,
        field="reason",
    )
    gone = village.post(
        f"{path}/deregister", key="d1", json={"expected_version": 3, "reason": "deceased"}
    )
    assert gone.status_code == 200 and gone.get_json()["status"] == "deregistered"
    assert village.get(f"{API}/residents?code={VILLAGE_A}").get_json()["items"] == []
    listed = village.get(f"{API}/residents?code={VILLAGE_A}&status=deregistered").get_json()
    assert [item["id"] for item in listed["items"]] == [resident["id"]]

    history = village.get(f"{path}/history").get_json()["items"]
    HistoryList.model_validate({"items": history})
    assert [entry["action"] for entry in history] == [
        "registered",
        "updated",
        "moved",
        "deregistered",
    ]
    assert history[1]["changes"]["phone"] == {"changed": True}
    assert history[1]["by"] == "village-a"


def test_residents_are_listed_a_page_at_a_time(county, as_user):
    village = as_user("village-a")
    registered = {
        register(village, number, grid_code=GRID_A2, name=f"居民{i}")["id"]
        for i, number in enumerate(random_resident_ids(5, seed=11))
    }
    register(village, resident_id(), grid_code=GRID_A1)
    seen, cursor, pages = [], None, 0
    while True:
        url = f"{API}/residents?code={GRID_A2}&limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = village.get(url).get_json()
        ResidentPage.model_validate(page)
        pages += 1
        seen.extend(item["id"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3 and len(seen) == 5 and set(seen) == registered
    assert seen == sorted(seen)
    everyone = village.get(f"{API}/residents?code={VILLAGE_A}&limit=200").get_json()
    assert len(everyone["items"]) == 6 and everyone["next_cursor"] is None


# ------------------------------------------------------------------ houses, households, entities
def test_houses_households_and_entities(county, as_user):
    worker = as_user("worker-a1")
    house = worker.post(
        f"{API}/houses",
        key="h1",
        json={"building_code": BUILDING_A1, "room": "101", "rental_status": "rented"},
    )
    assert house.status_code == 201, house.get_json()
    house_id = house.get_json()["id"]
    assert house_id == f"{BUILDING_A1}-101"
    House.model_validate(house.get_json())
    assert worker.get(f"{API}/houses/{house_id}").get_json()["rental_status"] == "rented"
    listed = worker.get(f"{API}/houses?code={GRID_A1}").get_json()
    assert [item["id"] for item in listed["items"]] == [house_id]
    assert_problem(as_user("township-b").get(f"{API}/houses/{house_id}"), 404)
    assert_problem(
        worker.post(f"{API}/houses", key="h2", json={"building_code": GRID_A1, "room": "1"}),
        400,
        field="building_code",
    )

    numbers = random_resident_ids(3, seed=5)
    head, spouse, tenant = (register(worker, n)["id"] for n in numbers)
    tenants = worker.post(
        f"{API}/houses/{house_id}/tenants", key="t", json={"tenant_ids": [tenant]}
    )
    assert tenants.get_json()["tenant_ids"] == [tenant]

    household = worker.post(
        f"{API}/households", key="hh", json={"house_id": house_id, "head_resident_id": head}
    )
    assert household.status_code == 201, household.get_json()
    household_id = household.get_json()["id"]
    joined = worker.post(
        f"{API}/households/{household_id}/members",
        key="hm",
        json={"resident_id": spouse, "relation": "spouse"},
    )
    assert joined.status_code == 200, joined.get_json()
    read = worker.get(f"{API}/households/{household_id}").get_json()
    Household.model_validate(read)
    assert {(m["resident_id"], m["relation"]) for m in read["members"]} == {
        (head, "head"),
        (spouse, "spouse"),
    }
    assert_problem(
        worker.post(
            f"{API}/households/{household_id}/members",
            key="hm2",
            json={"resident_id": tenant, "relation": "head"},
        ),
        400,
        field="relation",
    )

    code = credit_code()
    entity = worker.post(
        f"{API}/entities",
        key="e1",
        json={"credit_code": code, "name": "玉兴商店", "type": "个体工商户", "grid_code": GRID_A1},
    )
    assert entity.status_code == 201, entity.get_json()
    Entity.model_validate(entity.get_json())
    assert worker.get(f"{API}/entities/{code}").get_json()["name"] == "玉兴商店"
    entities = worker.get(f"{API}/entities?code={GRID_A1}").get_json()
    assert [item["credit_code"] for item in entities["items"]] == [code]
    bad_code = code[:17] + ("0" if code[17] != "0" else "1")
    assert_problem(
        worker.post(
            f"{API}/entities",
            key="e2",
            json={"credit_code": bad_code, "name": "x", "type": "y", "grid_code": GRID_A1},
        ),
        422,
        field="credit_code",
    )


# ------------------------------------------------------------------ groups and visits
def test_groups_visits_worklists_and_visit_rules(county, as_user, clock):
    worker = as_user("worker-a1")
    resident = register(worker, resident_id())
    flag = {
        "resident_id": resident["id"],
        "group": "severe_mental_disorder",
        "risk_level": "high",
        "responsible_worker_id": "worker-a1",
    }
    flagged = worker.post(f"{API}/groups", key="g1", json=flag)
    assert flagged.status_code == 201, flagged.get_json()
    membership = flagged.get_json()
    GroupMembership.model_validate(membership)
    assert membership["kind"] == "special" and membership["active"] is True
    assert_problem(as_user("leader").post(f"{API}/groups", key="g2", json=flag), 403)
    assert_problem(
        worker.post(f"{API}/groups", key="g3", json={**flag, "group": "astronauts"}),
        422,
        field="group",
    )
    listed = worker.get(f"{API}/groups?code={GRID_A1}&group=severe_mental_disorder&risk_level=high")
    assert [item["id"] for item in listed.get_json()["items"]] == [membership["id"]]
    assert as_user("township-b").get(f"{API}/groups?code={COUNTY}").get_json()["items"] == []

    visit = {
        "membership_id": membership["id"],
        "at": (clock() - timedelta(minutes=5)).isoformat(),
        "location": {"type": "Point", "coordinates": [102.505, 24.305]},
        "notes": "情况稳定",
    }
    recorded = worker.post(f"{API}/visits", key="v1", json=visit)
    assert recorded.status_code == 201, recorded.get_json()
    Visit.model_validate(recorded.get_json())
    assert_problem(
        worker.post(f"{API}/visits", key="v2", json={**visit, "at": "2024-01-01T08:00:00"}),
        400,
        field="at",
    )
    visits = worker.get(f"{API}/groups/{membership['id']}/visits").get_json()["items"]
    assert [v["id"] for v in visits] == [recorded.get_json()["id"]]

    worklist = worker.get(f"{API}/visits/worklist").get_json()
    VisitWorklist.model_validate(worklist)
    assert worklist["worker_id"] == "worker-a1"
    assert [(d["id"], d["required"], d["done"]) for d in worklist["due"]] == [
        (membership["id"], 4, 1)
    ]
    assert_problem(worker.get(f"{API}/visits/worklist?period=2026-1"), 400, field="period")

    rules = worker.get(f"{API}/visit-rules").get_json()["rules"]
    assert rules["severe_mental_disorder:high"] == 4
    rule = {"group": "severe_mental_disorder", "risk_level": "high", "visits_per_month": 6}
    assert_problem(worker.post(f"{API}/visit-rules", key="r1", json=rule), 403)
    changed = as_user("admin").post(f"{API}/visit-rules", key="r1", json=rule)
    assert changed.get_json()["rules"]["severe_mental_disorder:high"] == 6
    assert worker.get(f"{API}/visits/worklist").get_json()["due"][0]["remaining"] == 5

    cleared = worker.post(
        f"{API}/groups/{membership['id']}/clear", key="c1", json={"reason": "已康复"}
    )
    assert cleared.status_code == 200 and cleared.get_json()["active"] is False
    assert worker.get(f"{API}/groups?code={GRID_A1}").get_json()["items"] == []


# ------------------------------------------------------------------ imports and roster matching
def wait_for_job(user, job_id: str) -> dict:
    deadline = time.monotonic() + JOB_TIMEOUT_S
    job = None
    while time.monotonic() < deadline:
        job = user.get(f"{API}/imports/{job_id}").get_json()
        if job["status"] in ("finished", "failed"):
            return job
        time.sleep(0.2)
    pytest.fail(f"import job {job_id} did not finish within {JOB_TIMEOUT_S} s: {job}")


def test_an_uploaded_territory_geojson_is_imported_as_a_job(as_user):
    admin = as_user("admin")
    content = json.dumps(county_features(), ensure_ascii=False).encode()
    started = admin.post(
        f"{API}/imports?kind=territory",
        key="g1",
        data={"file": (io.BytesIO(content), "红塔区.geojson")},
        content_type="multipart/form-data",
    )
    assert started.status_code == 202, started.get_json()
    job = started.get_json()
    ImportJob.model_validate(job)
    assert job["kind"] == "territory" and job["status"] == "queued"
    finished = wait_for_job(admin, job["id"])
    assert finished["status"] == "finished", finished
    assert finished["counts"]["created"] == finished["total_rows"] == 9
    assert admin.get(f"{API}/territories/{GRID_A1}").status_code == 200

    not_geojson = admin.post(
        f"{API}/imports?kind=territory",
        key="g2",
        data={"file": (io.BytesIO(content), "红塔区.csv")},
        content_type="multipart/form-data",
    )
    assert_problem(not_geojson, 422, "file")
    operator = as_user("village-a")  # a centre operator imports residents, not territory
    refused = operator.post(
        f"{API}/imports?kind=territory",
        key="g3",
        data={"file": (io.BytesIO(content), "红塔区.geojson")},
        content_type="multipart/form-data",
    )
    assert_problem(refused, 403)


def test_an_uploaded_csv_is_imported_and_its_errors_downloadable(county, as_user):
    ids = random_resident_ids(5, seed=3)
    rows = [
        [ids[0], "张三", GRID_A1, "13812345670"],  # row 2
        [ids[1], "李四", GRID_A2, ""],  # row 3
        [wrong_check_character(ids[2]), "王五", GRID_A1, ""],  # row 4
        [ids[3], "赵六", GRID_B1, ""],  # row 5: outside the uploader's village
        [ids[4], "钱七", GRID_A1, ""],  # row 6
    ]
    operator = as_user("village-a")
    started = operator.post(
        f"{API}/imports?kind=residents",
        key="i1",
        data=csv_upload(rows, "居民名单.csv"),
        content_type="multipart/form-data",
    )
    assert started.status_code == 202, started.get_json()
    job = started.get_json()
    ImportJob.model_validate(job)
    assert job["status"] == "queued" and job["filename"] == "居民名单.csv"
    assert job["columns"] == ["id_number", "name", "grid_code", "phone"]

    finished = wait_for_job(operator, job["id"])
    assert finished["status"] == "finished", finished
    assert finished["counts"] == {
        "rows": 5,
        "created": 3,
        "updated": 0,
        "unchanged": 0,
        "failed": 2,
    }
    listed = operator.get(f"{API}/residents?code={VILLAGE_A}").get_json()["items"]
    assert len(listed) == 3

    report = operator.get(f"{API}/imports/{job['id']}/errors.csv")
    assert report.status_code == 200
    assert report.mimetype == "text/csv"
    disposition = report.headers["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert "filename*=UTF-8''" + quote("居民名单.csv.errors.csv") in disposition
    raw = report.get_data()
    assert raw.startswith(b"\xef\xbb\xbf")
    parsed = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert parsed == [
        ["row", "field", "reason"],
        ["4", "id_number", "check character does not match"],
        ["5", "grid_code", "no such grid in your scope"],
    ]
    assert_problem(as_user("township-b").get(f"{API}/imports/{job['id']}"), 404)
    assert_problem(as_user("township-b").get(f"{API}/imports/{job['id']}/errors.csv"), 404)

    # A retry sends the same bytes (the same multipart boundary): the first job comes back.
    upload = FileStorage(csv_upload(rows[:1])["file"][0], filename="again.csv")
    boundary, body = encode_multipart({"file": upload}, boundary="gridwork-retry")
    content_type = f"multipart/form-data; boundary={boundary}"
    first = operator.post(
        f"{API}/imports?kind=residents", key="i2", data=body, content_type=content_type
    )
    again = operator.post(
        f"{API}/imports?kind=residents", key="i2", data=body, content_type=content_type
    )
    assert first.status_code == again.status_code == 202
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json()["id"] == first.get_json()["id"] != job["id"]


def test_imports_refuse_wrong_callers_kinds_and_files(county, as_user):
    operator = as_user("village-a")
    rows = [[resident_id(), "张三", GRID_A1, ""]]
    assert_problem(
        as_user("worker-a1").post(
            f"{API}/imports?kind=residents",
            key="w",
            data=csv_upload(rows),
            content_type="multipart/form-data",
        ),
        403,
    )
    assert_problem(
        operator.post(
            f"{API}/imports?kind=people",
            key="k",
            data=csv_upload(rows),
            content_type="multipart/form-data",
        ),
        400,
        field="kind",
    )
    assert_problem(
        operator.post(
            f"{API}/imports?kind=residents",
            key="f",
            data={"other": (io.BytesIO(b"x"), "a.csv")},
            content_type="multipart/form-data",
        ),
        400,
        field="file",
    )
    assert_problem(
        operator.post(
            f"{API}/imports?kind=residents",
            key="t",
            data=csv_upload(rows, "residents.txt"),
            content_type="multipart/form-data",
        ),
        422,
        field="file",
    )
    no_header = {"file": (io.BytesIO("姓名\r\n张三\r\n".encode()), "residents.csv")}
    problem = assert_problem(
        operator.post(
            f"{API}/imports?kind=residents",
            key="h",
            data=no_header,
            content_type="multipart/form-data",
        ),
        422,
        field="header",
    )
    assert "id_number" in problem["detail"]


def test_roster_matching_reports_matches_mismatches_and_unknowns(county, as_user):
    operator = as_user("village-a")
    known, other, unknown = random_resident_ids(3, seed=9)
    first = register(operator, known, name="张三", phone="13812345678")
    register(operator, other, name="李四", grid_code=GRID_A2)
    body = {
        "rows": [
            {"id_number": known, "name": "张三", "phone": "13812345678"},
            {"id_number": other, "name": "李四四"},
            {"id_number": unknown, "name": "王五"},
            {"id_number": wrong_check_character(unknown)},
            {"name": "无证"},
        ]
    }
    matched = operator.post(f"{API}/roster-matches", key="rm", json=body)
    assert matched.status_code == 200, matched.get_json()
    result = matched.get_json()
    RosterMatchResult.model_validate(result)
    assert [m["row"] for m in result["matched"]] == [1, 2]
    assert result["matched"][0]["resident_id"] == first["id"]
    assert [(m["row"], [f["field"] for f in m["fields"]]) for m in result["mismatches"]] == [
        (2, ["name"])
    ]
    assert result["not_found"] == [{"row": 3, "name": "王五"}]
    assert [(i["row"], i["field"]) for i in result["invalid"]] == [
        (4, "id_number"),
        (5, "id_number"),
    ]
    replay = operator.post(f"{API}/roster-matches", key="rm", json=body)
    assert replay.headers["Idempotent-Replayed"] == "true" and replay.get_json() == result

    tagged = operator.post(
        f"{API}/roster-matches",
        key="rm2",
        json={
            "rows": [{"id_number": known}],
            "apply_group": {"group": "low_income", "responsible_worker_id": "worker-a1"},
        },
    )
    assert tagged.status_code == 200, tagged.get_json()
    groups = operator.get(f"{API}/groups?code={VILLAGE_A}&group=low_income").get_json()["items"]
    assert [(g["resident_id"], g["risk_level"]) for g in groups] == [(first["id"], "low")]
    assert_problem(as_user("leader").post(f"{API}/roster-matches", key="rm3", json=body), 403)
    assert_problem(
        operator.post(f"{API}/roster-matches", key="rm4", json={"rows": []}), 400, "rows"
    )


def test_the_openapi_document_describes_the_population_routes(client):
    document = client.get(f"{API}/openapi.json").get_json()
    paths = document["paths"]
    upload = paths[f"{API}/imports"]["post"]
    assert "multipart/form-data" in upload["requestBody"]["content"]
    assert upload["requestBody"]["content"]["multipart/form-data"]["schema"]["required"] == ["file"]
    assert (
        "text/csv"
        in paths[f"{API}/imports/{{job_id}}/errors.csv"]["get"]["responses"]["200"]["content"]
    )
    reveal = paths[f"{API}/residents/{{resident_id}}"]["get"]["parameters"]
    assert {"reveal", "X-Reveal-Purpose"} <= {parameter["name"] for parameter in reveal}
    register_op = paths[f"{API}/residents"]["post"]
    assert "201" in register_op["responses"]
    assert any(p["name"] == "Idempotency-Key" for p in register_op["parameters"])
    limit = next(p for p in paths[f"{API}/residents"]["get"]["parameters"] if p["name"] == "limit")
    assert limit["schema"]["maximum"] == 200 and limit["schema"]["minimum"] == 1
    assert "Resident" in document["components"]["schemas"]
