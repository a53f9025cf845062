"""Servers of their own for tests that break them: a mongod (with test commands, for
`failCommand` fail points) and a RabbitMQ node, never the session's shared ones."""

import pytest

from devstack import rabbitmq
from tests.faults.servers import PrivateMongod
from tests.faults.servers import private_rabbitmq as running_private_rabbitmq
from tests.integration.events.conftest import (  # noqa: F401  (the events services' fixtures)
    as_user,
    county,
    department_tap,
    services,
)


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
    with running_private_rabbitmq() as node:
        yield node
