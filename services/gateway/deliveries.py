"""The webhook delivery process: `python -m services.gateway.deliveries`.

Runs apart from the request path: one thread consumes the services' topic exchanges
into the durable `gateway-webhooks` queue and records deliveries (the messages are acked
only after that; those arriving within `INTAKE_WAIT_S` of the first are recorded
together, with one read of the subscriptions, not one per event), another sends due
deliveries with retries, a third resends the account activity a broker outage left in the
gateway's outbox. Its METRICS_PORT answers the health probes (`/healthz`: the three
threads alive; `/readyz`: and the gateway's MongoDB answering).
"""

from __future__ import annotations

import json
import logging
import random
import signal
import threading
import time
from collections.abc import Callable

import urllib3
from kombu import Connection, Exchange, Queue, binding
from kombu.message import Message
from kombu.mixins import ConsumerMixin

from gridwork_common import event_format, logs
from gridwork_common.clock import Clock, utc_now
from gridwork_common.config import Settings, settings_or_exit, warn_if_clock_pinned
from gridwork_common.health import DOWN, UP, probe
from gridwork_common.logs import configure_logging
from gridwork_common.mongo import ping
from gridwork_common.probes import probe_server
from services.gateway.activity import AccountActivity
from services.gateway.store import gateway_db
from services.gateway.webhooks import EXCHANGES, Webhooks

QUEUE = "gateway-webhooks"
SEND_INTERVAL_S = 0.5
ACTIVITY_RESEND_INTERVAL_S = 2
INTAKE_BATCH = 200  # events recorded together (and unacked messages the broker sends ahead)
INTAKE_WAIT_S = 0.1  # how long the first event of a batch waits for others
log = logging.getLogger("gridwork.webhooks")


def webhook_queues() -> list[Queue]:
    # One queue bound to every exchange (separate Queue objects of one name would keep
    # only the last binding).
    bindings = [binding(Exchange(name, type="topic", durable=True), "#") for name in EXCHANGES]
    return [Queue(QUEUE, bindings=bindings, durable=True)]


class EventIntake(ConsumerMixin):
    def __init__(self, connection: Connection, webhooks: Webhooks):
        self.connection = connection
        self.webhooks = webhooks
        self.pending: list[tuple[dict, Message]] = []
        self.first_pending_at = 0.0

    def get_consumers(self, consumer_cls, channel):
        return [
            consumer_cls(
                queues=webhook_queues(),
                callbacks=[self.on_message],
                accept=event_format.ACCEPT,
                prefetch_count=INTAKE_BATCH,
            )
        ]

    def on_consume_ready(self, connection, channel, consumers, **kwargs):
        self.pending = []  # a new channel: the broker sends the unacked ones again

    def on_message(self, body, message):
        envelope = body if isinstance(body, dict) else json.loads(body)
        if not self.pending:
            self.first_pending_at = time.monotonic()
        self.pending.append((envelope, message))
        if len(self.pending) >= INTAKE_BATCH:
            self.record_pending()

    def on_iteration(self):
        """Before each wait for the broker (at most INTAKE_WAIT_S, see `run_intake`)."""
        if self.pending and time.monotonic() - self.first_pending_at >= INTAKE_WAIT_S:
            self.record_pending()

    def record_pending(self) -> None:
        batch, self.pending = self.pending, []
        try:
            self.webhooks.accept_events([envelope for envelope, _ in batch])
        except Exception:
            log.exception("events not recorded; they stay queued")
            for _, message in batch:
                message.requeue()
            return
        for envelope, message in batch:
            # The request that caused the event, carried in nameko's context headers, so
            # the gateway's request id leads here too.
            logs.bind(
                request_id=(message.headers or {}).get(event_format.REQUEST_ID_HEADER),
                event_id=envelope.get("id"),
                event_type=envelope.get("type"),
            )
            log.info("event recorded for webhooks")
            logs.clear()
        batch[-1][1].ack(multiple=True)  # every message of the batch, in one frame


class Deliveries:
    def __init__(
        self,
        settings: Settings,
        clock: Clock = utc_now,
        jitter: Callable[[], float] = random.random,
        system_clock: Clock | None = None,
    ):
        """`clock` dates account activity; `system_clock` (by default the same) the
        deliveries, whose signed timestamps receivers check by their own time (as in the
        gateway's `create_app`)."""
        self.settings = settings
        self.clock = clock
        self.webhooks = Webhooks(gateway_db(settings), system_clock or clock, jitter)
        self.stopping = threading.Event()
        self.intake: EventIntake | None = None
        self.threads: list[threading.Thread] = []

    def run_intake(self) -> None:
        with Connection(self.settings.amqp_uri) as connection:
            self.intake = EventIntake(connection, self.webhooks)
            self.intake.run(safety_interval=INTAKE_WAIT_S)

    def run_sender(self) -> None:
        http = urllib3.PoolManager(maxsize=8)
        while not self.stopping.is_set():
            try:
                self.webhooks.send_due(http)
            except Exception:
                log.exception("sending deliveries failed; retrying")
            self.stopping.wait(SEND_INTERVAL_S)

    def run_activity_resender(self) -> None:
        """Account activity a broker outage left in the gateway's outbox."""
        activity = AccountActivity(self.settings, self.clock)
        while not self.stopping.is_set():
            try:
                activity.resend()
            except Exception:
                log.warning("account activity not resent; retrying", exc_info=True)
            self.stopping.wait(ACTIVITY_RESEND_INTERVAL_S)

    def start(self) -> list[threading.Thread]:
        threads = [
            threading.Thread(target=self.run_intake, name="webhook-intake", daemon=True),
            threading.Thread(target=self.run_sender, name="webhook-sender", daemon=True),
            threading.Thread(
                target=self.run_activity_resender, name="activity-resender", daemon=True
            ),
        ]
        for thread in threads:
            thread.start()
        self.threads = threads
        return threads

    def alive(self) -> tuple[bool, dict]:
        stopped = [t.name for t in self.threads if not t.is_alive()]
        if not self.threads or stopped or self.stopping.is_set():
            return False, {"status": DOWN, "stopped": stopped, "stopping": self.stopping.is_set()}
        return True, {"status": UP}

    def ready(self) -> tuple[bool, dict]:
        alive, report = self.alive()
        mongo = probe(lambda: ping(self.webhooks.db))
        ready = alive and mongo["status"] == UP
        return ready, {"status": UP if ready else DOWN, "threads": report, "mongo": mongo}

    def stop(self) -> None:
        self.stopping.set()
        if self.intake is not None:
            self.intake.should_stop = True


def main() -> None:
    settings = settings_or_exit()
    configure_logging("webhooks", settings.log_level)
    warn_if_clock_pinned(settings)
    deliveries = Deliveries(settings, clock=settings.clock(), system_clock=utc_now)
    signal.signal(signal.SIGTERM, lambda *_: deliveries.stop())
    deliveries.start()
    probes = probe_server(settings.metrics_port)
    if probes is not None:
        probes.register("webhooks", live=deliveries.alive, ready=deliveries.ready)
    log.info("webhook deliveries running")
    while not deliveries.stopping.is_set():
        time.sleep(0.5)


if __name__ == "__main__":
    main()
