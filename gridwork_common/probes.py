"""Health probes beside /metrics, on a process's METRICS_PORT: what Kubernetes' liveness
and readiness probes (and compose's health checks) ask a Gridwork process that is not the
gateway (the gateway answers `/healthz` and `/readyz` itself).

- `/healthz` (liveness): 200 while the process works: a nameko service's container is
  running, the webhook deliveries' threads are alive. It needs no broker, MongoDB or S3,
  so their outage never makes Kubernetes restart healthy processes. The answer itself
  shows the process's event loop is not stuck.
- `/readyz` (readiness): 200 when the process's own health report is up, 503 with the
  report (naming what is down) otherwise; a nameko service runs its `health` RPC method
  in a local worker, so the report is this replica's, not whichever replica a broker
  message would reach.
- anything else: the Prometheus metrics, as before.

One server per process and port; METRICS_PORT=0 serves nothing (tests running several
services in one process).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from wsgiref.simple_server import WSGIRequestHandler, make_server

import eventlet
from eventlet.event import Event
from nameko.extensions import DependencyProvider, Entrypoint
from prometheus_client import make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

from gridwork_common.config import Settings
from gridwork_common.health import DOWN, UP

log = logging.getLogger(__name__)

# A probe's answer: (ok, report). The report is sent as the JSON body.
Check = Callable[[], tuple[bool, dict]]
HEALTH_METHOD = "health"
# Under the probes' own timeout (the manifests use 5 s): a slow answer is a 503, not a
# probe timing out without a body.
READY_TIMEOUT_S = 3.0


class ProbeServer:
    """Serves /healthz, /readyz and /metrics on one port; checks are registered by name
    (a process normally registers one)."""

    def __init__(self, port: int):
        self.port = port
        self._live: dict[str, Check] = {}
        self._ready: dict[str, Check] = {}
        self._metrics = make_wsgi_app()
        self._httpd = None

    def register(self, name: str, live: Check, ready: Check) -> None:
        self._live[name] = live
        self._ready[name] = ready

    def unregister(self, name: str) -> None:
        self._live.pop(name, None)
        self._ready.pop(name, None)

    def start(self) -> None:
        self._httpd = make_server(
            "0.0.0.0", self.port, self, ThreadingWSGIServer, handler_class=_QuietHandler
        )
        self.port = self._httpd.server_port
        threading.Thread(target=self._httpd.serve_forever, name="probes", daemon=True).start()
        log.info("serving probes and metrics", extra={"metrics_port": self.port})

    def __call__(self, wsgi_env, start_response):
        path = wsgi_env.get("PATH_INFO", "/")
        if path == "/healthz":
            return self._answer(self._live, start_response)
        if path == "/readyz":
            return self._answer(self._ready, start_response)
        return self._metrics(wsgi_env, start_response)

    def _answer(self, checks: dict[str, Check], start_response):
        reports, ok = {}, bool(checks)  # nothing registered yet: not alive, not ready
        for name, check in list(checks.items()):
            try:
                passed, report = check()
            except Exception as exc:
                passed, report = False, {"status": DOWN, "error": f"{type(exc).__name__}: {exc}"}
            ok = ok and passed
            reports[name] = report
        body = json.dumps({"status": UP if ok else DOWN, "components": reports}).encode()
        start_response(
            "200 OK" if ok else "503 Service Unavailable",
            [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
        )
        return [body]


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # probes every few seconds: not worth a line
        pass


_servers: dict[int, ProbeServer] = {}
_servers_lock = threading.Lock()


def probe_server(port: int) -> ProbeServer | None:
    """The process's server on `port`, started on first use; None for port 0."""
    if port == 0:
        return None
    with _servers_lock:
        server = _servers.get(port)
        if server is None:
            server = ProbeServer(port)
            server.start()
            _servers[port] = server
        return server


class LocalCheck(Entrypoint):
    """An entrypoint nothing outside the process calls: `@local_check def health` gives a
    service that answers no RPC (a role of a service whose RPC another process answers
    under the same name, services/media/service.py) the method its /readyz runs."""


local_check = LocalCheck.decorator


class ServiceProbes(DependencyProvider):
    """Declared on a nameko service beside `PrometheusMetrics`: its liveness is its
    container running, its readiness its own `health` method run in a local worker."""

    def __init__(self):
        self.running = False

    def setup(self):
        self.server = probe_server(Settings.from_nameko_config(self.container.config).metrics_port)
        if self.server is not None:
            self.server.register(self.container.service_name, self.alive, self.ready)

    def start(self):
        self.running = True

    def stop(self):
        self._leave()

    def kill(self):
        self._leave()

    def _leave(self):
        self.running = False
        if self.server is not None:
            self.server.unregister(self.container.service_name)

    def alive(self) -> tuple[bool, dict]:
        return self.running, {"status": UP if self.running else DOWN}

    def ready(self) -> tuple[bool, dict]:
        if not self.running:
            return False, {"status": DOWN, "error": "the service is not running"}
        entrypoint = next(
            ep for ep in self.container.entrypoints if ep.method_name == HEALTH_METHOD
        )
        answered = Event()

        def handle_result(worker_ctx, result, exc_info):
            answered.send((result, exc_info))
            return result, exc_info

        # Every worker busy is a replica that cannot take more work: not ready either.
        with eventlet.Timeout(READY_TIMEOUT_S, False):
            self.container.spawn_worker(entrypoint, (), {}, handle_result=handle_result)
            result, exc_info = answered.wait()
            if exc_info is not None:
                return False, {"status": DOWN, "error": f"{exc_info[0].__name__}: {exc_info[1]}"}
            return result["status"] == UP, result
        return False, {"status": DOWN, "error": f"no health report within {READY_TIMEOUT_S} s"}
