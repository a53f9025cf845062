"""Account actions leave the request path: a worker's sender thread publishes them from a
bounded buffer, on the real broker and mongod. A clean exit sends what is buffered; what
cannot be published waits in the gateway's outbox for the deliveries process."""

import json
import os
import subprocess
import sys
import textwrap

import pytest
from kombu import Connection, Exchange, Queue

from devstack.processes import free_port
from gridwork_common.config import Settings
from gridwork_common.context import CallerContext
from gridwork_common.events import parse_event
from gridwork_common.outbox import OUTBOX
from services.gateway.activity import ACCOUNT_ACTION, AccountActivity
from services.gateway.store import gateway_db
from tests.conftest import settings_env

pytestmark = pytest.mark.integration

WORKER = CallerContext(user_id="worker-a1", roles=("grid_worker",), scope="530402001001001")


@pytest.fixture
def tap(settings):
    """A queue bound to account actions, as the assessment service binds one."""
    exchange = Exchange("gateway.events", type="topic", durable=True)
    with Connection(settings.amqp_uri) as connection:
        queue = Queue("actions-tap", exchange, routing_key=f"{ACCOUNT_ACTION}.#", durable=False)
        queue(connection.default_channel).declare()

        def received() -> list:
            simple = connection.SimpleQueue(queue)
            events = []
            try:
                while True:
                    try:
                        message = simple.get(timeout=2)
                    except simple.Empty:
                        return events
                    message.ack()
                    events.append(parse_event(json.loads(message.body)))
            finally:
                simple.close()

        yield received


def test_buffered_actions_are_all_sent_and_nothing_is_stored(settings, tap):
    activity = AccountActivity(settings)
    for number in range(50):
        activity.action(WORKER, "POST", f"/api/v1/incidents/{number}", 201)
    activity.drain()
    events = tap()
    assert sorted(event.data["route"] for event in events) == sorted(
        f"/api/v1/incidents/{number}" for number in range(50)
    )
    assert len({event.id for event in events}) == 50
    assert {event.data["user_id"] for event in events} == {"worker-a1"}
    assert gateway_db(settings)[OUTBOX].count_documents({}) == 0


def test_a_clean_exit_sends_what_the_buffer_holds(infra, settings, tap):
    """A process that answers and exits at once (gunicorn stopping a worker) still sends
    its actions: the buffer is drained at exit."""
    env = settings_env(infra, settings.amqp_uri, MONGO_DB_PREFIX=settings.mongo_db_prefix)
    script = textwrap.dedent(
        """
        from gridwork_common.config import Settings
        from gridwork_common.context import CallerContext
        from services.gateway.activity import AccountActivity

        activity = AccountActivity(Settings.from_env())
        caller = CallerContext(user_id="worker-a1", roles=("grid_worker",), scope="530402")
        for number in range(30):
            activity.action(caller, "POST", f"/exit/{number}", 201)
        """
    )
    subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, **env, "PYTHONPATH": os.getcwd()},
        check=True,
        timeout=60,
    )
    assert len({event.data["route"] for event in tap()}) == 30


def test_actions_the_broker_does_not_take_wait_in_the_outbox_for_a_resend(infra, settings, tap):
    unreachable = Settings.from_env(
        settings_env(
            infra,
            f"amqp://guest:guest@127.0.0.1:{free_port()}/",
            MONGO_DB_PREFIX=settings.mongo_db_prefix,
        )
    )
    activity = AccountActivity(unreachable)
    for number in range(5):
        activity.action(WORKER, "POST", f"/api/v1/visits/{number}", 201)
    activity.drain(timeout_s=60)
    assert gateway_db(settings)[OUTBOX].count_documents({}) == 5
    # The deliveries process resends them once the broker answers (older than 5 s).
    AccountActivity(settings).outbox().resend(older_than_s=0)
    assert len({event.data["route"] for event in tap()}) == 5
    assert gateway_db(settings)[OUTBOX].count_documents({}) == 0
