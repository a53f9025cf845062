"""Rate limits counted in the gateway's MongoDB before the work is done.

Each request takes a slot with one atomic `find_one_and_update` (an upserted counter per
limit and key, in a fixed window that starts with the first request), so requests sent
together cannot all pass a count read earlier: the (n+1)th is refused whatever the timing,
in every gunicorn worker. A success may give its slot back or clear the count.

Over a limit: 429 problem+json with `Retry-After` (seconds left in the window). When
MongoDB does not answer: 503 with `Retry-After`, never a request let through uncounted.

Not the `limits` package: its MongoDB storage opens a client of its own per process, reads
the machine's time (and the server's `$$NOW`) where the gateway takes an injected clock,
and cannot give a single slot back (a successful login must not count against its office's
address).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app, request
from pymongo import ReturnDocument
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError, PyMongoError

from gridwork_common.clock import Clock, utc_now
from services.gateway import store
from services.gateway.problems import ApiProblem

RATE_COUNTERS = store.RATE_COUNTERS
UNAVAILABLE_RETRY_AFTER_S = 5


@dataclass(frozen=True)
class Rate:
    """At most `limit` requests per `window_s` seconds for one key of this `name`."""

    name: str
    limit: int
    window_s: int


def too_many_requests(detail: str, retry_after_s: int) -> ApiProblem:
    problem = ApiProblem(429, "Too Many Requests", detail)
    problem.headers["Retry-After"] = str(retry_after_s)
    return problem


def _limits_unavailable() -> ApiProblem:
    problem = ApiProblem(
        503, "Service Unavailable", "the rate limit store did not answer; try again later"
    )
    problem.headers["Retry-After"] = str(UNAVAILABLE_RETRY_AFTER_S)
    return problem


class RateLimits:
    def __init__(self, db: Database, clock: Clock = utc_now):
        self.counters = db[RATE_COUNTERS]
        self.clock = clock

    def take(self, rate: Rate, key: str, detail: str) -> None:
        """Count this request; refuse it (429) when it is over the limit."""
        now = self.clock()
        live = {"$gt": ["$expires_at", now]}
        window_end = now + timedelta(seconds=rate.window_s)
        count_one = [
            {
                "$set": {
                    "count": {"$cond": [live, {"$add": ["$count", 1]}, 1]},
                    "expires_at": {"$cond": [live, "$expires_at", window_end]},
                }
            }
        ]
        try:
            try:
                counter = self._count(rate, key, count_one)
            except DuplicateKeyError:  # two first requests upserted at once: count again
                counter = self._count(rate, key, count_one)
        except PyMongoError:
            raise _limits_unavailable() from None
        if counter["count"] > rate.limit:
            raise too_many_requests(detail, _seconds_until(counter["expires_at"], now))

    def _count(self, rate: Rate, key: str, update: list) -> dict:
        return self.counters.find_one_and_update(
            {"_id": _counter_id(rate, key)},
            update,
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )

    def give_back(self, rate: Rate, key: str) -> None:
        """Uncount one request of the current window (it turned out not to count)."""
        try:
            self.counters.update_one(
                {"_id": _counter_id(rate, key), "count": {"$gt": 0}},
                {"$inc": {"count": -1}},
            )
        except PyMongoError:
            raise _limits_unavailable() from None

    def clear(self, rate: Rate, key: str) -> None:
        try:
            self.counters.delete_one({"_id": _counter_id(rate, key)})
        except PyMongoError:
            raise _limits_unavailable() from None


def _counter_id(rate: Rate, key: str) -> str:
    return f"{rate.name}:{key}"


def _seconds_until(moment: datetime, now: datetime) -> int:
    return max(1, math.ceil((moment - now).total_seconds()))


# ---------------------------------------------------------------- in a request
def request_limits() -> RateLimits:
    settings = current_app.config["GRIDWORK_SETTINGS"]
    # The machine's clock, like the counters' TTL index that removes them.
    clock = current_app.extensions.get("system_clock", utc_now)
    return RateLimits(store.gateway_db(settings), clock)


def client_address() -> str:
    """The client's address: the peer's, or the one the trusted proxies forwarded
    (`TRUSTED_PROXY_HOPS`, applied by ProxyFix in services/gateway/app.py)."""
    return request.remote_addr or ""


def limit_open311() -> None:
    settings = current_app.config["GRIDWORK_SETTINGS"]
    rate = Rate("open311", settings.open311_limit_per_minute, 60)
    request_limits().take(
        rate, client_address(), "too many Open311 requests from this address; slow down"
    )


def limit_uploads(user_id: str) -> None:
    settings = current_app.config["GRIDWORK_SETTINGS"]
    rate = Rate("uploads", settings.upload_limit_per_minute, 60)
    request_limits().take(rate, user_id, "too many uploads for this user; slow down")
