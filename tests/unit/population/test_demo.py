import io
from collections import Counter
from datetime import date

import pytest

from services.population.application import STAFF_ROLES
from services.population.demo import (
    RESIDENT_CSV_COLUMNS,
    demo_group_members,
    demo_residents_csv,
    demo_staff,
    demo_territory,
    grid_codes,
)
from services.population.domain.codes import level_of, parent_code
from services.population.domain.groups import GROUPS, RISK_LEVELS
from services.population.domain.identity import parse_resident_id
from services.population.domain.residents import check_resident
from services.population.domain.territory import find_overlaps, nodes_from_feature_collection
from services.population.importing import RESIDENT_COLUMNS
from services.population.tables import open_table

TODAY = date(2026, 11, 23)


@pytest.fixture(scope="module")
def territory():
    return demo_territory()


@pytest.fixture(scope="module")
def staff(territory):
    return demo_staff(territory)


@pytest.fixture(scope="module")
def residents_csv(territory):
    return demo_residents_csv(territory, count=1500, seed=11)


def rows_of(data: bytes) -> list[tuple[int, dict]]:
    return list(open_table(io.BytesIO(data), "demo-residents.csv", RESIDENT_COLUMNS).rows)


def is_chinese(text: str) -> bool:
    return any("\u4e00" <= character <= "\u9fff" for character in text)


def test_everything_is_deterministic(territory, staff):
    assert demo_territory() == territory
    assert demo_staff(demo_territory()) == staff
    first = demo_residents_csv(territory, count=200, seed=5)
    assert demo_residents_csv(territory, count=200, seed=5) == first
    assert demo_residents_csv(territory, count=200, seed=6) != first
    ids = {grid: [f"{grid}-{n}" for n in range(300)] for grid in grid_codes(territory)}
    assert demo_group_members(ids, staff) == demo_group_members(ids, staff)


def test_territory_is_a_valid_tree_of_sixty_non_overlapping_grids(territory):
    nodes = nodes_from_feature_collection(territory)
    levels = Counter(node.level for node in nodes)
    assert levels["county"] == 1 and levels["township"] == 3
    assert 6 <= levels["village"] <= 9
    assert levels["grid"] == 60
    assert levels["building"] >= 2 * 60
    codes = {node.code for node in nodes}
    for node in nodes:
        assert level_of(node.code) == node.level
        assert node.parent is None or node.parent in codes
        assert node.code.startswith("530402")
        assert is_chinese(node.name)
        if node.level == "grid":
            assert node.geometry["type"] == "Polygon"
            assert node.name.endswith("网格")
            (lon, lat), *_ = node.geometry["coordinates"][0]
            assert 102.3 < lon < 102.7 and 24.1 < lat < 24.5
        else:
            assert node.geometry is None
    villages = Counter(parent_code(node.code) for node in nodes if node.level == "village")
    assert sorted(villages.values()) == [2, 3, 3]
    grids = {node.code: node.geometry for node in nodes if node.level == "grid"}
    assert find_overlaps(grids, {}) == []


def test_other_county_codes_give_the_same_shape(territory):
    other = nodes_from_feature_collection(demo_territory("530421"))
    assert len(other) == len(territory["features"])
    assert all(node.code.startswith("530421") for node in other)


def test_every_grid_has_a_one_plus_one_plus_n_roster(territory, staff):
    assert sorted(staff) == grid_codes(territory)
    for roster in staff.values():
        roles = Counter(member["role"] for member in roster)
        assert set(roles) <= set(STAFF_ROLES)
        assert roles["grid_leader"] == roles["supervisor"] == roles["full_time"] == 1
        assert 1 <= roles["part_time"] <= 3
        assert len({(m["person_id"], m["role"]) for m in roster}) == len(roster)
        for member in roster:
            assert member["person_id"].startswith("staff-")
            assert is_chinese(member["name"])
    grids_per_person = Counter(m["person_id"] for roster in staff.values() for m in roster)
    shared = [person for person, grids in grids_per_person.items() if grids > 1]
    assert shared and max(grids_per_person.values()) == 2
    roles_of_shared = {
        m["role"] for roster in staff.values() for m in roster if m["person_id"] in shared
    }
    assert roles_of_shared == {"part_time"}


def test_every_resident_row_passes_the_import_checks(territory, residents_csv):
    text = residents_csv.decode("utf-8")
    assert text.splitlines()[0].split(",") == list(RESIDENT_CSV_COLUMNS)
    assert set(RESIDENT_CSV_COLUMNS) <= {column.name for column in RESIDENT_COLUMNS}
    rows = rows_of(residents_csv)
    assert len(rows) == 1500
    grids = set(grid_codes(territory))
    records = []
    for _, values in rows:
        record, problems = check_resident(values, TODAY)
        assert problems == [], values
        records.append(record)
    assert len({r.id_number for r in records}) == len(records)
    phones = [r.phone for r in records if r.phone]
    assert len(set(phones)) == len(phones) > len(records) * 0.7
    assert {r.grid_code for r in records} == grids  # spread over every grid
    for record in records:
        parsed = parse_resident_id(record.id_number, TODAY)
        assert parsed.region_code == "530402"
        assert date(1930, 1, 1) <= parsed.birth_date <= date(2020, 12, 31)
        assert record.gender == parsed.gender
        assert is_chinese(record.name) and 2 <= len(record.name) <= 3
    ethnicities = Counter(r.ethnicity for r in records)
    assert ethnicities.most_common(1)[0][0] == "汉族"
    assert {"彝族", "哈尼族", "回族"} <= set(ethnicities)
    residence = Counter(r.residence_type for r in records)
    assert residence["registered"] > residence["floating"] > residence["separated"] > 0
    assert Counter(r.gender for r in records)["female"] > 500


def test_group_members_are_one_percent_with_their_grids_full_time_worker(territory, staff):
    grids = grid_codes(territory)
    ids = {grid: [f"r-{grid}-{n:03d}" for n in range(100 + 10 * i)] for i, grid in enumerate(grids)}
    members = demo_group_members(ids, staff)
    total = sum(len(v) for v in ids.values())
    assert 0.007 * total <= len(members) <= 0.013 * total
    assert len({m["resident_id"] for m in members}) == len(members)
    for member in members:
        grid = member["resident_id"][2:17]
        assert member["resident_id"] in ids[grid]
        full_time = [m["person_id"] for m in staff[grid] if m["role"] == "full_time"]
        assert member["responsible_worker_id"] == full_time[0]
        assert member["group"] in GROUPS
        assert member["risk_level"] in RISK_LEVELS
        assert set(member) == {
            "resident_id",
            "group",
            "risk_level",
            "responsible_worker_id",
            "note",
        }
    assert len({m["group"] for m in members}) >= 5
