"""The whole stack as real processes: four nameko services (`python -m services.<name>`,
nameko's runner) and the gateway under gunicorn with two gthread workers."""

import json
import signal
import time
from datetime import datetime

import eventlet
import pytest
import requests
from nameko.standalone.rpc import ClusterRpcProxy

from devstack.processes import wait_until
from gridwork_common.clock import TEST_CLOCK_VARIABLE
from tests.conftest import settings_env
from tests.stack import READYZ_TIMEOUT_S, SERVICES, running_stack

pytestmark = pytest.mark.e2e


@pytest.fixture
def stack(infra, rabbit_config, tmp_path):
    env = settings_env(infra, rabbit_config["AMQP_URI"], LOG_LEVEL="INFO")
    with running_stack(env, tmp_path) as running:
        yield running


def _sum_samples(text: str, metric: str, **labels) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(metric + "{"):
            continue
        if all(f'{key}="{value}"' in line for key, value in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_stack_reports_ready_then_names_a_killed_service(stack):
    gateway = stack["gateway"]
    assert requests.get(f"{gateway}/healthz", timeout=5).json() == {"status": "up"}

    ready = requests.get(f"{gateway}/readyz", timeout=READYZ_TIMEOUT_S)
    assert ready.status_code == 200
    body = ready.json()
    assert set(body["components"]) == set(SERVICES)
    assert all(body["components"][name]["status"] == "up" for name in SERVICES)

    stack["processes"]["events"].signal(signal.SIGKILL)
    # Within 3 s of the kill, /readyz says 503 and names events (each answer itself
    # must come within READYZ_TIMEOUT_S or the request raises).
    deadline = time.monotonic() + 3.0
    answers = []
    while time.monotonic() < deadline:
        response = requests.get(f"{gateway}/readyz", timeout=READYZ_TIMEOUT_S)
        answers.append((response.status_code, response.json()["down"]))
        if response.status_code == 503:
            break
    assert answers[-1] == (503, ["events"]), answers
    report = response.json()["components"]
    assert report["events"]["status"] == "down"
    assert report["population"]["status"] == "up"


def _readyz_counted(gateway) -> float:
    scraped = requests.get(f"{gateway}/metrics", timeout=5)
    assert scraped.status_code == 200
    assert scraped.headers["Content-Type"].startswith("text/plain")
    return _sum_samples(scraped.text, "gridwork_http_requests_total", route="/readyz", status="200")


def _settled_readyz_count(gateway) -> float:
    """The /readyz count once no earlier probe is still being answered: a readiness poll the
    fixture gave up on after READYZ_TIMEOUT_S may still finish on the server, and count."""
    counts = []

    def unchanged_over_a_probe_timeout() -> bool:
        counts.append(_readyz_counted(gateway))
        return len(counts) > 1 and counts[-1] == counts[-2]

    wait_until(unchanged_over_a_probe_timeout, 30, "a settled /readyz count", READYZ_TIMEOUT_S)
    return counts[-1]


def test_metrics_of_gateway_workers_and_of_a_service(stack):
    gateway = stack["gateway"]
    readyz_calls = 16
    before = _settled_readyz_count(gateway)
    # Concurrent requests spread over both gunicorn workers.
    pool = eventlet.GreenPool(8)
    statuses = list(
        pool.imap(
            lambda _: requests.get(f"{gateway}/readyz", timeout=READYZ_TIMEOUT_S).status_code,
            range(readyz_calls),
        )
    )
    assert statuses == [200] * readyz_calls
    # Whichever worker answers the scrape, it reports the requests of all workers.
    assert _readyz_counted(gateway) - before == readyz_calls
    assert _readyz_counted(gateway) - before == readyz_calls
    scraped = requests.get(f"{gateway}/metrics", timeout=5).text
    rpc_calls = _sum_samples(
        scraped, "gridwork_gateway_rpc_latency_seconds_count", service="events", method="health"
    )
    assert rpc_calls >= readyz_calls  # RPC latency by service and method, all workers

    population = requests.get(
        f"http://127.0.0.1:{stack['metrics']['population']}/metrics", timeout=5
    ).text
    health_calls = _sum_samples(
        population,
        "gridwork_entrypoint_calls_total",
        service="population",
        entrypoint="health",
    )
    assert health_calls >= readyz_calls
    assert "gridwork_entrypoint_latency_seconds_bucket" in population


def _json_lines(path):
    # Every line a process writes is one JSON object.
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_logs_are_json_lines_carrying_the_request_id(stack):
    gateway, log_dir = stack["gateway"], stack["log_dir"]
    requests.get(f"{gateway}/readyz", headers={"X-Request-Id": "e2e-trace-1"}, timeout=5)

    def traced(name):
        return [
            line
            for line in _json_lines(log_dir / f"{name}.log")
            if line.get("request_id") == "e2e-trace-1"
        ]

    wait_until(lambda: all(traced(name) for name in SERVICES), 5, "traced log lines")
    for name in SERVICES:
        (line,) = traced(name)
        assert (line["process"], line["entrypoint"]) == (name, "health")
        assert line["message"] == "call handled"
    gateway_line = next(line for line in traced("gateway") if line["message"] == "request")
    assert (gateway_line["path"], gateway_line["status"]) == ("/readyz", 200)


def _assert_the_report_is_traced(log_dir, request_id):
    """The gateway's request id on the lines of every process the report touched: the
    events service's RPC, the population's and the assessment's handlers of the event it
    published, and the webhook intake that recorded that event. (The events service
    locates reports in its own copy of the grids, so it no longer calls population.)"""
    expected = {
        "gateway": ("message", "request"),
        "events": ("entrypoint", "report_incident"),
        "population": ("entrypoint", "on_incident_reported"),
        "assessment": ("entrypoint", "on_incident"),
        "webhooks": ("event_type", "gridwork.incident.reported"),
    }

    def traced(name):
        key, value = expected[name]
        return [
            line
            for line in _json_lines(log_dir / f"{name}.log")
            if line.get("request_id") == request_id and line.get(key) == value
        ]

    wait_until(lambda: all(traced(name) for name in expected), 15, "the report's traced lines")
    assert traced("assessment")[0]["message"] == "call handled"
    assert traced("webhooks")[0]["message"] == "event recorded for webhooks"


def test_a_report_over_real_http_reaches_its_grid_and_stays_in_scope(stack, infra, rabbit_config):
    """Through gunicorn: log in, report at a GPS point, read it back; another township's
    centre gets 404 for it."""
    from nameko.standalone.rpc import ClusterRpcProxy

    from gridwork_common.context import CallerContext
    from services.gateway.auth import Identity
    from services.gateway.store import gateway_db
    from tests.population_data import COUNTY, GRID_A1, TOWNSHIP_A, TOWNSHIP_B, county_features

    settings = stack["settings"]
    setup = CallerContext(user_id="setup", roles=("admin", "system"), scope=COUNTY)
    with ClusterRpcProxy(
        settings.nameko_config(), context_data=setup.to_context_data(), timeout=30
    ) as rpc:
        rpc.population.import_territory(county_features())
        rpc.events.ensure_default_departments([COUNTY, TOWNSHIP_A, TOWNSHIP_B])
    identity = Identity(gateway_db(settings), settings)
    identity.create_user("worker", "a long password", ["grid_worker"], GRID_A1, None)
    identity.create_user("other", "a long password", ["centre_operator"], TOWNSHIP_B, None)

    def login(username):
        answer = requests.post(
            f"{stack['gateway']}/api/v1/auth/token",
            json={"grant_type": "password", "username": username, "password": "a long password"},
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        return {"Authorization": f"Bearer {answer.json()['access_token']}"}

    worker = login("worker")
    reported = requests.post(
        f"{stack['gateway']}/api/v1/incidents",
        json={"category": "04.01", "description": "垃圾", "location": [102.505, 24.305]},
        headers={**worker, "Idempotency-Key": "e2e-1", "X-Request-Id": "e2e-report-trace"},
        timeout=10,
    )
    assert reported.status_code == 201, reported.text
    _assert_the_report_is_traced(stack["log_dir"], "e2e-report-trace")
    case = reported.json()["incident"]
    assert case["grid_code"] == GRID_A1
    again = requests.get(
        f"{stack['gateway']}/api/v1/incidents/{case['id']}", headers=worker, timeout=10
    )
    assert again.status_code == 200 and again.json()["state"] == "reported"
    hidden = requests.get(
        f"{stack['gateway']}/api/v1/incidents/{case['id']}", headers=login("other"), timeout=10
    )
    assert hidden.status_code == 404
    assert hidden.headers["Content-Type"].startswith("application/problem+json")


def test_every_process_runs_on_the_pinned_clock_and_says_so(stack):
    """Each process (services, webhook deliveries, gateway workers) warned at start that
    its clock is pinned; a service's "now" is the stack's pinned clock's (all read the
    pinned instant as of the same moment)."""
    for name, process in stack["processes"].items():
        assert f"{TEST_CLOCK_VARIABLE} is set" in process.logfile.read_text(), name
    with ClusterRpcProxy(stack["settings"].nameko_config(), timeout=10) as proxy:
        before = stack["clock"]()
        now = datetime.fromisoformat(proxy.events.working_time_left([])["now"])
        after = stack["clock"]()
    # The service read its clock during the call, as the test's clock tells it (not the
    # seconds between the processes' starts behind or ahead of it).
    assert before <= now <= after
