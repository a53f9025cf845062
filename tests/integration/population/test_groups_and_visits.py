"""Special and vulnerable groups, visit rules, visits, worklists and overdue notices."""

import time
from datetime import datetime, timedelta

import pytest
from nameko.exceptions import RemoteError
from nameko.testing.services import entrypoint_hook
from prometheus_client import REGISTRY

from gridwork_common.context import CallerContext
from services.population.domain.groups import (
    CHINA_TIME,
    period_bounds,
    period_of,
    previous_periods,
)
from tests.conftest import PINNED_AT
from tests.integration.population.conftest import HANDLER, LEADER, OPERATOR_B, WORKER_A1
from tests.population_data import GRID_A1, GRID_A2, TOWNSHIP_A, random_resident_ids

pytestmark = pytest.mark.integration

IDS = random_resident_ids(8, seed=11)
WORKER_A2 = CallerContext(user_id="worker-a2", roles=("grid_worker",), scope=GRID_A2)
POINT = {"type": "Point", "coordinates": [102.505, 24.305]}


# ------------------------------------------------------------------ helpers
def register(admin, number: str, name: str = "张三", grid: str = GRID_A1) -> dict:
    return admin.register_resident(
        {
            "id_number": number,
            "name": name,
            "grid_code": grid,
            "phone": "13812345678",
            "residence_type": "registered",
        }
    )


def events_named(
    events_tap, routing_key: str | tuple[str, ...], expected: int, timeout: float = 5.0
) -> list:
    """Drain the tap until `expected` events of that key (or those keys) arrived (or the
    time is up), then once more to catch any extra ones."""
    keys = (routing_key,) if isinstance(routing_key, str) else routing_key
    seen: list[tuple[str, dict]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen.extend(events_tap())
        if sum(key in keys for key, _ in seen) >= expected:
            break
    seen.extend(events_tap())
    return [event for key, event in seen if key in keys]


def this_period_moment(clock) -> datetime:
    """A moment a little in the past, by the service's clock, still in its current period."""
    now = clock()
    start, _ = period_bounds(period_of(now))
    return max(now - timedelta(seconds=5), start)


def visit(membership_id: str, at: datetime, **extra) -> dict:
    return {
        "membership_id": membership_id,
        "at": at.astimezone(CHINA_TIME).isoformat(),
        "location": POINT,
        **extra,
    }


def same_to_the_millisecond(first: dict, second: dict, time_field: str) -> bool:
    """Equal, except that a freshly written time may carry microseconds MongoDB drops."""
    a, b = datetime.fromisoformat(first[time_field]), datetime.fromisoformat(second[time_field])
    rest_a = {k: v for k, v in first.items() if k != time_field}
    rest_b = {k: v for k, v in second.items() if k != time_field}
    return rest_a == rest_b and abs(a - b) < timedelta(milliseconds=1)


def all_pages(fetch, limit: int) -> list[list[dict]]:
    pages, cursor = [], None
    while True:
        page = fetch(cursor=cursor, limit=limit)
        pages.append(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 20, "pagination does not end"


@pytest.fixture
def worker(as_user):
    return as_user(WORKER_A1)


@pytest.fixture
def resident(county):
    return register(county, IDS[0])


# ------------------------------------------------------------------ flagging
def test_flagging_and_clearing_a_group_publish_events(county, worker, resident, events_tap):
    events_tap()
    membership = worker.flag_group(resident["id"], "drug_user", "high", "worker-a1", "复吸风险")
    assert membership["resident_id"] == resident["id"]
    assert (membership["group"], membership["kind"]) == ("drug_user", "special")
    assert membership["risk_level"] == "high"
    assert membership["grid_code"] == GRID_A1
    assert membership["active"] is True

    [flagged] = events_named(events_tap, "group.flagged", expected=1)
    assert flagged["subject"] == GRID_A1
    assert flagged["data"] == {
        "membership_id": membership["id"],
        "resident_id": resident["id"],
        "group": "drug_user",
        "kind": "special",
        "risk_level": "high",
        "responsible_worker_id": "worker-a1",
    }
    assert [m["id"] for m in worker.list_group_members(GRID_A1)["items"]] == [membership["id"]]

    cleared = worker.clear_group(membership["id"], "戒断满三年")
    assert cleared["active"] is False
    assert cleared["cleared_at"] is not None
    [cleared_event] = events_named(events_tap, "group.cleared", expected=1)
    assert cleared_event["data"] == {
        "membership_id": membership["id"],
        "resident_id": resident["id"],
        "group": "drug_user",
    }
    assert worker.list_group_members(GRID_A1)["items"] == []
    assert worker.get_resident(resident["id"])["groups"] == []
    with pytest.raises(RemoteError, match="reason: is required"):
        worker.clear_group(membership["id"], " ")


def test_a_list_and_a_search_show_each_residents_own_groups(county, worker, resident):
    """The memberships of a page are read for the whole page at once: each resident
    still shows its own, and one without any shows none."""
    other = register(county, IDS[1], name="李四")
    worker.flag_group(resident["id"], "low_income", "low", "worker-a1")
    worker.flag_group(resident["id"], "elderly_alone", "medium", "worker-a1")
    cleared = worker.flag_group(other["id"], "disabled", "low", "worker-a1")
    worker.clear_group(cleared["id"], "no longer applies")

    listed = {item["id"]: item for item in worker.list_residents(GRID_A1)["items"]}
    assert [g["group"] for g in listed[resident["id"]]["groups"]] == [
        "elderly_alone",
        "low_income",
    ]
    assert listed[other["id"]]["groups"] == []
    [found] = worker.find_resident(id_number=IDS[0])
    assert found["groups"] == listed[resident["id"]]["groups"]
    assert found["groups"] == worker.get_resident(resident["id"])["groups"]


def test_flagging_the_same_group_twice_keeps_one_active_membership(
    county, worker, resident, population_db, events_tap
):
    events_tap()
    first = worker.flag_group(resident["id"], "low_income", "low", "worker-a1")
    again = worker.flag_group(resident["id"], "low_income", "low", "worker-a1")
    assert same_to_the_millisecond(again, first, "flagged_at")
    assert population_db.group_memberships.count_documents({"resident_id": resident["id"]}) == 1
    assert len(events_named(events_tap, "group.flagged", expected=2, timeout=2)) == 1

    raised = worker.flag_group(resident["id"], "low_income", "high", "worker-a1")
    assert (raised["id"], raised["risk_level"]) == (first["id"], "high")
    assert population_db.group_memberships.count_documents({"resident_id": resident["id"]}) == 1
    other = worker.flag_group(resident["id"], "elderly_alone", "medium", "worker-a1")
    assert {g["group"] for g in worker.get_resident(resident["id"])["groups"]} == {
        "low_income",
        "elderly_alone",
    }
    assert other["id"] != first["id"]


@pytest.mark.parametrize(
    ("group", "risk_level", "field"),
    [("vip", "low", "group"), ("drug_user", "extreme", "risk_level"), ("", "low", "group")],
)
def test_an_unknown_group_or_risk_level_is_refused_naming_the_field(
    county, worker, resident, population_db, group, risk_level, field
):
    with pytest.raises(RemoteError) as raised:
        worker.flag_group(resident["id"], group, risk_level, "worker-a1")
    assert raised.value.exc_type == "InvalidInput"
    assert raised.value.value.startswith(f"{field}: must be one of")
    assert population_db.group_memberships.count_documents({}) == 0
    with pytest.raises(RemoteError, match=f"{field}: must be one of"):
        worker.list_group_members(GRID_A1, group=group or "vip", risk_level=risk_level)


def test_group_members_list_filters_by_group_and_risk_and_pages(county, worker, as_user):
    residents = [register(county, number, f"居民{n}") for n, number in enumerate(IDS[:7])]
    flags = [
        ("low_income", "low"),
        ("low_income", "low"),
        ("low_income", "high"),
        ("drug_user", "high"),
        ("drug_user", "medium"),
        ("disabled", "low"),
        ("disabled", "low"),
    ]
    memberships = {
        worker.flag_group(r["id"], group, risk, "worker-a1")["id"]: (group, risk)
        for r, (group, risk) in zip(residents, flags, strict=True)
    }

    def ids(**filters) -> set[str]:
        return {m["id"] for m in worker.list_group_members(GRID_A1, **filters)["items"]}

    assert ids() == set(memberships)
    assert ids(group="low_income") == {m for m, (g, _) in memberships.items() if g == "low_income"}
    assert ids(risk_level="high") == {m for m, (_, r) in memberships.items() if r == "high"}
    assert ids(group="low_income", risk_level="low") == {
        m for m, flag in memberships.items() if flag == ("low_income", "low")
    }
    assert len(ids(group="low_income", risk_level="low")) == 2

    pages = all_pages(lambda **page: worker.list_group_members(TOWNSHIP_A, **page), limit=3)
    assert [len(page) for page in pages] == [3, 3, 1]
    listed = [m["id"] for page in pages for m in page]
    assert sorted(listed) == sorted(memberships)  # every member once, in id order
    assert listed == sorted(listed)

    # A grid worker of another grid and an operator of township B see none of them.
    for caller in (WORKER_A2, OPERATOR_B):
        assert as_user(caller).list_group_members(TOWNSHIP_A)["items"] == []


def test_memberships_are_hidden_from_leaders_and_department_handlers(county, as_user, resident):
    worker = as_user(WORKER_A1)
    worker.flag_group(resident["id"], "severe_mental_disorder", "medium", "worker-a1")

    assert [g["group"] for g in worker.get_resident(resident["id"])["groups"]] == [
        "severe_mental_disorder"
    ]
    assert worker.statistics(GRID_A1)["group_members"] == {"severe_mental_disorder": {"medium": 1}}
    for caller in (LEADER, HANDLER):
        proxy = as_user(caller)
        seen = proxy.get_resident(resident["id"])
        assert seen["id"] == resident["id"]
        assert "groups" not in seen, f"{caller.roles[0]} sees group memberships"
        with pytest.raises(RemoteError) as raised:
            proxy.list_group_members(GRID_A1)
        assert raised.value.exc_type == "Forbidden"
        statistics = proxy.statistics(GRID_A1)
        assert statistics["residents"] == 1
        assert "group_members" not in statistics
        with pytest.raises(RemoteError, match="Forbidden"):
            proxy.visit_worklist("worker-a1")


# ------------------------------------------------------------------ visit rules
def test_visit_rules_default_by_group_kind_and_only_admins_change_them(county, as_user):
    rules = county.visit_rules()
    for group in ("drug_user", "severe_mental_disorder", "community_correction"):
        assert [rules[f"{group}:{risk}"] for risk in ("high", "medium", "low")] == [4, 2, 1]
    assert [rules[f"low_income:{risk}"] for risk in ("high", "medium", "low")] == [2, 1, 1]

    changed = county.set_visit_rule("drug_user", "medium", 3)
    assert changed["drug_user:medium"] == 3
    assert changed["drug_user:high"] == 4
    assert as_user(WORKER_A1).visit_rules()["drug_user:medium"] == 3

    for caller in (WORKER_A1, OPERATOR_B, LEADER):
        with pytest.raises(RemoteError) as raised:
            as_user(caller).set_visit_rule("drug_user", "medium", 1)
        assert raised.value.exc_type == "Forbidden"
    with pytest.raises(RemoteError, match="visits_per_month: must be an integer from 0 to 31"):
        county.set_visit_rule("drug_user", "medium", 32)
    with pytest.raises(RemoteError, match="group: must be one of"):
        county.set_visit_rule("vip", "medium", 1)
    with pytest.raises(RemoteError, match="risk_level: must be one of"):
        county.set_visit_rule("drug_user", "urgent", 1)
    assert county.visit_rules()["drug_user:medium"] == 3


# ------------------------------------------------------------------ visits
def test_record_visit_stores_worker_time_place_notes_and_media(
    county, worker, resident, population_db, events_tap, clock
):
    membership = worker.flag_group(resident["id"], "drug_user", "high", "worker-a1")
    events_tap()
    at = this_period_moment(clock)
    recorded = worker.record_visit(
        visit(
            membership["id"],
            at,
            visit_id="visit-0001",
            notes=" 情绪稳定 按时服药 ",
            media_ids=["media-1", "media-2"],
        )
    )
    assert recorded == {
        "id": "visit-0001",
        "membership_id": membership["id"],
        "resident_id": resident["id"],
        "worker_id": "worker-a1",
        "at": recorded["at"],
        "period": period_of(at),
        "location": POINT,
        "notes": "情绪稳定 按时服药",
        "media_ids": ["media-1", "media-2"],
        "patrol_id": None,
    }
    assert abs(datetime.fromisoformat(recorded["at"]) - at) < timedelta(milliseconds=1)
    [stored] = worker.visits_of(membership["id"])
    assert same_to_the_millisecond(stored, recorded, "at")

    [event] = events_named(events_tap, "visit.recorded", expected=1)
    assert event["subject"] == GRID_A1
    assert event["data"]["visit_id"] == "visit-0001"
    assert event["data"]["membership_id"] == membership["id"]
    assert event["data"]["worker_id"] == "worker-a1"
    assert event["data"]["location"] == POINT
    assert event["data"]["media_ids"] == ["media-1", "media-2"]
    assert event["data"]["period"] == period_of(at)

    # The phone retries the upload: nothing new is stored or announced.
    retried = worker.record_visit(
        visit(membership["id"], at, visit_id="visit-0001", notes="情绪稳定 按时服药")
    )
    assert retried == stored
    assert population_db.visits.count_documents({}) == 1
    assert events_named(events_tap, "visit.recorded", expected=1, timeout=1) == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"location": None}, "location: must be a GeoJSON Point"),
        ({"location": {"type": "Point", "coordinates": [102.5]}}, "location: must be a GeoJSON"),
        ({"location": {"type": "Point", "coordinates": [202.5, 24.3]}}, "location: longitude"),
        ({"location": {"type": "Point", "coordinates": [102.5, -91]}}, "location: latitude"),
        (
            {"at": (PINNED_AT + timedelta(days=1)).isoformat()},  # the clock starts there
            "at: is in the future",
        ),
        (
            {"at": "2026-11-18T10:00:00"},
            "at: must be an ISO 8601 time with a UTC offset",
        ),
        ({"at": "yesterday"}, "at: must be an ISO 8601 time"),
        ({"media_ids": "media-1"}, "media_ids: must be a list"),
    ],
    ids=[
        "no-location",
        "one-coordinate",
        "bad-longitude",
        "bad-latitude",
        "future",
        "naive",
        "not-a-time",
        "media-not-list",
    ],
)
def test_a_bad_visit_is_refused_naming_the_field(
    county, worker, resident, population_db, change, message, clock
):
    membership = worker.flag_group(resident["id"], "drug_user", "high", "worker-a1")
    with pytest.raises(RemoteError) as raised:
        worker.record_visit({**visit(membership["id"], this_period_moment(clock)), **change})
    assert raised.value.exc_type == "InvalidInput"
    assert raised.value.value.startswith(message)
    assert population_db.visits.count_documents({}) == 0


def test_visits_need_a_visiting_role_and_an_active_membership_in_scope(
    county, as_user, resident, clock
):
    worker = as_user(WORKER_A1)
    membership = worker.flag_group(resident["id"], "drug_user", "high", "worker-a1")
    with pytest.raises(RemoteError, match="Forbidden"):
        as_user(LEADER).record_visit(visit(membership["id"], this_period_moment(clock)))
    with pytest.raises(RemoteError, match="NotFound"):
        as_user(WORKER_A2).record_visit(visit(membership["id"], this_period_moment(clock)))
    worker.clear_group(membership["id"], "迁出")
    with pytest.raises(RemoteError, match="Conflict"):
        worker.record_visit(visit(membership["id"], this_period_moment(clock)))


# ------------------------------------------------------------------ worklists and overdue
def test_worklist_shows_visits_due_until_enough_are_done(county, worker, clock):
    first, second = register(county, IDS[0], "张三"), register(county, IDS[1], "李四")
    medium = worker.flag_group(first["id"], "drug_user", "medium", "worker-a1")
    low = worker.flag_group(second["id"], "low_income", "low", "worker-a1")
    county.flag_group(first["id"], "disabled", "low", "worker-somebody-else")

    period = period_of(clock())
    worklist = worker.visit_worklist()
    assert (worklist["worker_id"], worklist["period"]) == ("worker-a1", period)
    due = {item["id"]: item for item in worklist["due"]}
    assert set(due) == {medium["id"], low["id"]}
    assert (due[medium["id"]]["required"], due[medium["id"]]["done"]) == (2, 0)
    assert due[medium["id"]]["remaining"] == 2
    assert (due[low["id"]]["required"], due[low["id"]]["remaining"]) == (1, 1)
    assert worklist["overdue"] == []  # flagged this month: nothing was due before

    worker.record_visit(visit(medium["id"], this_period_moment(clock)))
    worker.record_visit(visit(low["id"], this_period_moment(clock)))
    due = {item["id"]: item for item in worker.visit_worklist()["due"]}
    assert set(due) == {medium["id"]}
    assert (due[medium["id"]]["done"], due[medium["id"]]["remaining"]) == (1, 1)

    worker.record_visit(visit(medium["id"], this_period_moment(clock)))
    assert worker.visit_worklist()["due"] == []
    assert len(county.visit_worklist("worker-somebody-else")["due"]) == 1


def flag_months_ago(worker, population_db, resident_id: str, months: int, now: datetime):
    """A membership flagged at the start of the month `months` before `now` (test setup)."""
    membership = worker.flag_group(resident_id, "drug_user", "high", "worker-a1")
    flagged_at = period_bounds(previous_periods(now, months)[-1])[0]
    population_db.group_memberships.update_one(
        {"_id": membership["id"]}, {"$set": {"flagged_at": flagged_at}}
    )
    return membership


def test_overdue_visits_are_published_once_per_missed_month(
    county, worker, resident, population_container, population_db, events_tap, clock
):
    membership = flag_months_ago(worker, population_db, resident["id"], 2, clock())
    last_month, month_before = previous_periods(clock(), 2)
    # One of four visits done in the month before last: still short.
    worker.record_visit(visit(membership["id"], period_bounds(month_before)[0] + timedelta(days=3)))
    events_tap()

    with entrypoint_hook(population_container, "publish_overdue_visits") as publish:
        assert publish() == 2
    published = events_named(events_tap, ("visit.overdue", "visit.obligations"), expected=4)
    overdue = [e for e in published if "rows" not in e["data"]]
    obligations = [e for e in published if "rows" in e["data"]]
    assert sorted((e["data"]["period"], e["data"]["done"]) for e in overdue) == sorted(
        [(last_month, 0), (month_before, 1)]
    )
    for event in overdue:
        assert event["subject"] == GRID_A1
        assert event["data"]["membership_id"] == membership["id"]
        assert event["data"]["resident_id"] == resident["id"]
        assert event["data"]["responsible_worker_id"] == "worker-a1"
        assert event["data"]["required"] == 4

    # the month's obligations per grid, for the assessment's visit coverage
    assert sorted((e["data"]["period"], e["data"]["rows"]) for e in obligations) == sorted(
        [
            (
                last_month,
                [{"worker_id": "worker-a1", "risk_level": "high", "required": 4, "done": 0}],
            ),
            (
                month_before,
                [{"worker_id": "worker-a1", "risk_level": "high", "required": 4, "done": 1}],
            ),
        ]
    )
    assert {e["subject"] for e in obligations} == {GRID_A1}

    with entrypoint_hook(population_container, "publish_overdue_visits") as publish:
        assert publish() == 0
    assert events_named(events_tap, ("visit.overdue", "visit.obligations"), 1, timeout=1) == []
    # /metrics: the visits still owed (4 last month, 3 the month before), published or not.
    assert GRID_A1.startswith(TOWNSHIP_A)
    assert REGISTRY.get_sample_value("gridwork_visit_backlog", {"township": TOWNSHIP_A}) == 7

    [item] = worker.visit_worklist()["overdue"]
    assert item["id"] == membership["id"]
    assert item["period"] == last_month
    assert (item["required"], item["done"], item["missing"]) == (4, 0, 4)


def test_met_obligations_and_recent_memberships_are_not_overdue(
    county, worker, population_container, population_db, events_tap, clock
):
    met = flag_months_ago(worker, population_db, register(county, IDS[0])["id"], 1, clock())
    fresh = worker.flag_group(register(county, IDS[1], "李四")["id"], "drug_user", "high", "w")
    last_month = previous_periods(clock(), 1)[0]
    start = period_bounds(last_month)[0]
    for day in range(4):
        worker.record_visit(visit(met["id"], start + timedelta(days=day, hours=3)))
    events_tap()

    with entrypoint_hook(population_container, "publish_overdue_visits") as publish:
        assert publish() == 0
    assert events_named(events_tap, "visit.overdue", expected=1, timeout=1) == []
    assert fresh["id"] not in {item["id"] for item in worker.visit_worklist("w")["overdue"]}


def test_worklist_counts_last_months_visits_towards_last_month(
    county, worker, population_db, clock
):
    membership = flag_months_ago(worker, population_db, register(county, IDS[0])["id"], 1, clock())
    start = period_bounds(previous_periods(clock(), 1)[0])[0]
    worker.record_visit(visit(membership["id"], start + timedelta(days=1)))
    [item] = worker.visit_worklist()["overdue"]
    assert (item["required"], item["done"], item["missing"]) == (4, 1, 3)


def test_a_visit_near_midnight_counts_in_the_month_of_china_time(
    county, worker, resident, population_db, clock
):
    # 00:10 on 1 December in China is still 30 November (16:10) in UTC.
    clock.set(datetime(2026, 12, 1, 0, 10, tzinfo=CHINA_TIME))
    membership = flag_months_ago(worker, population_db, resident["id"], 1, clock())
    late = worker.record_visit(
        visit(membership["id"], datetime(2026, 11, 30, 23, 55, tzinfo=CHINA_TIME))
    )
    early = worker.record_visit(
        visit(membership["id"], datetime(2026, 12, 1, 0, 5, tzinfo=CHINA_TIME))
    )
    assert (late["period"], early["period"]) == ("2026-11", "2026-12")
    worklist = worker.visit_worklist()
    assert worklist["period"] == "2026-12"
    [due] = worklist["due"]
    assert (due["id"], due["required"], due["done"]) == (membership["id"], 4, 1)
    [overdue] = worklist["overdue"]
    assert (overdue["period"], overdue["done"], overdue["missing"]) == ("2026-11", 1, 3)
