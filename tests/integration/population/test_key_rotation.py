"""PII_ENCRYPTION_KEY and PII_INDEX_KEY rotation on the real service and mongod: data
written under keys A is read and found after the switch to keys B (A listed as previous),
the rekey job moves every resident to B, and then A can go."""

import base64
import os
import subprocess
import sys

import pytest
from nameko.exceptions import RemoteError

from gridwork_common.config import NAMEKO_SETTINGS_KEY, key_id
from services.population import rekey
from services.population.protection import PersonalDataCipher
from services.population.service import PopulationService
from tests.integration.population.conftest import ADMIN
from tests.integration.population.test_imports import csv_bytes, run_import
from tests.population_data import GRID_A1, county_features, resident_id

pytestmark = pytest.mark.integration

ENCRYPTION_A, INDEX_A = os.urandom(32), os.urandom(32)
ENCRYPTION_B, INDEX_B = os.urandom(32), os.urandom(32)
OLD_NUMBER, NEW_NUMBER = resident_id(sequence=123), resident_id(sequence=456)
PHONE = "13812345678"
PURPOSE = "核实身份信息, 密钥轮换测试"


@pytest.fixture
def start_population(container_factory, config, settings):
    """`start_population(encryption, index, previous_encryption, previous_index)` stops the
    running population container, if any, and starts one with those keys."""
    running = []

    def start(encryption, index, previous_encryption=(), previous_index=()):
        if running:
            running.pop().stop()
        keyed = settings.with_changes(
            pii_encryption_key=encryption,
            pii_index_key=index,
            pii_encryption_keys_previous=previous_encryption,
            pii_index_keys_previous=previous_index,
        )
        container = container_factory(PopulationService, {**config, NAMEKO_SETTINGS_KEY: keyed})
        container.start()
        running.append(container)
        return keyed

    return start


def run_rekey_tool(settings) -> subprocess.CompletedProcess:
    """`python -m services.population.rekey` as an operator runs it, with these settings."""
    keys = {
        "PII_ENCRYPTION_KEY": settings.pii_encryption_key,
        "PII_INDEX_KEY": settings.pii_index_key,
        "PII_ENCRYPTION_KEYS_PREVIOUS": settings.pii_encryption_keys_previous[0],
        "PII_INDEX_KEYS_PREVIOUS": settings.pii_index_keys_previous[0],
    }
    env = {
        **os.environ,
        "MONGO_URI": settings.mongo_uri,
        "MONGO_DB_PREFIX": settings.mongo_db_prefix,
        "GRIDWORK_DEV_MODE": "true",
        **{name: base64.b64encode(key).decode() for name, key in keys.items()},
    }
    command = [sys.executable, "-m", "services.population.rekey", "--batch-size", "1"]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)


def register(proxy, number, phone=None):
    return proxy.register_resident(
        {"id_number": number, "name": "李四", "grid_code": GRID_A1, "phone": phone,
         "residence_type": "registered", "ethnicity": "汉族"}
    )  # fmt: skip


def test_keys_rotate_without_losing_reads_or_searches(start_population, cluster_as, population_db):
    start_population(ENCRYPTION_A, INDEX_A)
    admin = cluster_as(ADMIN).population
    admin.import_territory(county_features())
    old = register(admin, OLD_NUMBER, PHONE)
    assert population_db.residents.find_one()["id_cipher"].startswith(f"k{key_id(ENCRYPTION_A)}:")

    # Mid-rotation: B writes, A still reads and finds.
    during = start_population(ENCRYPTION_B, INDEX_B, (ENCRYPTION_A,), (INDEX_A,))
    revealed = admin.get_resident(old["id"], ["id_number", "phone"], PURPOSE)
    assert (revealed["id_number"], revealed["phone"]) == (OLD_NUMBER, PHONE)
    assert [r["id"] for r in admin.find_resident(id_number=OLD_NUMBER)] == [old["id"]]
    assert [r["id"] for r in admin.find_resident(phone=PHONE)] == [old["id"]]
    new = register(admin, NEW_NUMBER, PHONE)
    stored_new = population_db.residents.find_one({"_id": new["id"]})
    assert stored_new["id_cipher"].startswith(f"k{key_id(ENCRYPTION_B)}:")
    assert {r["id"] for r in admin.find_resident(phone=PHONE)} == {old["id"], new["id"]}
    with pytest.raises(RemoteError) as duplicate:  # indexed under A, still the same person
        register(admin, OLD_NUMBER, "13900000000")
    assert duplicate.value.exc_type == "Conflict"
    assert population_db.residents.count_documents({}) == 2
    imported = run_import(admin, csv_bytes([[OLD_NUMBER, "李四", GRID_A1, PHONE, "registered"]]))
    assert (imported["counts"]["created"], imported["counts"]["failed"]) == (0, 0)
    assert population_db.residents.count_documents({}) == 2  # matched under A, not added

    # The job rewrites what A wrote, in batches; a second run finds nothing left.
    rekeying = rekey.ResidentRekeying(
        population_db.residents, PersonalDataCipher.from_settings(during)
    )
    assert rekeying.remaining() == 1  # the import rewrote the old resident's phone only
    finished = run_rekey_tool(during)
    assert finished.returncode == 0, finished.stderr
    assert "rewritten=1 changed_meanwhile=0 remaining=0 unfinished_imports=0" in finished.stdout
    assert rekeying.run(batch_size=1) == {"rewritten": 0, "skipped_concurrent": 0}
    assert rekeying.remaining() == 0
    key_ids_a = (key_id(ENCRYPTION_A), key_id(INDEX_A))
    only_a = PersonalDataCipher(ENCRYPTION_A, INDEX_A)
    for doc in population_db.residents.find():
        assert doc["pii_keys"] == f"{key_id(ENCRYPTION_B)}.{key_id(INDEX_B)}"
        assert not any(k in doc["id_cipher"] + doc["phone_cipher"] for k in key_ids_a)
        assert doc["phone_index"] != only_a.blind_index(PHONE, "phone")

    # A removed: everything still reads and is found.
    start_population(ENCRYPTION_B, INDEX_B)
    revealed = admin.get_resident(old["id"], ["id_number", "phone"], PURPOSE)
    assert (revealed["id_number"], revealed["phone"]) == (OLD_NUMBER, PHONE)
    assert [r["id"] for r in admin.find_resident(id_number=OLD_NUMBER)] == [old["id"]]
    assert {r["id"] for r in admin.find_resident(phone=PHONE)} == {old["id"], new["id"]}


def test_data_under_a_removed_key_is_refused_not_misread(start_population, cluster_as):
    start_population(ENCRYPTION_A, INDEX_A)
    admin = cluster_as(ADMIN).population
    admin.import_territory(county_features())
    old = register(admin, OLD_NUMBER)
    start_population(ENCRYPTION_B, INDEX_B)  # A dropped before the job ran: an error
    assert admin.find_resident(id_number=OLD_NUMBER) == []
    with pytest.raises(RemoteError):
        admin.get_resident(old["id"], ["id_number"], PURPOSE)
