import json

import pytest
from nameko.exceptions import RemoteError

from tests.integration.population.conftest import (
    HANDLER,
    LEADER,
    OPERATOR_B,
    WORKER_A1,
)
from tests.population_data import COUNTY, GRID_A1, GRID_A2, GRID_B1, TOWNSHIP_A, resident_id

pytestmark = pytest.mark.integration

NUMBER = resident_id()  # 530402199003071234: born 1990-03-07, sequence 123 (odd: male)
PHONE = "13812345678"


def _register(proxy, number=NUMBER, **fields):
    return proxy.register_resident(
        {"id_number": number, "name": "李四", "grid_code": GRID_A1, "phone": PHONE,
         "residence_type": "registered", "ethnicity": "汉族", **fields}
    )  # fmt: skip


def test_registering_masks_derives_and_never_stores_or_publishes_the_number(
    county, population_db, events_tap
):
    resident = _register(county)
    assert resident["id_number"] == "530***********1234"
    assert resident["phone"] == "138****5678"
    assert (resident["birth_date"], resident["gender"]) == ("1990-03-07", "male")
    assert resident["status"] == "active" and resident["version"] == 1

    stored = json.dumps(list(population_db.residents.find()), default=str)
    assert NUMBER not in stored and PHONE not in stored
    published = [event for key, event in events_tap() if key == "resident.registered"]
    assert len(published) == 1
    assert published[0]["subject"] == GRID_A1
    assert NUMBER not in json.dumps(published) and "530***" not in json.dumps(published)
    assert published[0]["data"]["resident_id"] == resident["id"]


def test_a_retried_registration_returns_the_same_resident(county, population_db):
    first = _register(county)
    assert _register(county)["id"] == first["id"]
    assert population_db.residents.count_documents({}) == 1
    with pytest.raises(RemoteError) as raised:
        _register(county, name="王五")
    assert raised.value.exc_type == "Conflict"
    assert "already registered" in raised.value.value


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"id_number": NUMBER[:-1] + ("0" if NUMBER[-1] != "0" else "1")}, "id_number"),
        ({"id_number": "53040219900307123"}, "id_number"),
        ({"gender": "female"}, "gender"),
        ({"birth_date": "1990-03-08"}, "birth_date"),
        ({"phone": "12345"}, "phone"),
        ({"residence_type": "tourist"}, "residence_type"),
        ({"grid_code": "53040200100100"}, "grid_code"),
        ({"name": ""}, "name"),
    ],
)
def test_bad_input_is_refused_naming_the_field(county, population_db, fields, field):
    with pytest.raises(RemoteError) as raised:
        _register(county, **fields)
    assert raised.value.exc_type == "InvalidInput"
    assert raised.value.value.startswith(f"{field}:")
    assert population_db.residents.count_documents({}) == 0


def test_foreigners_are_keyed_by_passport_and_nationality(county):
    foreigner = county.register_resident(
        {"id_type": "passport", "id_number": "e12345678", "nationality": "mmr",
         "name": "Aung", "grid_code": GRID_A1, "residence_type": "overseas"}
    )  # fmt: skip
    assert foreigner["nationality"] == "MMR"
    assert foreigner["id_number"] == "E******78"
    with pytest.raises(RemoteError, match="nationality"):
        county.register_resident(
            {"id_type": "passport", "id_number": "E12345678", "nationality": "CHN",
             "name": "x", "grid_code": GRID_A1}
        )  # fmt: skip


def test_updates_are_versioned_and_kept_as_history(county):
    resident = _register(county)
    updated = county.update_resident(resident["id"], {"phone": "13900001111", "notes": "独居"}, 1)
    assert updated["version"] == 2 and updated["phone"] == "139****1111"
    with pytest.raises(RemoteError) as raised:
        county.update_resident(resident["id"], {"notes": "again"}, 1)
    assert raised.value.exc_type == "Conflict"
    assert "version 2" in raised.value.value
    with pytest.raises(RemoteError, match="id_number: cannot be changed"):
        county.update_resident(resident["id"], {"id_number": resident_id(sequence=125)}, 2)

    history = county.resident_history(resident["id"])
    assert [entry["action"] for entry in history] == ["registered", "updated"]
    assert history[1]["by"] == "admin-1"
    assert history[1]["changes"]["phone"] == {"changed": True}  # never the number itself
    assert history[1]["changes"]["notes"] == {"from": None, "to": "独居"}


def test_moves_within_and_out_of_the_county(county, events_tap):
    resident = _register(county)
    moved = county.move_resident(resident["id"], 1, to_grid_code=GRID_B1)
    assert moved["grid_code"] == GRID_B1
    assert county.statistics(TOWNSHIP_A)["residents"] == 0
    gone = county.move_resident(resident["id"], 2, out_of_county="昆明市五华区")
    assert gone["status"] == "moved_out"
    with pytest.raises(RemoteError, match="Conflict"):
        county.move_resident(resident["id"], 3, to_grid_code=GRID_A1)
    keys = [key for key, _ in events_tap()]
    assert keys.count("resident.moved") == 2
    actions = [entry["action"] for entry in county.resident_history(resident["id"])]
    assert actions == ["registered", "moved", "moved_out"]


def test_deregistration_keeps_the_record_and_clears_group_memberships(county):
    resident = _register(county)
    county.flag_group(resident["id"], "elderly_alone", "low", "worker-a1")
    gone = county.deregister_resident(resident["id"], 1, "deceased")
    assert gone["status"] == "deregistered"
    assert gone["groups"] == []
    assert county.list_residents(GRID_A1)["items"] == []
    assert county.list_residents(GRID_A1, status="deregistered")["items"][0]["id"] == gone["id"]


def test_revealing_needs_a_role_and_a_purpose_and_is_audited(county, as_user):
    resident = _register(county)
    worker = as_user(WORKER_A1)
    with pytest.raises(RemoteError, match="purpose"):
        worker.get_resident(resident["id"], ["id_number"])
    full = worker.get_resident(resident["id"], ["id_number", "phone"], "核实走访对象身份")
    assert (full["id_number"], full["phone"]) == (NUMBER, PHONE)
    with pytest.raises(RemoteError, match="Forbidden"):
        as_user(LEADER).get_resident(resident["id"], ["id_number"], "curious")

    audit = as_user(LEADER).access_audit(resident_id=resident["id"])["items"]
    assert len(audit) == 1
    assert audit[0]["actor"] == "worker-a1"
    assert audit[0]["fields"] == ["id_number", "phone"]
    assert audit[0]["purpose"] == "核实走访对象身份"
    with pytest.raises(RemoteError, match="Forbidden"):
        worker.access_audit()


def test_scope_makes_outside_records_not_found(county, as_user):
    resident = _register(county)
    operator_b = as_user(OPERATOR_B)
    with pytest.raises(RemoteError) as raised:
        operator_b.get_resident(resident["id"])
    assert raised.value.exc_type == "NotFound"
    assert operator_b.find_resident(id_number=NUMBER) == []
    assert as_user(WORKER_A1).find_resident(id_number=NUMBER)[0]["id"] == resident["id"]
    assert as_user(WORKER_A1).find_resident(phone=PHONE)[0]["id"] == resident["id"]
    with pytest.raises(RemoteError, match="NotFound"):
        operator_b.update_resident(resident["id"], {"notes": "x"}, 1)
    with pytest.raises(RemoteError, match="Forbidden"):
        as_user(HANDLER).update_resident(resident["id"], {"notes": "x"}, 1)


def test_lists_are_paginated_by_cursor_and_statistics_aggregate_the_subtree(county):
    for sequence in range(101, 112, 2):
        _register(county, number=resident_id(sequence=sequence), grid_code=GRID_A1)
    _register(county, number=resident_id(sequence=201), grid_code=GRID_A2,
              residence_type="floating")  # fmt: skip
    first = county.list_residents(TOWNSHIP_A, limit=4)
    second = county.list_residents(TOWNSHIP_A, cursor=first["next_cursor"], limit=4)
    assert len(first["items"]) == 4 and len(second["items"]) == 3
    assert second["next_cursor"] is None
    assert not {r["id"] for r in first["items"]} & {r["id"] for r in second["items"]}
    with pytest.raises(RemoteError, match="limit"):
        county.list_residents(TOWNSHIP_A, limit=1000)

    stats = county.statistics(COUNTY)
    assert stats["grids"] == 3
    assert stats["residents"] == 7
    assert stats["residents_by_residence_type"] == {"registered": 6, "floating": 1}


def test_a_resident_who_moved_out_moves_back_in_as_the_same_record(county):
    resident = _register(county)
    county.move_resident(resident["id"], 1, out_of_county="昆明市")
    back = _register(county, grid_code=GRID_A2, residence_type="floating")
    assert back["id"] == resident["id"]
    assert (back["status"], back["grid_code"], back["residence_type"]) == (
        "active",
        GRID_A2,
        "floating",
    )
    actions = [entry["action"] for entry in county.resident_history(resident["id"])]
    assert actions == ["registered", "moved_out", "moved_in"]
    county.deregister_resident(resident["id"], back["version"], "deceased")
    with pytest.raises(RemoteError, match="already registered"):
        _register(county)


def test_a_removed_phone_number_is_gone_from_the_record(county, population_db):
    resident = _register(county)
    updated = county.update_resident(resident["id"], {"phone": None}, 1)
    assert updated["phone"] is None
    stored = population_db.residents.find_one({"_id": resident["id"]})
    assert not {"phone_cipher", "phone_index", "phone_masked"} & set(stored)
    assert county.find_resident(phone=PHONE) == []


def test_a_deregistration_cut_short_is_finished_by_its_retry(county, population_db):
    resident = _register(county)
    membership = county.flag_group(resident["id"], "elderly_alone", "medium", "worker-a1")
    county.deregister_resident(resident["id"], 1, "deceased")
    # As a process that died between the status change and the clearing leaves it:
    memberships = population_db.group_memberships
    memberships.update_one({"_id": membership["id"]}, {"$set": {"active": True}})
    with pytest.raises(RemoteError, match="already deregistered"):
        county.deregister_resident(resident["id"], 2, "deceased")
    assert memberships.find_one({"_id": membership["id"]})["active"] is False
