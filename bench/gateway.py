"""Gateway over HTTP: reporting an incident vs the lightest authenticated one-RPC GET.

    PYTHONPATH=. .venv/bin/python bench/gateway.py [--requests 1800] [--rounds 3]
        [--concurrency 8]

Starts everything as real processes, private to this run: a mongod (single-node replica
set) and an S3 server (`rclone serve s3`, or minio) in a temporary directory on free
ports, a fresh RabbitMQ vhost (created and deleted through the management API), then the
four nameko services, the webhook deliveries and the gateway under gunicorn with two
gthread workers (devstack.stack.service_processes), and waits for /readyz.
Setup (not timed): the test county's territory and the default departments of its
centres over RPC, and one grid worker of GRID_A1 created in the gateway's user store,
who logs in once.

C concurrent HTTP clients (threads, a keep-alive `requests.Session` each; a pure HTTP
client needs no eventlet) share N requests per phase:

- the baseline, `GET /api/v1/deadline-policy`: authentication (token check, revocation
  and account look-ups in MongoDB) and exactly one RPC, `events.policy`, which the events
  service answers from memory (cached 10 s). No route is a pure no-op RPC; this is the
  lightest authenticated GET making one RPC. `/incidents/worklists/my_grid?limit=1` was
  measured about as fast (within this machine's noise, with 0 and with 1,200 open cases in
  the grid) but runs a scoped MongoDB query over the very collection the other phase
  fills, so the baseline would depend on the data; the policy does not.
- `POST /api/v1/incidents` with a unique Idempotency-Key and a GPS point inside GRID_A1:
  validated, the Idempotency-Key kept (one insert), the events service locating the grid
  (from its in-memory grid index, loaded once from the population service), storing the
  case with its outbox in one insert, publishing the CloudEvent; sent as the phone app
  sends it, with `Prefer: return=minimal` (the phone shows no duplicates after a report:
  the answer holds the case alone, and the duplicates are not searched). The gateway
  sends no account-activity event for a report: the assessment counts the case's
  incident.reported as its reporter's action and active day. After the ratio's phases,
  untimed for it, as many reports again as an API client asking for the possible
  duplicates nearby in the answer (searched beside the insert): their rate and ratio are
  printed too.

The baseline and the reports alternate in rounds (three by default, each a third of
the requests), so that a shared machine's changing speed hits both sides alike; each
round's ratio is printed, and the run's is of the rounds together. Each phase is timed
after a warm-up, and starts once this run's own processes are idle again: the events a
phase published are handled by the assessment, the population service and the webhook
intake, partly after its last answer (printed), and that work would otherwise slow the
next phase (it is charged to the reports' CPU instead). Then:

- the CPU milliseconds per request of each of this run's processes (RabbitMQ aside: its
  node serves other vhosts too), and the one-RPC route's sum against a report's: a ratio
  less disturbed by other work on a shared machine than the rates;
- where a request's time goes: the gateway's `Server-Timing` stages (auth, validate,
  idempotency, rpc, activity, and the whole app) averaged per route, and what the client
  waited outside the app (HTTP, gunicorn's queueing, the client threads); and, for a
  report, the events service's own, wall clock, from its /metrics: its `report_incident`
  worker (the call and its reply, published and confirmed), the use case (`report`) and
  its stages (locate, decide, store: the insert and the event handed to the broker,
  render, duplicates: looked up beside the store, how long that search waited to start,
  and what the answer still awaited of it);
- a bare gunicorn + Flask route (bench/bare_app.py, the gateway's worker settings, no
  authentication, RPC or database) from the same clients, and the one-RPC route's rate
  against it: what the gateway's common path costs, which the ratio cannot show;
- the reports of the timed phase counted in the events service's database, on a queue
  bound to incident.reported (not only answered 201) and as facts in the assessment's
  database (the work they leave behind was done); a queue bound to account.action counts
  none of them.

The last line is `ratio <incidents/s ÷ baseline requests/s>`.
"""

from __future__ import annotations

# First: silences eventlet's deprecation notice (nameko imports eventlet). No monkey-
# patching: this process is a plain HTTP client with threads.
import gridwork_common  # noqa: F401

# isort: split

import argparse
import contextlib
import itertools
import os
import statistics
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests
from kombu import Connection, Exchange, Queue
from nameko.standalone.rpc import ClusterRpcProxy
from prometheus_client.parser import text_string_to_metric_families
from pymongo import MongoClient

from bench.results import record
from bench.support import (
    CpuMeter,
    beams,
    cpu_line,
    load_line,
    percentiles,
    private_servers,
    private_vhost,
    running,
    tail,
)
from devstack.processes import ManagedProcess, free_port, wait_until
from devstack.stack import service_processes
from gridwork_common.config import Settings
from gridwork_common.context import CallerContext
from services.gateway.auth import Identity
from services.gateway.store import gateway_db
from services.media.storage import StorageUnavailable, media_store
from tests.population_data import (
    COUNTY,
    GRID_A1,
    TOWNSHIP_A,
    TOWNSHIP_B,
    VILLAGE_A,
    VILLAGE_B,
    county_features,
)

SERVICES = ("population", "events", "media", "assessment")
CENTRES = [COUNTY, TOWNSHIP_A, TOWNSHIP_B, VILLAGE_A, VILLAGE_B]
WORKER = "bench-worker-a1"
PASSWORD = uuid.uuid4().hex  # a fresh one each run
S3_ACCESS_KEY, S3_SECRET_KEY = "gridwork-bench", "gridwork-bench-secret"
BASELINE_PATH = "/api/v1/deadline-policy"
INCIDENTS_PATH = "/api/v1/incidents"
# Reports come from across GRID_A1's 0.01° square (about 1 km², tests/population_data.py),
# as a grid's do: points of an R2 low-discrepancy sequence, inset from the border. With the
# default policy (the same category within 200 m and 72 h) each report still finds tens of
# open cases nearby (printed). Every report at one point made each search read every open
# case there (all equally near, so none can be skipped): 400 duplicates of one case.
GRID_A1_CORNER = (102.50, 24.30)
GRID_SIDE, INSET = 0.01, 0.0003
R2 = (0.7548776662466927, 0.5698402909980532)  # 1/φ₂ and 1/φ₂², φ₂ the plastic number
CATEGORY = "04.01"  # rubbish: a village-owned item of the default catalogue
HTTP_TIMEOUT_S = 30
DESCRIPTION = "基准事件 "  # then the run and the request's number
BARE_PATH = "/bare"  # bench/bare_app.py
STAGES = ("auth", "validate", "idempotency", "rpc", "activity")
# The events service's own breakdown of a report (services/events/metrics.py), read from
# its /metrics before and after the reports: the RPC's time in its worker, by stage.
SERVICE_STAGES = "gridwork_incident_report_stage_seconds"
SERVICE_STAGE_ORDER = (
    "worker",
    "report",
    "locate",
    "decide",
    "store",
    "render",
    "duplicates_queued",
    "duplicates",
    "duplicates_awaited",
)
WORKER_LATENCY = "gridwork_entrypoint_latency_seconds"


# ---------------------------------------------------------------------------- load
class Phase:
    """N requests shared by C threads, each with its own keep-alive session."""

    def __init__(self, token: str, concurrency: int):
        self.sessions = []
        for _ in range(concurrency):
            session = requests.Session()
            session.headers["Authorization"] = f"Bearer {token}"
            self.sessions.append(session)

    def run(self, send, expected: int, count: int) -> tuple[list[float], float]:
        """`send(session, number)` -> a response; returns (latencies, seconds). The
        responses' Server-Timing stages are summed in `self.stages` (ms)."""
        numbers = itertools.count()
        latencies: list[float] = []
        failures: Counter[str] = Counter()
        lock = threading.Lock()
        self.stages: Counter[str] = Counter()

        def work(session: requests.Session) -> None:
            while (number := next(numbers)) < count:
                started = time.perf_counter()
                try:
                    response = send(session, number)
                    outcome = None if response.status_code == expected else response
                except requests.RequestException as exc:
                    outcome = exc
                elapsed = time.perf_counter() - started
                with lock:
                    latencies.append(elapsed)
                    if outcome is None:
                        self.stages.update(_server_timing(response))
                    if outcome is not None:
                        failures[_describe(outcome)] += 1

        threads = [threading.Thread(target=work, args=(s,), daemon=True) for s in self.sessions]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        seconds = time.perf_counter() - started
        if failures:
            raise SystemExit(f"{sum(failures.values())} of {count} requests failed: {failures}")
        return latencies, seconds

    def close(self) -> None:
        for session in self.sessions:
            session.close()


def _server_timing(response: requests.Response) -> dict[str, float]:
    """`name;dur=ms, ...` (services/gateway/timing.py) as {name: ms}."""
    stages = {}
    for part in response.headers.get("Server-Timing", "").split(","):
        name, _, duration = part.strip().partition(";dur=")
        if name and duration:
            stages[name] = float(duration)
    return stages


def _describe(outcome) -> str:
    if isinstance(outcome, requests.Response):
        return f"{outcome.status_code} {outcome.text[:200]}"
    return f"{type(outcome).__name__}: {outcome}"


def baseline(gateway: str):
    url = gateway + BASELINE_PATH
    return lambda session, number: session.get(url, timeout=HTTP_TIMEOUT_S)


def bare(url: str):
    return lambda session, number: session.get(url, timeout=HTTP_TIMEOUT_S)


def report_point(number: int) -> list[float]:
    """The `number`th report's GPS point, inside GRID_A1."""
    span = GRID_SIDE - 2 * INSET
    return [
        round(corner + INSET + span * ((0.5 + step * number) % 1.0), 6)
        for corner, step in zip(GRID_A1_CORNER, R2, strict=True)
    ]


def incidents(gateway: str, run: str, duplicates_found: list[int], minimal: bool, first: int = 0):
    """`send` for a report phase: as the phone app sends a report (`minimal`: `Prefer:
    return=minimal`, the case alone, its duplicates not searched), or asking for the
    possible duplicates in the answer (appends each answer's count of them). A phase's
    reports are numbered from `first` (unique in a run: the Idempotency-Key)."""
    url = gateway + INCIDENTS_PATH
    headers = {"Prefer": "return=minimal"} if minimal else {}

    def send(session: requests.Session, number: int) -> requests.Response:
        number += first
        response = session.post(
            url,
            json={
                "category": CATEGORY,
                "description": f"{DESCRIPTION}{run}-{number}",
                "location": report_point(number),
            },
            headers={**headers, "Idempotency-Key": f"{run}-{number}"},
            timeout=HTTP_TIMEOUT_S,
        )
        if response.status_code == 201 and minimal:
            if response.headers.get("Preference-Applied") != "return=minimal":
                raise SystemExit("a report asking for the case alone was answered in full")
        elif response.status_code == 201:
            duplicates_found.append(len(response.json()["possible_duplicates"]))
        return response

    return send


# ---------------------------------------------------------------------------- output
def stage_line(label: str, stages: Counter, latencies: list[float]) -> None:
    """Mean ms per request of each stage the gateway timed, what else the app did, and
    what the client waited outside the app (HTTP, gunicorn, the client itself)."""
    count = len(latencies)
    mean = {name: stages[name] / count for name in stages}
    app = mean.pop("app", 0.0)
    client = sum(latencies) / count * 1000
    parts = [f"{name} {mean.pop(name):.2f}" for name in STAGES if name in mean]
    parts += [f"{name} {value:.2f}" for name, value in mean.items()]
    other = app - sum(stages[name] / count for name in stages if name != "app")
    print(
        f"  {label}: mean ms per request: {', '.join(parts)}, other in the app {other:.2f}; "
        f"app {app:.2f}; outside the app {client - app:.2f} (client {client:.2f})",
        flush=True,
    )


def service_totals(metrics_url: str) -> dict[str, tuple[float, float]]:
    """{stage: (seconds, count)} of a report's stages in the events service, and its
    `report_incident` worker as `worker`, so far."""
    text = requests.get(metrics_url, timeout=HTTP_TIMEOUT_S).text
    totals: dict[str, list[float]] = {}
    for family in text_string_to_metric_families(text):
        if family.name not in (SERVICE_STAGES, WORKER_LATENCY):
            continue
        for sample in family.samples:
            if family.name == SERVICE_STAGES:
                name = sample.labels.get("stage")
            elif sample.labels.get("entrypoint") == "report_incident":
                name = "worker"
            else:
                continue
            index = {"_sum": 0, "_count": 1}.get(sample.name[len(family.name) :])
            if name and index is not None:
                totals.setdefault(name, [0.0, 0.0])[index] += sample.value
    return {name: (seconds, count) for name, (seconds, count) in totals.items()}


def service_stage_line(before: dict, after: dict) -> str:
    """Mean ms per report of the worker and each stage, from two `service_totals`."""
    parts = []
    order = {name: number for number, name in enumerate(SERVICE_STAGE_ORDER)}
    for name, (seconds, count) in sorted(after.items(), key=lambda item: order.get(item[0], 99)):
        seconds_before, count_before = before.get(name, (0.0, 0.0))
        if count > count_before:
            mean = (seconds - seconds_before) / (count - count_before) * 1000
            parts.append(f"{name} {mean:.2f}")
    return (
        "in the events service, mean ms per report (worker: the call, with its reply "
        "published and confirmed; report: the use case, its stages after; duplicates: "
        f"looked up beside the store): {', '.join(parts)}"
    )


def settle(cpu: CpuMeter, window_s: float = 0.5, timeout_s: float = 60) -> float:
    """Wait until this run's own processes are idle (under a tenth of a core), so the
    work one phase leaves to the asynchronous consumers (the assessment's facts, the
    population's and the webhook intake's handling of events) is not charged to the
    next phase's rate; returns the seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        before = cpu.snapshot()
        time.sleep(window_s)
        if sum(own_cpu_ms(cpu.since(before), 1).values()) / 1000 < 0.1 * window_s:
            break
    return time.monotonic() - started


def own_cpu_ms(used: dict[str, float], count: int) -> dict[str, float]:
    """CPU milliseconds per request of this run's own processes: less noisy than a rate
    on a shared machine. RabbitMQ is left out: its node serves other vhosts too."""
    return {
        name: seconds / count * 1000
        for name, seconds in used.items()
        if name not in ("RabbitMQ", "clients")
    }


def per_request_line(used: dict[str, float], count: int) -> str:
    own = own_cpu_ms(used, count)
    parts = ", ".join(f"{name} {ms:.2f}" for name, ms in own.items())
    return f"CPU ms per request (RabbitMQ aside): {parts}; sum {sum(own.values()):.2f}"


def rate_line(label: str, latencies: list[float], seconds: float) -> float:
    rate = len(latencies) / seconds
    p50, p99 = percentiles(latencies)
    print(
        f"{label:<20} {rate:7.1f} req/s   p50 {p50:7.2f} ms   p99 {p99:7.2f} ms   "
        f"({len(latencies)} requests in {seconds:.1f} s)",
        flush=True,
    )
    return rate


# ---------------------------------------------------------------------------- setup
def _bucket_ready(settings: Settings) -> bool:
    try:
        media_store(settings).ensure_bucket()
    except StorageUnavailable:
        return False
    return True


def _ready(gateway: str) -> bool:
    try:
        return requests.get(f"{gateway}/readyz", timeout=5).status_code == 200
    except requests.RequestException:
        return False


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=5).status_code == 200
    except requests.RequestException:
        return False


def seed(settings: Settings, gateway: str) -> str:
    """The county's territory and departments over RPC, a grid worker, and their token."""
    admin = CallerContext(user_id="bench-setup", roles=("admin", "system"), scope=COUNTY)
    config = settings.nameko_config()
    with ClusterRpcProxy(config, context_data=admin.to_context_data(), timeout=30) as rpc:
        imported = rpc.population.import_territory(county_features())
        departments = rpc.events.ensure_default_departments(CENTRES)
    print(f"setup: territory {imported}; {departments} departments")
    Identity(gateway_db(settings), settings).create_user(
        WORKER, PASSWORD, ["grid_worker"], GRID_A1, None, "基准网格员"
    )
    response = requests.post(
        f"{gateway}/api/v1/auth/token",
        json={"grant_type": "password", "username": WORKER, "password": PASSWORD},
        timeout=HTTP_TIMEOUT_S,
    )
    response.raise_for_status()
    return response.json()["access_token"]


# ---------------------------------------------------------------------------- main
class Taps:
    """Queues bound, as a consumer would bind them, to the incident.reported CloudEvent a
    report publishes and to account actions (a report sends none: the assessment counts
    its incident.reported); counted by a passive declare, never consumed."""

    BINDINGS = {"events.events": "incident.reported.#", "gateway.events": "account.action.#"}

    def __init__(self, amqp_uri: str):
        self.connection = Connection(amqp_uri)
        channel = self.connection.default_channel
        self.queues = []
        for number, (name, routing_key) in enumerate(self.BINDINGS.items()):
            exchange = Exchange(name, type="topic", durable=True)
            exchange(channel).declare()
            queue = Queue(f"bench-tap-{number}", exchange, routing_key=routing_key, exclusive=True)
            queue(channel).declare()
            self.queues.append(queue)

    def counts(self) -> list[int]:
        channel = self.connection.default_channel
        return [channel.queue_declare(q.name, passive=True).message_count for q in self.queues]

    def close(self) -> None:
        self.connection.release()


def check_stored_and_published(settings: Settings, taps: Taps, run: str, count: int) -> None:
    """The reports of the timed phase are in the events service's database, their events
    reached the bound queue and the assessment stored them as facts (each request answered
    201 is not proof enough); no account action was sent for them."""
    described = {"$regex": f"^{DESCRIPTION}{run}-"}
    client = MongoClient(settings.mongo_uri)
    try:
        incidents = client[settings.database_name("events")]["incidents"]
        facts = client[settings.database_name("assessment")]["facts"]
        stored = incidents.count_documents({"description": described})
        with contextlib.suppress(TimeoutError):  # a shortfall is reported below
            wait_until(
                lambda: (
                    taps.counts()[0] == count
                    and facts.count_documents(
                        {"type": "incident.reported", "data.description": described}
                    )
                    == count
                ),
                10,
                "the published events and the assessment's facts",
                0.2,
            )
        counted = facts.count_documents(
            {"type": "incident.reported", "data.description": described}
        )
    finally:
        client.close()
    reported, actions = taps.counts()
    print(
        f"stored {stored} reports; published {reported} incident.reported (expected {count} "
        f"each), {counted} counted by the assessment as facts, and {actions} account.action "
        "events (a report sends none)",
        flush=True,
    )
    if not stored == reported == counted == count or actions:
        raise SystemExit("reports answered 201 were not all stored, published and counted")


@dataclass
class Timed:
    """Requests of one kind over a run's rounds: latencies, seconds, Server-Timing stages
    and the CPU seconds each process spent (the reports' with the work they left)."""

    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0
    stages: Counter = field(default_factory=Counter)
    cpu: Counter = field(default_factory=Counter)

    def add(self, phase: Phase, latencies: list[float], seconds: float, cpu: dict) -> float:
        self.latencies += latencies
        self.seconds += seconds
        self.stages += phase.stages
        self.cpu.update(cpu)
        return len(latencies) / seconds


def timed(
    phase: Phase, cpu: CpuMeter, send, expected: int, count: int, timing: Timed
) -> tuple[float, float]:
    """One phase, started with this run's processes idle and charged with what they do
    until idle again (the events it published handled); returns its rate and how long
    after its last answer they were idle."""
    settle(cpu)
    before = cpu.snapshot()
    latencies, seconds = phase.run(send, expected, count)
    after_s = settle(cpu)
    return timing.add(phase, latencies, seconds, cpu.since(before)), after_s


def bench(
    args, gateway: str, bare_url: str, token: str, cpu: CpuMeter, settings, amqp_uri, events_metrics
):
    """Warm-up; rounds of the baseline then the incidents; the bare route; the reports
    with their duplicates; returns the ratio."""
    phase = Phase(token, args.concurrency)
    run = uuid.uuid4().hex[:8]
    taps = None
    try:
        warmup = args.concurrency * 5
        phase.run(baseline(gateway), 200, warmup)
        phase.run(incidents(gateway, f"warmup-{run}", [], minimal=True), 201, warmup)
        phase.run(incidents(gateway, f"warmup-{run}-full", [], minimal=False), 201, warmup)
        phase.run(bare(bare_url), 200, warmup)
        taps = Taps(amqp_uri)

        base, reports = Timed(), Timed()
        per_round = args.requests // args.rounds
        service_before = service_totals(events_metrics)
        for number in range(args.rounds):
            base_rate, _ = timed(phase, cpu, baseline(gateway), 200, per_round, base)
            send = incidents(gateway, run, [], minimal=True, first=number * per_round)
            report_rate, after_s = timed(phase, cpu, send, 201, per_round, reports)
            print(
                f"round {number + 1}: one-RPC route {base_rate:6.1f} req/s, reports "
                f"{report_rate:6.1f} req/s (their events handled {after_s:.1f} s after the "
                f"last answer), ratio {report_rate / base_rate:.3f}",
                flush=True,
            )
        service_after = service_totals(events_metrics)

        settle(cpu)
        bare_latencies, bare_s = phase.run(bare(bare_url), 200, per_round * args.rounds)

        print(
            f"{args.concurrency} concurrent clients, {per_round} requests a phase, "
            f"{args.rounds} rounds"
        )
        base_rate = rate_line(f"GET {BASELINE_PATH[7:]}", base.latencies, base.seconds)
        print(f"  {cpu_line(base.cpu, base.seconds)}")
        print(f"  {per_request_line(base.cpu, len(base.latencies))}")
        stage_line("where the time goes", base.stages, base.latencies)
        report_rate = rate_line(f"POST {INCIDENTS_PATH[7:]}", reports.latencies, reports.seconds)
        print(f"  {cpu_line(reports.cpu, reports.seconds)}")
        print(f"  {per_request_line(reports.cpu, len(reports.latencies))}")
        stage_line("where the time goes", reports.stages, reports.latencies)
        print(f"  {service_stage_line(service_before, service_after)}")
        base_ms = sum(own_cpu_ms(base.cpu, len(base.latencies)).values())
        report_ms = sum(own_cpu_ms(reports.cpu, len(reports.latencies)).values())
        print(
            f"CPU per request, one-RPC route / report (RabbitMQ aside): {base_ms:.2f} / "
            f"{report_ms:.2f} ms = {base_ms / report_ms:.3f}"
        )
        bare_rate = rate_line(f"bare GET {BARE_PATH}", bare_latencies, bare_s)
        print(
            f"one-RPC route / bare gunicorn + Flask route: {base_rate / bare_rate:.3f} "
            "(authentication, the RPC, the gateway's own work)"
        )
        check_stored_and_published(settings, taps, run, per_round * args.rounds)
        settle(cpu)
        found: list[int] = []
        full_latencies, full_s = phase.run(
            incidents(gateway, f"{run}-full", found, minimal=False), 201, per_round
        )
        full_rate = rate_line(
            f"POST {INCIDENTS_PATH[7:]} with the duplicates in the answer", full_latencies, full_s
        )
        print(
            f"  (an API client's report: possible duplicates nearby searched beside the insert "
            f"and answered, mean {statistics.mean(found):.1f}, max {max(found)}, at most 10 "
            f"shown; ratio to the one-RPC route {full_rate / base_rate:.3f})"
        )
        record(
            "gateway",
            "POST /incidents",
            report_rate,
            "GET /deadline-policy (one RPC)",
            base_rate,
            "req/s",
        )
        return report_rate / base_rate
    finally:
        if taps is not None:
            taps.close()
        phase.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--requests", type=int, default=1800, help="requests of each kind (all clients)"
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="alternations of the baseline and the reports"
    )
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent HTTP clients")
    parser.add_argument("--amqp-uri", default="amqp://guest:guest@127.0.0.1:5672/")
    parser.add_argument("--management-uri", default="http://guest:guest@127.0.0.1:15672")
    parser.add_argument("--log-level", default="INFO", help="of the stack's processes")
    args = parser.parse_args()
    if args.rounds < 1 or args.requests < args.rounds or args.concurrency < 1:
        parser.error("give at least one round, a request a round and one client")

    gateway_port = free_port()
    with (
        private_vhost(args.amqp_uri, args.management_uri) as amqp_uri,
        private_servers((S3_ACCESS_KEY, S3_SECRET_KEY), "gridwork-bench-gateway-") as servers,
    ):
        s3_port = servers.s3_port
        env = {
            "AMQP_URI": amqp_uri,
            "MONGO_URI": servers.mongo_uri,
            "MONGO_DB_PREFIX": "bench",
            "S3_ENDPOINT": f"127.0.0.1:{s3_port}",
            "S3_ACCESS_KEY": S3_ACCESS_KEY,
            "S3_SECRET_KEY": S3_SECRET_KEY,
            "S3_BUCKET": "bench-media",
            "COUNTY_CODE": COUNTY,
            "LOG_LEVEL": args.log_level,
            "GRIDWORK_DEV_MODE": "true",  # a private, throwaway stack
        }
        settings = Settings.from_env(env)
        wait_until(lambda: _bucket_ready(settings), 30, "S3 bucket", 0.3)
        metrics_ports = {name: free_port() for name in SERVICES}
        stack = service_processes(
            env=env,
            run_dir=servers.run_dir,
            log_dir=servers.log_dir,
            metrics_ports=metrics_ports,
            gateway_port=gateway_port,
            gateway_workers=2,
        )
        bare_port = free_port()
        stack.append(
            ManagedProcess(
                name="bare-flask",
                argv=[
                    *(sys.executable, "-m", "gunicorn", "-k", "gthread", "-w", "2"),
                    *("--threads", os.environ.get("GATEWAY_THREADS", "8")),
                    *("-b", f"127.0.0.1:{bare_port}", "bench.bare_app:app"),
                ],
                env=env,
                run_dir=servers.run_dir,
                log_dir=servers.log_dir,
                marker="bench.bare_app:app",
            )
        )
        bare_url = f"http://127.0.0.1:{bare_port}{BARE_PATH}"
        gateway = f"http://127.0.0.1:{gateway_port}"
        print(
            f"private mongod :{servers.mongo_port}, S3 :{s3_port}, "
            f"vhost {urlsplit(amqp_uri).path[1:]}"
        )
        print(load_line())
        with running(stack):
            started = time.monotonic()
            try:
                wait_until(lambda: _ready(gateway), 90, "the stack's /readyz", 0.5)
            except TimeoutError:
                for process in stack:
                    print(f"--- {process.name}\n{tail(process.logfile)}", file=sys.stderr)
                raise
            print(f"stack ready in {time.monotonic() - started:.1f} s (gateway {gateway})")
            token = seed(settings, gateway)
            pids = {p.name: p.running_pid() for p in stack}
            cpu = CpuMeter(
                {
                    "gateway": [pids["gateway"]],
                    "events": [pids["events"]],
                    "population": [pids["population"]],
                    "assessment": [pids["assessment"]],
                    "media": [pids["media"]],
                    "webhooks": [pids["webhooks"]],
                    "mongod": [servers.pids["mongod"]],
                    "RabbitMQ": beams(),
                    "clients": [os.getpid()],
                },
                process_groups=True,
            )
            wait_until(lambda: _answers(bare_url), 30, "the bare Flask route", 0.3)
            events_metrics = f"http://127.0.0.1:{metrics_ports['events']}/metrics"
            ratio = bench(args, gateway, bare_url, token, cpu, settings, amqp_uri, events_metrics)
    print(f"ratio {ratio:.3f}")


if __name__ == "__main__":
    main()
