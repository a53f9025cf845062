import base64
import json

import pytest
from nameko.exceptions import RemoteError

from tests.integration.population.conftest import ADMIN, OPERATOR_B, WORKER_A1
from tests.integration.population.territory_jobs import import_territory_file
from tests.population_data import (
    COUNTY,
    GRID_A1,
    GRID_A2,
    GRID_B1,
    TOWNSHIP_A,
    VILLAGE_A,
    county_features,
    feature,
    square,
)

pytestmark = pytest.mark.integration


def test_territory_import_is_idempotent_and_announces_grids(as_user, events_tap):
    admin = as_user(ADMIN)
    assert admin.import_territory(county_features()) == {"created": 9, "updated": 0, "unchanged": 0}
    assert admin.import_territory(county_features()) == {"created": 0, "updated": 0, "unchanged": 9}
    published = events_tap()
    assert sorted(
        subject
        for key, event in published
        if key == "grid.updated"
        for subject in [event["subject"]]
    ) == sorted([GRID_A1, GRID_A2, GRID_B1])

    renamed = county_features()
    renamed["features"][5]["properties"]["name"] = "玉兴一网格"
    assert admin.import_territory(renamed) == {"created": 0, "updated": 1, "unchanged": 8}
    assert admin.get_territory(GRID_A1)["name"] == "玉兴一网格"


def test_overlapping_grids_are_refused_naming_both(county):
    overlapping = {
        "type": "FeatureCollection",
        "features": [feature(VILLAGE_A + "003", "重叠网格", square(102.505, 24.305))],
    }
    with pytest.raises(RemoteError) as raised:
        county.import_territory(overlapping)
    assert raised.value.exc_type == "InvalidInput"
    assert GRID_A1 in raised.value.value and VILLAGE_A + "003" in raised.value.value
    with pytest.raises(RemoteError, match="NotFound"):
        county.get_territory(VILLAGE_A + "003")  # nothing was written


def test_codes_must_extend_an_existing_parent(county):
    orphan = {
        "type": "FeatureCollection",
        "features": [feature("530402009001001", "孤儿网格", square(103.0, 25.0))],
    }
    with pytest.raises(RemoteError, match="needs its parent 530402009001"):
        county.import_territory(orphan)
    with pytest.raises(RemoteError, match=r"features\[0\].properties.code"):
        county.import_territory(
            {"type": "FeatureCollection", "features": [feature("53040200100", "坏码")]}
        )
    with pytest.raises(RemoteError, match="needs its polygon"):
        county.import_territory(
            {"type": "FeatureCollection", "features": [feature(VILLAGE_A + "009", "无边界")]}
        )


def test_locate_returns_the_grid_and_its_path(county):
    located = county.locate(102.505, 24.305)
    assert located["grid"] == {"code": GRID_A1, "name": "玉兴第一网格"}
    assert [step["code"] for step in located["path"]] == [COUNTY, TOWNSHIP_A, VILLAGE_A, GRID_A1]
    assert [step["level"] for step in located["path"]] == ["county", "township", "village", "grid"]
    assert located["path"][0]["name"] == "红塔区"
    assert county.locate(102.515, 24.305)["grid"]["code"] == GRID_A2


def test_a_point_outside_every_grid_is_outside_the_county(county):
    with pytest.raises(RemoteError) as raised:
        county.locate(100.0, 30.0)
    assert raised.value.exc_type == "OutsideTerritory"
    assert "outside the county 530402" in raised.value.value
    with pytest.raises(RemoteError, match="lat: must be a number"):
        county.locate(100.0, 95)


def test_scope_hides_other_townships(county, as_user):
    operator_b = as_user(OPERATOR_B)
    assert operator_b.get_territory(GRID_B1)["code"] == GRID_B1
    with pytest.raises(RemoteError) as raised:
        operator_b.get_territory(GRID_A1)
    assert raised.value.exc_type == "NotFound"
    assert [child["code"] for child in county.territory_children(TOWNSHIP_A)] == [VILLAGE_A]


def test_staff_roster_is_one_plus_one_plus_n(county, as_user):
    roster = [
        {"person_id": "p-leader", "name": "张网格长", "role": "grid_leader"},
        {"person_id": "p-super", "name": "李监督员", "role": "supervisor"},
        {"person_id": "p-full", "name": "王专职", "role": "full_time"},
        {"person_id": "p-part1", "name": "赵兼职", "role": "part_time"},
        {"person_id": "p-part2", "name": "钱兼职", "role": "part_time"},
    ]
    staff = county.set_grid_staff(GRID_A1, roster)
    assert [m["role"] for m in staff] == [
        "grid_leader",
        "supervisor",
        "full_time",
        "part_time",
        "part_time",
    ]
    county.set_grid_staff(GRID_A2, [{"person_id": "p-full", "name": "王专职", "role": "part_time"}])
    assert {g["grid_code"] for g in county.grids_served_by("p-full")} == {GRID_A1, GRID_A2}

    two_leaders = [*roster, {"person_id": "p-x", "name": "多余", "role": "grid_leader"}]
    with pytest.raises(RemoteError, match="at most one grid_leader"):
        county.set_grid_staff(GRID_A1, two_leaders)
    with pytest.raises(RemoteError, match=r"staff\[0\].role"):
        county.set_grid_staff(GRID_A1, [{"person_id": "p", "name": "n", "role": "boss"}])
    with pytest.raises(RemoteError, match="Forbidden"):
        as_user(WORKER_A1).set_grid_staff(GRID_A1, roster)
    assert len(county.grid_staff(GRID_A1)) == 5  # the refused changes changed nothing


# ------------------------------------------------------------------ as an import job
def test_a_territory_file_imports_as_a_job_idempotently_raising_the_version(as_user, population_db):
    admin = as_user(ADMIN)
    job = import_territory_file(admin, county_features())
    assert (job["status"], job["failure"], job["total_rows"]) == ("finished", None, 9)
    assert job["counts"] == {"rows": 9, "created": 9, "updated": 0, "unchanged": 0, "failed": 0}
    assert admin.get_territory(GRID_A1)["path"][-1] == GRID_A1
    version = population_db["territory_version"].find_one({"_id": "territory"})["version"]
    assert version >= 1

    again = import_territory_file(admin, county_features())
    assert again["counts"]["unchanged"] == 9 and again["counts"]["created"] == 0
    unchanged = population_db["territory_version"].find_one({"_id": "territory"})["version"]
    assert unchanged == version  # nothing changed: the map's outlines stay current

    renamed = county_features()
    renamed["features"][5]["properties"]["name"] = "玉兴一网格"
    assert import_territory_file(admin, renamed)["counts"]["updated"] == 1
    raised = population_db["territory_version"].find_one({"_id": "territory"})["version"]
    assert raised > version


def test_a_territory_job_with_overlapping_grids_fails_naming_both(county):
    overlapping = {
        "type": "FeatureCollection",
        "features": [feature(VILLAGE_A + "003", "重叠网格", square(102.505, 24.305))],
    }
    job = import_territory_file(county, overlapping)
    assert job["status"] == "failed"
    assert job["failure"].startswith("features: grid polygons overlap")
    assert GRID_A1 in job["failure"] and VILLAGE_A + "003" in job["failure"]
    with pytest.raises(RemoteError, match="NotFound"):
        county.get_territory(VILLAGE_A + "003")  # nothing was written


def test_territory_files_are_checked_before_a_job_and_only_administrators_send_them(
    county, as_user
):
    content = base64.b64encode(json.dumps(county_features()).encode()).decode()
    for filename, body, field in (
        ("territory.csv", content, "file"),
        ("territory.geojson", base64.b64encode(b"{not json").decode(), "file"),
        ("territory.geojson", base64.b64encode(b'{"type": "Feature"}').decode(), "type"),
        (
            "territory.json",
            base64.b64encode(b'{"type": "FeatureCollection", "features": []}').decode(),
            "features",
        ),
    ):
        with pytest.raises(RemoteError) as refused:
            county.start_import("territory", filename, body)
        assert refused.value.exc_type == "InvalidInput"
        assert refused.value.value.startswith(f"{field}:"), refused.value.value
    with pytest.raises(RemoteError) as refused:
        as_user(OPERATOR_B).start_import("territory", "territory.geojson", content)
    assert refused.value.exc_type == "Forbidden"
