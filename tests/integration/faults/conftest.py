"""Servers of their own for tests that break them: a mongod (with test commands, for
`failCommand` fail points) and a RabbitMQ node, never the session's shared ones."""

import contextlib
import shutil
import signal
import tempfile
from pathlib import Path

import pymongo
import pytest

from devstack import rabbitmq
from devstack.infra import init_replica_set, mongod_process
from devstack.processes import free_port
from tests.integration.events.conftest import (  # noqa: F401  (the events services' fixtures)
    as_user,
    county,
    department_tap,
    services,
)


class PrivateMongod:
    """A single-node replica set that a test may kill and start again (same data)."""

    def __init__(self, root):
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


@pytest.fixture(scope="module")
def private_mongod(tmp_path_factory):
    mongod = PrivateMongod(tmp_path_factory.mktemp("faults-mongo"))
    mongod.start()
    try:
        yield mongod
    finally:
        mongod.stop()


@pytest.fixture(scope="module")
def private_rabbitmq():
    why_not = rabbitmq.available()
    if why_not:
        pytest.skip(f"no private RabbitMQ node: {why_not}")
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
