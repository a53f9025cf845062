"""Queue types on a RabbitMQ vhost whose default queue type is quorum.

Production vhosts are created with `default_queue_type: quorum` (deploy/rabbitmq/,
docs/operations.md, "Quorum queues"): every queue nameko declares without a type, the
services' `rpc-<service>` and `evt-…` queues and the gateway's `gateway-webhooks`, is then
a replicated quorum queue, and nothing in the services names a queue type. nameko's RPC
reply queues are per process and short-lived (a random name, `x-expires`), where a
quorum queue's Raft log on every node buys nothing and costs a lot, so the reply
listeners here declare theirs as classic queues explicitly.
"""

from __future__ import annotations

import uuid

from kombu import Queue
from nameko.events import BROADCAST, EventHandler
from nameko.rpc import (
    RPC_REPLY_QUEUE_TEMPLATE,
    RPC_REPLY_QUEUE_TTL,
    ReplyListener,
    get_rpc_exchange,
)
from nameko.standalone.rpc import SingleThreadedReplyListener

QUEUE_TYPE = "x-queue-type"
CLASSIC = "classic"


class _ClassicReplyQueue:
    """nameko's ReplyListener.setup, with the queue type named. The standalone
    listener declares its queue as soon as it registers, so the type cannot be added
    afterwards."""

    def setup(self):
        reply_queue_uuid = uuid.uuid4()
        self.routing_key = str(reply_queue_uuid)
        self.queue = Queue(
            RPC_REPLY_QUEUE_TEMPLATE.format(self.container.service_name, reply_queue_uuid),
            exchange=get_rpc_exchange(self.container.config),
            routing_key=self.routing_key,
            queue_arguments={"x-expires": RPC_REPLY_QUEUE_TTL, QUEUE_TYPE: CLASSIC},
        )
        self.queue_consumer.register_provider(self)


class ClassicReplyListener(_ClassicReplyQueue, ReplyListener):
    """A service's reply listener (for its RPC proxies)."""


class ClassicStandaloneReplyListener(_ClassicReplyQueue, SingleThreadedReplyListener):
    """A standalone proxy's reply listener: `ClusterRpcProxy(...,
    reply_listener_cls=ClassicStandaloneReplyListener)`."""


class ClassicBroadcastHandler(EventHandler):
    """A broadcast event handler: every replica gets each event on a queue of its own
    (named per instance, exclusive, deleted with it). A quorum queue can be neither
    exclusive nor deleted with its consumer, so this one is classic.

    `@broadcast_handler("population", "grid.updated")`."""

    def setup(self):
        super().setup()  # the queue is only declared when the consumer starts
        self.queue.queue_arguments = {**(self.queue.queue_arguments or {}), QUEUE_TYPE: CLASSIC}


def broadcast_handler(source_service: str, event_type: str):
    return ClassicBroadcastHandler.decorator(
        source_service, event_type, handler_type=BROADCAST, reliable_delivery=False
    )
