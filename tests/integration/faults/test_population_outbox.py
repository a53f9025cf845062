"""The population service writes each change and the event announcing it in one
transaction (the outbox), so a failure between the two leaves neither, and the client's
retry makes the change and announces it exactly once.

The failure is real: a `failCommand` fail point on this test's own mongod makes the
population service's next insert into its outbox fail."""

import pytest
from kombu import Connection, Exchange, Queue
from nameko.exceptions import RemoteError

from gridwork_common.config import Settings
from gridwork_common.mongo import new_client
from services.population.service import PopulationService
from tests.conftest import settings_env
from tests.integration.population.conftest import ADMIN
from tests.population_data import GRID_A1, county_features, resident_id
from tests.queue_tap import drained

pytestmark = pytest.mark.integration

RESIDENT = {
    "id_number": resident_id(),
    "name": "李四",
    "grid_code": GRID_A1,
    "residence_type": "registered",
    "ethnicity": "汉族",
}


@pytest.fixture
def settings(infra, rabbit_config, private_mongod) -> Settings:
    return Settings.from_env(
        settings_env(infra, rabbit_config["AMQP_URI"], MONGO_URI=private_mongod.uri)
    )


@pytest.fixture
def population(container_factory, config, cluster_as):
    container_factory(PopulationService, config).start()
    admin = cluster_as(ADMIN).population
    admin.import_territory(county_features())
    return admin


@pytest.fixture
def registrations(config, population):
    """resident.registered events, read like a department's system would."""
    connection = Connection(config["AMQP_URI"])
    exchange = Exchange("population.events", type="topic", durable=True)
    queue = Queue("faults-tap", exchange, routing_key="resident.registered", auto_delete=True)
    queue(connection.default_channel).declare()
    simple = connection.SimpleQueue(queue)

    yield lambda: [body for _, body in drained(simple, timeout=0.5)]
    simple.close()
    connection.release()


def test_a_registration_whose_event_cannot_be_stored_is_not_kept_and_its_retry_announces_once(
    population, registrations, settings, private_mongod
):
    outbox = f"{settings.database_name('population')}.outbox"
    with (
        private_mongod.failing("insert", outbox, app_name="gridwork-population"),
        pytest.raises(RemoteError),
    ):
        population.register_resident(RESIDENT)
    client = new_client(settings, app_name="gridwork-tests")
    try:
        residents = client[settings.database_name("population")]["residents"]
        assert residents.count_documents({}) == 0  # the change went with its event
    finally:
        client.close()
    assert registrations() == []

    resident = population.register_resident(RESIDENT)  # the client's retry
    [event] = registrations()
    assert event["data"]["resident_id"] == resident["id"]
