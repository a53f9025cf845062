"""The events service with a real population service (for `locate`) in nameko containers
on a real broker and mongod; proxies that call it as different users; a tap on its
topic exchange bound like a department's own system would bind."""

import pytest
from kombu import Connection, Exchange, Queue

from gridwork_common.context import CallerContext
from services.events.service import EventsService
from services.population.service import PopulationService
from tests.population_data import (
    COUNTY,
    GRID_A1,
    TOWNSHIP_A,
    TOWNSHIP_B,
    VILLAGE_A,
    VILLAGE_B,
    county_features,
)
from tests.queue_tap import drained

ADMIN = CallerContext(user_id="admin-1", roles=("admin",), scope=COUNTY)
WORKER_A1 = CallerContext(user_id="worker-a1", roles=("grid_worker",), scope=GRID_A1)
VILLAGE_A_CENTRE = CallerContext(user_id="centre-va", roles=("centre_operator",), scope=VILLAGE_A)
TOWNSHIP_A_CENTRE = CallerContext(user_id="centre-ta", roles=("centre_operator",), scope=TOWNSHIP_A)
COUNTY_CENTRE = CallerContext(user_id="centre-county", roles=("centre_operator",), scope=COUNTY)
POLICE_STATION_A = CallerContext(
    user_id="handler-ps-a",
    roles=("department_handler",),
    scope=TOWNSHIP_A,
    department=f"{TOWNSHIP_A}-police-station",
)
VILLAGE_COMMITTEE_A = CallerContext(
    user_id="handler-vc-a",
    roles=("department_handler",),
    scope=VILLAGE_A,
    department=f"{VILLAGE_A}-committee",
)
CENTRES = [COUNTY, TOWNSHIP_A, TOWNSHIP_B, VILLAGE_A, VILLAGE_B]


@pytest.fixture
def services(runner_factory, config):
    runner = runner_factory(config, PopulationService, EventsService)
    runner.start()
    return runner


@pytest.fixture
def as_user(cluster_as, services):
    """`as_user(caller)` -> an RPC proxy to the cluster carrying that caller."""
    return cluster_as


@pytest.fixture
def county(as_user):
    """The test county's territory and default departments; returns the admin's proxy."""
    admin = as_user(ADMIN)
    admin.population.import_territory(county_features())
    admin.events.ensure_default_departments(CENTRES)
    return admin


@pytest.fixture
def department_tap(config, services):
    """`department_tap(binding)` -> drain(): incident events a plain AMQP consumer bound
    with that routing-key pattern receives."""
    connection = Connection(config["AMQP_URI"])
    exchange = Exchange("events.events", type="topic", durable=True)
    queues = []

    def tap(binding: str):
        queue = Queue(f"tap-{len(queues)}", exchange, routing_key=binding, auto_delete=True)
        queue(connection.default_channel).declare()
        simple = connection.SimpleQueue(queue)
        queues.append(simple)

        return lambda: drained(simple, timeout=0.5)

    yield tap
    for simple in queues:
        simple.close()
    connection.release()


@pytest.fixture
def desk(county, as_user):
    """The incident desk's commands, each as the user who acts, over the seeded county."""
    from tests.integration.events.support import Desk  # support imports this module

    return Desk(as_user)


@pytest.fixture
def events_db(settings):
    from tests.integration.events.support import events_database  # support imports this module

    with events_database(settings) as db:
        yield db
