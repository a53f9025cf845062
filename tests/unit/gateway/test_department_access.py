"""The permission patterns of a department's own RabbitMQ user, read as RabbitMQ reads
them (a regular expression that must match the queue or exchange name, or the binding
key). The broker's own verdicts are tested in
tests/integration/gateway/test_department_amqp.py."""

import re

import pytest

from services.events import topics
from services.gateway import department_access

POLICE = "530402001-police-station"
GRID = "530402001001001"


def _allowed(pattern: str, text: str) -> bool:
    return re.search(pattern, text) is not None


def test_queues_are_the_departments_own_and_the_only_exchange_is_events():
    permissions = department_access.resource_permissions(POLICE)
    for kind in ("configure", "write", "read"):
        assert _allowed(permissions[kind], f"dept.{POLICE}.cases")
        assert not _allowed(permissions[kind], f"dept.{POLICE}")  # a name after the prefix
        assert not _allowed(permissions[kind], "dept.530402001-police-station-x.cases")
        assert not _allowed(permissions[kind], "gateway-webhooks")
    assert _allowed(permissions["read"], "events.events")
    for exchange in ("population.events", "gateway.events", "amq.topic", "events.eventsX"):
        assert not _allowed(permissions["read"], exchange)
    assert not _allowed(permissions["write"], "events.events")  # publishes nothing


@pytest.mark.parametrize(
    ("key", "allowed"),
    [
        (f"incident.*.{POLICE}.#", True),
        (f"incident.dispatched.{POLICE}.#", True),
        (f"incident.overdue.{POLICE}.530402.530402001.#", True),
        (f"incident.*.{POLICE}", True),
        ("incident.#", False),
        ("#", False),
        ("incident.*.*.#", False),
        (f"incident.#.{POLICE}.#", False),
        ("incident.*.530402002-police-station.#", False),
        (f"incident.*.{POLICE}x.#", False),
        (f"resident.*.{POLICE}.#", False),
    ],
)
def test_bindings_match_only_the_departments_keys(key, allowed):
    read = department_access.topic_permissions(POLICE, None)["read"]
    assert _allowed(read, key) is allowed


@pytest.mark.parametrize(
    ("key", "allowed"),
    [
        (f"incident.*.{POLICE}.530402.530402001.530402001001.#", True),
        (f"incident.closed.{POLICE}.530402.530402001.530402001001.{GRID}", True),
        (f"incident.*.{POLICE}.530402.530402001.#", False),  # the whole township
        (f"incident.*.{POLICE}.#", False),
        (f"incident.*.{POLICE}.530402.530402001.530402001002.#", False),
    ],
)
def test_an_account_limited_to_a_territory_binds_within_it(key, allowed):
    read = department_access.topic_permissions(POLICE, "530402001001")["read"]
    assert _allowed(read, key) is allowed


def test_the_binding_prefix_follows_the_routing_key_the_events_service_builds():
    key = ".".join(("incident.dispatched", *topics.route(GRID, POLICE)))
    prefix = department_access.binding_prefix(POLICE, "530402001001")
    assert prefix == f"incident.*.{POLICE}.530402.530402001.530402001001"
    assert re.fullmatch(prefix.replace(".", r"\.").replace("*", "[a-z]+") + r"\..+", key)
    read = department_access.topic_permissions(POLICE, "530402001001")["read"]
    assert _allowed(read, key)  # a key the service publishes is one the account may bind


def test_user_names_are_fresh_and_passwords_long():
    names = {department_access.username(POLICE) for _ in range(20)}
    assert len(names) == 20 and all(name.startswith(f"dept.{POLICE}.") for name in names)
    assert len(department_access.new_password()) >= 32
    with pytest.raises(ValueError):
        department_access.territory_words("5304")
