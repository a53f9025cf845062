"""Departments read only what is theirs, on the real broker (this test's own vhost): an
administrator creates a department's RabbitMQ user through the API; with it, a plain
kombu consumer gets its own cases as CloudEvents (structured mode, read with the
CloudEvents SDK) and nothing of the internal headers, and the broker refuses its bindings
to other departments' keys, to `incident.#` and to other exchanges; revoked, it is
disconnected and cannot connect again."""

import re
from urllib.parse import urlparse, urlunparse

import amqp.exceptions
import pytest
from cloudevents.core.bindings.rabbitmq import RabbitMQMessage, from_rabbitmq_event
from kombu import Connection, Exchange, Queue, binding

from devstack.processes import free_port, wait_until
from services.gateway.broker_admin import BrokerAdmin
from tests.integration.gateway.conftest import PASSWORD
from tests.integration.gateway.test_webhooks import _run_case_to_the_police
from tests.population_data import COUNTY, TOWNSHIP_A, TOWNSHIP_B, VILLAGE_A

pytestmark = pytest.mark.integration

POLICE = f"{TOWNSHIP_A}-police-station"
OTHER_POLICE = f"{TOWNSHIP_B}-police-station"
COMMITTEE = f"{VILLAGE_A}-committee"
# The exchange exists (the events service declared it); a department may not declare it.
EVENTS = Exchange("events.events", type="topic", passive=True)
REFUSED = (amqp.exceptions.AccessRefused, amqp.exceptions.NotAllowed)


def _uri(settings, account) -> str:
    parts = urlparse(settings.amqp_uri)
    netloc = f"{account['username']}:{account['password']}@{parts.hostname}:{parts.port or 5672}"
    return urlunparse(parts._replace(netloc=netloc))


def _create(as_user, department, key, territory=None):
    body = {"department": department, **({"territory": territory} if territory else {})}
    answer = as_user("admin").post("/api/v1/amqp-accounts", key=key, json=body)
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()


def _bind(connection, queue_name, key, exchange=EVENTS):
    """Declare the department's queue and bind it (a fresh channel: a refusal closes it)."""
    with connection.channel() as channel:
        Queue(queue_name, bindings=[binding(exchange, key)], durable=True)(channel).declare()


def test_a_department_consumes_its_own_cases_as_cloudevents_and_nothing_else(
    as_user, county, settings
):
    account = _create(as_user, POLICE, "a1")
    assert account["username"].startswith(f"dept.{POLICE}.")
    assert account["vhost"] == settings.amqp_vhost
    assert account["queue_prefix"] == f"dept.{POLICE}."
    assert account["created_by"] == "admin"
    assert len(account["password"]) >= 24

    with Connection(_uri(settings, account)) as connection:
        queue = Queue(
            f"dept.{POLICE}.cases",
            bindings=[binding(EVENTS, f"incident.*.{POLICE}.#")],
            durable=True,
        )
        with connection.channel() as channel:
            queue(channel).declare()

        for refused_key in ("incident.#", f"incident.*.{OTHER_POLICE}.#", "#", "incident.*.*.#"):
            with pytest.raises(REFUSED):
                _bind(connection, f"dept.{POLICE}.wide", refused_key)
        with pytest.raises(REFUSED):  # its bindings are checked, not its queue's name only
            _bind(connection, f"dept.{POLICE}.cases", f"incident.dispatched.{OTHER_POLICE}.#")
        with pytest.raises(REFUSED):  # a queue not named for it
            _bind(connection, "all-cases", f"incident.*.{POLICE}.#")
        with pytest.raises(REFUSED):  # another exchange: residents, account activity
            _bind(
                connection,
                f"dept.{POLICE}.people",
                "resident.*",
                Exchange("population.events", type="topic", passive=True),
            )

        case_id = _run_case_to_the_police(as_user)
        with connection.channel() as channel:
            bound = queue(channel)
            received = []
            wait_until(
                lambda: received.append(bound.get(no_ack=True)) or received[-1] is not None,
                15,
                "the dispatched case in the department's queue",
            )
            message = received[-1]

    assert message.content_type == "application/cloudevents+json"
    # Of nameko's context headers, the request id alone (docs/integration.md).
    internal = [name for name in message.headers if name.startswith("nameko")]
    assert internal == ["nameko.request_id"], message.headers
    assert not {"user_id", "roles", "scope"} & {name.rsplit(".", 1)[-1] for name in message.headers}
    event = from_rabbitmq_event(
        RabbitMQMessage(
            headers=message.headers, content_type=message.content_type, body=message.body
        )
    )
    assert event.get_type() == "gridwork.incident.dispatched"
    assert event.get_source() == f"/counties/{COUNTY}/events"
    assert event.get_extension("department") == POLICE
    assert event.get_data()["incident_id"] == case_id
    assert message.delivery_info["routing_key"].startswith(f"incident.dispatched.{POLICE}.")


def test_an_account_limited_to_a_territory_binds_only_within_it(as_user, county, settings):
    account = _create(as_user, COMMITTEE, "c1", territory=VILLAGE_A)
    assert account["binding_prefix"] == (
        f"incident.*.{COMMITTEE}.{COUNTY}.{TOWNSHIP_A}.{VILLAGE_A}"
    )
    with Connection(_uri(settings, account)) as connection:
        _bind(connection, f"dept.{COMMITTEE}.village", f"{account['binding_prefix']}.#")
        _bind(
            connection,
            f"dept.{COMMITTEE}.closed",
            f"incident.closed.{COMMITTEE}.{COUNTY}.{TOWNSHIP_A}.{VILLAGE_A}.#",
        )
        for refused_key in (
            f"incident.*.{COMMITTEE}.#",  # the whole county
            f"incident.*.{COMMITTEE}.{COUNTY}.{TOWNSHIP_B}.#",  # another township
            f"incident.#.{COMMITTEE}.{COUNTY}.{TOWNSHIP_A}.{VILLAGE_A}.#",
        ):
            with pytest.raises(REFUSED):
                _bind(connection, f"dept.{COMMITTEE}.wide", refused_key)


def test_a_revoked_account_is_disconnected_and_refused(app, as_user, county, settings):
    account = _create(as_user, POLICE, "a1")
    again = as_user("admin").post("/api/v1/amqp-accounts", key="a2", json={"department": POLICE})
    assert again.status_code == 409 and again.get_json()["field"] == "department"
    refused = as_user("township-a").post(
        "/api/v1/amqp-accounts", key="a3", json={"department": POLICE}
    )
    assert refused.status_code == 403
    unknown = as_user("admin").post(
        "/api/v1/amqp-accounts", key="a4", json={"department": "530402-no-such"}
    )
    assert unknown.status_code == 422 and unknown.get_json()["field"] == "department"

    connection = Connection(_uri(settings, account))
    connection.connect()
    broker = BrokerAdmin.from_settings(settings)
    wait_until(
        lambda: broker.connections_of(account["username"]),
        10,
        "the department's connection, as the broker lists it",
    )
    revoked = as_user("admin").delete(f"/api/v1/amqp-accounts/{POLICE}")
    assert revoked.status_code == 204
    closed = (*REFUSED, OSError, amqp.exceptions.ConnectionForced)
    with pytest.raises(closed), connection.channel() as channel:
        Queue(f"dept.{POLICE}.cases")(channel).declare()
    connection.release()
    with pytest.raises(amqp.exceptions.AccessRefused):
        Connection(_uri(settings, account)).connect()
    assert not broker.user_exists(account["username"])

    (listed,) = as_user("admin").get("/api/v1/amqp-accounts").get_json()["items"]
    assert (listed["username"], listed["created_by"], listed["revoked_by"]) == (
        account["username"],
        "admin",
        "admin",
    )
    assert listed["revoked_at"] is not None and "password" not in listed
    assert as_user("admin").delete(f"/api/v1/amqp-accounts/{POLICE}").status_code == 404
    # Revoked, the department may have a new account (under a new name).
    renewed = _create(as_user, POLICE, "a5")
    assert renewed["username"] != account["username"]

    # The command centre's administration lists both, with who made and revoked them.
    page = _admin_page(app, "/admin/amqp-accounts")
    revoked_row = re.search(
        rf'data-username="{re.escape(account["username"])}">(.*?)</tr>', page, re.S
    )
    renewed_row = re.search(
        rf'data-username="{re.escape(renewed["username"])}">(.*?)</tr>', page, re.S
    )
    assert revoked_row and renewed_row, page
    assert revoked_row.group(1).count("admin") == 2 and "有效" not in revoked_row.group(1)
    assert "有效" in renewed_row.group(1)


def _admin_page(app, path: str) -> str:
    browser = app.test_client()
    form = browser.get("/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    signed_in = browser.post(
        "/login", data={"csrf_token": csrf, "username": "admin", "password": PASSWORD}
    )
    assert signed_in.status_code == 302
    answer = browser.get(path)
    assert answer.status_code == 200
    return answer.get_data(as_text=True)


@pytest.mark.parametrize(
    "broken",
    [
        {"rabbitmq_management_url": f"http://127.0.0.1:{free_port()}"},  # nothing listens
        {"rabbitmq_management_password": "not-the-password"},  # refused: the county's setup
    ],
)
def test_a_management_api_that_fails_is_a_503_and_leaves_nothing(
    app, as_user, county, settings, broken
):
    app.config["GRIDWORK_SETTINGS"] = settings.with_changes(**broken)
    down = as_user("admin").post("/api/v1/amqp-accounts", key="d1", json={"department": POLICE})
    assert down.status_code == 503 and down.headers["Retry-After"]
    assert down.headers["Content-Type"].startswith("application/problem+json")
    app.config["GRIDWORK_SETTINGS"] = settings
    assert as_user("admin").get("/api/v1/amqp-accounts").get_json()["items"] == []
    _create(as_user, POLICE, "d2")  # the department was not left with a half-made account
