"""Service-to-service RPC with a bounded wait.

nameko's `RpcProxy` waits for a reply as long as it takes: while the called service is
down (killed, restarting, its broker connection lost) the caller's worker hangs with it,
and the gateway's own call times out with no word of why. `BoundedRpcProxy` waits at most
`Settings.rpc_timeout` (RPC_TIMEOUT) and then raises `Unavailable` naming the service, which
the gateway answers with 503 and Retry-After. The request message expires after the same
time, so a service that comes back does not work through calls nobody waits for.

The services' entrypoint is `rpc` from here, not nameko's: nameko kills the whole service
container when a worker's reply cannot be published (the broker went away while the
worker ran), so one broker restart took every in-flight call of a replica down with it,
and the process exited. Here the lost reply is logged and the request left unacked: the
caller's bounded wait answers 503, and its retry (same Idempotency-Key) replays the
stored result.
"""

from __future__ import annotations

import logging

import eventlet
from amqp.exceptions import ConnectionError as AmqpConnectionError
from kombu.exceptions import OperationalError
from nameko.rpc import MethodProxy, Rpc, RpcConsumer, RpcProxy, ServiceProxy

from gridwork_common.config import Settings
from gridwork_common.errors import Unavailable
from gridwork_common.queues import ClassicReplyListener

log = logging.getLogger("gridwork.rpc")
# The broker is gone (stopped, killed, unreachable): what publishing a reply raises then.
BROKER_GONE = (OperationalError, AmqpConnectionError, ConnectionError, OSError)


class ReplyTolerantRpcConsumer(RpcConsumer):
    def handle_result(self, message, result, exc_info):
        try:
            return super().handle_result(message, result, exc_info)
        except BROKER_GONE:
            log.warning(
                "reply to %s not sent: no broker; the caller's wait runs out and it retries",
                message.delivery_info.get("routing_key"),
                exc_info=True,
            )
            return result, exc_info


class ReplyTolerantRpc(Rpc):
    rpc_consumer = ReplyTolerantRpcConsumer()


# Every entrypoint of a service must use this one: two kinds of RpcConsumer would each
# consume the service's queue and refuse the other's methods.
rpc = ReplyTolerantRpc.decorator


class BoundedRpcProxy(RpcProxy):
    # A classic reply queue even where the vhost makes queues quorum (gridwork_common/queues.py).
    rpc_reply_listener = ClassicReplyListener()

    def setup(self):
        super().setup()
        self.timeout = Settings.from_nameko_config(self.container.config).rpc_timeout

    def get_dependency(self, worker_ctx):
        return _BoundedServiceProxy(
            worker_ctx,
            self.target_service,
            self.rpc_reply_listener,
            timeout=self.timeout,
            expiration=self.timeout,  # seconds; kombu sends the AMQP expiration in ms
            **self.options,
        )


class _BoundedServiceProxy(ServiceProxy):
    def __init__(self, worker_ctx, service_name, reply_listener, timeout: float, **options):
        super().__init__(worker_ctx, service_name, reply_listener, **options)
        self.timeout = timeout

    def __getattr__(self, name):
        return _BoundedMethodProxy(
            self.worker_ctx,
            self.service_name,
            name,
            self.reply_listener,
            self.timeout,
            **self.options,
        )


class _BoundedMethodProxy(MethodProxy):
    def __init__(self, worker_ctx, service_name, method_name, reply_listener, timeout, **options):
        super().__init__(worker_ctx, service_name, method_name, reply_listener, **options)
        self.timeout = timeout

    def __call__(self, *args, **kwargs):
        reply = self._call(*args, **kwargs)
        timer = eventlet.Timeout(self.timeout)
        try:
            return reply.result()
        except eventlet.Timeout as exc:
            if exc is not timer:
                raise
            self._forget(reply)
            raise Unavailable(
                f"{self.service_name}: no answer to {self.method_name} within {self.timeout:g} s"
            ) from None
        finally:
            timer.cancel()

    def _forget(self, reply) -> None:
        # A late reply would otherwise find its waiter; drop it so it is discarded.
        events = self.reply_listener._reply_events
        for correlation_id, event in list(events.items()):
            if event is reply.reply_event:
                events.pop(correlation_id, None)
