"""Publishing with asynchronous publisher confirms: one AMQP connection and channel in
confirm mode per process, writes serialised by a lock, acks read by one green thread.

nameko's publisher waits for the broker's confirm of every message before it returns (a
round trip per event, plus a pooled producer taken and given back). Here `publish`
returns once the message is written, and its callback runs when the broker acks it (a
`basic.ack`, possibly covering many messages with `multiple`). A nack, a lost connection
or a stop runs no callback: the caller keeps what it published (in an outbox) until the
callback says the broker has it, and its resend timer sends what stays (at least once;
consumers de-duplicate by CloudEvent id).

Messages of one channel reach each queue in the order they were written, so events
published in order (a case's steps, one after the other) are routed in that order.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import eventlet
from eventlet.event import Event
from eventlet.semaphore import Semaphore
from kombu import Connection, Exchange, Producer

log = logging.getLogger(__name__)

PERSISTENT = 2
CONNECT_TIMEOUT_S = 2
RECONNECT_AFTER_S = 1  # a broker that refused us is not asked again before this
# An unconfirmed message older than this means a link that no longer answers (a half-open
# TCP connection): it is dropped and the next publish opens a new one.
CONFIRM_TIMEOUT_S = 30
STOP_WAIT_S = 2  # how long a stop waits for the confirms of what was written


class NotConfirmed(Exception):
    """The broker did not take a message: nacked, or its connection was lost first."""


@dataclass(frozen=True)
class _Pending:
    written_at: float  # monotonic
    on_confirmed: Callable[[], None] | None
    on_refused: Callable[[], None] | None = None


@dataclass
class _Link:
    """One connection and its confirm-mode channel; replaced whole when it fails."""

    connection: Connection
    producer: Producer
    raw: object = None  # py-amqp's connection under kombu's: read without reconnecting
    # delivery tag -> _Pending, in tag order
    pending: OrderedDict = field(default_factory=OrderedDict)
    next_tag: int = 1
    broken: bool = False
    drainer: object = None


class ConfirmingPublisher:
    """`publish(routing_key, body, headers, on_confirmed)` on one exchange."""

    def __init__(
        self,
        amqp_uri: str,
        exchange: Exchange,
        *,
        serializer: str,
        ssl=None,
        login_method: str | None = None,
        spawn: Callable = eventlet.spawn,
    ):
        self.amqp_uri = amqp_uri
        self.exchange = exchange
        self.serializer = serializer
        self.ssl = ssl
        self.login_method = login_method
        self.spawn = spawn
        self._lock = Semaphore(1)  # one writer at a time: a message is several frames
        self._link: _Link | None = None
        self._retry_at = 0.0
        self._stopped = False

    # ------------------------------------------------------------------ publishing
    def publish(
        self,
        routing_key: str,
        body: dict,
        headers: dict | None = None,
        on_confirmed: Callable[[], None] | None = None,
        on_refused: Callable[[], None] | None = None,
    ) -> bool:
        """Write the message; True once written (then `on_confirmed` runs when the broker
        acks it, or `on_refused` if it nacks it or the connection is lost first), False
        when no connection could be had or the write failed (no callback: the message is
        left to the caller's resend). Callbacks run in the thread reading the acks:
        they must be quick and not publish."""
        with self._lock:
            link = self._usable_link()
            if link is None:
                return False
            tag = link.next_tag
            link.pending[tag] = _Pending(time.monotonic(), on_confirmed, on_refused)
            try:
                link.producer.publish(
                    body,
                    routing_key=routing_key,
                    headers=headers or {},
                    delivery_mode=PERSISTENT,
                    mandatory=False,
                    priority=0,
                    serializer=self.serializer,
                    retry=False,
                )
            except Exception:
                link.pending.pop(tag, None)
                log.warning("event not written; left for resend", exc_info=True)
                self._drop(link)
                return False
            link.next_tag = tag + 1
            return True

    def publish_and_wait(
        self, routing_key: str, body: dict, headers: dict | None = None, timeout_s=None
    ) -> None:
        """Publish and wait for the broker's ack; raises NotConfirmed otherwise."""
        settled = Event()
        written = self.publish(
            routing_key,
            body,
            headers,
            on_confirmed=lambda: settled.send(True),
            on_refused=lambda: settled.send(False),
        )
        if not written:
            raise NotConfirmed("the broker cannot be reached")
        confirmed = False
        with eventlet.Timeout(timeout_s or CONFIRM_TIMEOUT_S, False):
            confirmed = settled.wait()
        if not confirmed:
            raise NotConfirmed("nacked, or the connection was lost before the ack")

    def connect(self) -> bool:
        """Open the link now (declaring the exchange) rather than at the first publish."""
        with self._lock:
            return self._usable_link() is not None

    def waiting(self) -> int:
        """Messages written and not yet confirmed (on the current link)."""
        link = self._link
        return len(link.pending) if link is not None else 0

    # ------------------------------------------------------------------ lifecycle
    def stop(self, wait_s: float = STOP_WAIT_S) -> None:
        """Wait a little for the confirms of what was written, then close (what is
        still unconfirmed gets `on_refused`, never `on_confirmed`)."""
        self._stopped = True
        deadline = time.monotonic() + wait_s
        while self.waiting() and time.monotonic() < deadline:
            eventlet.sleep(0.01)
        self._close(handshake=True)

    def kill(self) -> None:
        self._stopped = True
        self._close(handshake=False)

    def _close(self, handshake: bool) -> None:
        link, self._link = self._link, None
        if link is not None:
            self._drop(link, handshake=handshake)

    # ------------------------------------------------------------------ the link
    def _usable_link(self) -> _Link | None:
        link = self._link
        if link is not None and not link.broken and not self._stale(link):
            return link
        if link is not None:
            self._drop(link)
            self._link = None
        if self._stopped or time.monotonic() < self._retry_at:
            return None
        try:
            self._link = self._connect()
        except Exception:
            self._retry_at = time.monotonic() + RECONNECT_AFTER_S
            log.warning("cannot reach the broker to publish events", exc_info=True)
            return None
        return self._link

    def _stale(self, link: _Link) -> bool:
        if not link.pending:
            return False
        oldest = next(iter(link.pending.values()))
        return time.monotonic() - oldest.written_at > CONFIRM_TIMEOUT_S

    def _connect(self) -> _Link:
        # No heartbeats: the drainer blocks in a read with no timeout (a timeout on the
        # socket would also apply to the writers); a silent link is found by its
        # confirms running late (`_stale`).
        connection = Connection(
            self.amqp_uri,
            ssl=self.ssl,
            login_method=self.login_method,
            heartbeat=0,
            connect_timeout=CONNECT_TIMEOUT_S,
        )
        try:
            connection.connect()
            channel = connection.channel()
            if not self.exchange.no_declare:
                self.exchange(channel).declare()
            channel.confirm_select()
            producer = Producer(channel, exchange=self.exchange, auto_declare=False)
        except Exception:
            connection.release()
            raise
        link = _Link(connection=connection, producer=producer, raw=connection.connection)
        channel.events["basic_ack"].add(lambda tag, multiple: self._on_ack(link, tag, multiple))
        channel.events["basic_nack"].add(lambda tag, multiple: self._on_nack(link, tag, multiple))
        link.drainer = self.spawn(self._drain, link)
        return link

    def _drain(self, link: _Link) -> None:
        """Read the broker's acks and nacks until the connection fails or is closed."""
        try:
            while not link.broken:
                link.raw.drain_events()
        except Exception as exc:
            if not link.broken:
                log.warning("event publishing connection lost: %s", exc)
                self._drop(link)

    def _settled(self, link: _Link, tag: int, multiple: bool) -> list[_Pending]:
        settled = []
        if multiple:
            while link.pending and next(iter(link.pending)) <= tag:
                settled.append(link.pending.popitem(last=False)[1])
        elif tag in link.pending:
            settled.append(link.pending.pop(tag))
        return settled

    def _on_ack(self, link: _Link, tag: int, multiple: bool) -> None:
        _run([pending.on_confirmed for pending in self._settled(link, tag, multiple)])

    def _on_nack(self, link: _Link, tag: int, multiple: bool) -> None:
        refused = self._settled(link, tag, multiple)
        log.warning("the broker refused %d event(s); left for resend", len(refused))
        _run([pending.on_refused for pending in refused])

    def _drop(self, link: _Link, handshake: bool = False) -> None:
        """Forget the link and its unconfirmed messages (no `on_confirmed` for them)."""
        link.broken = True
        refused = list(link.pending.values())
        link.pending.clear()
        if self._link is link:
            self._link = None
        drainer = link.drainer
        if drainer is not None and drainer is not eventlet.getcurrent():
            drainer.kill()  # first: closing reads the socket too
        try:
            if handshake:  # a clean close, bounded: the broker may be gone
                with eventlet.Timeout(1):
                    link.connection.release()
            else:
                link.connection.collect()
        except (Exception, eventlet.Timeout):  # already gone
            log.debug("closing an event publishing link", exc_info=True)
        _run([pending.on_refused for pending in refused])


def _run(callbacks: list) -> None:
    for callback in callbacks:
        if callback is None:
            continue
        try:
            callback()
        except Exception:  # a callback's failure leaves its entry for the resend
            log.exception("confirm callback failed")
