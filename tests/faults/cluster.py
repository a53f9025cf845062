"""The stack a fault scenario attacks: the gateway (gunicorn), the webhook deliveries and
the four services as real processes, two replicas of each service under attack, on a
RabbitMQ node, a mongod and an S3 server of the suite's own, set up as a county with the
users the load generator acts as and a webhook subscription to a local receiver."""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import requests
from nameko.standalone.rpc import ClusterRpcProxy

from devstack.processes import ManagedProcess, free_port, wait_until
from devstack.stack import service_processes
from gridwork_common.config import Settings
from gridwork_common.context import CallerContext
from gridwork_common.mongo import new_client
from services.gateway.auth import Identity
from services.gateway.store import gateway_db
from services.media.storage import media_store
from tests.faults.receiver import WebhookReceiver
from tests.faults.servers import S3_ACCESS_KEY, S3_SECRET_KEY
from tests.population_data import (
    COUNTY,
    GRID_A1,
    TOWNSHIP_A,
    VILLAGE_A,
    county_features,
    resident_id,
)

SERVICES = ("population", "events", "media", "assessment")
REPLICATED = ("population", "events", "media")  # the services the scenarios attack
PASSWORD = "a long fault-suite password"
USERS = {
    # username: (roles, scope)
    "worker": (["grid_worker"], GRID_A1),
    "centre": (["centre_operator"], VILLAGE_A),
    "admin": (["admin"], COUNTY),
}
RPC_TIMEOUT_S = 3
START_TIMEOUT_S = 180.0  # eleven processes on a loaded two-core machine


def replica(name: str, index: int | str, env: dict, run_dir: Path, log_dir: Path) -> ManagedProcess:
    """Replica `index` of a service, run by tests.faults.replica on the pinned clock."""
    return ManagedProcess(
        name=f"{name}-{index}",
        argv=[sys.executable, "-m", "tests.faults.replica", name],
        env={**env, "METRICS_PORT": str(free_port())},
        run_dir=run_dir,
        log_dir=log_dir,
        marker=f"tests.faults.replica {name}",
    )


class Cluster:
    def __init__(self, env: dict, root: Path, pinned_at: datetime):
        self.env = {
            **env,
            "FAULTS_PINNED_AT": pinned_at.isoformat(),
            "FAULTS_CLOCK_ORIGIN": repr(time.time()),  # see tests/faults/replica.py
        }
        self.root = root
        self.settings = Settings.from_env(self.env)
        self.run_dir, self.log_dir = root / "run", root / "log"
        self.replicas: dict[str, list[ManagedProcess]] = {
            name: [
                replica(name, i, self.env, self.run_dir, self.log_dir)
                for i in range(1, 3 if name in REPLICATED else 2)
            ]
            for name in SERVICES
        }
        gateway_port = free_port()
        self.others = {
            process.name: process
            for process in service_processes(
                env=self.env,
                run_dir=self.run_dir,
                log_dir=self.log_dir,
                metrics_ports={},  # the services run as replicas above
                gateway_port=gateway_port,
                gateway_workers=2,
            )
        }
        self.gateway = f"http://127.0.0.1:{gateway_port}"
        self.headers: dict[str, dict] = {}
        self.subscription_id: str | None = None
        self.membership_id: str | None = None

    @property
    def processes(self) -> list[ManagedProcess]:
        return [p for group in self.replicas.values() for p in group] + list(self.others.values())

    def start(self, receiver: WebhookReceiver) -> None:
        media_store(self.settings).ensure_bucket()
        for process in self.processes:
            process.start()
        wait_until(self.serving, START_TIMEOUT_S, "the services", interval_s=1)
        setup = CallerContext(user_id="setup", roles=("admin", "system"), scope=COUNTY)
        with ClusterRpcProxy(
            self.settings.nameko_config(), context_data=setup.to_context_data(), timeout=120
        ) as rpc:
            rpc.population.import_territory(county_features())
            rpc.events.ensure_default_departments([COUNTY, TOWNSHIP_A, VILLAGE_A])
            # One group member in the worker's grid, whom the load's visits are to.
            resident = rpc.population.register_resident(
                {"id_number": resident_id(), "name": "走访对象", "grid_code": GRID_A1}
            )
            self.membership_id = rpc.population.flag_group(
                resident["id"], "drug_user", "high", "worker"
            )["id"]
        identity = Identity(gateway_db(self.settings), self.settings)
        for username, (roles, scope) in USERS.items():
            identity.create_user(username, PASSWORD, roles, scope, None)
        wait_until(self.gateway_answers, 60, "the gateway", interval_s=0.5)
        self.headers = {name: self.login(name) for name in USERS}
        subscribed = requests.post(
            f"{self.gateway}/api/v1/subscriptions",
            json={"url": receiver.url, "event_types": ["incident.reported"]},
            headers={**self.headers["admin"], "Idempotency-Key": uuid.uuid4().hex},
            timeout=30,
        )
        assert subscribed.status_code == 201, subscribed.text
        self.subscription_id = subscribed.json()["id"]

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()

    def serving(self) -> bool:
        """Every service answers an RPC (some replica of it)."""
        try:
            with ClusterRpcProxy(self.settings.nameko_config(), timeout=5) as rpc:
                return all(rpc[name].health()["status"] == "up" for name in SERVICES)
        except Exception:  # not yet: no queue, no consumer, no broker
            return False

    def gateway_answers(self) -> bool:
        try:
            return requests.get(f"{self.gateway}/healthz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def login(self, username: str) -> dict:
        answer = requests.post(
            f"{self.gateway}/api/v1/auth/token",
            json={"grant_type": "password", "username": username, "password": PASSWORD},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        return {"Authorization": f"Bearer {answer.json()['access_token']}"}

    @contextmanager
    def database(self, service: str) -> Iterator:
        client = new_client(self.settings, app_name="gridwork-fault-checker")
        try:
            yield client[self.settings.database_name(service)]
        finally:
            client.close()

    def wait_serving(self, timeout_s: float = 120) -> None:
        wait_until(self.serving, timeout_s, "the services after the fault", interval_s=1)


def cluster_env(amqp_uri: str, mongo_uri: str, s3_endpoint: str) -> dict:
    return {
        "AMQP_URI": amqp_uri,
        "MONGO_URI": mongo_uri,
        "MONGO_DB_PREFIX": f"faults_{uuid.uuid4().hex[:8]}",
        "MONGO_TIMEOUT_MS": "2000",
        "S3_ENDPOINT": s3_endpoint,
        "S3_ACCESS_KEY": S3_ACCESS_KEY,
        "S3_SECRET_KEY": S3_SECRET_KEY,
        "S3_BUCKET": f"faults-{uuid.uuid4().hex[:8]}",
        "COUNTY_CODE": COUNTY,
        "METRICS_PORT": "0",
        "RPC_TIMEOUT": str(RPC_TIMEOUT_S),
        "GATEWAY_THREADS": "8",
        "GRIDWORK_DEV_MODE": "true",
        "WEBHOOK_ALLOW_PRIVATE_URLS": "true",
        # The suite proves fault tolerance, not rate limits: its steady load stays under.
        "UPLOAD_LIMIT_PER_MINUTE": "1000",
    }
