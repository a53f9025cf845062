"""The time every service reads, and China Standard Time, defined once.

Code never calls `datetime.now()` itself: it is handed a `Clock` (a callable returning an
aware UTC datetime). Production hands `utc_now`; tests hand a `PinnedClock`, so no result
depends on the day or the time of day a test runs. A nameko service receives its clock
through the `ServiceClock` dependency, which reads an optional clock from the nameko
config (`CLOCK_CONFIG_KEY`); the gateway's app factory takes one as an argument.

Tests that start the stack as real processes pin every process's clock with the
test-only setting `GRIDWORK_TEST_CLOCK_START` (`TEST_CLOCK_VARIABLE`, read by
gridwork_common.config): each process then reads one `PinnedClock` at that instant, which
it read at the machine's time `GRIDWORK_TEST_CLOCK_SINCE` (`TEST_CLOCK_SINCE_VARIABLE`;
by default when the process read the setting), so processes started one after another
agree on the time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta, timezone

from nameko.extensions import DependencyProvider

# Periods, working days and deadlines are dates in China Standard Time (no daylight saving).
CHINA_TIME = timezone(timedelta(hours=8))

Clock = Callable[[], datetime]

# The nameko config key a test sets to a clock of its own; absent in production.
CLOCK_CONFIG_KEY = "GRIDWORK_CLOCK"
# The environment variable that pins a process's clock: tests only, never production.
TEST_CLOCK_VARIABLE = "GRIDWORK_TEST_CLOCK_START"
# The machine's time at which that pinned clock read its start (tests only, optional).
TEST_CLOCK_SINCE_VARIABLE = "GRIDWORK_TEST_CLOCK_SINCE"


def utc_now() -> datetime:
    """The machine's time, in UTC: the production clock."""
    return datetime.now(UTC)


def as_stored(instant: datetime) -> datetime:
    """The instant as MongoDB keeps it (milliseconds): a first answer rendered from a
    document then reads the same as a retry's answer read back from the database."""
    return instant.replace(microsecond=instant.microsecond // 1000 * 1000)


def china_today(clock: Clock = utc_now) -> date:
    """The date in China now (already tomorrow from 16:00 UTC)."""
    return clock().astimezone(CHINA_TIME).date()


class PinnedClock:
    """A clock for tests: starts at a pinned instant and runs on with the real elapsed
    time (a monotonic counter), so things done one after another still get increasing
    times. `set` moves it to another instant, `advance` forwards it."""

    def __init__(self, start: datetime, monotonic: Callable[[], float] = time.monotonic):
        self._lock = threading.Lock()
        self._monotonic = monotonic  # seconds elapsed, as time.monotonic counts them
        self.set(start)

    def set(self, instant: datetime) -> None:
        if instant.tzinfo is None:
            raise ValueError("a pinned clock needs an aware datetime")
        with self._lock:
            self._start = instant.astimezone(UTC)
            self._origin = self._monotonic()

    def advance(self, delta: timedelta) -> None:
        self.set(self() + delta)

    def __call__(self) -> datetime:
        with self._lock:
            return self._start + timedelta(seconds=self._monotonic() - self._origin)

    def __repr__(self) -> str:
        return f"PinnedClock({self().isoformat()})"


_process_clocks: dict[tuple[datetime, datetime | None], PinnedClock] = {}
_process_clocks_lock = threading.Lock()


def process_pinned_clock(start: datetime, since: datetime | None = None) -> PinnedClock:
    """This process's one clock pinned at `start` (TEST_CLOCK_VARIABLE) when the machine's
    time was `since` (TEST_CLOCK_SINCE_VARIABLE; None: when the first reader asked), running
    on with real time: every reader in the process gets the same clock, and processes
    given the same `since` agree."""
    with _process_clocks_lock:
        clock = _process_clocks.get((start, since))
        if clock is None:
            clock = _process_clocks[(start, since)] = pinned_clock_since(start, since)
        return clock


def pinned_clock_since(
    start: datetime,
    since: datetime | None,
    machine_clock: Clock = utc_now,
    monotonic: Callable[[], float] = time.monotonic,
) -> PinnedClock:
    """A clock that read `start` when `machine_clock` read `since` (None: now), running on
    by `monotonic`."""
    elapsed = machine_clock() - since if since is not None else timedelta(0)
    return PinnedClock(start + elapsed, monotonic)


def clock_from_config(config: Mapping) -> Clock:
    """The clock a nameko config carries, else the machine's."""
    clock = config.get(CLOCK_CONFIG_KEY)
    if clock is None:
        return utc_now
    if not callable(clock):
        raise TypeError(f"{CLOCK_CONFIG_KEY} must be a clock (a callable), got {clock!r}")
    return clock


class ServiceClock(DependencyProvider):
    """Gives each worker the service's clock: `utc_now`, or the one the config carries."""

    def setup(self):
        self.clock = clock_from_config(self.container.config)

    def get_dependency(self, worker_ctx) -> Clock:
        return self.clock
