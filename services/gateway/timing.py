"""Where a request's time goes in the gateway, told in a `Server-Timing` response header
(W3C Server Timing): authentication, validation, the Idempotency-Key record, the RPCs,
the account-activity event and the whole request inside the app. Stage names and
durations only; bench/gateway.py adds them up per route."""

from __future__ import annotations

import contextlib
import time

from flask import g, has_request_context

HEADER = "Server-Timing"


def start() -> None:
    g.started = time.perf_counter()


@contextlib.contextmanager
def stage(name: str):
    """Time the block as `name` (summed if it runs more than once in a request)."""
    started = time.perf_counter()
    try:
        yield
    finally:
        if has_request_context():
            timings = g.setdefault("timings", {})
            timings[name] = timings.get(name, 0.0) + time.perf_counter() - started


def header() -> str:
    """`stage;dur=<ms>, ...` with `app` (from the request's start to now) last."""
    stages = dict(g.get("timings", {}))
    if "started" in g:
        stages["app"] = time.perf_counter() - g.started
    return ", ".join(f"{name};dur={seconds * 1000:.2f}" for name, seconds in stages.items())
