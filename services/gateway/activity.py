"""Account activity for the assessment service: a CloudEvent per login and per action
(an authenticated request that changes something), on the `gateway.events` exchange. An
operation declared with an `activity_event` (a report: `incident.reported`, whose actor is
the reporter) sends none: the assessment counts the service's event instead.

A login's event goes through the gateway's outbox (gridwork_common.outbox), written in the
transaction that issues its tokens and sent after it commits. An action's event is made
when the request ends and handed to this worker's sender thread through a bounded buffer:
the request waits for no write and no broker. The sender publishes what the buffer holds,
a batch at a time, through kombu's pooled producers (publisher confirms, as every event).
What it cannot publish (the broker away), or what finds the buffer full, is stored in the
outbox, where the deliveries process (`services.gateway.deliveries`) resends it. A worker
that exits cleanly (gunicorn's restart or stop) sends what is buffered first (`drain`, at
exit). A worker killed outright loses the actions of its last moments still in the
buffer: the sender keeps up with the requests, so that is the few answered while it
published its last batch, at most `BUFFER_SIZE`. They are statistics (working days with
an action), and the same person's other actions of the day count it too."""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import queue
import threading
from collections.abc import Mapping

from nameko.standalone.events import event_dispatcher
from pymongo.errors import BulkWriteError

from gridwork_common import event_format
from gridwork_common.clock import Clock, utc_now
from gridwork_common.config import Settings
from gridwork_common.context import CallerContext
from gridwork_common.events import EventPublisher
from gridwork_common.outbox import OUTBOX, Outbox, Staged
from services.gateway.store import gateway_db

ACCOUNT_LOGIN = "account.login"
ACCOUNT_ACTION = "account.action"
TOPICS = (ACCOUNT_LOGIN, ACCOUNT_ACTION)
SERVICE_NAME = "gateway"
# The sender keeps what it could not send in the outbox; older ones are resent.
RESEND_AFTER_S = 5
SEND_BATCH = 100
BUFFER_SIZE = 10_000  # a few seconds of a busy gateway's actions
DRAIN_TIMEOUT_S = 10  # gunicorn's graceful_timeout
_STOP = object()
DUPLICATE_KEY = 11000

log = logging.getLogger("gridwork.gateway")


class AccountActivity:
    def __init__(self, settings: Settings, clock: Clock = utc_now, buffer_size: int = BUFFER_SIZE):
        # Structured-mode CloudEvents, like the services' events (no context headers:
        # nameko's standalone dispatcher sends none).
        dispatch = event_dispatcher(settings.nameko_config(), serializer=event_format.SERIALIZER)
        self.settings = settings
        self.clock = clock
        self.buffer_size = buffer_size
        self._lock = threading.Lock()
        self._buffer: queue.Queue | None = None
        self._sender_thread: threading.Thread | None = None
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
        """Made now (its time is the action's), sent by this worker's sender thread."""
        data = _data(caller, {"method": method, "route": route, "status": status})
        try:
            entry = self.outbox().entry(ACCOUNT_ACTION, caller.scope or "none", data)
            self._sender().put_nowait(entry)
        except queue.Full:  # the sender is behind (a slow broker): the outbox keeps it
            self._keep([entry])
        except Exception:  # activity is a statistic: never fail the user's request for it
            log.warning("account activity not recorded", exc_info=True)

    def _sender(self) -> queue.Queue:
        # Started on first use in each process: gunicorn forks its workers from the
        # master, and a thread does not survive a fork.
        with self._lock:
            if self._buffer is None or self._sender_pid != os.getpid():
                self._buffer = queue.Queue(self.buffer_size)
                self._sender_pid = os.getpid()
                self._sender_thread = threading.Thread(
                    target=self._send_forever,
                    args=(self._buffer,),
                    name="activity-sender",
                    daemon=True,
                )
                self._sender_thread.start()
                # A clean exit (gunicorn stopping or recycling the worker) sends the rest.
                atexit.register(self.drain)
            return self._buffer

    def _send_forever(self, buffer: queue.Queue) -> None:
        while True:
            batch = [buffer.get()]
            while len(batch) < SEND_BATCH and batch[-1] is not _STOP:
                try:
                    batch.append(buffer.get_nowait())
                except queue.Empty:
                    break
            stopping = batch[-1] is _STOP
            self._send([entry for entry in batch if entry is not _STOP])
            if stopping:
                return

    def _send(self, entries: list[dict]) -> None:
        sent = 0
        try:
            for entry in entries:
                self.publisher.send(entry["routing_key"], entry["envelope"])
                sent += 1
        except Exception:
            log.warning("account activity left for the deliveries process", exc_info=True)
            self._keep(entries[sent:])

    def _keep(self, entries: list[dict]) -> None:
        """Into the outbox, for the deliveries process to resend."""
        try:
            # Unordered: one already there (stored by an earlier attempt) does not stop
            # the others.
            gateway_db(self.settings)[OUTBOX].insert_many(entries, ordered=False)
        except BulkWriteError as exc:
            if any(error.get("code") != DUPLICATE_KEY for error in exc.details["writeErrors"]):
                log.error("account activity lost: not stored", exc_info=True)
        except Exception:
            log.error(
                "account activity lost: %d events neither sent nor stored",
                len(entries),
                exc_info=True,
            )

    def drain(self, timeout_s: float = DRAIN_TIMEOUT_S) -> None:
        """Send what this process's buffer holds and stop its sender (at a clean exit);
        what is still buffered after `timeout_s` (a broker that hangs) goes to the outbox."""
        with self._lock:
            buffer, thread = self._buffer, self._sender_thread
            if buffer is None or thread is None or self._sender_pid != os.getpid():
                return
            self._buffer = self._sender_thread = None
        with contextlib.suppress(queue.Full):  # a sender that hangs: see below
            buffer.put(_STOP, timeout=timeout_s)
        thread.join(timeout_s)
        left = []
        while True:
            try:
                left.append(buffer.get_nowait())
            except queue.Empty:
                break
        left = [entry for entry in left if entry is not _STOP]
        if left:
            self._keep(left)

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
