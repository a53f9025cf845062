"""Faults under load: nothing lost, nothing doubled, no hangs (docs/operations.md, "The
fault suite").

The whole stack runs as real processes, two replicas of each service under attack, on a
RabbitMQ node, a mongod and an S3 server of this module's own. In each scenario a bounded
load of reports, accepts, uploads and imports runs while one fault happens; then the load
stops, its clients finish retrying, and the checker reconciles their history with what
the databases hold and what happened downstream (assessment facts, webhook deliveries).
"""

from __future__ import annotations

import contextlib
import csv
import io
import signal
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, timedelta
from pathlib import Path

import pytest
import requests
from kombu import Connection, Exchange, Queue, binding

from devstack import rabbitmq
from devstack.processes import wait_until
from services.population.importing import BATCH_SIZE
from tests.conftest import PINNED_AT
from tests.faults.checker import Effect, reconcile
from tests.faults.cluster import Cluster, cluster_env, replica
from tests.faults.history import Attempt, Operation
from tests.faults.load import CLIENT_TIMEOUT_S, Load, imported_name
from tests.faults.observe import effects, pending_keys, stored_and_states, wait_for_quiet
from tests.faults.receiver import WebhookReceiver
from tests.faults.servers import PrivateMongod, PrivateS3, private_rabbitmq
from tests.population_data import GRID_A1, random_resident_ids
from tests.queue_tap import drained

pytestmark = [pytest.mark.faults, pytest.mark.timeout(900)]

LEAD_S = 6  # load before the fault
OUTAGE_S = 8  # how long a server stays down or frozen
TAIL_S = 6  # load after the fault is over
RETRY_WINDOW_S = 90  # how long clients keep retrying once the load stops


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    why_not = rabbitmq.available()
    if why_not:
        pytest.skip(f"no private RabbitMQ node: {why_not}")
    mongod = PrivateMongod(tmp_path_factory.mktemp("faults-mongod"))
    s3 = PrivateS3(tmp_path_factory.mktemp("faults-s3"))
    mongod.start()
    s3.start()
    try:
        with private_rabbitmq() as broker:
            yield {"broker": broker, "mongod": mongod, "s3": s3}
    finally:
        s3.stop()
        mongod.stop()


@pytest.fixture(scope="module")
def stack(servers, tmp_path_factory):
    env = cluster_env(servers["broker"].amqp_uri, servers["mongod"].uri, servers["s3"].endpoint)
    cluster = Cluster(env, Path(tmp_path_factory.mktemp("faults-stack")), PINNED_AT)
    with WebhookReceiver() as receiver:
        try:
            cluster.start(receiver)
            yield {"cluster": cluster, "receiver": receiver, **servers}
        finally:
            cluster.stop()


def kill(process) -> None:
    process.signal(signal.SIGKILL)
    process.stop()  # reaps it and removes its pid file


def broker_stopped(stack) -> None:
    stack["broker"].stop()
    time.sleep(OUTAGE_S)
    stack["broker"].start()


def broker_killed(stack) -> None:
    stack["broker"].kill()
    time.sleep(OUTAGE_S)
    stack["broker"].start()


def mongod_killed(stack) -> None:
    stack["mongod"].kill()
    time.sleep(OUTAGE_S)
    stack["mongod"].start()


def s3_frozen(stack) -> None:
    stack["s3"].freeze()
    time.sleep(OUTAGE_S)
    stack["s3"].thaw()


def s3_killed(stack) -> None:
    stack["s3"].kill()
    time.sleep(OUTAGE_S)
    stack["s3"].start()


def replicas_killed_and_terminated(service: str) -> Callable:
    """One replica SIGKILLed mid-work and started again; then the other stopped with
    SIGTERM (nameko drains its running workers first) and started again."""

    def fault(stack) -> None:
        first, second = stack["cluster"].replicas[service]
        kill(first)
        time.sleep(OUTAGE_S / 2)
        first.start()
        stack["cluster"].wait_serving()
        second.stop(timeout_s=60)
        time.sleep(OUTAGE_S / 2)
        second.start()

    return fault


SCENARIOS = {
    "broker-stopped": broker_stopped,
    "broker-killed": broker_killed,
    "events-replicas": replicas_killed_and_terminated("events"),
    "population-replicas": replicas_killed_and_terminated("population"),
    "media-replicas": replicas_killed_and_terminated("media"),
    "mongod-killed": mongod_killed,
    "s3-frozen": s3_frozen,
    "s3-killed": s3_killed,
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_nothing_is_lost_doubled_or_stuck(stack, scenario, capsys):
    cluster, receiver = stack["cluster"], stack["receiver"]
    cluster.wait_serving()
    load = Load(
        cluster.gateway,
        cluster.headers,
        cluster.membership_id,
        seed=list(SCENARIOS).index(scenario),
    )
    load.start()
    try:
        time.sleep(LEAD_S)
        SCENARIOS[scenario](stack)
        time.sleep(TAIL_S)
    finally:
        load.stop(RETRY_WINDOW_S)
    wait_for_quiet(cluster, load, receiver)
    stored, states = stored_and_states(cluster, load)
    figures = reconcile(
        load.history,
        stored,
        states,
        effects(cluster, load, receiver),
        pending_keys(cluster),
    )
    with capsys.disabled():
        print("\n" + figures.table(scenario))
    assert figures.acknowledged > 0
    assert figures.violations() == []


LARGE_IMPORT_ROWS = 10_000
RESUME_TIMEOUT_S = 180  # the job's lease runs out, a replica claims it and finishes it


def test_an_import_whose_service_is_killed_midway_resumes_from_its_checkpoint(stack, capsys):
    """Both population replicas are SIGKILLed once the job has checkpointed its first batch;
    started again, one of them takes the job over and finishes it: every row stored once,
    with one history entry, and the job's counts are the whole file's."""
    cluster = stack["cluster"]
    cluster.wait_serving()
    numbers = random_resident_ids(LARGE_IMPORT_ROWS, seed=4242)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerow(["id_number", "name", "grid_code"])
    writer.writerows([[number, imported_name(number), GRID_A1] for number in numbers])
    operation = Operation("import", uuid.uuid4().hex, expected_state="finished")
    answer = requests.post(
        f"{cluster.gateway}/api/v1/imports?kind=residents",
        files={"file": (f"{operation.key}.csv", text.getvalue().encode(), "text/csv")},
        headers={**cluster.headers["centre"], "Idempotency-Key": operation.key},
        timeout=CLIENT_TIMEOUT_S,
    )
    operation.attempts.append(Attempt(answer.status_code))
    assert answer.status_code == 202, answer.text
    operation.answer_id = job_id = answer.json()["id"]

    def job() -> dict:
        with cluster.database("population") as population:
            return population["import_jobs"].find_one({"_id": job_id})

    wait_until(lambda: job()["counts"]["rows"] >= BATCH_SIZE, 120, "the first checkpoint")
    for process in cluster.replicas["population"]:
        kill(process)
    assert job()["status"] == "running", "the import finished before the kill: make it larger"
    for process in cluster.replicas["population"]:
        process.start()
    wait_until(lambda: job()["status"] != "running", RESUME_TIMEOUT_S, "the resumed import")

    load = Load(cluster.gateway, cluster.headers)
    load.history.append(operation)
    load.imported[operation.key] = numbers
    stored, states = stored_and_states(cluster, load)
    figures = reconcile([operation], stored, states, effects(cluster, load, stack["receiver"]))
    with capsys.disabled():
        print("\n" + figures.table("population killed in a large import"))
    assert figures.violations() == []
    finished = job()
    assert finished["counts"] == {
        "rows": LARGE_IMPORT_ROWS,
        "created": LARGE_IMPORT_ROWS,
        "updated": 0,
        "unchanged": 0,
        "failed": 0,
    }


TIMERS_AT = PINNED_AT + timedelta(days=25)  # every open case overdue; November settled
TIMERS_RUN_S = 20


def test_deadline_timer_and_month_end_publication_at_once_in_two_replicas(stack, capsys):
    """Two more replicas of the events and the assessment service, on a clock 25 days on,
    run the deadline timer and the month-end publication every half second, at the same
    moments, under the load: each deadline notice (a case's stage warned, overdue,
    escalated) is sent once, and November's scorecards of every level and its bulletin
    are published once each. Runs last: the fast replicas act on every case."""
    cluster, receiver = stack["cluster"], stack["receiver"]
    cluster.wait_serving()
    fast_env = {**cluster.env, "FAULTS_PINNED_AT": TIMERS_AT.isoformat(), "FAULTS_FAST_TIMERS": "1"}
    fast = [
        replica(name, f"fast-{i}", fast_env, cluster.run_dir, cluster.log_dir)
        for name in ("events", "assessment")
        for i in (1, 2)
    ]
    with Tap(cluster.settings.amqp_uri) as tap:
        load = Load(cluster.gateway, cluster.headers, cluster.membership_id, seed=99)
        load.start()
        try:
            for process in fast:
                process.start()
            time.sleep(TIMERS_RUN_S)
        finally:
            load.stop(RETRY_WINDOW_S)
            for process in fast:
                process.stop(timeout_s=60)
        wait_for_quiet(cluster, load, receiver)
        seen = tap.drain()
    stored, states = stored_and_states(cluster, load)
    notices, publications = timer_effects(cluster, seen)
    figures = reconcile(
        load.history,
        stored,
        states,
        [*effects(cluster, load, receiver), notices, publications],
        pending_keys(cluster),
    )
    with capsys.disabled():
        print("\n" + figures.table("deadline timer and month-end publication in two replicas"))
    assert figures.violations() == []
    assert len(notices.expected) > 0 and publications.expected


class Tap:
    """A queue of the test's own on the private broker that keeps every deadline notice
    and publication announced while it exists."""

    BINDINGS = (
        ("events.events", "incident.warning.#"),
        ("events.events", "incident.overdue.#"),
        ("events.events", "incident.escalated.#"),
        ("assessment.events", "scorecard.published.#"),
        ("assessment.events", "bulletin.published.#"),
    )

    def __init__(self, amqp_uri: str):
        self.connection = Connection(amqp_uri)
        self.queue = Queue(
            f"faults-tap-{uuid.uuid4().hex[:8]}",
            bindings=[
                binding(Exchange(exchange, type="topic", durable=True), routing_key=key)
                for exchange, key in self.BINDINGS
            ],
            durable=True,
        )

    def __enter__(self) -> Tap:
        self.queue(self.connection.default_channel).declare()
        return self

    def __exit__(self, *exc) -> None:
        with contextlib.suppress(Exception):
            self.queue(self.connection.default_channel).delete()
        self.connection.release()

    def drain(self) -> list[dict]:
        simple = self.connection.SimpleQueue(self.queue)
        try:
            return [body for _, body in drained(simple, timeout=2)]
        finally:
            simple.close()


def timer_effects(cluster: Cluster, seen: list[dict]) -> tuple[Effect, Effect]:
    """Notices by (case, notice, stage due): every stage the database marks as warned or
    overdue must have had its notice, once; publications by (type, level, period)."""
    notices, publications = Counter(), Counter()
    for event in seen:
        kind, data = event["type"].removeprefix("gridwork."), event["data"]
        if kind.startswith("incident."):
            notices[(data["incident_id"], kind, data.get("stage_due"))] += 1
        else:
            publications[(kind, data.get("level"), data.get("period"))] += 1
    marked = set()
    with cluster.database("events") as events:
        for case in events["incidents"].find({}, {"timeline": 0}):
            due = case.get("stage_due")
            due = due.astimezone(UTC).isoformat() if due is not None else None
            for stamp, kind in (("warned_seq", "warning"), ("overdue_seq", "overdue")):
                if case.get(stamp, 0) >= case["stage_seq"] and due is not None:
                    marked.add((case["_id"], f"incident.{kind}", due))
    expected_notices = frozenset(map(str, marked | set(notices)))
    expected_publications = frozenset(map(str, publications)) | {
        str(("bulletin.published", None, "2026-11"))
    }
    return (
        Effect("deadline notices", expected_notices, {str(k): n for k, n in notices.items()}),
        Effect(
            "month-end publications",
            expected_publications,
            {str(k): n for k, n in publications.items()},
        ),
    )
