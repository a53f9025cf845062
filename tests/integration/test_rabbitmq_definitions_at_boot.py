"""A county's broker boots with its definitions: deploy/rabbitmq/county/definitions.json
(the topology) and a users file (a county's secret) in one directory named by
`load_definitions`, as a deployment mounts them; on a private node, since the shared
broker is never restarted."""

import base64
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from kombu import Connection, Exchange, Queue

from devstack import rabbitmq

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
TOPOLOGY = ROOT / "deploy" / "rabbitmq" / "county" / "definitions.json"
PASSWORD = "a county's own password"


def password_hash(password: str) -> str:
    """RabbitMQ's rabbit_password_hashing_sha256: base64(salt + sha256(salt + password))."""
    salt = os.urandom(4)
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def users_file() -> dict:
    return {
        "users": [
            {
                "name": "gridwork",
                "password_hash": password_hash(PASSWORD),
                "hashing_algorithm": "rabbit_password_hashing_sha256",
                "tags": [],
                "limits": {},
            }
        ],
        "permissions": [
            {"user": "gridwork", "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"}
        ],
    }


@pytest.fixture(scope="module")
def county_broker():
    why_not = rabbitmq.available()
    if why_not:
        pytest.skip(f"no private RabbitMQ node: {why_not}")
    root = Path(tempfile.mkdtemp(prefix="gridwork-definitions-"))
    definitions = root / "definitions"
    definitions.mkdir()
    shutil.copy(TOPOLOGY, definitions / "topology.json")
    (definitions / "users.json").write_text(json.dumps(users_file()))
    for path in (definitions, *definitions.iterdir()):
        shutil.chown(path, rabbitmq.RABBITMQ_USER, rabbitmq.RABBITMQ_USER)
    node = rabbitmq.PrivateRabbitMQ(root, config=f"load_definitions = {definitions}\n")
    node.start()
    try:
        yield node
    finally:
        node.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_the_county_vhost_users_and_policies_exist_from_boot(county_broker):
    node = county_broker
    assert "/\tquorum" in node.ctl("list_vhosts", "name", "default_queue_type")
    # Only the county's user: a node that imports definitions creates no guest.
    users = node.ctl("list_users", "--silent").split()
    assert "gridwork" in users and "guest" not in users
    policies = node.ctl("list_policies", "-p", "/", "--silent")
    assert "gridwork-poison-events" in policies and "gridwork-poison-calls" in policies

    uri = f"amqp://gridwork:{PASSWORD}@127.0.0.1:{node.port}/"
    with Connection(uri) as connection:
        # What nameko declares for a service's RPC entrypoints: no queue type named.
        Queue(
            "rpc-population",
            Exchange("nameko-rpc", type="topic", durable=True),
            routing_key="population.*",
            durable=True,
        )(connection.default_channel).declare()
    queues = node.ctl("list_queues", "-p", "/", "name", "type", "policy", "--silent")
    assert "rpc-population\tquorum\tgridwork-poison-calls" in queues.splitlines()
    assert "gridwork-dead-letters\tquorum\t" in queues.splitlines()
