"""Test fixtures: a private mongod and S3 server per test session, a fresh RabbitMQ vhost
per test (nameko's `rabbit_config`), and unique database names, so a run never touches
the data of `make up` and two runs never collide."""

import os

# The browser tests (tests/ui) run in a pytest process of their own without eventlet's
# monkey-patching (GRIDWORK_TEST_EVENTLET=0, as `make test` runs them): it re-parents
# Playwright's greenlets to eventlet's hub, and the sync API then waits forever.
if os.environ.get("GRIDWORK_TEST_EVENTLET", "1") != "0":
    import gridwork_common.green  # noqa: F401  (first: patches eventlet before other imports)

# isort: split

import uuid
from datetime import UTC, datetime

import pymongo
import pytest
from nameko.standalone.rpc import ClusterRpcProxy

from devstack.infra import init_replica_set, mongod_process, s3_process
from devstack.processes import free_port, port_open, wait_until
from gridwork_common.clock import CLOCK_CONFIG_KEY, PinnedClock
from gridwork_common.config import Settings

# The instant every service in a test starts at (docs/development.md, "Testing"): Wednesday
# 18 November 2026, 10:00 in China, a working day in an ordinary month; October 2026 has
# ended and its grace days have passed, so its scorecards can be published.
PINNED_AT = datetime(2026, 11, 18, 2, 0, tzinfo=UTC)

S3_ACCESS_KEY = "gridwork-test"
S3_SECRET_KEY = "gridwork-test-secret"


def pytest_configure(config):
    config.option.suppress_eventlet_notification = True


@pytest.fixture(scope="session")
def infra(tmp_path_factory):
    """A real mongod (single-node replica set) and a real S3 server, private to this run."""
    root = tmp_path_factory.mktemp("infra")
    mongo_port, s3_port = free_port(), free_port()
    mongod = mongod_process(root / "mongo", mongo_port, root / "run", root / "log", "mongod")
    s3 = s3_process(
        root / "s3", s3_port, S3_ACCESS_KEY, S3_SECRET_KEY, root / "run", root / "log", "s3"
    )
    mongod.start()
    s3.start()
    try:
        init_replica_set(mongo_port)
        wait_until(lambda: port_open("127.0.0.1", s3_port), 30, "S3 server")
        yield {
            "mongo_uri": f"mongodb://127.0.0.1:{mongo_port}/?replicaSet=rs0&directConnection=true",
            "s3_endpoint": f"127.0.0.1:{s3_port}",
            "s3": s3,
            "log_dir": root / "log",
        }
    finally:
        s3.stop()
        mongod.stop()


def settings_env(infra, amqp_uri: str, **overrides) -> dict:
    """The environment a Gridwork process gets in tests (also used for subprocesses)."""
    env = {
        "AMQP_URI": amqp_uri,
        "MONGO_URI": infra["mongo_uri"],
        "MONGO_DB_PREFIX": f"test_{uuid.uuid4().hex[:12]}",
        "MONGO_TIMEOUT_MS": "3000",
        "S3_ENDPOINT": infra["s3_endpoint"],
        "S3_ACCESS_KEY": S3_ACCESS_KEY,
        "S3_SECRET_KEY": S3_SECRET_KEY,
        "S3_BUCKET": f"test-{uuid.uuid4().hex[:12]}",
        "COUNTY_CODE": "530402",
        "METRICS_PORT": "0",
        "RPC_TIMEOUT": "5",
        # Tests run on the public development keys; the key checks are tested apart.
        "GRIDWORK_DEV_MODE": "true",
    }
    env.update(overrides)
    return env


@pytest.fixture
def settings(infra, rabbit_config):
    """This test's settings; its databases are dropped afterwards. mongod keeps a file
    open for every collection and index, so a suite that left each test's databases
    behind would run the session's mongod out of file descriptors."""
    settings = Settings.from_env(settings_env(infra, rabbit_config["AMQP_URI"]))
    yield settings
    drop_databases(infra["mongo_uri"], settings.mongo_db_prefix)


def drop_databases(mongo_uri: str, prefix: str) -> None:
    client = pymongo.MongoClient(mongo_uri, serverSelectionTimeoutMS=5000)
    try:
        for name in client.list_database_names():
            if name.startswith(f"{prefix}_"):
                client.drop_database(name)
    except pymongo.errors.PyMongoError:
        pass  # a test that stopped this mongod on purpose; nothing left to tidy
    finally:
        client.close()


@pytest.fixture
def clock() -> PinnedClock:
    """The clock the test's services read: pinned at PINNED_AT, ticking on with real time.
    A test moves it with `clock.set(instant)` (the services see the change at once)."""
    return PinnedClock(PINNED_AT)


@pytest.fixture
def config(settings, clock) -> dict:
    """nameko config for containers and standalone proxies in this test's vhost, carrying
    the test's clock to every service started with it."""
    return {**settings.nameko_config(), CLOCK_CONFIG_KEY: clock}


@pytest.fixture
def cluster_as(config):
    """`cluster_as(caller)` -> a started RPC proxy to the cluster carrying that caller;
    every one is stopped after the test."""
    proxies = []

    def proxy_for(caller):
        standalone = ClusterRpcProxy(config, context_data=caller.to_context_data(), timeout=30)
        proxies.append(standalone)
        return standalone.start()

    yield proxy_for
    for standalone in proxies:
        standalone.stop()
