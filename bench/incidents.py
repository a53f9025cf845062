"""Incident loop: whole cases driven over RPC vs no-op nameko RPCs, same callers, same run.

    PYTHONPATH=. .venv/bin/python bench/incidents.py [--incidents 200] [--concurrency 8]
        [--profile]

Starts its own mongod (a single-node replica set in a temporary directory, on a free
port) and uses the RabbitMQ on 127.0.0.1:5672 in a fresh vhost (created and deleted
through the management API), so it touches no data of `make up`. The population and
events services, and a no-op service, run in this process in one nameko ServiceRunner.
Setup (not timed): the test county's territory (3 grids with polygons) and the default
departments of its centres.

C concurrent callers (green threads), each with its own ClusterRpcProxy that carries the
caller context of whoever acts (set per call, as the gateway does), then run:

- the baseline: RPC round trips to the no-op service's `health`;
- the full loop, each caller taking the next case and running it to the end. A grid
  worker reports with a GPS point in their grid (the events service locates it through
  the population service); the village centre accepts and registers it; a village-owned
  item ("04.01" rubbish) is dispatched to the village committee, a township one ("02.01"
  suspicious person) is escalated to the township centre, which dispatches it to its
  police station; the department handler signs and feeds back; the grid worker verifies;
  the owning centre closes; the reporter evaluates. Every transition is one RPC to the
  events service, which writes the case with the command's idempotency record and its
  events in one `findAndModify` (a report: one insert), then publishes them as
  CloudEvents on `events.events` and answers without waiting for the broker's confirm;
  confirmed events leave the case in a background batch. The loop's CPU is counted until
  every event of the run is confirmed and pulled, and how long that took after the last
  answer is printed.

Each phase is timed after a warm-up (25 no-op calls and 2 cases per caller). Cases
alternate between the two paths and go round the 3 grids. Queues bound like departments'
systems count what reached them, and the services' MongoDB commands are counted. The last line is
`ratio <full-loop transitions/s / no-op RPCs/s>`. `--profile` cProfiles the timed loop
(this process's CPU time, every green thread: callers, services, publisher) to stderr; a
profiled run's figures are slower and not to be compared.
"""

import gridwork_common.green  # noqa: F401  (first: patches eventlet before other imports)

# isort: split

import argparse
import cProfile
import itertools
import os
import pstats
import random
import sys
import time
import uuid
from collections import Counter
from urllib.parse import urlsplit

import eventlet
from kombu import Connection, Exchange, Queue
from nameko.rpc import rpc
from nameko.runners import ServiceRunner
from nameko.standalone.rpc import ClusterRpcProxy
from pymongo import MongoClient, monitoring

from bench.results import record
from bench.support import (
    CpuMeter,
    beams,
    cpu_line,
    load_line,
    percentiles,
    private_servers,
    private_vhost,
)
from gridwork_common.config import Settings
from gridwork_common.context import CallerContext
from services.events.service import EventsService
from services.population.service import PopulationService
from tests.population_data import (
    COUNTY,
    GRID_A1,
    GRID_A2,
    GRID_B1,
    TOWNSHIP_A,
    TOWNSHIP_B,
    VILLAGE_A,
    VILLAGE_B,
    county_features,
)

NOOP_SERVICE = f"bench_noop_{uuid.uuid4().hex[:8]}"
ADMIN = CallerContext(user_id="bench-admin", roles=("admin",), scope=COUNTY)
CENTRES = [COUNTY, TOWNSHIP_A, TOWNSHIP_B, VILLAGE_A, VILLAGE_B]
# South-west corners of the grids' 0.01° squares (tests/population_data.py).
GRID_CORNERS = {GRID_A1: (102.50, 24.30), GRID_A2: (102.51, 24.30), GRID_B1: (102.60, 24.30)}
GRIDS = tuple(GRID_CORNERS)
VILLAGE_ITEM, TOWNSHIP_ITEM = "04.01", "02.01"
KINDS = (
    "report",
    "accept",
    "register",
    "escalate",
    "dispatch",
    "sign",
    "feedback",
    "verify",
    "close",
    "evaluate",
)
VILLAGE_PATH_EVENTS = 9  # reported … evaluated, without escalated
TOWNSHIP_PATH_EVENTS = 10
# What a department's system gets on the events of a township-path case once dispatched:
# dispatched, signed, handled, verified, closed, evaluated.
DEPARTMENT_EVENTS = 6


class Noop:
    name = NOOP_SERVICE

    @rpc
    def health(self):
        return {"status": "up"}


# ---------------------------------------------------------------------------- callers
def grid_worker(grid: str) -> CallerContext:
    return CallerContext(user_id=f"worker-{grid}", roles=("grid_worker",), scope=grid)


def centre(code: str) -> CallerContext:
    return CallerContext(user_id=f"centre-{code}", roles=("centre_operator",), scope=code)


def handler(department: str, territory: str) -> CallerContext:
    return CallerContext(
        user_id=f"handler-{department}",
        roles=("department_handler",),
        scope=territory,
        department=department,
    )


class Caller:
    """One green thread's RPC proxy; each call carries the context of whoever acts."""

    def __init__(self, config: dict):
        self.standalone = ClusterRpcProxy(config, timeout=60)
        self.cluster = self.standalone.start()

    def call(self, who: CallerContext, service: str, method: str, *args):
        # Context data is read when the request is published; this proxy belongs to one
        # green thread, so setting it per call is safe (services/gateway/rpc.py does it).
        self.standalone._worker_ctx.data = who.to_context_data()
        return getattr(self.cluster[service], method)(*args)

    def stop(self) -> None:
        self.standalone.stop()


# ---------------------------------------------------------------------------- one case
def run_case(caller: Caller, number: int, run: str, rng: random.Random, latencies: dict) -> int:
    """Report one case and take it to `evaluated`; returns the transitions made."""
    grid = GRIDS[number % len(GRIDS)]
    village, township = grid[:12], grid[:9]
    worker, village_centre = grid_worker(grid), centre(village)
    via_township = number % 2 == 1
    west, south = GRID_CORNERS[grid]
    point = [west + rng.uniform(0.0005, 0.0095), south + rng.uniform(0.0005, 0.0095)]
    key = f"{run}-{number}"

    def timed(kind: str, who: CallerContext, method: str, *args) -> dict:
        started = time.perf_counter()
        result = caller.call(who, "events", method, *args)
        latencies[kind].append(time.perf_counter() - started)
        return result

    def act(kind: str, who: CallerContext, case: dict, fields: dict | None = None) -> dict:
        return timed(kind, who, "act", case["id"], kind, case["version"], f"{key}-{kind}", fields)

    category = TOWNSHIP_ITEM if via_township else VILLAGE_ITEM
    report = {"category": category, "description": f"基准事件 {number}", "location": point}
    case = timed("report", worker, "report_incident", report, key)["incident"]
    assert case["grid_code"] == grid, (case["grid_code"], grid, point)
    case = act("accept", village_centre, case)
    case = act("register", village_centre, case)
    if via_township:
        case = act("escalate", village_centre, case, {"reason": "需派出所处置"})
        owner = centre(township)
        department = f"{township}-police-station"
        doer = handler(department, township)
    else:
        owner = village_centre
        department = f"{village}-committee"
        doer = handler(department, village)
    case = act("dispatch", owner, case, {"department_code": department})
    case = act("sign", doer, case)
    case = act("feedback", doer, case, {"result": "已处置", "media_ids": [f"m-{key}"]})
    case = act("verify", worker, case, {"passed": True})
    case = act("close", owner, case)
    case = act("evaluate", worker, case, {"satisfaction": 5})
    assert case["state"] == "evaluated", case
    return case["version"]  # the report is version 1, each transition adds one


def run_cases(callers: list[Caller], count: int, run: str) -> tuple[dict, int, float]:
    """`count` cases over all callers at once: (latencies by kind, transitions, seconds)."""
    latencies: dict[str, list[float]] = {kind: [] for kind in KINDS}
    numbers = iter(range(count))
    versions: list[int] = []

    def work(caller: Caller, seed: int) -> None:
        rng = random.Random(seed)
        for number in numbers:  # a shared iterator: each case is taken once
            versions.append(run_case(caller, number, run, rng, latencies))

    started = time.perf_counter()
    pool = [eventlet.spawn(work, caller, seed) for seed, caller in enumerate(callers)]
    for thread in pool:
        thread.wait()
    elapsed = time.perf_counter() - started
    transitions = sum(len(calls) for calls in latencies.values())
    assert len(versions) == count and sum(versions) == transitions, (len(versions), transitions)
    return latencies, transitions, elapsed


def run_noop(callers: list[Caller], calls: int) -> tuple[list[float], float]:
    who = grid_worker(GRID_A1)
    latencies: list[float] = []
    issued = itertools.count()

    def work(caller: Caller) -> None:
        while next(issued) < calls:
            started = time.perf_counter()
            caller.call(who, NOOP_SERVICE, "health")
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    pool = [eventlet.spawn(work, caller) for caller in callers]
    for thread in pool:
        thread.wait()
    return latencies, time.perf_counter() - started


# ---------------------------------------------------------------------------- output
def latency_line(label: str, latencies: list[float]) -> None:
    p50, p99 = percentiles(latencies)
    print(f"  {label:<14} p50 {p50:7.2f} ms   p99 {p99:7.2f} ms   ({len(latencies)} calls)")


def noop_line(label: str, latencies: list[float], seconds: float) -> float:
    rate = len(latencies) / seconds
    p50, p99 = percentiles(latencies)
    print(
        f"{label:<15} {rate:6.0f} RPCs/s   p50 {p50:6.2f} ms   p99 {p99:6.2f} ms   "
        f"({len(latencies)} calls in {seconds:.1f} s)"
    )
    return rate


class MongoCommands(monitoring.CommandListener):
    """Counts the commands the services send to mongod (registered before their clients)."""

    def __init__(self):
        self.counts: Counter[str] = Counter()

    def started(self, event):
        self.counts[event.command_name] += 1

    def succeeded(self, event):
        pass

    def failed(self, event):
        pass


# ---------------------------------------------------------------------------- taps
class DepartmentTaps:
    """Queues bound to `events.events` as departments' systems bind theirs; counted by a
    passive declare, never consumed."""

    def __init__(self, amqp_uri: str, bindings: dict[str, str]):
        self.connection = Connection(amqp_uri)
        channel = self.connection.default_channel
        exchange = Exchange("events.events", type="topic", durable=True)
        exchange(channel).declare()
        self.queues = {}
        for label, routing_key in bindings.items():
            queue = Queue(f"bench-tap-{label}", exchange, routing_key=routing_key, exclusive=True)
            queue(channel).declare()
            self.queues[routing_key] = queue

    def counts(self) -> dict[str, int]:
        channel = self.connection.default_channel
        return {
            routing_key: channel.queue_declare(queue.name, passive=True).message_count
            for routing_key, queue in self.queues.items()
        }

    def close(self) -> None:
        self.connection.release()


# ---------------------------------------------------------------------------- main
def bench(config: dict, amqp_uri: str, args, mongod_pid: int | None) -> float:
    """Setup, the baseline (half before the loop, half after, so that noise on this shared
    machine hits both sides alike), the loop; returns the ratio."""
    settings = Settings.from_nameko_config(config)
    # The bench's own client, created before the listener: its commands are not counted.
    mongo = MongoClient(settings.mongo_uri)
    events_db = mongo[settings.database_name("events")]
    commands = MongoCommands()
    monitoring.register(commands)
    runner = ServiceRunner(config)
    for service in (PopulationService, EventsService, Noop):
        runner.add_service(service)
    runner.start()
    cpu = CpuMeter(
        {"this process": [os.getpid()], "mongod": [mongod_pid], "RabbitMQ (whole node)": beams()}
    )
    callers: list[Caller] = []
    taps = None
    try:
        admin = Caller(config)
        callers.append(admin)
        admin.call(ADMIN, "population", "import_territory", county_features())
        departments = admin.call(ADMIN, "events", "ensure_default_departments", CENTRES)
        print(f"territory: {len(GRIDS)} grids in 2 villages; {departments} departments (setup)")
        pool = [Caller(config) for _ in range(args.concurrency)]
        callers.extend(pool)
        run_noop(pool, args.concurrency * 25)  # warm-up
        run_cases(pool, args.concurrency * 2, f"warmup-{uuid.uuid4().hex[:8]}")
        taps = DepartmentTaps(
            amqp_uri,
            {
                "police": f"incident.*.{TOWNSHIP_A}-police-station.#",
                "township": f"incident.*.*.{COUNTY}.{TOWNSHIP_A}.#",
                "closed": "incident.closed.#",
                "overdue": "incident.overdue.#",
            },
        )

        first = args.noop_calls // 2
        before = cpu.snapshot()
        noop_latencies, noop_s = run_noop(pool, first)
        noop_line("no-op (before)", noop_latencies, noop_s)
        noop_cpu = cpu.since(before)

        commands.counts.clear()
        # CPU time, not wall time: the green threads' waits are not the loop's cost.
        profiler = cProfile.Profile(time.process_time) if args.profile else None
        before = cpu.snapshot()
        if profiler is not None:
            profiler.enable()
        latencies, transitions, loop_s = run_cases(pool, args.incidents, uuid.uuid4().hex[:8])
        # A step answers once its events are written; they leave their case when the
        # broker confirms them (a batch per replica). Charged to the loop: its CPU
        # counts until every event of the run is confirmed and pulled.
        unsent_at_end, drained_s = wait_until_events_pulled(events_db)
        if profiler is not None:
            profiler.disable()
        loop_cpu = cpu.since(before)

        before = cpu.snapshot()
        after_latencies, after_s = run_noop(pool, args.noop_calls - first)
        noop_line("no-op (after)", after_latencies, after_s)
        noop_cpu = {name: seconds + noop_cpu[name] for name, seconds in cpu.since(before).items()}
        noop_latencies += after_latencies
        noop_s += after_s
        noop_rate = noop_line("no-op rpc", noop_latencies, noop_s)
        print(f"  {cpu_line(noop_cpu, noop_s)}")
        print(f"  CPU ms per no-op RPC: {per_op_line(noop_cpu, len(noop_latencies))}")

        print(
            f"full loop: {args.incidents} incidents, {transitions} transitions in "
            f"{loop_s:.1f} s ({args.concurrency} callers)"
        )
        print(
            f"  events not yet confirmed and pulled off their cases at the last answer: "
            f"{unsent_at_end}; all pulled {drained_s:.2f} s later"
        )
        print(f"  {cpu_line(loop_cpu, loop_s)}")
        print(f"  CPU ms per transition: {per_op_line(loop_cpu, transitions)}")
        common = ", ".join(
            f"{name} {n / transitions:.1f}" for name, n in commands.counts.most_common(5)
        )
        per_transition = sum(commands.counts.values()) / transitions
        print(f"  mongo commands per transition: {per_transition:.1f} ({common})")
        expected = expected_taps(args.incidents)
        got = taps.counts()
        for routing_key, count in got.items():
            print(f"  bound {routing_key:<40} {count:5d} events (expected {expected[routing_key]})")
        # At least once: a resend may add a copy (consumers de-duplicate by id), never lose one.
        assert all(got[key] >= count for key, count in expected.items()), (got, expected)
        for kind in KINDS:
            latency_line(kind, latencies[kind])
        transition_rate = transitions / loop_s
        print(f"incidents     {args.incidents / loop_s:8.1f} /s")
        print(f"transitions   {transition_rate:8.1f} /s")
        print(f"no-op RPCs    {noop_rate:8.1f} /s")
        if profiler is not None:
            print_profile(profiler, transitions)
        else:  # a profiled run's figures are not recorded
            record(
                "incidents", "full-loop transitions", transition_rate, "no-op RPCs", noop_rate, "/s"
            )
        return transition_rate / noop_rate
    finally:
        if taps is not None:
            taps.close()
        for caller in callers:
            caller.stop()
        runner.stop()
        mongo.close()


def wait_until_events_pulled(events_db, timeout_s: float = 60) -> tuple[int, float]:
    """How many events wait in cases now, and how long until none does (the partial
    index on `outbox.created_at` holds only cases with some)."""
    unsent = {"outbox.created_at": {"$exists": True}}

    def waiting() -> int:
        rows = events_db["incidents"].aggregate(
            [{"$match": unsent}, {"$group": {"_id": None, "n": {"$sum": {"$size": "$outbox"}}}}]
        )
        return next((row["n"] for row in rows), 0)

    started = time.perf_counter()
    at_end = waiting()
    left = at_end
    while left and time.perf_counter() - started < timeout_s:
        time.sleep(0.01)
        left = events_db["incidents"].count_documents(unsent)
    assert not left, f"{left} cases still hold events after {timeout_s} s"
    return at_end, time.perf_counter() - started


def print_profile(profiler: cProfile.Profile, transitions: int) -> None:
    print(f"\nprofile of the loop's {transitions} transitions (CPU seconds):", file=sys.stderr)
    stats = pstats.Stats(profiler, stream=sys.stderr).strip_dirs()
    stats.sort_stats("tottime").print_stats(45)
    stats.sort_stats("cumulative").print_stats(60)


def per_op_line(used: dict[str, float], operations: int) -> str:
    return ", ".join(f"{name} {1000 * seconds / operations:.1f}" for name, seconds in used.items())


def expected_taps(incidents: int) -> dict[str, int]:
    """Events each tap gets from the timed cases (numbers decide grid and path)."""
    police = township = 0
    for number in range(incidents):
        grid = GRIDS[number % len(GRIDS)]
        via_township = number % 2 == 1
        if grid.startswith(TOWNSHIP_A):
            township += TOWNSHIP_PATH_EVENTS if via_township else VILLAGE_PATH_EVENTS
            police += DEPARTMENT_EVENTS if via_township else 0
    return {
        f"incident.*.{TOWNSHIP_A}-police-station.#": police,
        f"incident.*.*.{COUNTY}.{TOWNSHIP_A}.#": township,
        "incident.closed.#": incidents,
        "incident.overdue.#": 0,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=200, help="cases run through the loop")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent callers")
    parser.add_argument("--noop-calls", type=int, default=4000, help="baseline RPCs (all callers)")
    parser.add_argument(
        "--profile", action="store_true", help="cProfile the timed loop (to stderr)"
    )
    parser.add_argument("--amqp-uri", default="amqp://guest:guest@127.0.0.1:5672/")
    parser.add_argument("--management-uri", default="http://guest:guest@127.0.0.1:15672")
    args = parser.parse_args()

    with (
        private_vhost(args.amqp_uri, args.management_uri) as amqp_uri,
        private_servers() as servers,
    ):
        settings = Settings.from_env(
            {
                "AMQP_URI": amqp_uri,
                "MONGO_URI": servers.mongo_uri,
                "MONGO_DB_PREFIX": "bench",
                "COUNTY_CODE": COUNTY,
                "METRICS_PORT": "0",
                "GRIDWORK_DEV_MODE": "true",  # private, throwaway servers
            }
        )
        vhost = urlsplit(amqp_uri).path[1:]
        print(f"private mongod on port {servers.mongo_port}; RabbitMQ vhost {vhost}")
        print(load_line())
        ratio = bench(settings.nameko_config(), amqp_uri, args, servers.pids["mongod"])
    print(f"ratio {ratio:.3f}")


if __name__ == "__main__":
    main()
