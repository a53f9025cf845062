"""`make up` / `make down`: the whole county stack on this machine.

    python -m devstack.stack up     # mongod, S3, bucket, the services, gateway; waits for /readyz
    python -m devstack.stack down   # stops exactly what `up` started (pid files under var/run)
    python -m devstack.stack status

RabbitMQ is a system service: the Makefile installs and starts it; this only checks it.
Data lives under var/ and survives down + up.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import urllib.error
import urllib.request
from urllib.parse import urlparse

from devstack.demo import seed as seed_demo
from devstack.infra import init_replica_set, mongod_process, s3_process
from devstack.processes import REPO_ROOT, ManagedProcess, port_open, wait_until
from gridwork_common.config import DEV_MODE_VARIABLE, Settings
from services.media.storage import media_store

VAR = REPO_ROOT / "var"
RUN_DIR = VAR / "run"
LOG_DIR = VAR / "log"
PYTHON = sys.executable

SERVICE_METRICS_PORTS = {
    "population": 9101,
    "events": 9102,
    "media": 9103,
    "media-describer": 9106,
    "assessment": 9104,
}
# The processes that are not `python -m services.<name>`: the media service's two roles,
# each a process of its own (services/media/service.py), so the photo decoding of the steps
# after a confirm never shares a CPU with the replicas answering slots and confirms.
SERVICE_MODULE_ARGS = {
    "media": ["services.media", "api"],
    "media-describer": ["services.media", "describer"],
}
WEBHOOKS_METRICS_PORT = 9105  # the webhook deliveries' probes and metrics
GATEWAY_PORT = int(os.environ.get("GATEWAY_PORT", "8080"))
# What every process of this machine's stack gets unless the caller's environment says
# otherwise: webhooks to receivers on this machine (a department's developer testing one).
LOCAL_STACK_ENV = {"WEBHOOK_ALLOW_PRIVATE_URLS": "true"}


def _port(netloc: str, default: int) -> int:
    return urlparse(f"//{netloc}").port or default


def mongo_port(settings: Settings) -> int:
    return urlparse(settings.mongo_uri).port or 27017


def infrastructure(settings: Settings) -> list[ManagedProcess]:
    return [
        mongod_process(VAR / "mongo", mongo_port(settings), RUN_DIR, LOG_DIR),
        s3_process(
            VAR / "s3",
            _port(settings.s3_endpoint, 9000),
            settings.s3_access_key,
            settings.s3_secret_key,
            RUN_DIR,
            LOG_DIR,
        ),
    ]


def service_processes(
    env: dict | None = None,
    run_dir=RUN_DIR,
    log_dir=LOG_DIR,
    metrics_ports: dict[str, int] = SERVICE_METRICS_PORTS,
    gateway_port: int = GATEWAY_PORT,
    gateway_workers: int = 2,
    webhooks_metrics_port: int = 0,
) -> list[ManagedProcess]:
    """The nameko services (the media service as its two roles), the webhook deliveries
    and the gateway, as processes (also used by the e2e tests). Local webhooks may target
    this machine's addresses: the gateway checks a subscription's URL and the delivery
    process checks it again before each send, so both get the setting (`env` may override
    it). The deliveries serve their probes and metrics on `webhooks_metrics_port` (0:
    none)."""
    local = {name: os.environ.get(name, value) for name, value in LOCAL_STACK_ENV.items()}
    env = {**local, **(env or {})}
    processes = []
    for name, port in metrics_ports.items():
        module_args = SERVICE_MODULE_ARGS.get(name, [f"services.{name}"])
        processes.append(
            ManagedProcess(
                name=name,
                argv=[PYTHON, "-m", *module_args],
                env={**env, "METRICS_PORT": str(port)},
                run_dir=run_dir,
                log_dir=log_dir,
                marker=" ".join(module_args),
            )
        )
    processes.append(
        ManagedProcess(
            name="webhooks",
            argv=[PYTHON, "-m", "services.gateway.deliveries"],
            env={**env, "METRICS_PORT": str(webhooks_metrics_port)},
            run_dir=run_dir,
            log_dir=log_dir,
            marker="services.gateway.deliveries",
        )
    )
    processes.append(
        ManagedProcess(
            name="gateway",
            argv=[PYTHON, "-m", "gunicorn", "-c", "services/gateway/gunicorn_conf.py"],
            env={
                **env,
                "GATEWAY_PORT": str(gateway_port),
                "GATEWAY_WORKERS": str(gateway_workers),
                "PROMETHEUS_MULTIPROC_DIR": str(run_dir / "gateway-metrics"),
            },
            run_dir=run_dir,
            log_dir=log_dir,
            marker="services/gateway/gunicorn_conf.py",
        )
    )
    return processes


def wait_ready(gateway_port: int, timeout_s: float = 90.0) -> None:
    url = f"http://127.0.0.1:{gateway_port}/readyz"

    def ready() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    wait_until(ready, timeout_s, f"gateway {url}", interval_s=0.5)


def up() -> None:
    settings = Settings.from_env()
    amqp = urlparse(settings.amqp_uri)
    if not port_open(amqp.hostname or "127.0.0.1", amqp.port or 5672):
        sys.exit(f"RabbitMQ is not reachable at {amqp.hostname}:{amqp.port or 5672}")

    mongod, s3 = infrastructure(settings)
    for process, port in ((mongod, mongo_port(settings)), (s3, _port(settings.s3_endpoint, 9000))):
        if process.running_pid() is None and port_open("127.0.0.1", port):
            print(f"{process.name}: something already listens on {port}; using it")
        else:
            process.start()
    init_replica_set(mongo_port(settings))
    store = media_store(settings)
    wait_until(lambda: _bucket_ready(store), 30, f"bucket {settings.s3_bucket}", 0.3)

    for process in service_processes(webhooks_metrics_port=WEBHOOKS_METRICS_PORT):
        process.start()
    try:
        wait_ready(GATEWAY_PORT)
    except TimeoutError as exc:
        sys.exit(f"{exc}; see the logs in {LOG_DIR}")
    seed_demo(settings.nameko_config())  # once: skipped when the county has residents
    print_endpoints(settings)


def _bucket_ready(store) -> bool:
    try:
        store.ensure_bucket()
    except Exception:
        return False
    return True


def print_endpoints(settings: Settings) -> None:
    gateway = f"http://127.0.0.1:{GATEWAY_PORT}"
    print(f"Gridwork is up for county {settings.county_code}.")
    print(f"  gateway        {gateway}   ({gateway}/readyz, {gateway}/metrics)")
    print(f"  command centre {gateway}/   (the web UI: sign in as a demo user)")
    print(f"  API docs       {gateway}/api/v1/docs   (demo users: see README, password")
    print("                 gridwork-demo-2026)")
    for name, port in {**SERVICE_METRICS_PORTS, "webhooks": WEBHOOKS_METRICS_PORT}.items():
        print(f"  {name:<14} metrics http://127.0.0.1:{port}/metrics  (/healthz, /readyz)")
    print(f"  mongodb        {settings.mongo_uri}")
    print(f"  object storage http://{settings.s3_endpoint}  bucket {settings.s3_bucket}")
    print("  rabbitmq       amqp://127.0.0.1:5672  management http://127.0.0.1:15672")
    print(f"  logs           {LOG_DIR}")


def down() -> None:
    settings = Settings.from_env()
    for process in reversed(infrastructure(settings) + service_processes()):
        if process.stop():
            print(f"stopped {process.name}")


def status() -> None:
    settings = Settings.from_env()
    for process in infrastructure(settings) + service_processes():
        pid = process.running_pid()
        print(
            f"{process.name:<12} {'running, pid ' + str(pid) if pid else 'not started by make up'}"
        )


def main() -> None:
    # This machine's stack is for development: its processes (they inherit this
    # environment) may use the public development keys unless real ones are set.
    os.environ.setdefault(DEV_MODE_VARIABLE, "true")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("up", "down", "status"))
    command = parser.parse_args().command
    started = time.monotonic()
    {"up": up, "down": down, "status": status}[command]()
    if command == "up":
        print(f"(ready in {time.monotonic() - started:.0f}s)")


if __name__ == "__main__":
    main()
