"""The gateway app (Flask test client) in front of real population, events and media services
on a real broker and mongod, with users of every role and their tokens."""

import pytest
from kombu import Connection, Exchange, Queue

from gridwork_common.clock import utc_now
from gridwork_common.events import parse_event
from services.assessment.service import AssessmentService
from services.events.service import EventsService
from services.gateway import auth
from services.gateway.app import create_app
from services.gateway.auth import Identity
from services.gateway.broker_admin import BrokerAdmin
from services.gateway.department_accounts import AMQP_ACCOUNTS
from services.gateway.store import gateway_db
from services.media.service import MediaService
from services.media.storage import media_store
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

PASSWORD = "correct horse battery"
USERS = {
    # username: (roles, scope, department)
    "admin": (["admin"], COUNTY, None),
    "worker-a1": (["grid_worker"], GRID_A1, None),
    "leader-a1": (["grid_leader"], GRID_A1, None),
    "village-a": (["centre_operator"], VILLAGE_A, None),
    "township-a": (["centre_operator"], TOWNSHIP_A, None),
    "township-b": (["centre_operator"], TOWNSHIP_B, None),
    "county-centre": (["centre_operator"], COUNTY, None),
    "police-a": (["department_handler"], TOWNSHIP_A, f"{TOWNSHIP_A}-police-station"),
    "committee-a": (["department_handler"], VILLAGE_A, f"{VILLAGE_A}-committee"),
    "leader": (["leader"], COUNTY, None),
}


@pytest.fixture(scope="session", autouse=True)
def _demo_password_hashed_once():
    """argon2 is slow on purpose (tens of milliseconds a hash, more on a loaded machine),
    and every test here creates its ten users with one password: they share one hash of
    it (salted once). Any other password is hashed as in production."""
    hash_password = auth.hash_password
    demo_hash = hash_password(PASSWORD)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            auth,
            "hash_password",
            lambda password: demo_hash if password == PASSWORD else hash_password(password),
        )
        yield


@pytest.fixture
def services(runner_factory, config, settings):
    media_store(settings).ensure_bucket()
    runner = runner_factory(
        config, PopulationService, EventsService, MediaService, AssessmentService
    )
    runner.start()
    return runner


@pytest.fixture
def app(settings, services, clock):
    # The county's time is the services' pinned clock; the gateway's own records (tokens,
    # idempotency keys, login failures) keep the machine's time, which pyjwt and mongod's
    # TTL monitor judge them by.
    application = create_app(settings, clock=clock, system_clock=utc_now)
    identity = Identity(gateway_db(settings), settings)
    for username, (roles, scope, department) in USERS.items():
        identity.create_user(username, PASSWORD, roles, scope, department)
    yield application
    # Departments' broker users the test made: RabbitMQ users belong to the whole broker,
    # not to the test's vhost, so they outlive it unless deleted here.
    broker = BrokerAdmin.from_settings(settings)
    for account in gateway_db(settings)[AMQP_ACCOUNTS].find({}, {"_id": 1}):
        broker.delete_user(account["_id"])


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def token(client):
    """token(username) -> a fresh access token for that demo user."""
    cache = {}

    def for_user(username: str) -> str:
        if username not in cache:
            response = client.post(
                "/api/v1/auth/token",
                json={"grant_type": "password", "username": username, "password": PASSWORD},
            )
            assert response.status_code == 200, response.get_json()
            cache[username] = response.get_json()["access_token"]
        return cache[username]

    return for_user


@pytest.fixture
def as_user(client, token):
    """as_user(username) -> a client wrapper adding that user's bearer token."""

    class UserClient:
        def __init__(self, username: str):
            self.headers = {"Authorization": f"Bearer {token(username)}"}

        def get(self, path, **kwargs):
            return client.get(path, headers={**self.headers, **kwargs.pop("headers", {})}, **kwargs)

        def post(self, path, key=None, **kwargs):
            headers = {**self.headers, **kwargs.pop("headers", {})}
            if key is not None:
                headers["Idempotency-Key"] = key
            return client.post(path, headers=headers, **kwargs)

        def patch(self, path, **kwargs):
            return client.patch(
                path, headers={**self.headers, **kwargs.pop("headers", {})}, **kwargs
            )

        def delete(self, path, **kwargs):
            return client.delete(
                path, headers={**self.headers, **kwargs.pop("headers", {})}, **kwargs
            )

    return UserClient


@pytest.fixture
def county(services, config):
    """The test county's territory and default departments, set up over RPC."""
    from nameko.standalone.rpc import ClusterRpcProxy

    from gridwork_common.context import CallerContext

    admin = CallerContext(user_id="setup", roles=("admin", "system"), scope=COUNTY)
    with ClusterRpcProxy(config, context_data=admin.to_context_data(), timeout=30) as rpc:
        rpc.population.import_territory(county_features())
        rpc.events.ensure_default_departments(
            [COUNTY, TOWNSHIP_A, TOWNSHIP_B, VILLAGE_A, VILLAGE_B]
        )


@pytest.fixture
def account_events(settings):
    """`account_events()` -> the account.* events the gateway published since the fixture
    was made, as the assessment service would receive them (a queue bound like its own)."""
    exchange = Exchange("gateway.events", type="topic", durable=True)
    with Connection(settings.amqp_uri) as connection:
        queue = Queue("account-tap", exchange, routing_key="account.#", auto_delete=True)
        queue(connection.default_channel).declare()

        def received() -> list:
            simple = connection.SimpleQueue(queue)
            try:
                return [parse_event(body) for _, body in drained(simple, timeout=2)]
            finally:
                simple.close()

        yield received
