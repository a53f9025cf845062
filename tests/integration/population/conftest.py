"""The population service in a real nameko container on a real broker and mongod, with
RPC proxies that call it as different users, and a tap on its event exchange."""

import pytest
from kombu import Connection, Exchange, Queue
from pymongo import MongoClient

from gridwork_common.context import CallerContext
from services.population.service import PopulationService
from tests.population_data import COUNTY, GRID_A1, TOWNSHIP_B, county_features
from tests.queue_tap import drained

ADMIN = CallerContext(user_id="admin-1", roles=("admin",), scope=COUNTY, request_id="req-admin")
WORKER_A1 = CallerContext(user_id="worker-a1", roles=("grid_worker",), scope=GRID_A1)
OPERATOR_B = CallerContext(user_id="operator-b", roles=("centre_operator",), scope=TOWNSHIP_B)
LEADER = CallerContext(user_id="leader-1", roles=("leader",), scope=COUNTY)
HANDLER = CallerContext(user_id="handler-1", roles=("department_handler",), scope=COUNTY)
SYSTEM = CallerContext(user_id="events-service", roles=("system",))


@pytest.fixture
def population_container(container_factory, config):
    container = container_factory(PopulationService, config)
    container.start()
    return container


@pytest.fixture
def as_user(cluster_as, population_container):
    """`as_user(caller)` -> a proxy to the population service carrying that caller."""
    return lambda caller: cluster_as(caller).population


@pytest.fixture
def county(as_user):
    """The test county's territory imported; returns the admin's proxy."""
    admin = as_user(ADMIN)
    admin.import_territory(county_features())
    return admin


@pytest.fixture
def population_db(settings):
    client = MongoClient(settings.mongo_uri)
    yield client[settings.database_name("population")]
    client.close()


@pytest.fixture
def events_tap(config, population_container):
    """Everything the population service publishes, read like a department's system would."""
    connection = Connection(config["AMQP_URI"])
    exchange = Exchange("population.events", type="topic", durable=True)
    queue = Queue("test-tap", exchange, routing_key="#", auto_delete=True)
    queue(connection.default_channel).declare()
    simple = connection.SimpleQueue(queue)

    yield lambda: drained(simple, timeout=0.5)
    simple.close()
    connection.release()
