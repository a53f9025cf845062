"""What the command centre's case queues ask the events service for: search filters for
urgency, open, escalated and supervised cases, the owning centre and the department
holding a case (narrowing the caller's scope, never widening it), and the working time
left to a deadline on the county calendar."""

from datetime import datetime, timedelta

import pytest

from gridwork_common.clock import CHINA_TIME
from tests.integration.events.conftest import (
    ADMIN,
    COUNTY_CENTRE,
    VILLAGE_A_CENTRE,
    VILLAGE_COMMITTEE_A,
)
from tests.integration.events.support import (
    COMMITTEE_A,
    POINT_B1,
    TOWNSHIP_B_CENTRE,
    WORKER_B1,
    assert_names_field,
    ids,
    refused,
)
from tests.population_data import VILLAGE_A, VILLAGE_B

pytestmark = pytest.mark.integration


def test_queue_filters_narrow_a_search_within_the_callers_scope(desk):
    plain = desk.report()
    urgent = desk.report(urgency="urgent")
    dispatched = desk.to_state(desk.report(), "dispatched")
    closed = desk.to_state(desk.report(), "closed")
    elsewhere = desk.report(WORKER_B1, point=POINT_B1)
    supervised = desk.act(COUNTY_CENTRE, desk.report(), "supervise", note="三天内办结")
    escalated = desk.act(
        VILLAGE_A_CENTRE, desk.to_state(desk.report(), "registered"), "escalate", reason="需协调"
    )
    admin = desk.events(ADMIN)

    def search(caller=ADMIN, **filters):
        return ids(desk.events(caller).search(filters, None, 200))

    assert search(urgency="urgent") == {urgent["id"]}
    assert closed["id"] not in search(open=True)
    assert search(open=False) == {closed["id"]}
    assert search(supervised=True) == {supervised["id"]}
    assert search(escalated=True) == {escalated["id"]}
    assert escalated["id"] not in search(escalated=False)
    assert search(state="reported", owning_centre=VILLAGE_A) == {
        plain["id"],
        urgent["id"],
        supervised["id"],
    }
    assert search(state="reported", owning_centre=VILLAGE_B) == {elsewhere["id"]}
    assert search(VILLAGE_COMMITTEE_A, department=COMMITTEE_A, open=True) == {dispatched["id"]}
    # A filter never shows what the caller's scope hides.
    assert search(TOWNSHIP_B_CENTRE, owning_centre=VILLAGE_A) == set()
    assert search(VILLAGE_A_CENTRE, owning_centre=VILLAGE_B) == set()

    assert_names_field(refused(admin.search, {"urgency": "soon"}), "urgency")
    assert_names_field(refused(admin.search, {"open": "yes"}), "open")
    assert_names_field(refused(admin.search, {"supervised": 1}), "supervised")
    assert_names_field(refused(admin.search, {"owning_centre": ""}), "owning_centre")


def test_working_time_left_counts_on_the_county_calendar_from_the_services_clock(desk, clock):
    # A Wednesday, 10:00 in China; working hours 08:30-12:00 and 14:30-18:00.
    now = datetime(2026, 11, 18, 10, 0, tzinfo=CHINA_TIME)
    clock.set(now)
    events = desk.events(VILLAGE_A_CENTRE)
    dues = [
        (now + timedelta(hours=1)).isoformat(),  # an hour of the morning
        datetime(2026, 11, 19, 9, 0, tzinfo=CHINA_TIME).isoformat(),  # 2 h + 3.5 h + 0.5 h
        datetime(2026, 11, 17, 17, 0, tzinfo=CHINA_TIME).isoformat(),  # 1 h + 1.5 h ago
        datetime(2026, 11, 23, 9, 0, tzinfo=CHINA_TIME).isoformat(),  # over the weekend
    ]
    answer = events.working_time_left(dues)
    assert datetime.fromisoformat(answer["now"]) - now < timedelta(minutes=1)
    expected = [60, 360, -150, 330 + 420 + 420 + 30]
    assert answer["minutes"] == pytest.approx(expected, abs=1)

    assert_names_field(refused(events.working_time_left, ["tomorrow"]), "dues[0]")
    assert_names_field(refused(events.working_time_left, ["2026-11-19T09:00:00"]), "dues[0]")
    assert_names_field(refused(events.working_time_left, "2026-11-19"), "dues")
