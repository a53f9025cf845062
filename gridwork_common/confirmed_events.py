"""Events published with asynchronous confirms (gridwork_common.confirms), as a nameko
dependency: the same exchange (`<service>.events`), routing keys, CloudEvents structured
mode, request-id header and persistent delivery as `CloudEventDispatcher`, over one
confirm-mode connection per service process instead of nameko's pooled producers."""

from __future__ import annotations

from collections.abc import Callable

from nameko.constants import AMQP_SSL_CONFIG_KEY, AMQP_URI_CONFIG_KEY, LOGIN_METHOD_CONFIG_KEY
from nameko.extensions import DependencyProvider
from nameko.standalone.events import get_event_exchange

from gridwork_common import event_format
from gridwork_common.clock import Clock, clock_from_config
from gridwork_common.config import Settings
from gridwork_common.confirms import ConfirmingPublisher
from gridwork_common.context import REQUEST_ID_KEY
from gridwork_common.events import EventPublisher
from gridwork_common.sent_entries import SentEntries


class ConfirmedEventPublisher(EventPublisher):
    """What a worker holds. `send` (and so `publish` and the outbox's resend) waits for
    the broker's confirm, as nameko's dispatcher does; `send_confirmed` returns once the
    event is written and calls back when the broker confirms it; `sent_entries` deletes
    the outbox entries the broker confirmed, a batch at a time (the outbox's sends after
    a commit use it)."""

    def __init__(
        self,
        publisher: ConfirmingPublisher,
        source: str,
        clock: Clock,
        headers: dict,
        sent_entries: SentEntries | None = None,
    ):
        super().__init__(self._send_and_wait, source, clock)
        self._publisher = publisher
        self._headers = headers
        self.sent_entries = sent_entries

    def _send_and_wait(self, full_routing_key: str, envelope: dict) -> None:
        self._publisher.publish_and_wait(full_routing_key, envelope, self._headers)

    def send_confirmed(
        self, full_routing_key: str, envelope: dict, on_confirmed: Callable[[], None]
    ) -> bool:
        return self._publisher.publish(
            full_routing_key, envelope, self._headers, on_confirmed=on_confirmed
        )


class ConfirmingEventDispatcher(DependencyProvider):
    """Gives a worker a `ConfirmedEventPublisher` on the service's events exchange."""

    def setup(self):
        config = self.container.config
        self.source = Settings.from_nameko_config(config).event_source(self.container.service_name)
        self.clock = clock_from_config(config)
        self.publisher = ConfirmingPublisher(
            config[AMQP_URI_CONFIG_KEY],
            get_event_exchange(self.container.service_name, config),
            serializer=event_format.SERIALIZER,
            ssl=config.get(AMQP_SSL_CONFIG_KEY),
            login_method=config.get(LOGIN_METHOD_CONFIG_KEY),
            spawn=self._spawn,
        )
        self.sent_entries = SentEntries()

    def start(self):
        # Declares the exchange before any event, as nameko's dispatcher does at setup;
        # a broker that is down now is tried again by the first publish.
        self.publisher.connect()
        self.sent_entries.start(self.container.spawn_managed_thread)

    def stop(self):
        self.publisher.stop()  # waits a little for the confirms of what was written
        self.sent_entries.stop()  # then deletes the confirmed entries handed over

    def kill(self):
        self.publisher.kill()

    def get_dependency(self, worker_ctx) -> ConfirmedEventPublisher:
        # Departments read these exchanges: no caller, roles or scope; the request id only.
        request_id = worker_ctx.data.get(REQUEST_ID_KEY)
        headers = {event_format.REQUEST_ID_HEADER: request_id} if request_id else {}
        return ConfirmedEventPublisher(
            self.publisher, self.source, self.clock, headers, self.sent_entries
        )

    def _spawn(self, function, *args):
        return self.container.spawn_managed_thread(lambda: function(*args))
