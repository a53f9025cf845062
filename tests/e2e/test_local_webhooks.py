"""Webhooks on the local stack, as a department's developer tries them on `make up`: the
processes `devstack.stack.service_processes` starts (the environment `make up` gives
them, nothing added by the test) accept a webhook to a receiver on this machine and
deliver a dispatched case to it as a CloudEvent signed per Standard Webhooks."""

import json

import pytest
import requests
from nameko.standalone.rpc import ClusterRpcProxy

from devstack.processes import wait_until
from gridwork_common.context import CallerContext
from gridwork_common.events import parse_event
from services.gateway.auth import Identity
from services.gateway.store import gateway_db
from tests.conftest import settings_env
from tests.population_data import COUNTY, GRID_A1, TOWNSHIP_A, VILLAGE_A, county_features
from tests.receiver import Receiver
from tests.stack import running_stack

pytestmark = pytest.mark.e2e

PASSWORD = "a long password"
POLICE = f"{TOWNSHIP_A}-police-station"
USERS = {
    "worker": (["grid_worker"], GRID_A1, None),
    "village": (["centre_operator"], VILLAGE_A, None),
    "township": (["centre_operator"], TOWNSHIP_A, None),
    "police": (["department_handler"], TOWNSHIP_A, POLICE),
}


@pytest.fixture
def stack(infra, rabbit_config, tmp_path, monkeypatch):
    # Whatever the shell running the tests exported, the stack gets make up's setting.
    monkeypatch.delenv("WEBHOOK_ALLOW_PRIVATE_URLS", raising=False)
    env = settings_env(infra, rabbit_config["AMQP_URI"])
    assert "WEBHOOK_ALLOW_PRIVATE_URLS" not in env
    with running_stack(env, tmp_path) as running:
        yield running


@pytest.fixture
def receiver():
    running = Receiver()
    yield running
    running.close()


def test_a_webhook_to_this_machine_gets_a_dispatched_case_signed(stack, receiver):
    settings, gateway = stack["settings"], stack["gateway"]
    setup = CallerContext(user_id="setup", roles=("admin", "system"), scope=COUNTY)
    with ClusterRpcProxy(
        settings.nameko_config(), context_data=setup.to_context_data(), timeout=30
    ) as rpc:
        rpc.population.import_territory(county_features())
        rpc.events.ensure_default_departments([COUNTY, TOWNSHIP_A, VILLAGE_A])
    identity = Identity(gateway_db(settings), settings)
    for username, (roles, scope, department) in USERS.items():
        identity.create_user(username, PASSWORD, roles, scope, department)

    def call(username, path, key, body):
        token = requests.post(
            f"{gateway}/api/v1/auth/token",
            json={"grant_type": "password", "username": username, "password": PASSWORD},
            timeout=10,
        ).json()["access_token"]
        answer = requests.post(
            f"{gateway}/api/v1{path}",
            json=body,
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key},
            timeout=10,
        )
        assert answer.status_code in (200, 201), answer.text
        return answer.json()

    subscribed = call(
        "police", "/subscriptions", "s1", {"url": receiver.url, "event_types": ["incident.*"]}
    )
    receiver.secret = subscribed["secret"]

    case = call(
        "worker",
        "/incidents",
        "r1",
        {"category": "02.01", "description": "可疑包裹", "location": [102.505, 24.305]},
    )["incident"]
    version = case["version"]
    for action, body in (("accept", {}), ("register", {}), ("escalate", {"reason": "派出所"})):
        version = call(
            "village",
            f"/incidents/{case['id']}/{action}",
            f"v-{action}",
            {"expected_version": version, **body},
        )["version"]
    call(
        "township",
        f"/incidents/{case['id']}/dispatch",
        "t-d",
        {"expected_version": version, "department_code": POLICE},
    )

    wait_until(lambda: receiver.requests, 30, "the webhook delivery of the dispatched case")
    headers, body = receiver.requests[0]
    assert receiver.verdicts[0] == "ok"  # standardwebhooks' Webhook(secret).verify
    assert headers["Content-Type"].startswith("application/cloudevents+json")
    event = parse_event(json.loads(body))
    assert event.type == "gridwork.incident.dispatched"
    assert event.data["incident_id"] == case["id"]
    assert event.extensions["department"] == POLICE
