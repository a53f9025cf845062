"""A county's export restored elsewhere (other databases, another bucket) on the real mongod
and S3 server, and used there by the real population service: what docs/operations.md
calls the tested restore path for a stack without the operators' backups."""

import io
import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from nameko.standalone.rpc import ClusterRpcProxy

from gridwork_backup.county import BackupError, export_county, import_county, media_client
from gridwork_common.mongo import new_client
from services.population.service import PopulationService
from tests.conftest import drop_databases, settings_env
from tests.integration.population.conftest import ADMIN, WORKER_A1
from tests.population_data import GRID_A1, county_features, resident_id

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
NUMBER = resident_id()
PHONE = "13812345678"
PHOTO = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 40  # bytes, not text: must survive as is


@pytest.fixture
def restored(infra, rabbit_config, settings):
    """Settings naming other databases and another bucket, in the same vhost."""
    other = settings.with_changes(
        mongo_db_prefix=f"restored_{uuid.uuid4().hex[:8]}",
        s3_bucket=f"restored-{uuid.uuid4().hex[:8]}",
    )
    yield other
    drop_databases(infra["mongo_uri"], other.mongo_db_prefix)


def _county_with_a_resident_and_a_photo(container_factory, config, settings):
    container = container_factory(PopulationService, config)
    container.start()
    with ClusterRpcProxy(config, context_data=ADMIN.to_context_data(), timeout=30) as rpc:
        rpc.population.import_territory(county_features())
        resident = rpc.population.register_resident(
            {"id_number": NUMBER, "name": "李四", "grid_code": GRID_A1, "phone": PHONE,
             "residence_type": "registered", "ethnicity": "汉族"}
        )  # fmt: skip
    media = media_client(settings)
    media.make_bucket(settings.s3_bucket)
    media.put_object(
        settings.s3_bucket,
        "sha256/ab/photo.jpg",
        io.BytesIO(PHOTO),
        len(PHOTO),
        content_type="image/jpeg",
        metadata={"purpose": "visit"},
    )
    container.stop()
    return resident


def test_an_export_restored_elsewhere_serves_the_same_county(
    container_factory, config, settings, restored, tmp_path
):
    resident = _county_with_a_resident_and_a_photo(container_factory, config, settings)

    manifest = export_county(settings, tmp_path / "export")
    assert manifest["databases"]["population"]["residents"]["documents"] == 1
    assert (
        NUMBER not in (tmp_path / "export" / "mongo" / "population" / "residents.jsonl").read_text()
    )
    import_county(restored, tmp_path / "export")

    # The restored copy is the same data, byte for byte and type for type.
    source = new_client(settings, "tests")
    target = new_client(restored, "tests")
    try:
        for service, collections in manifest["databases"].items():
            for name in collections:
                original = source[settings.database_name(service)][name]
                copy = target[restored.database_name(service)][name]
                assert list(copy.find().sort("_id")) == list(original.find().sort("_id"))
                assert copy.index_information() == original.index_information()
    finally:
        source.close()
        target.close()
    photo = media_client(restored).get_object(restored.s3_bucket, "sha256/ab/photo.jpg")
    assert (photo.read(), photo.headers["Content-Type"]) == (PHOTO, "image/jpeg")
    assert photo.headers["x-amz-meta-purpose"] == "visit"

    # And the service works on it: the blind index finds the resident, the key decrypts.
    restored_config = {**config, **restored.nameko_config()}
    container_factory(PopulationService, restored_config).start()
    with ClusterRpcProxy(restored_config, context_data=ADMIN.to_context_data(), timeout=30) as rpc:
        found = rpc.population.find_resident(id_number=NUMBER)
    with ClusterRpcProxy(restored_config, context_data=WORKER_A1.to_context_data()) as rpc:
        revealed = rpc.population.get_resident(resident["id"], ["id_number", "phone"], "恢复核对")
    assert [r["id"] for r in found] == [resident["id"]]
    assert (revealed["id_number"], revealed["phone"]) == (NUMBER, PHONE)


def test_a_restore_never_writes_over_data_or_from_an_altered_export(
    container_factory, config, settings, tmp_path
):
    _county_with_a_resident_and_a_photo(container_factory, config, settings)
    export_county(settings, tmp_path / "export")
    with pytest.raises(BackupError, match="already holds"):
        import_county(settings, tmp_path / "export")  # onto the live county

    residents = tmp_path / "export" / "mongo" / "population" / "residents.jsonl"
    residents.write_text(residents.read_text() + '{"_id": "a resident nobody registered"}\n')
    with pytest.raises(BackupError, match="altered"):
        import_county(settings.with_changes(mongo_db_prefix="never_written"), tmp_path / "export")


def test_the_command_line_exports_and_imports(infra, rabbit_config, settings, restored, tmp_path):
    media_client(settings).make_bucket(settings.s3_bucket)
    client = new_client(settings, "tests")
    client[settings.database_name("events")].incidents.insert_one({"_id": "case-1", "n": 1})
    client.close()

    def run(action, environment):
        return subprocess.run(
            [sys.executable, "-m", "gridwork_backup", action, str(tmp_path / "export")],
            cwd=ROOT,
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
        )

    exported = run("export", settings_env(infra, rabbit_config["AMQP_URI"],
                                          MONGO_DB_PREFIX=settings.mongo_db_prefix,
                                          S3_BUCKET=settings.s3_bucket))  # fmt: skip
    assert exported.returncode == 0, exported.stderr
    assert json.loads(exported.stdout) == {
        "export": str(tmp_path / "export"), "documents": 1, "objects": 0
    }  # fmt: skip
    imported = run("import", settings_env(infra, rabbit_config["AMQP_URI"],
                                          MONGO_DB_PREFIX=restored.mongo_db_prefix,
                                          S3_BUCKET=restored.s3_bucket))  # fmt: skip
    assert imported.returncode == 0, imported.stderr
    again = run("import", settings_env(infra, rabbit_config["AMQP_URI"],
                                       MONGO_DB_PREFIX=restored.mongo_db_prefix,
                                       S3_BUCKET=restored.s3_bucket))  # fmt: skip
    assert again.returncode == 1 and "already holds documents" in again.stderr
