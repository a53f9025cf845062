"""The gateway and the services as real processes (gunicorn; `python -m services.<name>`)
on a RabbitMQ node and a mongod of this module's own, while a client reports incidents
and the test kills or stops what they depend on.

Whatever fails, the client gets 503 with Retry-After as problem+json (never 500), and a
retry with the same Idempotency-Key reaches the one stored case."""

import contextlib
import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
import requests
from kombu import Connection, Exchange, Queue
from nameko.exceptions import RemoteError, RpcTimeout, UnknownService
from nameko.standalone.rpc import ClusterRpcProxy

from devstack.processes import free_port, wait_until
from devstack.stack import service_processes
from gridwork_common.config import Settings
from gridwork_common.context import CallerContext
from gridwork_common.mongo import new_client
from services.gateway.auth import Identity
from services.gateway.store import IDEMPOTENCY, gateway_db
from tests.conftest import settings_env
from tests.population_data import COUNTY, GRID_A1, TOWNSHIP_A, county_features

pytestmark = pytest.mark.integration

RPC_TIMEOUT_S = 2  # short waits keep the test fast; the idempotency lease is 3x this
PASSWORD = "a long password"
POINT_A1 = [102.505, 24.305]
# Inside A1, 2 m from its western edge: too near an outline for the events service's
# grid index, so only the population service places it.
POINT_NEAR_EDGE = [102.50002, 24.305]
# What a report needs, and the deliveries process (it resends account activity).
RUNNING = ("population", "events", "gateway", "webhooks")


@pytest.fixture(scope="module")
def stack(infra, private_rabbitmq, private_mongod, tmp_path_factory):
    root = tmp_path_factory.mktemp("faults-stack")
    env = settings_env(
        infra,
        private_rabbitmq.amqp_uri,
        MONGO_URI=private_mongod.uri,
        MONGO_TIMEOUT_MS="1500",
        RPC_TIMEOUT=str(RPC_TIMEOUT_S),
        GATEWAY_THREADS="4",
    )
    settings = Settings.from_env(env)
    processes = {
        process.name: process
        for process in service_processes(
            env=env,
            run_dir=root / "run",
            log_dir=root / "log",
            metrics_ports={"population": free_port(), "events": free_port()},
            gateway_port=free_port(),
            gateway_workers=1,
        )
        if process.name in RUNNING
    }
    gateway = f"http://127.0.0.1:{processes['gateway'].env['GATEWAY_PORT']}"
    for process in processes.values():
        process.start()
    try:
        wait_until(lambda: _serving(settings, "population", "events"), 90, "the services")
        setup = CallerContext(user_id="setup", roles=("admin", "system"), scope=COUNTY)
        with ClusterRpcProxy(
            settings.nameko_config(), context_data=setup.to_context_data(), timeout=60
        ) as rpc:
            rpc.population.import_territory(county_features())
            rpc.events.ensure_default_departments([COUNTY, TOWNSHIP_A])
        Identity(gateway_db(settings), settings).create_user(
            "worker", PASSWORD, ["grid_worker"], GRID_A1, None
        )
        wait_until(lambda: _answers(gateway), 60, "the gateway")
        yield {
            "gateway": gateway,
            "settings": settings,
            "processes": processes,
            "headers": _login(gateway),
        }
    finally:
        for process in reversed(processes.values()):
            process.stop()


def _serving(settings, *services) -> bool:
    try:
        with ClusterRpcProxy(settings.nameko_config(), timeout=5) as rpc:
            return all(rpc[name].health()["status"] == "up" for name in services)
    except (UnknownService, RpcTimeout):
        return False


def _answers(gateway) -> bool:
    try:
        return requests.get(f"{gateway}/healthz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _login(gateway) -> dict:
    answer = requests.post(
        f"{gateway}/api/v1/auth/token",
        json={"grant_type": "password", "username": "worker", "password": PASSWORD},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def report(stack, key: str, timeout_s: float = 15, location=POINT_A1) -> requests.Response:
    return requests.post(
        f"{stack['gateway']}/api/v1/incidents",
        json={"category": "04.01", "description": f"垃圾 {key}", "location": location},
        headers={**stack["headers"], "Idempotency-Key": key},
        timeout=timeout_s,
    )


def assert_unavailable(response: requests.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert int(response.headers["Retry-After"]) > 0
    assert response.json()["status"] == 503


def retry_until_created(
    stack, key: str, within_s: float = 60, location=POINT_A1
) -> tuple[dict, list[int]]:
    """What a client does: retry with the same key until 2xx (statuses seen on the way)."""
    seen = []
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            response = report(stack, key, location=location)
        except requests.RequestException:
            seen.append(0)
        else:
            seen.append(response.status_code)
            if response.status_code == 201:
                return response.json()["incident"], seen
            assert response.status_code in (409, 503), response.text
            if response.status_code == 503:
                assert_unavailable(response)
        time.sleep(0.5)
    pytest.fail(f"no 201 for {key} within {within_s:g}s; statuses {seen}")


def cases_reported_with(stack, key: str) -> int:
    settings = stack["settings"]
    client = new_client(settings, app_name="gridwork-tests")
    try:
        events = client[settings.database_name("events")]
        return events["incidents"].count_documents({"description": f"垃圾 {key}"})
    finally:
        client.close()


def test_a_killed_events_service_answers_503_and_the_retry_gets_the_one_case(stack):
    events = stack["processes"]["events"]
    events.signal(signal.SIGKILL)
    events.stop()
    assert_unavailable(report(stack, "killed-events"))
    events.start()
    case, _ = retry_until_created(stack, "killed-events")
    assert case["grid_code"] == GRID_A1
    assert cases_reported_with(stack, "killed-events") == 1


def test_a_stopped_population_service_bounds_the_events_service_wait(stack):
    """events asks population to locate a report its grid index cannot place (a point
    metres from a grid's outline); with population stopped, events gives up after
    RPC_TIMEOUT and says which service did not answer."""
    population = stack["processes"]["population"]
    population.signal(signal.SIGSTOP)
    try:
        caller = CallerContext(user_id="worker", roles=("grid_worker",), scope=GRID_A1)
        with (
            ClusterRpcProxy(
                stack["settings"].nameko_config(),
                context_data=caller.to_context_data(),
                timeout=6 * RPC_TIMEOUT_S,
            ) as rpc,
            pytest.raises(RemoteError) as refused,
        ):
            rpc.events.report_incident(
                {"category": "04.01", "description": "x", "location": POINT_NEAR_EDGE},
                "stopped-pop",
            )
        assert refused.value.exc_type == "Unavailable"
        assert "population" in str(refused.value.value)
        assert_unavailable(report(stack, "stopped-population", location=POINT_NEAR_EDGE))
    finally:
        population.signal(signal.SIGCONT)
    retry_until_created(stack, "stopped-population", location=POINT_NEAR_EDGE)
    assert cases_reported_with(stack, "stopped-population") == 1


def test_a_stopped_broker_answers_503_and_the_retry_gets_the_one_case(stack, private_rabbitmq):
    private_rabbitmq.stop()
    try:
        assert_unavailable(report(stack, "stopped-broker"))
    finally:
        private_rabbitmq.start()
    retry_until_created(stack, "stopped-broker", within_s=90)
    assert cases_reported_with(stack, "stopped-broker") == 1


def test_a_login_while_the_broker_is_down_is_still_announced_once_it_is_back(
    stack, private_rabbitmq
):
    """The assessment counts logins: account.login is written with the login's tokens
    and sent when the broker is back."""
    amqp_uri = stack["settings"].amqp_uri
    exchange = Exchange("gateway.events", type="topic", durable=True)
    logins = Queue("faults-logins", exchange, routing_key="account.login", durable=True)
    with Connection(amqp_uri) as connection:
        logins(connection.default_channel).declare()
    private_rabbitmq.stop()
    try:
        answer = requests.post(
            f"{stack['gateway']}/api/v1/auth/token",
            json={"grant_type": "password", "username": "worker", "password": PASSWORD},
            timeout=15,
        )
        assert answer.status_code == 200, answer.text  # logins need no broker
    finally:
        private_rabbitmq.start()
    seen = []
    with Connection(amqp_uri) as connection:
        simple = connection.SimpleQueue(logins)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not seen:
            with contextlib.suppress(simple.Empty):
                message = simple.get(timeout=1)
                message.ack()
                seen.append(json.loads(message.body))
        simple.close()
    assert [event["data"]["user_id"] for event in seen] == ["worker"]


def test_a_killed_mongod_answers_503_and_the_retry_gets_the_one_case(stack, private_mongod):
    private_mongod.kill()
    try:
        assert_unavailable(report(stack, "killed-mongod"))
    finally:
        private_mongod.start()
    retry_until_created(stack, "killed-mongod", within_s=90)
    assert cases_reported_with(stack, "killed-mongod") == 1


def _gunicorn_workers(master_pid: int) -> list[int]:
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    return [int(pid) for pid in children]


def test_a_retry_is_not_blocked_by_a_first_attempt_whose_worker_died(stack):
    """The first attempt's gunicorn worker is killed while it waits for the events
    service (stopped meanwhile, so the report is still queued): its Idempotency-Key
    record stays with nobody to finish it. The report is stored once events resumes; the
    client's retry must reach it (a report's key holds no lease: the events service
    answers the retry with the stored case)."""
    settings = stack["settings"]
    records = gateway_db(settings)[IDEMPOTENCY]
    for attempt in range(3):  # a machine too slow to kill within the window tries again
        key = f"dead-worker-{attempt}"
        _kill_the_worker_while_it_waits(stack, records, key)
        # Still there after the kill: the attempt was killed while it waited (a timed-out
        # attempt releases its key). A report's key is only "keyed" (the events service
        # answers a retry itself), which never holds a retry back.
        if records.find_one(
            {"_id": {"$regex": f":{key}$"}, "state": {"$in": ["pending", "keyed"]}}
        ):
            break
    else:
        pytest.fail("the gunicorn worker could not be killed while its request waited")
    wait_until(lambda: cases_reported_with(stack, key) == 1, 30, "the stored report")

    case, seen = retry_until_created(stack, key, within_s=8 * RPC_TIMEOUT_S)
    assert cases_reported_with(stack, key) == 1
    assert case["description"] == f"垃圾 {key}"
    assert set(seen) <= {0, 409, 201}, seen


def _kill_the_worker_while_it_waits(stack, records, key: str) -> None:
    events, gateway = stack["processes"]["events"], stack["processes"]["gateway"]
    wait_until(lambda: len(_gunicorn_workers(gateway.running_pid())) == 1, 30, "a worker")
    (worker,) = _gunicorn_workers(gateway.running_pid())
    events.signal(signal.SIGSTOP)
    try:
        first = threading.Thread(target=_swallow, args=(report, stack, key))
        first.start()
        wait_until(
            lambda: records.find_one({"_id": {"$regex": f":{key}$"}}) is not None,
            10 * RPC_TIMEOUT_S,
            "the first attempt's idempotency record",
            interval_s=0.02,
        )
        # The record is claimed just before the RPC is sent: give the send a moment,
        # well within the RPC timeout the worker would otherwise give up after.
        time.sleep(RPC_TIMEOUT_S / 4)
        os.kill(worker, signal.SIGKILL)
        first.join()
    finally:
        events.signal(signal.SIGCONT)


def _swallow(call, *args):
    with contextlib.suppress(requests.RequestException):  # its worker was killed
        call(*args)
