"""Servers of a test's own that it may stop, kill or freeze: a mongod (with test commands,
for `failCommand` fail points), an S3 server and a RabbitMQ node, never the session's
shared ones (and never the broker on 5672)."""

from __future__ import annotations

import contextlib
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pymongo

from devstack import rabbitmq
from devstack.infra import init_replica_set, mongod_process, s3_process
from devstack.processes import free_port, port_open, wait_until

S3_ACCESS_KEY = "gridwork-faults"
S3_SECRET_KEY = "gridwork-faults-secret"


class PrivateMongod:
    """A single-node replica set that a test may kill and start again (same data)."""

    def __init__(self, root: Path):
        self.port = free_port()
        self.process = mongod_process(root / "data", self.port, root / "run", root / "log")
        # failCommand fail points need the test commands.
        self.process.argv += ["--setParameter", "enableTestCommands=1"]

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?replicaSet=rs0&directConnection=true"

    def start(self) -> None:
        self.process.start()
        init_replica_set(self.port)

    def kill(self) -> None:
        self.process.signal(signal.SIGKILL)
        self.process.stop()  # reaps it and removes the pid file

    def stop(self) -> None:
        self.process.stop()

    @contextlib.contextmanager
    def failing(self, command: str, namespace: str, app_name: str, times: int = 1):
        """The next `times` `command`s on `namespace` ("database.collection") by the
        clients named `app_name` fail (code 2, not retryable)."""
        client = pymongo.MongoClient(self.uri, serverSelectionTimeoutMS=5000)
        try:
            client.admin.command(
                "configureFailPoint",
                "failCommand",
                mode={"times": times},
                data={
                    "failCommands": [command],
                    "namespace": namespace,
                    "appName": app_name,
                    "errorCode": 2,
                },
            )
            yield
        finally:
            client.admin.command("configureFailPoint", "failCommand", mode="off")
            client.close()


class PrivateS3:
    """An S3 server (MinIO, else rclone's) a test may freeze with SIGSTOP or kill."""

    def __init__(self, root: Path):
        self.port = free_port()
        self.process = s3_process(
            root / "data", self.port, S3_ACCESS_KEY, S3_SECRET_KEY, root / "run", root / "log"
        )

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process.start()
        wait_until(lambda: port_open("127.0.0.1", self.port), 30, "the private S3 server")

    def freeze(self) -> None:
        self.process.signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self.process.signal(signal.SIGCONT)

    def kill(self) -> None:
        self.process.signal(signal.SIGKILL)
        self.process.stop()

    def stop(self) -> None:
        self.thaw()  # a frozen server would not hear SIGTERM
        self.process.stop()


@contextlib.contextmanager
def private_rabbitmq() -> Iterator[rabbitmq.PrivateRabbitMQ]:
    # Not under pytest's tmp_path: the node runs as the rabbitmq user, who may not
    # enter pytest's private (0700) directories.
    root = Path(tempfile.mkdtemp(prefix="gridwork-faults-rabbitmq-"))
    node = rabbitmq.PrivateRabbitMQ(root)
    node.start()
    try:
        yield node
    finally:
        node.stop()
        shutil.rmtree(root, ignore_errors=True)
