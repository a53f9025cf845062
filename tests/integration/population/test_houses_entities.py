"""Houses, tenants, households and legal entities."""

import pytest
from nameko.exceptions import RemoteError

from services.population.domain.identity import CREDIT_CODE_CHARSET
from tests.integration.population.conftest import ADMIN, OPERATOR_B, WORKER_A1
from tests.population_data import (
    BUILDING_A1,
    COUNTY,
    GRID_A1,
    GRID_A2,
    GRID_B1,
    TOWNSHIP_A,
    TOWNSHIP_B,
    credit_code,
    random_resident_ids,
)

pytestmark = pytest.mark.integration

IDS = random_resident_ids(6, seed=23)
BUILDING_B1 = GRID_B1 + "00001"


def register(admin, number: str, name: str, grid: str = GRID_A1) -> dict:
    return admin.register_resident(
        {
            "id_number": number,
            "name": name,
            "grid_code": grid,
            "phone": "13812345678",
            "residence_type": "registered",
        }
    )


def all_pages(fetch, limit: int) -> list[list[dict]]:
    pages, cursor = [], None
    while True:
        page = fetch(cursor=cursor, limit=limit)
        pages.append(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 20, "pagination does not end"


# ------------------------------------------------------------------ houses
def test_add_house_is_idempotent_by_building_and_room(county, as_user, population_db):
    worker = as_user(WORKER_A1)
    house = {"building_code": BUILDING_A1, "room": "1-101", "address": "玉兴路1号1-101"}
    added = worker.add_house({**house, "rental_status": "rented"})
    assert added == {
        "id": f"{BUILDING_A1}-1-101",
        "building_code": BUILDING_A1,
        "grid_code": GRID_A1,
        "room": "1-101",
        "address": "玉兴路1号1-101",
        "rental_status": "rented",
        "owner_resident_id": None,
        "tenant_ids": [],
    }
    assert worker.add_house({**house, "rental_status": "rented"}) == added  # a retry
    assert population_db.houses.count_documents({}) == 1
    assert county.get_house(added["id"]) == added
    assert worker.add_house({"building_code": BUILDING_A1, "room": "1-102"})["rental_status"] == (
        "owner_occupied"
    )


@pytest.mark.parametrize(
    ("house", "message"),
    [
        ({"building_code": BUILDING_A1, "room": "1", "rental_status": "leased"}, "rental_status"),
        ({"building_code": BUILDING_A1, "room": " "}, "room: is required"),
        ({"building_code": GRID_A1, "room": "1"}, "building_code: must be a 20-digit"),
        ({"building_code": BUILDING_A1, "room": "1", "owner_resident_id": "nobody"}, "NotFound"),
    ],
    ids=["unknown-status", "no-room", "not-a-building", "unknown-owner"],
)
def test_a_bad_house_is_refused_naming_the_field(county, population_db, house, message):
    with pytest.raises(RemoteError, match=message):
        county.add_house(house)
    assert population_db.houses.count_documents({}) == 0


def test_houses_outside_the_callers_scope_cannot_be_added_or_seen(county, as_user):
    house = county.add_house({"building_code": BUILDING_A1, "room": "2-201"})
    with pytest.raises(RemoteError) as raised:
        as_user(OPERATOR_B).get_house(house["id"])
    assert raised.value.exc_type == "NotFound"
    with pytest.raises(RemoteError, match="NotFound"):
        as_user(OPERATOR_B).add_house({"building_code": BUILDING_A1, "room": "2-202"})
    assert as_user(OPERATOR_B).list_houses(COUNTY)["items"] == []


def test_only_a_rented_house_has_tenants(county, as_user):
    worker = as_user(WORKER_A1)
    tenant_one, tenant_two = register(county, IDS[0], "租客甲"), register(county, IDS[1], "租客乙")
    rented = worker.add_house(
        {"building_code": BUILDING_A1, "room": "3-301", "rental_status": "rented"}
    )
    owned = worker.add_house({"building_code": BUILDING_A1, "room": "3-302"})

    updated = worker.set_tenants(rented["id"], [tenant_one["id"], tenant_two["id"]])
    assert updated["tenant_ids"] == [tenant_one["id"], tenant_two["id"]]
    assert worker.get_house(rented["id"])["tenant_ids"] == [tenant_one["id"], tenant_two["id"]]
    assert worker.set_tenants(rented["id"], [tenant_two["id"]])["tenant_ids"] == [tenant_two["id"]]

    with pytest.raises(RemoteError) as raised:
        worker.set_tenants(owned["id"], [tenant_one["id"]])
    assert raised.value.exc_type == "InvalidInput"
    assert raised.value.value == "tenant_ids: only a rented house has tenants"
    assert worker.get_house(owned["id"])["tenant_ids"] == []
    assert worker.set_tenants(owned["id"], [])["tenant_ids"] == []
    with pytest.raises(RemoteError, match="NotFound"):
        worker.set_tenants(rented["id"], ["no-such-resident"])
    with pytest.raises(RemoteError, match="tenant_ids: must be a list"):
        worker.set_tenants(rented["id"], tenant_one["id"])
    assert worker.get_house(rented["id"])["tenant_ids"] == [tenant_two["id"]]


def test_list_houses_pages_through_a_grid(county, as_user):
    rooms = [f"{floor}-{floor}01" for floor in range(1, 6)]
    for room in rooms:
        county.add_house({"building_code": BUILDING_A1, "room": room})

    pages = all_pages(lambda **page: county.list_houses(GRID_A1, **page), limit=2)
    assert [len(page) for page in pages] == [2, 2, 1]
    listed = [house["room"] for page in pages for house in page]
    assert listed == sorted(rooms)  # each house once, in id order
    assert {house["grid_code"] for page in pages for house in page} == {GRID_A1}

    county.add_house({"building_code": BUILDING_B1, "room": "1-101"})
    assert len(county.list_houses(COUNTY, limit=50)["items"]) == 6
    assert [h["grid_code"] for h in as_user(OPERATOR_B).list_houses(TOWNSHIP_B)["items"]] == [
        GRID_B1
    ]
    with pytest.raises(RemoteError, match="limit: must be an integer from 1 to 200"):
        county.list_houses(GRID_A1, limit=0)


def test_lists_hold_only_the_requested_subtree(county, as_user):
    county.add_house({"building_code": BUILDING_A1, "room": "1-101"})
    county.add_house({"building_code": BUILDING_B1, "room": "1-101"})
    county.register_entity(entity(credit_code("91530402MA6KB00"), GRID_B1, "乙公司"))
    assert [h["grid_code"] for h in county.list_houses(GRID_A1)["items"]] == [GRID_A1]
    assert [h["grid_code"] for h in county.list_houses(TOWNSHIP_B)["items"]] == [GRID_B1]
    assert county.list_entities(TOWNSHIP_A)["items"] == []
    assert as_user(OPERATOR_B).list_entities(TOWNSHIP_A)["items"] == []


# ------------------------------------------------------------------ households
def test_a_household_lists_its_members_with_their_relations(county, as_user):
    worker = as_user(WORKER_A1)
    head = register(county, IDS[0], "王父")
    spouse = register(county, IDS[1], "李母")
    child = register(county, IDS[2], "王子")
    house = worker.add_house({"building_code": BUILDING_A1, "room": "5-501"})

    household = worker.create_household(house["id"], head["id"])
    assert household["house_id"] == house["id"]
    assert household["grid_code"] == GRID_A1
    assert household["head_resident_id"] == head["id"]
    assert household["members"] == [{"resident_id": head["id"], "name": "王父", "relation": "head"}]
    assert worker.create_household(house["id"], head["id"])["id"] == household["id"]  # a retry

    worker.add_household_member(household["id"], spouse["id"], "spouse")
    listed = worker.add_household_member(household["id"], child["id"], "child")
    members = {m["resident_id"]: (m["name"], m["relation"]) for m in listed["members"]}
    assert members == {
        head["id"]: ("王父", "head"),
        spouse["id"]: ("李母", "spouse"),
        child["id"]: ("王子", "child"),
    }
    assert worker.get_household(household["id"]) == listed

    for resident, relation in ((head, "head"), (spouse, "spouse"), (child, "child")):
        record = worker.get_resident(resident["id"])
        assert record["household_id"] == household["id"]
        assert record["house_id"] == house["id"]
        assert record["relation_to_head"] == relation
    assert county.statistics(GRID_A1)["households"] == 1

    with pytest.raises(RemoteError, match="relation: must be a relation to the head"):
        worker.add_household_member(household["id"], child["id"], "head")
    with pytest.raises(RemoteError, match="relation: must be a relation to the head"):
        worker.add_household_member(household["id"], child["id"], "cousin")
    with pytest.raises(RemoteError, match="NotFound"):
        as_user(OPERATOR_B).get_household(household["id"])


def test_a_household_head_must_live_in_the_houses_grid(county):
    elsewhere = register(county, IDS[3], "外网格居民", GRID_A2)
    house = county.add_house({"building_code": BUILDING_A1, "room": "6-601"})
    with pytest.raises(RemoteError, match="InvalidInput"):
        county.create_household(house["id"], elsewhere["id"])
    assert county.get_resident(elsewhere["id"])["house_id"] is None


# ------------------------------------------------------------------ legal entities
def entity(code: str, grid: str = GRID_A1, name: str = "红塔区玉兴商贸有限公司") -> dict:
    return {
        "credit_code": code,
        "name": name,
        "type": "company",
        "address": "玉兴路8号",
        "grid_code": grid,
        "legal_representative": "张三",
    }


def wrong_check_character(code: str) -> str:
    return code[:17] + next(c for c in CREDIT_CODE_CHARSET if c != code[17])


def test_register_entity_checks_the_credit_code(county, as_user, population_db):
    code = credit_code()
    registered = as_user(WORKER_A1).register_entity(entity(code))
    assert registered == {
        "credit_code": code,
        "name": "红塔区玉兴商贸有限公司",
        "type": "company",
        "address": "玉兴路8号",
        "legal_representative": "张三",
        "grid_code": GRID_A1,
    }
    assert county.get_entity(code) == registered
    assert county.get_entity(f" {code.lower()} ") == registered
    again = county.register_entity(entity(code.lower(), name="红塔区玉兴商贸有限公司更名"))
    assert again["name"] == "红塔区玉兴商贸有限公司更名"
    assert population_db.entities.count_documents({}) == 1

    with pytest.raises(RemoteError) as raised:
        county.register_entity(entity(wrong_check_character(credit_code("91530402MA6K001"))))
    assert raised.value.exc_type == "InvalidInput"
    assert raised.value.value == "credit_code: check character does not match"
    for bad, problem in (
        (code[:17], "credit_code: must be 18 characters"),
        ("I" + code[1:], "credit_code: character 'I' at position 1 is not allowed"),
        ("", "credit_code: must be 18 characters"),
    ):
        with pytest.raises(RemoteError, match=problem):
            county.register_entity(entity(bad))
    with pytest.raises(RemoteError, match="name: is required"):
        county.register_entity({**entity(credit_code("91530402MA6K002")), "name": ""})
    with pytest.raises(RemoteError, match="grid_code"):
        county.register_entity(entity(credit_code("91530402MA6K003"), grid=TOWNSHIP_A))
    assert population_db.entities.count_documents({}) == 1


def test_entities_are_listed_and_seen_only_within_scope(county, as_user):
    in_a = [credit_code(f"91530402MA6KA0{n}") for n in range(3)]
    in_b = credit_code("91530402MA6KB00")
    for number, code in enumerate(in_a):
        county.register_entity(entity(code, GRID_A1 if number < 2 else GRID_A2, f"甲公司{number}"))
    county.register_entity(entity(in_b, GRID_B1, "乙公司"))

    operator_b = as_user(OPERATOR_B)
    assert operator_b.get_entity(in_b)["grid_code"] == GRID_B1
    with pytest.raises(RemoteError) as raised:
        operator_b.get_entity(in_a[0])
    assert raised.value.exc_type == "NotFound"
    assert [e["credit_code"] for e in operator_b.list_entities(COUNTY)["items"]] == [in_b]
    with pytest.raises(RemoteError, match="NotFound"):
        operator_b.register_entity(entity(credit_code("91530402MA6KB01"), GRID_A1))

    pages = all_pages(lambda **page: county.list_entities(COUNTY, **page), limit=3)
    assert [len(page) for page in pages] == [3, 1]
    assert sorted(e["credit_code"] for page in pages for e in page) == sorted([*in_a, in_b])
    worker_a1 = as_user(WORKER_A1)
    assert {e["credit_code"] for e in worker_a1.list_entities(GRID_A1)["items"]} == set(in_a[:2])
    assert as_user(ADMIN).get_entity(in_a[2])["grid_code"] == GRID_A2


def test_an_entity_outside_the_callers_scope_cannot_be_overwritten(county, as_user):
    code = credit_code()
    county.register_entity(entity(code, GRID_A1))
    with pytest.raises(RemoteError):
        as_user(OPERATOR_B).register_entity(entity(code, GRID_B1, "冒名公司"))
    kept = county.get_entity(code)
    assert (kept["grid_code"], kept["name"]) == (GRID_A1, "红塔区玉兴商贸有限公司")
