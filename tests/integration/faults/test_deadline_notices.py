"""A deadline notice is never lost: the timer's mark on the case and the outbox entry
announcing it are written in one transaction, so a failure between the two leaves
neither, and the next run of the timer sends the notice (exactly once).

The failure is real: a `failCommand` fail point on this test's own mongod makes the
events service's next insert into its outbox fail."""

from datetime import timedelta

import pytest
from pymongo.errors import OperationFailure

from gridwork_common.config import Settings
from tests.conftest import settings_env
from tests.integration.events.support import (
    Desk,
    action_of,
    events_database,
    move_deadlines,
    run_timer,
)

pytestmark = pytest.mark.integration

NOTHING = {"warning": 0, "overdue": 0, "escalated": 0}


@pytest.fixture
def settings(infra, rabbit_config, private_mongod) -> Settings:
    return Settings.from_env(
        settings_env(infra, rabbit_config["AMQP_URI"], MONGO_URI=private_mongod.uri)
    )


def notices(received) -> list[tuple[str, str]]:
    return [
        (action_of(key), body["data"]["incident_id"])
        for key, body in received
        if action_of(key) in ("warning", "overdue")
    ]


def test_a_warning_whose_outbox_entry_failed_is_sent_by_the_next_run_exactly_once(
    county, as_user, services, settings, private_mongod, department_tap
):
    case = Desk(as_user).report()
    tap = department_tap("incident.#")
    with events_database(settings) as db:
        move_deadlines(db, case, warn_ago=timedelta(minutes=1), due_ago=None)

    # The events service's next insert into its outbox (announcing the warning) fails.
    outbox = f"{settings.database_name('events')}.outbox"
    with (
        private_mongod.failing("insert", outbox, app_name="gridwork-events"),
        pytest.raises(OperationFailure),
    ):
        run_timer(services, "check_deadlines")
    assert notices(tap()) == []

    assert run_timer(services, "check_deadlines")["warning"] == 1
    assert run_timer(services, "check_deadlines") == NOTHING
    assert notices(tap()) == [("warning", case["id"])]
