"""What a department's own RabbitMQ user may do, as RabbitMQ permissions (pure rules).

A department's system reads the incident events of its own cases from the `events.events`
topic exchange through queues named for it (`dept.<department code>.<anything>`):

- configure and write: only those queues (declare, delete, bind them);
- read: those queues (consume) and the `events.events` exchange (bind to it);
- topic permissions on `events.events`: RabbitMQ checks the binding key of every
  `queue.bind` to a topic exchange against the user's `read` pattern, so the only keys
  accepted are `incident.<action or *>.<its department>` followed, when the account is
  limited to a territory, by that territory's path words (county, township, ... as in the
  routing key), then anything narrower. `incident.#`, another department's code or a
  `#` before the department word are refused. `write` matches nothing: it publishes
  nothing.

services/events/topics.py defines the routing key these patterns follow.
"""

from __future__ import annotations

import re
import secrets

EXCHANGE = "events.events"
USERNAME_PREFIX = "dept."
# Territory codes: county 6 digits, township 9, village 12, grid 15.
TERRITORY = re.compile(r"\d{6}(\d{3}){0,3}")
PASSWORD_BYTES = 24


def username(department: str) -> str:
    """A fresh name per account: RabbitMQ users are broker-wide (every vhost's), and a
    revoked account's name is never reused."""
    return f"{USERNAME_PREFIX}{department}.{secrets.token_hex(4)}"


def new_password() -> str:
    return secrets.token_urlsafe(PASSWORD_BYTES)


def queue_prefix(department: str) -> str:
    return f"dept.{department}."


def territory_words(territory: str) -> list[str]:
    """The routing-key words of a territory: `530402001` -> `530402`, `530402001`."""
    if not TERRITORY.fullmatch(territory):
        raise ValueError(f"{territory!r} is not a territory code")
    return [territory[:length] for length in range(6, len(territory) + 1, 3)]


def binding_prefix(department: str, territory: str | None) -> str:
    """What every binding key of the account starts with (`*` standing for the action)."""
    return ".".join(
        ["incident", "*", department, *(territory_words(territory) if territory else [])]
    )


def resource_permissions(department: str) -> dict[str, str]:
    queues = re.escape(queue_prefix(department)) + ".+"
    return {
        "configure": f"^{queues}$",
        "write": f"^{queues}$",
        "read": f"^({queues}|{re.escape(EXCHANGE)})$",
    }


def topic_permissions(department: str, territory: str | None) -> dict[str, str]:
    words = [re.escape(department), *(territory_words(territory) if territory else [])]
    fixed = "".join(rf"\.{word}" for word in words)
    return {
        "exchange": EXCHANGE,
        "write": "^$",
        "read": rf"^incident\.(\*|[a-z]+){fixed}(\..+)?$",
    }
