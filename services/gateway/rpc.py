"""RPC from gunicorn's threads to the nameko services.

A `ClusterRpcProxy` is not thread-safe, so each thread keeps its own, started lazily
(never before gunicorn forks) and thrown away after any transport error or timeout: a
proxy whose reply consumer saw an error may hold a half-closed connection or late replies.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
import threading
import time

from nameko.exceptions import (
    IncorrectSignature,
    MalformedRequest,
    MethodNotFound,
    RemoteError,
    UnknownService,
)
from nameko.standalone.rpc import ClusterRpcProxy

from gridwork_common.context import CallerContext
from gridwork_common.queues import ClassicStandaloneReplyListener
from services.gateway import timing
from services.gateway.metrics import RPC_LATENCY

log = logging.getLogger(__name__)

# kombu asks, for every Connection it builds (nameko builds one for each RPC it sends),
# whether librabbitmq can be imported; outside eventlet that is a failed import, a search
# of every sys.path entry each time (about 70 µs a request). Not installed: say so once.
if importlib.util.find_spec("librabbitmq") is None:
    sys.modules.setdefault("librabbitmq", None)  # type: ignore[arg-type]

# Errors that mean the broker and the service answered: the proxy is still sound.
ANSWERED = (RemoteError, MethodNotFound, IncorrectSignature, MalformedRequest, UnknownService)


class ServiceRpc:
    def __init__(self, nameko_config: dict, timeout: float):
        self.nameko_config = nameko_config
        self.timeout = timeout
        self._local = threading.local()

    def _proxy(self) -> ClusterRpcProxy:
        standalone = getattr(self._local, "standalone", None)
        if standalone is None:
            standalone = ClusterRpcProxy(
                self.nameko_config,
                timeout=self.timeout,
                reply_listener_cls=ClassicStandaloneReplyListener,
            )
            try:
                self._local.cluster = standalone.start()
            except BaseException:
                # The broker refused the connection (kombu OperationalError, socket
                # errors): the caller answers 503; the next call starts afresh.
                self._stop_quietly(standalone)
                raise
            self._local.standalone = standalone
        return standalone

    @staticmethod
    def _stop_quietly(standalone: ClusterRpcProxy) -> None:
        try:
            standalone.stop()
        except Exception:  # the connection is usually what failed
            log.debug("error closing a broken rpc proxy", exc_info=True)

    def discard(self) -> None:
        standalone = getattr(self._local, "standalone", None)
        self._local.standalone = self._local.cluster = None
        if standalone is not None:
            self._stop_quietly(standalone)

    def call(self, service: str, method: str, *args, caller: CallerContext, **kwargs):
        standalone = self._proxy()
        # Context data is read when a request is published; this proxy belongs to the
        # current thread alone, so setting it per call is safe.
        standalone._worker_ctx.data = caller.to_context_data()
        started = time.perf_counter()
        outcome = "ok"
        try:
            with timing.stage("rpc"):
                return getattr(self._local.cluster[service], method)(*args, **kwargs)
        except ANSWERED:
            outcome = "error"
            raise
        except BaseException:
            outcome = "unavailable"
            self.discard()
            raise
        finally:
            RPC_LATENCY.labels(service, method, outcome).observe(time.perf_counter() - started)
