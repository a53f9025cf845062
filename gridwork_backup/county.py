"""A county's data exported to a directory and imported from it: every collection of the
county's service databases (`<MONGO_DB_PREFIX>_*`) and every object of its media bucket.

For a stack without the operators' backups (docker compose, one machine) and for moving
a county; on Kubernetes, Percona Backup for MongoDB and a bucket mirror are the backups
(docs/operations.md, "Backup and restore"). The databases are read in one snapshot
session, so the export is one point in time across services (the snapshot must be read
within mongod's `minSnapshotHistoryWindowInSeconds`, 5 minutes by default; a larger
county uses the operator's backups). Media objects are immutable and content-addressed,
and are copied after the databases, so every object the snapshot refers to is there
(unless media retention deleted it in between). Documents are canonical extended JSON,
which keeps every BSON type (dates, binary ciphertexts, UUIDs, decimals).

Layout: `manifest.json` (counts and SHA-256 of every file), `mongo/<service>/<collection>.jsonl`,
`media/<object key>`. An import checks every file against the manifest first, and
refuses to write into a collection or bucket that already holds data.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path

from bson import json_util
from bson.binary import UuidRepresentation
from bson.json_util import JSONMode, JSONOptions
from minio import Minio
from pymongo import MongoClient

from gridwork_common.config import Settings
from gridwork_common.mongo import new_client

log = logging.getLogger(__name__)

FORMAT = 1
MANIFEST = "manifest.json"
JSON_OPTIONS = JSONOptions(
    json_mode=JSONMode.CANONICAL,
    uuid_representation=UuidRepresentation.STANDARD,
    tz_aware=True,
    tzinfo=UTC,
)
INSERT_BATCH = 1000


class BackupError(RuntimeError):
    """The directory is not a complete, unaltered export, or the target is not empty."""


def media_client(settings: Settings) -> Minio:
    return Minio(
        settings.s3_endpoint,
        access_key=settings.s3_access_key,
        secret_key=settings.s3_secret_key,
        secure=settings.s3_secure,
        region=settings.s3_region,
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _service_databases(client: MongoClient, prefix: str) -> list[str]:
    return sorted(n for n in client.list_database_names() if n.startswith(f"{prefix}_"))


def export_county(settings: Settings, directory: Path) -> dict:
    """Write the county's databases and media into `directory` (new or empty)."""
    directory.mkdir(parents=True, exist_ok=True)
    if any(directory.iterdir()):
        raise BackupError(f"{directory} is not empty")
    manifest = {"format": FORMAT, "prefix": settings.mongo_db_prefix, "databases": {}}
    client = new_client(settings, app_name="gridwork-backup")
    try:
        with client.start_session(snapshot=True) as session:
            for name in _service_databases(client, settings.mongo_db_prefix):
                service = name.removeprefix(f"{settings.mongo_db_prefix}_")
                manifest["databases"][service] = _export_database(
                    client[name], session, directory / "mongo" / service
                )
    finally:
        client.close()
    manifest["objects"] = _export_media(settings, directory / "media")
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=1, ensure_ascii=False))
    return manifest


def _export_database(database, session, target: Path) -> dict:
    target.mkdir(parents=True)
    collections = {}
    for info in database.list_collections(filter={"type": "collection"}):
        name = info["name"]
        if name.startswith("system."):
            continue
        path = target / f"{name}.jsonl"
        count = 0
        with path.open("w", encoding="utf-8") as out:
            for document in database[name].find({}, session=session, sort=[("_id", 1)]):
                out.write(json_util.dumps(document, json_options=JSON_OPTIONS) + "\n")
                count += 1
        indexes = [i for i in database[name].list_indexes() if i["name"] != "_id_"]
        collections[name] = {
            "documents": count,
            "sha256": _sha256(path),
            "options": json.loads(
                json_util.dumps(info.get("options", {}), json_options=JSON_OPTIONS)
            ),
            "indexes": json.loads(json_util.dumps(indexes, json_options=JSON_OPTIONS)),
        }
    return collections


def _export_media(settings: Settings, target: Path) -> list[dict]:
    client = media_client(settings)
    objects = []
    for item in client.list_objects(settings.s3_bucket, recursive=True):
        path = target / item.object_name
        path.parent.mkdir(parents=True, exist_ok=True)
        client.fget_object(settings.s3_bucket, item.object_name, str(path))
        stat = client.stat_object(settings.s3_bucket, item.object_name)
        objects.append(
            {
                "key": item.object_name,
                "size": path.stat().st_size,
                "sha256": _sha256(path),
                "content_type": stat.content_type,
                "metadata": {
                    k.lower().removeprefix("x-amz-meta-"): v
                    for k, v in (stat.metadata or {}).items()
                    if k.lower().startswith("x-amz-meta-")
                },
            }
        )
    return objects


def _checked_manifest(directory: Path) -> dict:
    path = directory / MANIFEST
    if not path.exists():
        raise BackupError(f"{directory} has no {MANIFEST}: not a finished export")
    manifest = json.loads(path.read_text())
    if manifest.get("format") != FORMAT:
        raise BackupError(f"unknown export format {manifest.get('format')!r}")
    for service, collections in manifest["databases"].items():
        for name, entry in collections.items():
            _check_file(directory / "mongo" / service / f"{name}.jsonl", entry["sha256"])
    for entry in manifest["objects"]:
        _check_file(directory / "media" / entry["key"], entry["sha256"])
    return manifest


def _check_file(path: Path, sha256: str) -> None:
    if not path.exists() or _sha256(path) != sha256:
        raise BackupError(f"{path} is missing or altered")


def import_county(settings: Settings, directory: Path) -> dict:
    """Restore an export into the databases and bucket `settings` name (which may differ
    from the exported ones: a county moved, or a restore tried beside production)."""
    manifest = _checked_manifest(directory)
    client = new_client(settings, app_name="gridwork-restore")
    try:
        _refuse_unless_empty(settings, client, manifest)
        for service, collections in manifest["databases"].items():
            database = client[settings.database_name(service)]
            for name, entry in collections.items():
                _import_collection(database, name, entry, directory / "mongo" / service)
    finally:
        client.close()
    _import_media(settings, manifest["objects"], directory / "media")
    return manifest


def _refuse_unless_empty(settings: Settings, client: MongoClient, manifest: dict) -> None:
    """Checked before anything is written: a restore never mixes with live data."""
    for service, collections in manifest["databases"].items():
        database = client[settings.database_name(service)]
        for name in collections:
            if database[name].find_one({}, {"_id": 1}) is not None:
                raise BackupError(f"{database.name}.{name} already holds documents")
    media = media_client(settings)
    if media.bucket_exists(settings.s3_bucket) and any(
        True for _ in media.list_objects(settings.s3_bucket, recursive=True)
    ):
        raise BackupError(f"bucket {settings.s3_bucket} already holds objects")


def _import_collection(database, name: str, entry: dict, source: Path) -> None:
    if name not in database.list_collection_names():
        options = json_util.loads(json.dumps(entry["options"]), json_options=JSON_OPTIONS)
        database.create_collection(name, **options)
    batch = []
    for document in _documents(source / f"{name}.jsonl"):
        batch.append(document)
        if len(batch) >= INSERT_BATCH:
            database[name].insert_many(batch, ordered=True)
            batch = []
    if batch:
        database[name].insert_many(batch, ordered=True)
    for index in json_util.loads(json.dumps(entry["indexes"]), json_options=JSON_OPTIONS):
        keys = list(index.pop("key").items())
        index.pop("v", None)
        index.pop("ns", None)
        database[name].create_index(keys, **index)
    restored = database[name].count_documents({})
    if restored != entry["documents"]:
        raise BackupError(
            f"{database.name}.{name}: {restored} documents, expected {entry['documents']}"
        )


def _documents(path: Path) -> Iterator[dict]:
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            yield json_util.loads(line, json_options=JSON_OPTIONS)


def _import_media(settings: Settings, objects: list[dict], source: Path) -> None:
    client = media_client(settings)
    if not client.bucket_exists(settings.s3_bucket):
        client.make_bucket(settings.s3_bucket)
    for entry in objects:
        client.fput_object(
            settings.s3_bucket,
            entry["key"],
            str(source / entry["key"]),
            content_type=entry["content_type"] or "application/octet-stream",
            metadata=entry["metadata"] or None,
        )
