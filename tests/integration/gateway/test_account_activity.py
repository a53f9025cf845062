"""Account actions leave the request path: a worker's sender thread publishes them from a
bounded buffer, on the real broker and mongod. A clean exit sends what is buffered; what
cannot be published waits in the gateway's outbox for the deliveries process."""

import os
import subprocess
import sys
import textwrap

import pytest

from devstack.processes import free_port
from gridwork_common.config import Settings
from gridwork_common.context import CallerContext
from gridwork_common.outbox import OUTBOX
from services.gateway.activity import AccountActivity
from services.gateway.store import gateway_db
from tests.conftest import settings_env

pytestmark = pytest.mark.integration

WORKER = CallerContext(user_id="worker-a1", roles=("grid_worker",), scope="530402001001001")


def test_buffered_actions_are_all_sent_and_nothing_is_stored(settings, account_events):
    activity = AccountActivity(settings)
    for number in range(50):
        activity.action(WORKER, "POST", f"/api/v1/incidents/{number}", 201)
    activity.drain()
    events = account_events()
    assert sorted(event.data["route"] for event in events) == sorted(
        f"/api/v1/incidents/{number}" for number in range(50)
    )
    assert len({event.id for event in events}) == 50
    assert {event.data["user_id"] for event in events} == {"worker-a1"}
    assert gateway_db(settings)[OUTBOX].count_documents({}) == 0


def test_a_clean_exit_sends_what_the_buffer_holds(infra, settings, account_events):
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
    assert len({event.data["route"] for event in account_events()}) == 30


def test_actions_the_broker_does_not_take_wait_in_the_outbox_for_a_resend(
    infra, settings, account_events
):
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
    assert len({event.data["route"] for event in account_events()}) == 5
    assert gateway_db(settings)[OUTBOX].count_documents({}) == 0
