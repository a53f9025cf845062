"""Account activity for the assessment service: a CloudEvent per login and per action
(an authenticated request that changes something), on the `gateway.events` exchange.

Each event goes through the gateway's outbox (gridwork_common.outbox): a login's event is
written in the transaction that issues its tokens and sent after it commits; an action's
event is stored by itself (one insert, no transaction, no wait for the journal) before the
response, and a sender thread of the worker sends it from memory. Both go through kombu's
pooled producers (safe to share between threads). What a broker outage (or a dead worker)
leaves behind, the deliveries process resends (`services.gateway.deliveries`)."""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Mapping

from nameko.standalone.events import event_dispatcher

from gridwork_common import event_format
from gridwork_common.clock import Clock, utc_now
from gridwork_common.config import Settings
from gridwork_common.context import CallerContext
from gridwork_common.events import EventPublisher
from gridwork_common.outbox import Outbox, Staged
from services.gateway.store import gateway_db

ACCOUNT_LOGIN = "account.login"
ACCOUNT_ACTION = "account.action"
TOPICS = (ACCOUNT_LOGIN, ACCOUNT_ACTION)
SERVICE_NAME = "gateway"
# A request sends its own events within milliseconds of its commit; older ones were left.
RESEND_AFTER_S = 5
SEND_BATCH = 100

log = logging.getLogger("gridwork.gateway")


class AccountActivity:
    def __init__(self, settings: Settings, clock: Clock = utc_now):
        # Structured-mode CloudEvents, like the services' events (no context headers:
        # nameko's standalone dispatcher sends none).
        dispatch = event_dispatcher(settings.nameko_config(), serializer=event_format.SERIALIZER)
        self.settings = settings
        self.clock = clock
        self._lock = threading.Lock()
        self._queue: queue.Queue | None = None
        self._sender_pid = 0
        self.publisher = EventPublisher(
            lambda key, payload: dispatch(SERVICE_NAME, key, payload),
            settings.event_source(SERVICE_NAME),
            clock,
        )

    def outbox(self) -> Outbox:
        return Outbox(gateway_db(self.settings), self.publisher, self.clock)

    def announce_login(self, staged: Staged, user: Mapping) -> None:
        """In the transaction that issues a user's tokens (Identity.login's `on_login`)."""
        caller = CallerContext(
            user_id=user["_id"],
            roles=tuple(user["roles"]),
            scope=user.get("scope"),
            department=user.get("department"),
        )
        staged.announce(ACCOUNT_LOGIN, caller.scope or "none", _data(caller, {}))

    def action(self, caller: CallerContext, method: str, route: str, status: int) -> None:
        """Stored in the outbox before the response goes; sent by this worker's sender
        thread, so the request waits for one insert, not for the broker."""
        data = _data(caller, {"method": method, "route": route, "status": status})
        try:
            # A statistic: not worth a wait for the journal on every request.
            entry = self.outbox().store(
                ACCOUNT_ACTION, caller.scope or "none", data, journaled=False
            )
        except Exception:  # activity is a statistic: never fail the user's request for it
            log.warning("account activity not recorded", exc_info=True)
            return
        if entry is not None:
            self._sender().put(entry)

    def _sender(self) -> queue.Queue:
        # Started on first use in each process: gunicorn forks its workers from the
        # master, and a thread does not survive a fork.
        with self._lock:
            if self._queue is None or self._sender_pid != os.getpid():
                self._queue, self._sender_pid = queue.Queue(), os.getpid()
                threading.Thread(
                    target=self._send_forever, args=(self._queue,), daemon=True
                ).start()
            return self._queue

    def _send_forever(self, entries: queue.Queue) -> None:
        """Sends what requests stored, a batch at a time (one delete per batch). What a
        broker outage or a dead worker leaves behind, the deliveries process resends."""
        while True:
            batch = [entries.get()]
            while len(batch) < SEND_BATCH:
                try:
                    batch.append(entries.get_nowait())
                except queue.Empty:
                    break
            try:
                self.outbox().send_entries(batch)
            except Exception:
                log.warning("account activity left for the deliveries process", exc_info=True)

    def resend(self) -> int:
        return self.outbox().resend(RESEND_AFTER_S)


def _data(caller: CallerContext, extra: dict) -> dict:
    return {
        "user_id": caller.user_id,
        "roles": list(caller.roles),
        "scope": caller.scope,
        "department": caller.department,
        **extra,
    }
