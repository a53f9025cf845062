"""The incident loop (闭环) over RPC, as each role drives it: report, accept or reject,
register, dispatch, sign, return, feedback, verify, rework, close, evaluate; escalation,
extensions, suspension, supervision, on-the-spot resolution; the errors a caller can act
on; idempotent retries; and who may see a case."""

from datetime import timedelta

import pytest
from nameko.exceptions import RemoteError

from tests.integration.events.conftest import (
    ADMIN,
    COUNTY_CENTRE,
    POLICE_STATION_A,
    TOWNSHIP_A_CENTRE,
    VILLAGE_A_CENTRE,
    VILLAGE_COMMITTEE_A,
    WORKER_A1,
)
from tests.integration.events.support import (
    COMMITTEE_A,
    COUNTY_POLICE,
    INVALID,
    MEDIATION_A,
    MEDIATION_HANDLER_A,
    POINT_A1,
    POINT_A2,
    POINT_B1,
    POINT_BEIJING,
    POLICE_STATION_A_CODE,
    SANITATION_HANDLER_A,
    TOWNSHIP_B_CENTRE,
    WORKER_A2,
    action_of,
    assert_names_field,
    events_database,
    ids,
    new_key,
    refused,
    when,
)
from tests.population_data import COUNTY, GRID_A1, TOWNSHIP_A, TOWNSHIP_B, VILLAGE_A

pytestmark = pytest.mark.integration


# ---------------------------------------------------------------- the loop


def test_a_case_runs_the_whole_loop_and_its_timeline_records_who_did_what(desk, clock):
    case = desk.report(category="04.01", media_ids=["photo-before"], description="楼道口垃圾")
    assert (case["state"], case["version"], case["grid_code"]) == ("reported", 1, GRID_A1)
    assert case["media_ids"] == ["photo-before"] and case["reporter_id"] == WORKER_A1.user_id
    assert case["owning_centre"] == VILLAGE_A and case["stage"] == "accept"

    case = desk.act(VILLAGE_A_CENTRE, case, "accept", comment="受理")
    case = desk.act(VILLAGE_A_CENTRE, case, "register", comment="立案")
    case = desk.act(
        VILLAGE_A_CENTRE, case, "dispatch", department_code=COMMITTEE_A, comment="请清理"
    )
    assert (case["state"], case["department"]) == ("dispatched", COMMITTEE_A)
    case = desk.act(VILLAGE_COMMITTEE_A, case, "sign", comment="签收")
    case = desk.act(
        VILLAGE_COMMITTEE_A, case, "feedback", result="已清运", media_ids=["photo-after"]
    )
    assert (case["state"], case["result"]) == ("awaiting_verification", "已清运")
    case = desk.act(WORKER_A1, case, "verify", passed=True, media_ids=["photo-check"])
    case = desk.act(VILLAGE_A_CENTRE, case, "close", comment="结案")
    assert case["state"] == "closed" and case["closed_at"] is not None
    assert case["stage"] is None and case["stage_due"] is None

    too_happy = desk.refuse(WORKER_A1, case, "evaluate", satisfaction=6)
    assert_names_field(too_happy, "satisfaction")
    case = desk.act(WORKER_A1, case, "evaluate", satisfaction=5, comment="很满意")
    assert (case["state"], case["satisfaction"], case["version"]) == ("evaluated", 5, 9)
    assert case["allowed_actions"] == []

    timeline = desk.events(WORKER_A1).timeline(case["id"])
    assert [(e["action"], e["from_state"], e["to_state"]) for e in timeline] == [
        ("report", None, "reported"),
        ("accept", "reported", "accepted"),
        ("register", "accepted", "registered"),
        ("dispatch", "registered", "dispatched"),
        ("sign", "dispatched", "handling"),
        ("feedback", "handling", "awaiting_verification"),
        ("verify", "awaiting_verification", "verified"),
        ("close", "verified", "closed"),
        ("evaluate", "closed", "evaluated"),
    ]
    actors = [(e["actor_id"], e["actor_roles"]) for e in timeline]
    worker, centre = ("worker-a1", ["grid_worker"]), ("centre-va", ["centre_operator"])
    handler = ("handler-vc-a", ["department_handler"])
    assert actors == [worker, centre, centre, centre, handler, handler, worker, centre, worker]
    assert [e["comment"] for e in timeline] == [
        "",
        "受理",
        "立案",
        "请清理",
        "签收",
        "",
        "",
        "结案",
        "很满意",
    ]
    assert [e["media_ids"] for e in timeline][5:7] == [["photo-after"], ["photo-check"]]
    assert timeline[3]["details"] == {"department": COMMITTEE_A}
    assert timeline[8]["details"] == {"satisfaction": 5, "by_reporter": True}
    moments = [when(e["at"]) for e in timeline]
    assert all(moment.tzinfo is not None for moment in moments)
    assert moments == sorted(moments)
    assert moments[-1] <= clock()  # stamped by the service's (the test's) clock


def test_a_centre_rejects_a_report_as_a_duplicate_not_ours_or_invalid(desk):
    original = desk.report(category="04.01")
    second = desk.report_result(category="04.01", point=POINT_A1)
    assert [d["id"] for d in second["possible_duplicates"]] == [original["id"]]
    other_kind = desk.report_result(category="02.01", point=POINT_A1)
    assert other_kind["possible_duplicates"] == []
    elsewhere = desk.report_result(WORKER_A2, category="04.01", point=POINT_A2)
    assert elsewhere["possible_duplicates"] == []

    duplicate = second["incident"]
    assert_names_field(
        desk.refuse(VILLAGE_A_CENTRE, duplicate, "reject", reason="duplicate"), "duplicate_of"
    )
    boring = desk.refuse(VILLAGE_A_CENTRE, duplicate, "reject", reason="boring")
    assert_names_field(boring, "reason")
    rejected = desk.act(
        VILLAGE_A_CENTRE, duplicate, "reject", reason="duplicate", duplicate_of=original["id"]
    )
    assert rejected["state"] == "rejected" and rejected["allowed_actions"] == []
    assert (rejected["rejection_reason"], rejected["duplicate_of"]) == (
        "duplicate",
        original["id"],
    )

    not_ours = desk.act(VILLAGE_A_CENTRE, other_kind["incident"], "reject", reason="not_ours")
    invalid = desk.act(VILLAGE_A_CENTRE, elsewhere["incident"], "reject", reason="invalid")
    assert (not_ours["state"], not_ours["rejection_reason"]) == ("rejected", "not_ours")
    assert (invalid["state"], invalid["rejection_reason"], invalid["duplicate_of"]) == (
        "rejected",
        "invalid",
        None,
    )
    # A rejected case is no longer offered as a duplicate of a new report at the spot.
    third = desk.report_result(category="04.01", point=POINT_A1)
    assert [d["id"] for d in third["possible_duplicates"]] == [original["id"]]


def test_a_report_lists_the_same_duplicates_as_a_search_after_it_is_stored(desk):
    """The duplicates are looked up while the report is stored (the search leaves the new
    case out): what the reporter is shown is what a search made once the case is stored
    finds, the nearest first, at most 10, and a retry shows them as they stand then."""
    points = [[102.505 + 0.00005 * step, 24.305 + 0.00003 * step] for step in range(13)]
    shown = []
    for number, point in enumerate(points):
        key = f"nearby-{number}"
        result = desk.report_result(category="04.01", point=point, key=key)
        after = desk.events(WORKER_A1).possible_duplicates(result["incident"]["id"])
        assert result["possible_duplicates"] == after
        shown.append([d["id"] for d in result["possible_duplicates"]])
        if number == 6:  # a retry of an earlier report: its duplicates as they stand now
            retried = desk.report_result(category="04.01", point=points[2], key="nearby-2")
            assert retried["possible_duplicates"] == desk.events(WORKER_A1).possible_duplicates(
                retried["incident"]["id"]
            )
    ids = [
        desk.report_result(category="04.01", point=p, key=f"nearby-{n}")["incident"]["id"]
        for n, p in enumerate(points)
    ]  # retries: the same cases
    # Each report sees every earlier one (all within 200 m), nearest first, at most 10.
    assert shown[0] == []
    assert shown[5] == list(reversed(ids[:5]))
    assert shown[12][:10] == list(reversed(ids[2:12]))
    far = desk.report_result(category="04.01", point=[102.505, 24.309])  # about 440 m north
    assert far["possible_duplicates"] == []


def test_merge_rejects_the_duplicate_and_lists_it_on_the_original(desk):
    original = desk.report(category="04.01")
    duplicate = desk.report(category="04.01")
    centre = desk.events(VILLAGE_A_CENTRE)

    merged = centre.merge(original["id"], duplicate["id"], duplicate["version"], "merge-1")
    assert merged["incident"]["id"] == original["id"]
    assert merged["incident"]["merged_ids"] == [duplicate["id"]]
    assert merged["incident"]["state"] == "reported"
    assert (merged["merged"]["state"], merged["merged"]["duplicate_of"]) == (
        "rejected",
        original["id"],
    )
    assert desk.get(original)["merged_ids"] == [duplicate["id"]]
    assert desk.get(duplicate)["rejection_reason"] == "duplicate"
    retried = centre.merge(original["id"], duplicate["id"], duplicate["version"], "merge-1")
    assert retried["incident"]["merged_ids"] == [duplicate["id"]]
    assert retried["merged"]["version"] == merged["merged"]["version"]

    itself = refused(centre.merge, original["id"], original["id"], 1, new_key())
    assert_names_field(itself, "duplicate_id")
    another = desk.report(category="04.01")
    into_rejected = refused(centre.merge, duplicate["id"], another["id"], 1, new_key())
    assert_names_field(into_rejected, "incident_id", exc_types=("Conflict",))
    assert "rejected" in into_rejected.value


def test_a_merge_key_reused_to_merge_into_another_case_is_a_conflict(desk):
    first, second, duplicate = desk.report(), desk.report(), desk.report()
    centre = desk.events(VILLAGE_A_CENTRE)
    centre.merge(first["id"], duplicate["id"], 1, "merge-1")
    error = refused(centre.merge, second["id"], duplicate["id"], 1, "merge-1")
    assert_names_field(error, "idempotency_key", exc_types=("Conflict",))
    assert desk.get(second)["merged_ids"] == []
    assert desk.get(duplicate)["duplicate_of"] == first["id"]


def test_a_duplicate_must_name_a_case_that_exists(desk):
    case = desk.report()
    error = desk.refuse(
        VILLAGE_A_CENTRE, case, "reject", reason="duplicate", duplicate_of="no-such-case"
    )
    assert error.exc_type in (*INVALID, "NotFound") and "duplicate_of" in error.value


def test_a_department_returns_a_case_that_is_not_theirs_and_the_centre_dispatches_it_again(desk):
    case = desk.to_state(desk.report(category="01.01"), "dispatched", department=COMMITTEE_A)
    assert_names_field(desk.refuse(VILLAGE_COMMITTEE_A, case, "return", reason=" "), "reason")
    case = desk.act(VILLAGE_COMMITTEE_A, case, "return", reason="邻里纠纷归调委会")
    assert (case["state"], case["department"], case["return_count"]) == ("returned", None, 1)
    assert case["stage"] == "dispatch"
    assert {"dispatch", "escalate"} <= set(desk.get(case, VILLAGE_A_CENTRE)["allowed_actions"])

    case = desk.act(VILLAGE_A_CENTRE, case, "dispatch", department_code=MEDIATION_A)
    assert (case["state"], case["department"]) == ("dispatched", MEDIATION_A)
    # Both departments see it: the one that has it, and the one that gave it back.
    assert desk.get(case, VILLAGE_COMMITTEE_A)["return_count"] == 1
    case = desk.act(MEDIATION_HANDLER_A, case, "sign")
    assert case["state"] == "handling"


def test_a_failed_verification_sends_the_case_back_to_the_department_as_rework(desk):
    case = desk.to_state(desk.report(), "awaiting_verification")
    silent = desk.refuse(WORKER_A1, case, "verify", passed=False)
    assert_names_field(silent, "comment")

    case = desk.act(
        WORKER_A1, case, "verify", passed=False, comment="垃圾仍在", media_ids=["photo-still"]
    )
    assert (case["state"], case["department"], case["rework_count"]) == (
        "handling",
        COMMITTEE_A,
        1,
    )
    assert case["stage"] == "handle"
    assert "feedback" in desk.get(case, VILLAGE_COMMITTEE_A)["allowed_actions"]
    case = desk.act(VILLAGE_COMMITTEE_A, case, "feedback", result="已彻底清运")
    case = desk.act(WORKER_A1, case, "verify", passed=True)
    assert (case["state"], case["rework_count"]) == ("verified", 1)
    last = desk.events(WORKER_A1).timeline(case["id"])[-3]
    assert (last["action"], last["comment"], last["media_ids"]) == (
        "verify",
        "垃圾仍在",
        ["photo-still"],
    )
    assert last["details"] == {"passed": False, "department": COMMITTEE_A}


def test_escalation_climbs_village_township_county_keeping_the_path_and_stops_at_the_county(
    desk,
):
    case = desk.to_state(desk.report(category="02.01"), "registered")
    case = desk.act(VILLAGE_A_CENTRE, case, "escalate", reason="需派出所处置")
    assert (case["state"], case["owning_centre"]) == ("registered", TOWNSHIP_A)
    assert case["escalation_path"] == [VILLAGE_A, TOWNSHIP_A] and case["escalated"] is True
    assert desk.refuse(VILLAGE_A_CENTRE, case, "dispatch").exc_type == "NotPermitted"

    case = desk.act(TOWNSHIP_A_CENTRE, case, "escalate", reason="涉及多部门")
    assert case["owning_centre"] == COUNTY
    assert case["escalation_path"] == [VILLAGE_A, TOWNSHIP_A, COUNTY]
    assert case["routing_path"] == [VILLAGE_A, TOWNSHIP_A, COUNTY]
    assert "escalate" not in desk.get(case, COUNTY_CENTRE)["allowed_actions"]
    beyond = desk.refuse(COUNTY_CENTRE, case, "escalate")
    assert beyond.exc_type == "IllegalTransition"
    assert "no level above" in beyond.value and "'registered'" in beyond.value

    # The county hands it down to the township centre, which commands its own police.
    too_low = desk.refuse(COUNTY_CENTRE, case, "dispatch", department_code=POLICE_STATION_A_CODE)
    assert_names_field(too_low, "department_code")
    not_there = desk.refuse(COUNTY_CENTRE, case, "dispatch", to_centre=TOWNSHIP_B)
    assert_names_field(not_there, "to_centre")
    case = desk.act(COUNTY_CENTRE, case, "dispatch", to_centre=TOWNSHIP_A, comment="属地处置")
    assert (case["state"], case["owning_centre"], case["department"]) == (
        "registered",
        TOWNSHIP_A,
        None,
    )
    assert case["routing_path"] == [VILLAGE_A, TOWNSHIP_A, COUNTY, TOWNSHIP_A]
    assert case["escalation_path"] == [VILLAGE_A, TOWNSHIP_A, COUNTY]
    case = desk.act(TOWNSHIP_A_CENTRE, case, "dispatch", department_code=POLICE_STATION_A_CODE)
    assert (case["state"], case["department"]) == ("dispatched", POLICE_STATION_A_CODE)
    case = desk.act(POLICE_STATION_A, case, "sign")
    assert case["state"] == "handling"


def test_the_county_dispatches_to_its_own_departments(desk):
    case = desk.to_state(desk.report(category="02.01"), "registered")
    case = desk.act(VILLAGE_A_CENTRE, case, "escalate")
    case = desk.act(TOWNSHIP_A_CENTRE, case, "escalate")
    case = desk.act(COUNTY_CENTRE, case, "dispatch", department_code=COUNTY_POLICE)
    assert (case["state"], case["department"], case["owning_centre"]) == (
        "dispatched",
        COUNTY_POLICE,
        COUNTY,
    )


def test_an_approved_extension_moves_the_deadline_later_and_a_refused_one_leaves_it(desk):
    case = desk.to_state(desk.report(), "handling")
    due = when(desk.get(case)["stage_due"])

    by_centre = desk.refuse(VILLAGE_A_CENTRE, case, "request_extension", hours=7, reason="x")
    assert by_centre.exc_type == "NotPermitted"
    assert_names_field(
        desk.refuse(VILLAGE_COMMITTEE_A, case, "request_extension", hours=0, reason="等待"),
        "hours",
    )
    case = desk.act(VILLAGE_COMMITTEE_A, case, "request_extension", hours=7, reason="等待清运车")
    assert case["pending_extension"]["hours"] == 7 and when(case["stage_due"]) == due
    again = desk.refuse(VILLAGE_COMMITTEE_A, case, "request_extension", hours=7, reason="再等")
    assert again.exc_type == "IllegalTransition" and "already pending" in again.value
    own_decision = desk.refuse(VILLAGE_COMMITTEE_A, case, "decide_extension", approve=True)
    assert own_decision.exc_type == "NotPermitted"

    case = desk.act(VILLAGE_A_CENTRE, case, "decide_extension", approve=False, comment="不同意")
    assert case["pending_extension"] is None and when(case["stage_due"]) == due
    assert case["approved_extensions"] == 0

    case = desk.act(VILLAGE_COMMITTEE_A, case, "request_extension", hours=14, reason="设备维修")
    case = desk.act(VILLAGE_A_CENTRE, case, "decide_extension", approve=True)
    assert case["pending_extension"] is None and case["approved_extensions"] == 1
    assert when(case["stage_due"]) > due
    assert when(desk.get(case)["stage_due"]) > due
    assert case["state"] == "handling" and case["stage"] == "handle"


def test_a_centre_suspends_a_case_and_resumes_it_where_it_was(desk):
    case = desk.to_state(desk.report(), "registered")
    stage, seq, due = case["stage"], case["stage_seq"], when(desk.get(case)["stage_due"])
    assert_names_field(desk.refuse(VILLAGE_A_CENTRE, case, "suspend"), "reason")

    case = desk.act(VILLAGE_A_CENTRE, case, "suspend", reason="等待当事人返乡")
    assert (case["state"], case["resume_state"]) == ("suspended", "registered")
    assert case["allowed_actions"] == ["resume"]
    held = desk.refuse(VILLAGE_A_CENTRE, case, "dispatch", department_code=COMMITTEE_A)
    assert held.exc_type == "IllegalTransition" and "'suspended'" in held.value

    case = desk.act(VILLAGE_A_CENTRE, case, "resume", comment="当事人已返回")
    assert (case["state"], case["resume_state"], case["suspended_at"]) == ("registered", None, None)
    assert (case["stage"], case["stage_seq"]) == (stage, seq)
    assert when(case["stage_due"]) >= due
    case = desk.act(VILLAGE_A_CENTRE, case, "dispatch", department_code=COMMITTEE_A)
    assert case["state"] == "dispatched"


def test_an_upper_centre_supervises_with_a_new_deadline_but_a_centre_may_not_supervise_itself(
    desk, clock
):
    case = desk.to_state(desk.report(), "accepted")
    new_due = (clock() + timedelta(days=3)).replace(microsecond=0)

    same_level = desk.refuse(VILLAGE_A_CENTRE, case, "supervise", note="抓紧")
    assert same_level.exc_type == "NotPermitted"
    past = desk.refuse(
        TOWNSHIP_A_CENTRE, case, "supervise", note="抓紧", new_due="2020-01-01T00:00:00+00:00"
    )
    assert_names_field(past, "new_due")

    case = desk.act(
        TOWNSHIP_A_CENTRE, case, "supervise", note="限期办结", new_due=new_due.isoformat()
    )
    assert (case["state"], case["supervised"], case["supervision_count"]) == ("accepted", True, 1)
    assert when(case["stage_due"]) == new_due == when(desk.get(case)["stage_due"])
    case = desk.act(COUNTY_CENTRE, case, "supervise", note="县级督办")
    assert case["supervision_count"] == 2 and when(case["stage_due"]) == new_due
    entry = desk.events(ADMIN).timeline(case["id"])[-2]
    assert (entry["action"], entry["actor_id"], entry["comment"]) == (
        "supervise",
        TOWNSHIP_A_CENTRE.user_id,
        "限期办结",
    )


def test_a_grid_worker_resolves_a_small_case_on_the_spot_with_evidence(desk, department_tap):
    tap = department_tap("incident.#")
    result = desk.report_result(category="04.01", resolved_on_spot=True, media_ids=["photo-1"])
    case = result["incident"]
    assert (case["state"], case["resolved_on_spot"], case["version"]) == ("closed", True, 2)
    assert case["closed_at"] is not None and case["allowed_actions"] == ["evaluate"]
    timeline = desk.events(WORKER_A1).timeline(case["id"])
    assert [(e["action"], e["to_state"]) for e in timeline] == [
        ("report", "reported"),
        ("close", "closed"),
    ]
    assert [action_of(key) for key, _ in tap()] == ["reported", "closed"]

    not_small = refused(desk.report, category="02.01", resolved_on_spot=True, media_ids=["photo-2"])
    assert_names_field(not_small, "resolved_on_spot")
    no_evidence = refused(desk.report, category="04.01", resolved_on_spot=True)
    assert_names_field(no_evidence, "media_ids")
    from_the_office = refused(
        desk.report, VILLAGE_A_CENTRE, category="04.01", resolved_on_spot=True, media_ids=["p"]
    )
    assert from_the_office.exc_type == "NotPermitted"
    assert tap() == []


def test_a_report_is_placed_in_its_grid_or_refused_clearly(desk):
    far = refused(desk.report, point=POINT_BEIJING)
    assert far.exc_type == "OutsideTerritory" and far.value.startswith("location:")

    no_gps = desk.report(point=None)
    assert (no_gps["grid_code"], no_gps["location"]) == (GRID_A1, None)
    assert no_gps["owning_centre"] == VILLAGE_A

    assert_names_field(refused(desk.report, category="99.99"), "category")
    assert_names_field(refused(desk.report, category="04.01", urgency="asap"), "urgency")
    assert_names_field(refused(desk.report, VILLAGE_A_CENTRE, point=None), "location")
    not_my_grid = refused(desk.report, point=POINT_B1)
    assert not_my_grid.exc_type == "NotPermitted"


# ---------------------------------------------------------------- errors a caller can act on


def test_an_illegal_transition_names_the_state_and_the_allowed_actions(desk):
    case = desk.report()
    error = desk.refuse(VILLAGE_A_CENTRE, case, "close")
    assert error.exc_type == "IllegalTransition"
    assert "'reported'" in error.value and "allowed: accept, reject, supervise" in error.value
    unknown = desk.refuse(VILLAGE_A_CENTRE, case, "approve")
    assert_names_field(unknown, "action")


def test_the_wrong_role_department_or_centre_is_not_permitted(desk):
    case = desk.report()
    assert desk.refuse(WORKER_A1, case, "accept").exc_type == "NotPermitted"
    upper = desk.refuse(TOWNSHIP_A_CENTRE, case, "accept")
    assert upper.exc_type == "NotPermitted" and VILLAGE_A in upper.value
    assert desk.get(case, TOWNSHIP_A_CENTRE)["allowed_actions"] == ["supervise"]

    case = desk.to_state(case, "dispatched", department=COMMITTEE_A)
    case = desk.act(VILLAGE_COMMITTEE_A, case, "return", reason="不归我们管")
    case = desk.act(VILLAGE_A_CENTRE, case, "dispatch", department_code=MEDIATION_A)
    # The committee still sees the case it handled once, but may not act on it any more.
    former = desk.refuse(VILLAGE_COMMITTEE_A, case, "sign")
    assert former.exc_type == "NotPermitted" and MEDIATION_A in former.value
    assert desk.refuse(VILLAGE_A_CENTRE, case, "sign").exc_type == "NotPermitted"


def test_a_stale_expected_version_is_refused_naming_the_current_version(desk):
    case = desk.report()
    accepted = desk.act(VILLAGE_A_CENTRE, case, "accept")
    stale = desk.refuse(VILLAGE_A_CENTRE, case, "register")  # decided on version 1
    assert stale.exc_type == "StaleVersion"
    assert f"version {accepted['version']}" in stale.value
    assert desk.get(case)["version"] == accepted["version"] == 2


def test_concurrent_actions_decided_on_the_same_version_one_wins_and_the_others_are_stale(desk):
    township = desk.events(TOWNSHIP_A_CENTRE)
    for _ in range(30):
        case = desk.report()
        replies = [
            township.act.call_async(case["id"], "supervise", 1, new_key(), {"note": "催办"})
            for _ in range(10)
        ]
        outcomes = []
        for reply in replies:
            try:
                reply.result()
                outcomes.append("won")
            except RemoteError as exc:
                outcomes.append(exc.exc_type)
        assert sorted(outcomes) == ["StaleVersion"] * 9 + ["won"]
        assert desk.get(case)["supervision_count"] == 1


# ---------------------------------------------------------------- idempotency


def test_a_retried_report_returns_the_same_case_and_stores_it_once(desk, settings, department_tap):
    tap = department_tap("incident.reported.#")
    first = desk.report(key="phone-report-1", description="第一次")
    retried = desk.report(key="phone-report-1", description="第一次")
    assert retried["id"] == first["id"] and retried["version"] == 1
    with events_database(settings) as db:
        assert db["incidents"].count_documents({"reporter_id": WORKER_A1.user_id}) == 1
    assert len(tap()) == 1
    another = desk.report(key="phone-report-2", description="第一次")
    assert another["id"] != first["id"]


def test_a_retried_action_returns_the_first_result_and_changes_nothing(desk, department_tap):
    case = desk.report()
    tap = department_tap("incident.#")
    accepted = desk.act(VILLAGE_A_CENTRE, case, "accept", key="accept-1", comment="受理")
    retried = desk.act(VILLAGE_A_CENTRE, case, "accept", key="accept-1", comment="受理")
    assert (retried["state"], retried["version"]) == (accepted["state"], accepted["version"])
    assert retried["replayed_version"] == accepted["version"] == 2
    assert desk.get(case)["version"] == 2
    timeline = desk.events(ADMIN).timeline(case["id"])
    assert [e["action"] for e in timeline] == ["report", "accept"]
    assert [action_of(key) for key, _ in tap()] == ["accepted"]


def test_an_idempotency_key_reused_for_another_command_is_a_conflict(desk):
    case = desk.report()
    other = desk.report()
    accepted = desk.act(VILLAGE_A_CENTRE, case, "accept", key="key-1")
    as_register = refused(
        desk.events(VILLAGE_A_CENTRE).act, case["id"], "register", 2, "key-1", None
    )
    assert_names_field(as_register, "idempotency_key", exc_types=("Conflict",))
    on_another_case = refused(
        desk.events(VILLAGE_A_CENTRE).act, other["id"], "accept", 1, "key-1", None
    )
    assert_names_field(on_another_case, "idempotency_key", exc_types=("Conflict",))
    assert desk.get(case)["version"] == accepted["version"]
    assert desk.get(other)["version"] == 1


def test_a_report_key_reused_for_a_different_report_is_a_conflict(desk):
    desk.report(key="phone-report-1", category="04.01", description="楼道口垃圾")
    error = refused(desk.report, key="phone-report-1", category="02.01", description="可疑包裹")
    assert_names_field(error, "idempotency_key", exc_types=("Conflict",))


def test_concurrent_retries_of_one_report_all_return_the_same_case(desk, settings):
    worker = desk.events(WORKER_A1)
    report = {"category": "04.01", "description": "楼道口垃圾", "location": POINT_A1}
    for attempt in range(30):
        replies = [worker.report_incident.call_async(report, f"3g-{attempt}") for _ in range(8)]
        outcomes = []
        for reply in replies:
            try:
                outcomes.append(reply.result()["incident"]["id"])
            except RemoteError as exc:
                outcomes.append(exc.exc_type)
        assert len(set(outcomes)) == 1, outcomes
    with events_database(settings) as db:
        assert db["incidents"].count_documents({}) == 30


# ---------------------------------------------------------------- who sees a case


def test_centres_see_their_territory_and_departments_the_cases_they_were_given(desk, settings):
    case = desk.report()
    for outsider in (TOWNSHIP_B_CENTRE, SANITATION_HANDLER_A, VILLAGE_COMMITTEE_A):
        assert refused(desk.events(outsider).get_incident, case["id"]).exc_type == "NotFound"
        assert refused(desk.events(outsider).timeline, case["id"]).exc_type == "NotFound"
        assert desk.events(outsider).search({})["items"] == []
    assert desk.get(case, TOWNSHIP_A_CENTRE)["id"] == case["id"]
    assert ids(desk.events(TOWNSHIP_A_CENTRE).search({})) == {case["id"]}
    cannot_act = desk.refuse(TOWNSHIP_B_CENTRE, case, "accept")
    assert cannot_act.exc_type == "NotFound"

    case = desk.to_state(case, "dispatched", department=COMMITTEE_A)
    assert desk.get(case, VILLAGE_COMMITTEE_A)["department"] == COMMITTEE_A
    case = desk.act(VILLAGE_COMMITTEE_A, case, "return", reason="不归我们管")
    returned = desk.get(case, VILLAGE_COMMITTEE_A)
    assert returned["state"] == "returned" and returned["department"] is None
    with events_database(settings) as db:
        stored = db["incidents"].find_one({"_id": case["id"]})
    assert stored["departments_involved"] == [COMMITTEE_A]
    assert ids(desk.events(VILLAGE_COMMITTEE_A).search({})) == {case["id"]}
    assert refused(desk.events(MEDIATION_HANDLER_A).get_incident, case["id"]).exc_type == (
        "NotFound"
    )
