"""Account activity counts the working days gone by, in China time, whatever the time of
day in UTC: the real assessment and events services with their clock pinned in the last
and first minutes of a month and of a year, on a public holiday and on a makeup working
day (调休). One worker with grid work in each month asked about: the expected account days
of a period are its working days up to today, today included."""

from datetime import datetime

import pytest
from kombu import Connection, Exchange, Producer
from nameko.standalone.rpc import ClusterRpcProxy

from devstack.processes import wait_until
from gridwork_common.clock import CHINA_TIME
from gridwork_common.context import CallerContext
from gridwork_common.events import new_event
from gridwork_common.mongo import new_client
from services.assessment.service import AssessmentService
from services.events.service import EventsService

pytestmark = pytest.mark.integration

GRID = "530402001001001"
ADMIN = CallerContext(user_id="admin", roles=("admin",), scope="530402")


def china(*args) -> datetime:
    return datetime(*args, tzinfo=CHINA_TIME)


# Grid work by one worker on a working day of each month the cases below ask about.
WORK_DONE = [
    china(2025, 12, 1, 10),
    china(2026, 1, 5, 10),
    china(2026, 10, 9, 10),
    china(2026, 11, 2, 10),
    china(2026, 12, 1, 0, 0, 10),
]


@pytest.fixture
def assessment(runner_factory, config, settings):
    """The assessment service and the events service it asks for the working calendar,
    with the worker's grid work already stored as facts."""
    runner = runner_factory(config, AssessmentService, EventsService)
    runner.start()
    exchange = Exchange("population.events", type="topic", durable=True)
    with Connection(config["AMQP_URI"]) as connection:
        producer = Producer(connection.default_channel, serializer="json")
        for at in WORK_DONE:
            event = new_event(
                source="/counties/530402/population",
                routing_key="visit.recorded",
                subject=GRID,
                now=at,
                data={"visit_id": f"v{at:%Y%m}", "grid_code": GRID, "worker_id": "w1"},
            )
            producer.publish(
                event.to_json_dict(),
                exchange=exchange,
                routing_key="visit.recorded",
                declare=[exchange],
            )
    client = new_client(settings, app_name="gridwork-tests")
    facts = client[settings.database_name("assessment")]["facts"]
    wait_until(lambda: facts.count_documents({}) == len(WORK_DONE), 15, "facts")
    client.close()
    return runner


def expected_days(config, period: str) -> int:
    with ClusterRpcProxy(config, context_data=ADMIN.to_context_data(), timeout=10) as rpc:
        return rpc.assessment.indicators(GRID, period)["expected_account_days"]


def test_the_days_gone_by_turn_with_the_month_in_china_time(assessment, config, clock):
    # 23:58 on 30 November in China: November has all 21 of its working days behind it,
    # December none yet.
    clock.set(china(2026, 11, 30, 23, 58))
    assert expected_days(config, "2026-11") == 21
    assert expected_days(config, "2026-12") == 0
    # Two minutes later it is Tuesday 1 December in China (16:00 on 30 November in UTC):
    # December has begun, today included.
    clock.set(china(2026, 12, 1, 0, 0, 30))
    assert expected_days(config, "2026-12") == 1
    assert expected_days(config, "2026-11") == 21


def test_the_days_gone_by_at_the_start_and_end_of_a_year(assessment, config, clock):
    # New Year's Day 2026 in China (16:00 on 31 December 2025 in UTC): a holiday, so the
    # new month has no working day behind it yet, and December 2025 has ended.
    clock.set(china(2026, 1, 1, 0, 0, 30))
    assert expected_days(config, "2026-01") == 0
    assert expected_days(config, "2025-12") == 23
    # 23:59 on 31 December in China is 15:59 UTC: the whole year is behind. 2026 has 261
    # weekdays, 19 of them holidays, and 6 makeup working days at weekends: 248.
    clock.set(china(2026, 12, 31, 23, 59))
    assert expected_days(config, "2026-12") == 23
    assert expected_days(config, "2026") == 248


def test_a_holiday_adds_no_working_day_and_a_makeup_day_does(assessment, config, clock):
    clock.set(china(2026, 10, 1, 10))  # National Day: no working day of October yet
    assert expected_days(config, "2026-10") == 0
    clock.set(china(2026, 10, 10, 10))  # Saturday, a makeup working day: 8, 9 and 10
    assert expected_days(config, "2026-10") == 3
    clock.set(china(2026, 1, 4, 10))  # Sunday, a makeup working day after New Year
    assert expected_days(config, "2026-01") == 1
