"""Deadlines (warnings, overdue notices, automatic escalation and supervision), the outbox
timer, worklists, search and counts, and the county's setup: catalogue versions,
departments, the working calendar and the deadline policy.

Time is moved by editing a case's deadlines in the events database (test setup), then the
service's own timer entrypoints are fired with nameko's entrypoint_hook."""

import copy
from datetime import timedelta

import pytest

from gridwork_common.events import EventPublisher
from services.events import topics
from services.events.domain.calendar import DEFAULT_CALENDAR
from services.events.domain.catalogue import (
    DEFAULT_CATEGORIES,
    DEFAULT_DEPARTMENTS,
    STAGES,
    default_catalogue_document,
)
from tests.integration.events.conftest import (
    ADMIN,
    COUNTY_CENTRE,
    TOWNSHIP_A_CENTRE,
    VILLAGE_A_CENTRE,
    VILLAGE_COMMITTEE_A,
    WORKER_A1,
)
from tests.integration.events.support import (
    COMMITTEE_A,
    EVENT_SOURCE,
    POINT_A2,
    POINT_B1,
    TOWNSHIP_B_CENTRE,
    VILLAGE_B_CENTRE,
    WORKER_A2,
    WORKER_B1,
    action_of,
    assert_names_field,
    check_envelope,
    ids,
    move_deadlines,
    refused,
    run_timer,
    when,
)
from tests.population_data import COUNTY, GRID_A1, TOWNSHIP_A, TOWNSHIP_B, VILLAGE_A

pytestmark = pytest.mark.integration

NOTHING = {"warning": 0, "overdue": 0, "escalated": 0}
MINUTE = timedelta(minutes=1)
WEEKS_AGO = timedelta(days=21)  # far more than any policy's working hours, holidays or not


def deadline_notices(received) -> list[tuple[str, str]]:
    """(action, incident id) of the deadline-driven events a tap received."""
    notices = []
    for key, body in received:
        check_envelope(key, body)
        if action_of(key) in ("warning", "overdue", "escalated", "supervised"):
            notices.append((action_of(key), body["data"]["incident_id"]))
    return notices


# ---------------------------------------------------------------- deadlines


def test_a_stage_warns_once_past_80_percent_and_is_overdue_once_past_its_due(
    desk, services, events_db, department_tap
):
    case = desk.report()
    other = desk.report()  # its deadlines stay in the future
    tap = department_tap("incident.#")

    move_deadlines(events_db, case, warn_ago=MINUTE, due_ago=None)
    run_timer(services, "check_deadlines")
    assert run_timer(services, "check_deadlines") == NOTHING
    assert deadline_notices(tap()) == [("warning", case["id"])]
    assert desk.get(case)["overdue"] is False

    move_deadlines(events_db, case, warn_ago=None, due_ago=MINUTE)
    run_timer(services, "check_deadlines")
    assert run_timer(services, "check_deadlines") == NOTHING
    received = tap()
    assert deadline_notices(received) == [("overdue", case["id"])]
    data = received[0][1]["data"]
    assert (data["stage"], data["state"], data["actor_id"]) == ("accept", "reported", None)

    overdue = desk.get(case)
    assert overdue["overdue"] is True and overdue["state"] == "reported"
    assert (overdue["escalated"], overdue["supervised"]) == (False, False)
    assert desk.get(other)["overdue"] is False


def test_a_long_overdue_case_is_escalated_and_supervised_automatically_once(
    desk, services, events_db, department_tap, clock
):
    case = desk.to_state(desk.report(), "registered")
    tap = department_tap("incident.#")
    move_deadlines(events_db, case, warn_ago=WEEKS_AGO + MINUTE, due_ago=WEEKS_AGO)

    run_timer(services, "check_deadlines")
    assert run_timer(services, "check_deadlines") == NOTHING
    assert deadline_notices(tap()) == [
        ("warning", case["id"]),
        ("overdue", case["id"]),
        ("escalated", case["id"]),
        ("supervised", case["id"]),
    ]
    case = desk.get(case)
    assert (case["state"], case["owning_centre"]) == ("registered", TOWNSHIP_A)
    assert case["escalation_path"] == [VILLAGE_A, TOWNSHIP_A]
    assert (case["escalation_count"], case["supervised"], case["supervision_count"]) == (1, True, 1)
    # The township's own stage starts afresh, with its deadline ahead.
    assert when(case["stage_due"]) > clock() and case["overdue"] is False
    timeline = desk.events(ADMIN).timeline(case["id"])
    assert [(e["action"], e["actor_roles"]) for e in timeline[-2:]] == [
        ("escalate", ["system"]),
        ("supervise", ["system"]),
    ]
    assert run_timer(services, "check_deadlines") == NOTHING
    assert tap() == []


def test_an_automatically_escalated_case_left_overdue_again_climbs_again(desk, services, events_db):
    case = desk.to_state(desk.report(), "registered")
    move_deadlines(events_db, case, warn_ago=WEEKS_AGO + MINUTE, due_ago=WEEKS_AGO)
    run_timer(services, "check_deadlines")
    case = desk.get(case)
    assert case["owning_centre"] == TOWNSHIP_A

    # The township lets its own, new stage run weeks over its due too.
    move_deadlines(events_db, case, warn_ago=WEEKS_AGO + MINUTE, due_ago=WEEKS_AGO)
    run_timer(services, "check_deadlines")
    case = desk.get(case)
    assert case["owning_centre"] == COUNTY
    assert case["escalation_path"] == [VILLAGE_A, TOWNSHIP_A, COUNTY]
    assert case["supervision_count"] == 2


def test_a_suspended_case_is_not_warned_and_each_new_stage_can_warn_again(
    desk, services, events_db, department_tap
):
    case = desk.report()
    tap = department_tap("incident.#")
    move_deadlines(events_db, case, warn_ago=MINUTE, due_ago=None)
    run_timer(services, "check_deadlines")
    assert deadline_notices(tap()) == [("warning", case["id"])]

    case = desk.act(VILLAGE_A_CENTRE, case, "accept")  # a new stage: register
    move_deadlines(events_db, case, warn_ago=MINUTE, due_ago=None)
    run_timer(services, "check_deadlines")
    assert deadline_notices(tap()) == [("warning", case["id"])]

    case = desk.act(VILLAGE_A_CENTRE, case, "register")
    case = desk.act(VILLAGE_A_CENTRE, case, "suspend", reason="等待鉴定结果")
    move_deadlines(events_db, case, warn_ago=2 * MINUTE, due_ago=MINUTE)
    assert run_timer(services, "check_deadlines") == NOTHING
    assert deadline_notices(tap()) == []

    case = desk.act(VILLAGE_A_CENTRE, case, "resume")
    run_timer(services, "check_deadlines")
    assert deadline_notices(tap()) == [("warning", case["id"]), ("overdue", case["id"])]


def test_the_outbox_timer_sends_what_was_left_behind(services, events_db, department_tap, clock):
    # The shape the incident desk writes with each change, as if the process had died
    # between committing the change and sending its event.
    route = topics.route(GRID_A1, None)
    data = {"incident_id": "left-behind", "event": "closed", "grid_code": GRID_A1}
    full_key, envelope = EventPublisher(lambda key, payload: None, EVENT_SOURCE).envelope(
        "incident.closed",
        GRID_A1,
        {**data, "department": None},
        route=route,
        extensions={"department": topics.NO_DEPARTMENT},
    )
    events_db["outbox"].insert_one(
        {
            "_id": envelope["id"],
            "routing_key": full_key,
            "envelope": envelope,
            "created_at": clock() - timedelta(minutes=5),
        }
    )
    tap = department_tap("incident.closed.#")

    run_timer(services, "resend_outbox")
    received = tap()
    assert [key for key, _ in received] == [full_key]
    assert received[0][1] == envelope
    check_envelope(*received[0])
    assert events_db["outbox"].count_documents({}) == 0
    assert run_timer(services, "resend_outbox") == 0


# ---------------------------------------------------------------- worklists, search, counts


def test_each_worklist_holds_exactly_the_cases_its_owner_must_act_on(desk, services, events_db):
    waiting = desk.report()
    at_committee = desk.to_state(desk.report(), "dispatched")
    to_verify = desk.to_state(desk.report(), "awaiting_verification")
    in_a2 = desk.report(WORKER_A2, point=POINT_A2)
    in_b1 = desk.report(WORKER_B1, point=POINT_B1)
    desk.report(resolved_on_spot=True, media_ids=["photo"])  # closed at once
    desk.act(TOWNSHIP_A_CENTRE, at_committee, "supervise", note="限期处理")
    move_deadlines(events_db, waiting, warn_ago=2 * MINUTE, due_ago=MINUTE)
    run_timer(services, "check_deadlines")

    def worklist(caller, kind):
        return ids(desk.events(caller).worklist(kind))

    assert worklist(WORKER_A1, "my_grid") == {waiting["id"], at_committee["id"], to_verify["id"]}
    assert worklist(WORKER_A2, "my_grid") == {in_a2["id"]}
    assert worklist(WORKER_A1, "verification") == {to_verify["id"]}
    assert worklist(WORKER_A2, "verification") == set()
    assert worklist(VILLAGE_A_CENTRE, "centre_queue") == {waiting["id"], in_a2["id"]}
    assert worklist(VILLAGE_B_CENTRE, "centre_queue") == {in_b1["id"]}
    assert worklist(TOWNSHIP_A_CENTRE, "centre_queue") == set()
    assert worklist(VILLAGE_COMMITTEE_A, "department_inbox") == {at_committee["id"]}
    assert worklist(VILLAGE_A_CENTRE, "overdue") == {waiting["id"]}
    assert worklist(TOWNSHIP_B_CENTRE, "overdue") == set()
    assert worklist(TOWNSHIP_A_CENTRE, "supervised") == {at_committee["id"]}
    assert worklist(VILLAGE_B_CENTRE, "supervised") == set()
    assert_names_field(refused(desk.events(WORKER_A1).worklist, "my_cases"), "kind")


def test_search_filters_and_pages_through_cases_with_a_cursor(desk, services, events_db):
    first = desk.report(category="04.01")
    second = desk.report(WORKER_A2, category="04.01", point=POINT_A2)
    third = desk.report(category="02.01")
    fourth = desk.report(WORKER_B1, category="04.01", point=POINT_B1)
    everyone = {case["id"] for case in (first, second, third, fourth)}
    desk.act(VILLAGE_A_CENTRE, first, "accept")
    move_deadlines(events_db, second, warn_ago=2 * MINUTE, due_ago=MINUTE)
    run_timer(services, "check_deadlines")
    admin = desk.events(ADMIN)

    def search(**filters):
        return ids(admin.search(filters))

    assert search() == everyone
    assert search(state="accepted") == {first["id"]}
    assert search(state="reported") == {second["id"], third["id"], fourth["id"]}
    assert search(category="04.01") == {first["id"], second["id"], fourth["id"]}
    assert search(territory=VILLAGE_A) == {first["id"], second["id"], third["id"]}
    assert search(territory=GRID_A1, category="02.01") == {third["id"]}
    assert search(territory=TOWNSHIP_B) == {fourth["id"]}
    third_at = desk.get(third)["reported_at"]
    assert search(reported_from=third_at) == {third["id"], fourth["id"]}
    assert search(reported_to=third_at) == {first["id"], second["id"]}
    assert search(reported_from=desk.get(second)["reported_at"], reported_to=third_at) == {
        second["id"]
    }
    assert search(overdue=True) == {second["id"]}
    assert search(overdue=False) == everyone - {second["id"]}
    assert ids(desk.events(TOWNSHIP_B_CENTRE).search({})) == {fourth["id"]}
    assert search(ids=[first["id"], fourth["id"], "no-such-case"]) == {first["id"], fourth["id"]}
    assert search(ids=[first["id"], fourth["id"]], category="02.01") == set()
    assert ids(desk.events(TOWNSHIP_B_CENTRE).search({"ids": [first["id"]]})) == set()  # scope

    pages, cursor = [], None
    while True:
        page = admin.search({}, cursor, 3)
        pages.append([item["id"] for item in page["items"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert len(pages) < 5
    assert [len(page) for page in pages] == [3, 1]
    seen = [case_id for page in pages for case_id in page]
    assert seen == sorted(everyone)

    assert_names_field(refused(admin.search, {"colour": "red"}), "colour")
    assert_names_field(refused(admin.search, {"ids": "not-a-list"}), "ids")
    assert_names_field(refused(admin.search, {"state": "lost"}), "state")
    assert_names_field(refused(admin.search, {"reported_from": "yesterday"}), "reported_from")
    assert_names_field(refused(admin.search, {}, None, 0), "limit")


def test_counts_per_state_under_a_territory_within_the_callers_scope(desk):
    accepted = desk.report()
    desk.act(VILLAGE_A_CENTRE, accepted, "accept")
    desk.report()
    desk.report(WORKER_A2, point=POINT_A2)
    desk.report(WORKER_B1, point=POINT_B1)

    def counts(caller, territory):
        answer = desk.events(caller).counts(territory)
        assert answer["territory"] == territory
        assert answer["total"] == sum(answer["by_state"].values())
        return answer["by_state"]

    assert counts(ADMIN, VILLAGE_A) == {"accepted": 1, "reported": 2}
    assert counts(ADMIN, GRID_A1) == {"accepted": 1, "reported": 1}
    assert counts(ADMIN, COUNTY) == {"accepted": 1, "reported": 3}
    assert counts(COUNTY_CENTRE, TOWNSHIP_B) == {"reported": 1}
    # A township's centre counts only what it may see, whatever node it asks about.
    assert counts(TOWNSHIP_B_CENTRE, COUNTY) == {"reported": 1}
    assert counts(TOWNSHIP_B_CENTRE, TOWNSHIP_A) == {}
    assert counts(WORKER_A2, VILLAGE_A) == {"reported": 1}


# ---------------------------------------------------------------- the county's setup


def new_catalogue(**changes) -> dict:
    document = copy.deepcopy(default_catalogue_document())
    for entry in document["entries"]:
        entry.update(changes.get(entry["code"], {}))
    return document


def test_the_default_catalogue_lists_every_category_and_a_new_version_can_be_published(desk):
    admin = desk.events(ADMIN)
    catalogue = admin.catalogue()
    assert catalogue["version"] == 1 and catalogue["categories"] == DEFAULT_CATEGORIES
    codes = {entry["code"] for entry in catalogue["entries"]}
    assert {"01.01", "02.01", "02.02", "04.01", "08.02"} <= codes
    assert {code[:2] for code in codes} == set(DEFAULT_CATEGORIES)
    public = {entry["code"] for entry in admin.catalogue(None, True)["entries"]}
    assert "02.01" in public and "02.02" not in public and "06.01" not in public
    assert public < codes

    document = new_catalogue()
    document["entries"].append({**document["entries"][-1], "code": "08.03", "name": "助残服务"})
    forbidden = refused(desk.events(VILLAGE_A_CENTRE).publish_catalogue, document)
    assert forbidden.exc_type == "Forbidden"
    no_limits = copy.deepcopy(document)
    del no_limits["entries"][0]["time_limits"]
    assert_names_field(refused(admin.publish_catalogue, no_limits), "entries[0].time_limits")
    bad_owner = new_catalogue(**{"01.01": {"owners": {"village": "ghostbusters"}}})
    assert_names_field(refused(admin.publish_catalogue, bad_owner), "entries.01.01.owners.village")
    assert admin.catalogue()["version"] == 1

    published = admin.publish_catalogue(document)
    assert published["version"] == 2
    assert admin.catalogue()["version"] == 2
    assert "08.03" in {entry["code"] for entry in admin.catalogue()["entries"]}
    assert "08.03" not in {entry["code"] for entry in admin.catalogue(1)["entries"]}
    assert refused(admin.catalogue, 9).exc_type == "NotFound"
    versions = admin.catalogue_versions()
    assert [(v["version"], v["entries"]) for v in versions] == [
        (2, len(document["entries"])),
        (1, len(document["entries"]) - 1),
    ]
    assert [v["published_by"] for v in versions] == [ADMIN.user_id, "default"]
    assert all(v["published_at"].endswith("+00:00") for v in versions)


def test_a_case_keeps_the_catalogue_version_it_was_reported_under(desk, events_db):
    admin = desk.events(ADMIN)
    under_v1 = desk.report(category="04.01")
    limits = {"normal": dict.fromkeys(STAGES, 100), "urgent": dict.fromkeys(STAGES, 1)}
    slower = new_catalogue(**{"04.01": {"time_limits": limits}})
    assert admin.publish_catalogue(slower)["version"] == 2
    under_v2 = desk.report(category="04.01")

    stored = {row["_id"]: row["catalogue_version"] for row in events_db["incidents"].find()}
    assert stored == {under_v1["id"]: 1, under_v2["id"]: 2}
    # Accepting starts the register stage: 1 working hour for 04.01 in version 1, 100 in 2.
    for case, hours in ((under_v1, 1), (under_v2, 100)):
        case = desk.act(VILLAGE_A_CENTRE, case, "accept")
        started = when(case["stage_started_at"])
        assert when(case["stage_due"]) == DEFAULT_CALENDAR.add_working_minutes(started, hours * 60)
    assert {row["catalogue_version"] for row in events_db["incidents"].find()} == {1, 2}
    assert events_db["incidents"].find_one({"_id": under_v1["id"]})["catalogue_version"] == 1


def test_departments_are_listed_by_territory(desk):
    admin = desk.events(ADMIN)
    for territory, level in ((COUNTY, "county"), (TOWNSHIP_A, "township"), (VILLAGE_A, "village")):
        listed = admin.departments(territory)
        assert {d["code"] for d in listed} == {
            f"{territory}-{kind}" for kind in DEFAULT_DEPARTMENTS[level]
        }
        assert {(d["territory_code"], d["level"]) for d in listed} == {(territory, level)}
        names = {d["kind"]: d["name"] for d in listed}
        assert names == DEFAULT_DEPARTMENTS[level]
    everything = admin.departments()
    assert len(everything) == len(DEFAULT_DEPARTMENTS["county"]) + 2 * len(
        DEFAULT_DEPARTMENTS["township"]
    ) + 2 * len(DEFAULT_DEPARTMENTS["village"])
    assert admin.departments(TOWNSHIP_B) != admin.departments(TOWNSHIP_A)


def test_the_working_calendar_is_validated_and_round_trips(desk):
    admin = desk.events(ADMIN)
    assert admin.calendar() == DEFAULT_CALENDAR.to_config()
    summer = {
        "periods": [["08:00", "11:30"], ["15:00", "18:30"]],
        "weekend": [5, 6],
        "holidays": ["2026-12-31"],
        "makeup_workdays": ["2026-12-27"],
        "utc_offset_minutes": 480,
    }
    backwards = {**summer, "periods": [["18:00", "08:30"]]}
    assert_names_field(refused(admin.set_calendar, backwards), "calendar.periods")
    overlapping = {**summer, "periods": [["08:00", "12:00"], ["11:00", "17:00"]]}
    assert_names_field(refused(admin.set_calendar, overlapping), "calendar.periods")
    assert_names_field(refused(admin.set_calendar, {**summer, "weekend": [7]}), "calendar.weekend")
    incomplete = {key: value for key, value in summer.items() if key != "holidays"}
    assert_names_field(refused(admin.set_calendar, incomplete), "calendar.holidays")
    forbidden = refused(desk.events(COUNTY_CENTRE).set_calendar, summer)
    assert forbidden.exc_type == "Forbidden"
    assert admin.calendar() == DEFAULT_CALENDAR.to_config()

    assert admin.set_calendar(summer) == summer
    assert admin.calendar() == summer


def test_the_deadline_policy_is_validated(desk):
    admin = desk.events(ADMIN)
    policy = admin.policy()
    assert set(policy) == {
        "auto_escalate_after_hours",
        "duplicate_radius_m",
        "duplicate_window_hours",
    }
    assert_names_field(refused(admin.set_policy, {"coffee_breaks": 2}), "coffee_breaks")
    assert_names_field(
        refused(admin.set_policy, {"auto_escalate_after_hours": -1}), "auto_escalate_after_hours"
    )
    assert_names_field(
        refused(admin.set_policy, {"duplicate_radius_m": True}), "duplicate_radius_m"
    )
    for too_far in (1e307, float("inf"), float("nan")):  # past counting: never a 500
        assert_names_field(
            refused(admin.set_policy, {"auto_escalate_after_hours": too_far}),
            "auto_escalate_after_hours",
        )
    assert refused(desk.events(COUNTY_CENTRE).set_policy, {}).exc_type == "Forbidden"
    assert admin.policy() == policy

    changed = admin.set_policy({"auto_escalate_after_hours": 4, "duplicate_radius_m": 50})
    assert changed == {**policy, "auto_escalate_after_hours": 4.0, "duplicate_radius_m": 50.0}
    assert admin.policy() == changed


def test_a_deadline_policy_that_is_not_an_object_is_refused(desk):
    error = refused(desk.events(ADMIN).set_policy, ["auto_escalate_after_hours", 4])
    assert error.exc_type == "InvalidInput"


def test_working_days_follow_the_county_calendar(county):
    # The National Day holiday runs to the 7th; Saturday the 10th is a makeup working day.
    days = county.events.working_days("2026-10-01", "2026-10-11")
    assert days == ["2026-10-08", "2026-10-09", "2026-10-10"]
    assert_names_field(refused(county.events.working_days, "2026-10", "2026-10-11"), "first")
    assert_names_field(refused(county.events.working_days, "2026-01-01", "2027-06-01"), "last")


def test_a_closure_says_the_case_once_ran_over_and_the_timer_is_no_person(
    desk, services, events_db, department_tap
):
    late = desk.to_state(desk.report(), "registered")
    on_time = desk.to_state(desk.report(), "registered")
    stuck = desk.to_state(desk.report(), "registered")
    tap = department_tap("incident.#")
    # The timer marks a case overdue without a new version; the centre's next step keeps
    # the mark (a step racing the timer keeps it too: `_keep_deadline_marks`).
    move_deadlines(events_db, late, warn_ago=2 * MINUTE, due_ago=MINUTE)
    move_deadlines(events_db, stuck, warn_ago=WEEKS_AGO + MINUTE, due_ago=WEEKS_AGO)
    run_timer(services, "check_deadlines")
    dispatched = desk.act(VILLAGE_A_CENTRE, late, "dispatch", department_code=COMMITTEE_A)
    assert events_db["incidents"].find_one({"_id": late["id"]})["overdue_seq"] > 0
    # the timer's automatic escalation and supervision are no person's doing
    automatic = [body for key, body in tap() if action_of(key) in ("escalated", "supervised")]
    assert [body["data"]["incident_id"] for body in automatic] == [stuck["id"]] * 2
    assert {body["data"]["actor_id"] for body in automatic} == {None}

    closed = []
    for case in (dispatched, on_time):
        desk.to_state(case, "closed")
        closed += [body for key, body in tap() if action_of(key) == "closed"]
    assert [(b["data"]["incident_id"], b["data"]["ever_overdue"]) for b in closed] == [
        (late["id"], True),
        (on_time["id"], False),
    ]
    assert all(b["data"]["approved_extensions"] == 0 for b in closed)
