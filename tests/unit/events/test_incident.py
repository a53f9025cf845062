import math
from datetime import UTC, datetime, timedelta, timezone
from itertools import pairwise

import pytest

from services.events.domain.incident import (
    ACTIONS_BY_STATE,
    STATES,
    Accept,
    Actor,
    Close,
    DecideExtension,
    Dispatch,
    Escalate,
    Evaluate,
    Feedback,
    IllegalTransition,
    Incident,
    InvalidCommand,
    NotPermitted,
    Register,
    Reject,
    Report,
    RequestExtension,
    Resume,
    Return,
    Sign,
    StaleVersion,
    Supervise,
    Suspend,
    TimelineEntry,
    Verify,
    allowed_actions,
    apply,
    from_document,
    report,
    to_document,
)

# --- a county, its centres and its departments

COUNTY = "530402"
TOWNSHIP = "530402001"
VILLAGE = "530402001002"
GRID = "530402001002003"
NEIGHBOUR_GRID = "530402001002009"
OTHER_VILLAGE = "530402001005"
OTHER_TOWNSHIP = "530402007"

VILLAGE_DEPT = f"{VILLAGE}-committee"
TOWNSHIP_DEPT = f"{TOWNSHIP}-police-station"
COUNTY_DEPT = f"{COUNTY}-police"
OTHER_VILLAGE_DEPT = f"{OTHER_VILLAGE}-committee"
DEPARTMENTS = {
    VILLAGE_DEPT: VILLAGE,
    TOWNSHIP_DEPT: TOWNSHIP,
    COUNTY_DEPT: COUNTY,
    OTHER_VILLAGE_DEPT: OTHER_VILLAGE,
}

NORMAL_HOURS = {
    "accept": 2,
    "register": 2,
    "dispatch": 4,
    "sign": 4,
    "handle": 35,
    "verify": 7,
    "close": 4,
}
ON_SITE_CATEGORY = "04.01"  # litter: a grid worker may clear it up on the spot
DISPATCH_CATEGORY = "05.01"  # broken street light: needs a department


class FakeRules:
    """A linear working calendar: `pace` wall minutes pass per working minute (pace 2 is a
    calendar where only every other minute counts). Urgent stages take a quarter."""

    def __init__(self, pace: float = 1):
        self.pace = pace

    def stage_hours(self, category, urgency, stage):
        hours = NORMAL_HOURS[stage]
        return hours / 4 if urgency == "urgent" else hours

    def on_site_allowed(self, category):
        return category == ON_SITE_CATEGORY

    def department_territory(self, department_code):
        return DEPARTMENTS.get(department_code)

    def add_working_minutes(self, start, minutes):
        return start + timedelta(minutes=minutes * self.pace)

    def working_minutes_between(self, start, end):
        return max((end - start) / timedelta(minutes=1), 0) / self.pace


RULES = FakeRules()
HALF_TIME = FakeRules(pace=2)

WORKER = Actor("gw-1", ("grid_worker",), scope=GRID)
NEIGHBOUR_WORKER = Actor("gw-2", ("grid_worker",), scope=NEIGHBOUR_GRID)
GRID_LEADER = Actor("gl-1", ("grid_leader",), scope=VILLAGE)
VILLAGE_OP = Actor("op-village", ("centre_operator",), scope=VILLAGE)
OTHER_VILLAGE_OP = Actor("op-other-village", ("centre_operator",), scope=OTHER_VILLAGE)
TOWNSHIP_OP = Actor("op-township", ("centre_operator",), scope=TOWNSHIP)
OTHER_TOWNSHIP_OP = Actor("op-other-township", ("centre_operator",), scope=OTHER_TOWNSHIP)
COUNTY_OP = Actor("op-county", ("centre_operator",), scope=COUNTY)
HANDLER = Actor("h-village", ("department_handler",), department=VILLAGE_DEPT)
TOWNSHIP_HANDLER = Actor("h-township", ("department_handler",), department=TOWNSHIP_DEPT)
COUNTY_HANDLER = Actor("h-county", ("department_handler",), department=COUNTY_DEPT)
LEADER = Actor("leader-1", ("leader",), scope=COUNTY)
ADMIN = Actor("admin-1", ("admin",))
SYSTEM = Actor("events-timer", ("system",))
STRANGER = Actor("someone", ())

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def full_width(digits: str) -> str:
    """The same digits in full-width form, which str.isdigit() also accepts."""
    return "".join(chr(ord(char) + 0xFEE0) for char in digits)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def hours(value: float) -> timedelta:
    return timedelta(hours=value)


def report_command(**overrides) -> Report:
    fields = {
        "incident_id": "inc-1",
        "category": DISPATCH_CATEGORY,
        "urgency": "normal",
        "grid_code": GRID,
        "description": "路灯不亮 street light out",
        "media_ids": ["photo-1"],
        "location": (102.54, 24.35),
    }
    return Report(**{**fields, **overrides})


def new_case(actor=WORKER, now=T0, rules=RULES, **overrides) -> Incident:
    return report(report_command(**overrides), actor, now, rules).incident


def act(incident, command_type, actor, now, rules=RULES, **fields):
    """Run a command decided on the incident's current version."""
    command = command_type(expected_version=incident.version, **fields)
    return apply(incident, command, actor, now, rules)


# The main line of the loop, one step every ten minutes.
HAPPY_PATH = [
    (Accept, VILLAGE_OP, {}),
    (Register, VILLAGE_OP, {}),
    (Dispatch, VILLAGE_OP, {"department_code": VILLAGE_DEPT}),
    (Sign, HANDLER, {}),
    (Feedback, HANDLER, {"result": "bulb replaced", "media_ids": ["after-1"]}),
    (Verify, WORKER, {"passed": True, "comment": "works", "media_ids": ["check-1"]}),
    (Close, VILLAGE_OP, {}),
    (Evaluate, WORKER, {"satisfaction": 5}),
]


def case_in(state: str, rules=RULES) -> Incident:
    """A case walked along the happy path until it reaches `state`."""
    incident = new_case(rules=rules)
    for step, (command_type, actor, fields) in enumerate(HAPPY_PATH, start=1):
        if incident.state == state:
            return incident
        incident = act(incident, command_type, actor, at(10 * step), rules, **fields).incident
    assert incident.state == state
    return incident


def last_minute(incident: Incident) -> float:
    return (incident.timeline[-1].at - T0) / timedelta(minutes=1)


# --- reporting


def test_a_report_opens_a_case_at_the_village_centre_with_an_accept_stage():
    change = report(report_command(), WORKER, T0, RULES)
    incident = change.incident

    assert change.action == "report"
    assert change.events == ("reported",)
    assert incident.state == "reported"
    assert incident.version == 1
    assert incident.owning_centre == VILLAGE
    assert incident.routing_path == (VILLAGE,)
    assert incident.escalation_path == ()
    assert incident.reporter_id == WORKER.user_id
    assert incident.reported_at == T0
    assert incident.media_ids == ("photo-1",)
    assert incident.location == (102.54, 24.35)
    assert incident.stage == "accept"
    assert incident.stage_seq == 1
    assert incident.stage_started_at == T0
    assert incident.stage_due == T0 + hours(2)
    assert incident.stage_warn_at == T0 + hours(2) * 0.8
    assert incident.timeline == (
        TimelineEntry(
            action="report",
            from_state=None,
            to_state="reported",
            actor_id=WORKER.user_id,
            actor_roles=("grid_worker",),
            at=T0,
        ),
    )


def test_urgent_cases_run_on_the_urgent_stage_limits():
    incident = new_case(urgency="urgent")
    assert incident.stage_due == T0 + hours(0.5)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"incident_id": ""}, "incident_id"),
        ({"category": "  "}, "category"),
        ({"urgency": "critical"}, "urgency"),
        ({"grid_code": VILLAGE}, "grid_code"),
        ({"grid_code": "53040200100200X"}, "grid_code"),
        ({"grid_code": full_width(GRID)}, "grid_code"),
        ({"grid_code": None}, "grid_code"),
        ({"description": ""}, "description"),
        ({"description": "x" * 2001}, "description"),
        ({"media_ids": "photo-1"}, "media_ids"),
        ({"media_ids": ["photo-1", ""]}, "media_ids"),
        ({"media_ids": [f"p-{n}" for n in range(21)]}, "media_ids"),
        ({"location": (200.0, 24.0)}, "location"),
        ({"location": "12"}, "location"),
        ({"location": (True, 1.0)}, "location"),
        ({"location": (1.0, math.nan)}, "location"),
        ({"reporter_id": ""}, "reporter_id"),
        ({"resolved_on_spot": "yes"}, "resolved_on_spot"),
    ],
)
def test_a_bad_report_field_is_named(overrides, field):
    with pytest.raises(InvalidCommand) as refused:
        report(report_command(**overrides), WORKER, T0, RULES)
    assert refused.value.field == field
    assert str(refused.value).startswith(f"{field}: ")


@pytest.mark.parametrize("actor", [WORKER, GRID_LEADER, VILLAGE_OP, TOWNSHIP_OP, SYSTEM, ADMIN])
def test_grid_staff_centres_and_the_system_may_report(actor):
    assert new_case(actor=actor).state == "reported"


@pytest.mark.parametrize(
    "actor",
    [
        NEIGHBOUR_WORKER,
        OTHER_VILLAGE_OP,
        HANDLER,
        LEADER,
        STRANGER,
        Actor("gw-x", ("grid_worker",)),
        Actor("gw-y", ("grid_worker",), scope="53"),
    ],
)
def test_reporting_is_refused_to_other_roles_and_outside_ones_territory(actor):
    with pytest.raises(NotPermitted):
        report(report_command(), actor, T0, RULES)


def test_the_system_reports_on_behalf_of_a_citizen():
    incident = new_case(actor=SYSTEM, reporter_id="citizen-42")
    assert incident.reporter_id == "citizen-42"
    assert incident.timeline[0].actor_id == SYSTEM.user_id


def test_a_grid_worker_reports_only_as_themselves():
    with pytest.raises(NotPermitted, match="behalf"):
        report(report_command(reporter_id="citizen-42"), WORKER, T0, RULES)


def test_naive_times_are_refused():
    with pytest.raises(InvalidCommand, match=r"^now: "):
        report(report_command(), WORKER, T0.replace(tzinfo=None), RULES)


# --- on-the-spot resolution (自行处置)


def test_a_grid_worker_resolves_a_small_case_on_the_spot():
    command = report_command(category=ON_SITE_CATEGORY, resolved_on_spot=True)
    change = report(command, WORKER, T0, RULES)
    incident = change.incident

    assert change.events == ("reported", "closed")
    assert incident.state == "closed"
    assert incident.resolved_on_spot
    assert incident.version == 2
    assert [(e.action, e.from_state, e.to_state) for e in incident.timeline] == [
        ("report", None, "reported"),
        ("close", "reported", "closed"),
    ]
    assert incident.timeline[1].details == {"resolved_on_spot": True}
    assert incident.closed_at == T0
    assert incident.department is None
    assert incident.stage is None and incident.stage_due is None
    assert allowed_actions(incident) == ["evaluate"]


def test_on_the_spot_resolution_is_only_for_categories_that_allow_it():
    command = report_command(category=DISPATCH_CATEGORY, resolved_on_spot=True)
    with pytest.raises(InvalidCommand, match=r"^resolved_on_spot: "):
        report(command, WORKER, T0, RULES)


def test_on_the_spot_resolution_needs_evidence():
    command = report_command(category=ON_SITE_CATEGORY, resolved_on_spot=True, media_ids=[])
    with pytest.raises(InvalidCommand, match=r"^media_ids: "):
        report(command, WORKER, T0, RULES)


@pytest.mark.parametrize("actor", [NEIGHBOUR_WORKER, VILLAGE_OP, SYSTEM, ADMIN])
def test_on_the_spot_resolution_is_for_grid_staff_in_their_own_grid(actor):
    command = report_command(category=ON_SITE_CATEGORY, resolved_on_spot=True)
    with pytest.raises(NotPermitted):
        report(command, actor, T0, RULES)


def test_a_grid_leader_may_resolve_in_any_grid_of_their_village():
    command = report_command(category=ON_SITE_CATEGORY, resolved_on_spot=True)
    assert report(command, GRID_LEADER, T0, RULES).incident.state == "closed"


# --- the happy path


def test_the_happy_path_from_report_to_evaluation():
    incident = new_case()
    expected = [
        # (state, events, stage, stage hours)
        ("accepted", ("accepted",), "register", 2),
        ("registered", ("registered",), "dispatch", 4),
        ("dispatched", ("dispatched",), "sign", 4),
        ("handling", ("signed",), "handle", 35),
        ("awaiting_verification", ("handled",), "verify", 7),
        ("verified", ("verified",), "close", 4),
        ("closed", ("closed",), None, None),
        ("evaluated", ("evaluated",), None, None),
    ]
    for step, ((command_type, actor, fields), outcome) in enumerate(
        zip(HAPPY_PATH, expected, strict=True), start=1
    ):
        state, events, stage, stage_hours = outcome
        now = at(10 * step)
        change = act(incident, command_type, actor, now, **fields)
        incident = change.incident

        assert change.action == command_type.action
        assert change.events == events
        assert incident.state == state
        assert incident.version == step + 1
        assert len(incident.timeline) == incident.version
        assert incident.stage == stage
        if stage is None:
            assert incident.stage_due is None
            assert incident.stage_warn_at is None
            assert incident.stage_started_at is None
        else:
            assert incident.stage_seq == step + 1
            assert incident.stage_started_at == now
            assert incident.stage_due == now + hours(stage_hours)
            assert incident.stage_warn_at == now + hours(stage_hours) * 0.8

    assert [entry.action for entry in incident.timeline] == [
        "report",
        "accept",
        "register",
        "dispatch",
        "sign",
        "feedback",
        "verify",
        "close",
        "evaluate",
    ]
    chained = pairwise(incident.timeline)
    assert all(before.to_state == after.from_state for before, after in chained)
    assert incident.department == VILLAGE_DEPT  # kept for the record: who solved it
    assert incident.result == "bulb replaced"
    assert incident.closed_at == at(70)
    assert incident.satisfaction == 5
    assert incident.stage_seq == 7  # closed and evaluated start no stage
    assert incident.is_terminal
    assert allowed_actions(incident) == []


def test_the_timeline_records_who_did_what_with_which_fields():
    incident = case_in("evaluated")
    by_action = {entry.action: entry for entry in incident.timeline}

    assert by_action["dispatch"].details == {"department": VILLAGE_DEPT}
    assert by_action["dispatch"].actor_id == VILLAGE_OP.user_id
    assert by_action["dispatch"].actor_roles == ("centre_operator",)
    assert by_action["dispatch"].at == at(30)
    assert by_action["feedback"].media_ids == ("after-1",)
    assert by_action["feedback"].details == {"department": VILLAGE_DEPT, "result": "bulb replaced"}
    assert by_action["verify"].comment == "works"
    assert by_action["verify"].media_ids == ("check-1",)
    assert by_action["verify"].details == {"passed": True}
    assert by_action["evaluate"].details == {"satisfaction": 5, "by_reporter": True}


# --- illegal transitions


def test_an_illegal_transition_names_the_state_and_the_actions_it_allows():
    incident = new_case()
    with pytest.raises(IllegalTransition) as refused:
        act(incident, Sign, HANDLER, at(1))
    assert str(refused.value) == (
        "cannot sign a case in state 'reported'; allowed: accept, reject, supervise"
    )
    assert refused.value.state == "reported"
    assert refused.value.allowed == ("accept", "reject", "supervise")


@pytest.mark.parametrize(
    ("state", "allowed"),
    [
        ("reported", ["accept", "reject", "supervise"]),
        ("accepted", ["register", "escalate", "suspend", "supervise"]),
        ("registered", ["dispatch", "escalate", "suspend", "supervise"]),
        ("dispatched", ["sign", "return", "suspend", "supervise"]),
        ("handling", ["return", "feedback", "request_extension", "suspend", "supervise"]),
        ("awaiting_verification", ["verify", "suspend", "supervise"]),
        ("verified", ["close", "suspend", "supervise"]),
        ("closed", ["evaluate"]),
        ("evaluated", []),
    ],
)
def test_each_state_allows_its_actions(state, allowed):
    assert allowed_actions(case_in(state)) == allowed


def test_every_state_has_an_entry_in_the_action_table():
    assert set(ACTIONS_BY_STATE) == set(STATES)
    assert ACTIONS_BY_STATE["rejected"] == ()


def test_a_finished_case_cannot_be_supervised_or_suspended():
    closed = case_in("closed")
    with pytest.raises(IllegalTransition, match=r"allowed: evaluate$"):
        act(closed, Supervise, COUNTY_OP, at(100), note="why so slow?")
    with pytest.raises(IllegalTransition, match=r"allowed: none$"):
        act(case_in("evaluated"), Suspend, VILLAGE_OP, at(100), reason="pause")


def test_allowed_actions_for_an_actor_are_filtered_by_permission():
    incident = new_case()
    assert allowed_actions(incident, VILLAGE_OP) == ["accept", "reject"]
    assert allowed_actions(incident, TOWNSHIP_OP) == ["supervise"]
    assert allowed_actions(incident, SYSTEM) == ["accept", "reject", "supervise"]
    assert allowed_actions(incident, WORKER) == []
    handling = case_in("handling")
    assert allowed_actions(handling, HANDLER) == ["return", "feedback", "request_extension"]
    assert allowed_actions(handling, TOWNSHIP_HANDLER) == []


def test_a_report_command_is_not_applied_to_an_existing_case():
    with pytest.raises(TypeError, match="report"):
        apply(new_case(), report_command(), WORKER, at(1), RULES)
    with pytest.raises(TypeError, match="Report"):
        report(Accept(expected_version=0), WORKER, T0, RULES)


@pytest.mark.parametrize("comment", [123, ["ok"], "x" * 2001])
def test_a_comment_is_text_of_reasonable_length(comment):
    with pytest.raises(InvalidCommand, match=r"^comment: "):
        act(new_case(), Accept, VILLAGE_OP, at(1), comment=comment)


def test_an_absent_comment_is_an_empty_one():
    incident = act(new_case(), Accept, VILLAGE_OP, at(1), comment=None).incident
    assert incident.timeline[-1].comment == ""


# --- optimistic concurrency


def test_a_stale_version_is_refused_naming_the_current_one():
    incident = case_in("registered")
    with pytest.raises(StaleVersion, match="version 3") as refused:
        apply(incident, Dispatch(expected_version=2, department_code=VILLAGE_DEPT), VILLAGE_OP,
              at(100), RULES)  # fmt: skip
    assert refused.value.current_version == 3
    assert refused.value.expected_version == 2


def test_staleness_is_reported_before_anything_else():
    incident = case_in("evaluated")
    with pytest.raises(StaleVersion):
        apply(incident, Sign(expected_version=1), STRANGER, at(100), RULES)


@pytest.mark.parametrize("version", [True, "1", None, 1.0])
def test_a_version_must_be_a_whole_number(version):
    with pytest.raises(InvalidCommand, match=r"^expected_version: "):
        apply(new_case(), Accept(expected_version=version), VILLAGE_OP, at(1), RULES)


# --- permissions, action by action


@pytest.mark.parametrize(
    ("state", "command_type", "fields"),
    [
        ("reported", Accept, {}),
        ("reported", Reject, {"reason": "invalid"}),
        ("accepted", Register, {}),
        ("registered", Dispatch, {"department_code": VILLAGE_DEPT}),
        ("verified", Close, {}),
        ("accepted", Escalate, {}),
        ("handling", Suspend, {"reason": "waiting for parts"}),
    ],
)
def test_centre_actions_belong_to_the_owning_centre(state, command_type, fields):
    incident = case_in(state)
    for outsider in (OTHER_VILLAGE_OP, TOWNSHIP_OP, COUNTY_OP, HANDLER, WORKER, LEADER, STRANGER):
        with pytest.raises(NotPermitted, match=f"centre {VILLAGE}"):
            act(incident, command_type, outsider, at(100), **fields)
    for insider in (VILLAGE_OP, ADMIN, SYSTEM, Actor("a", ("admin",), scope=TOWNSHIP)):
        assert act(incident, command_type, insider, at(100), **fields).incident.version == (
            incident.version + 1
        )


def test_an_admin_scoped_elsewhere_is_no_operator_here():
    admin_elsewhere = Actor("admin-2", ("admin",), scope=OTHER_TOWNSHIP)
    with pytest.raises(NotPermitted):
        act(new_case(), Accept, admin_elsewhere, at(1))


@pytest.mark.parametrize(
    ("state", "command_type", "fields"),
    [
        ("dispatched", Sign, {}),
        ("dispatched", Return, {"reason": "not a street light of ours"}),
        ("handling", Feedback, {"result": "done"}),
        ("handling", RequestExtension, {"hours": 7, "reason": "parts on order"}),
    ],
)
def test_department_actions_belong_to_the_case_s_department(state, command_type, fields):
    incident = case_in(state)
    headless = Actor("h-none", ("department_handler",))
    for outsider in (TOWNSHIP_HANDLER, headless, VILLAGE_OP, SYSTEM, ADMIN, WORKER):
        with pytest.raises(NotPermitted, match=f"department {VILLAGE_DEPT}"):
            act(incident, command_type, outsider, at(100), **fields)
    assert act(incident, command_type, HANDLER, at(100), **fields).incident.version == (
        incident.version + 1
    )


def test_verification_is_done_by_grid_staff_of_the_case_s_grid():
    incident = case_in("awaiting_verification")
    for outsider in (NEIGHBOUR_WORKER, VILLAGE_OP, HANDLER, SYSTEM, ADMIN, LEADER):
        with pytest.raises(NotPermitted, match=f"grid {GRID}"):
            act(incident, Verify, outsider, at(100), passed=True)
    for insider in (WORKER, GRID_LEADER):
        assert act(incident, Verify, insider, at(100), passed=True).incident.state == "verified"


def test_the_reporter_or_the_owning_centre_evaluates():
    incident = case_in("closed")
    by_reporter = act(incident, Evaluate, WORKER, at(100), satisfaction=4).incident
    assert by_reporter.timeline[-1].details == {"satisfaction": 4, "by_reporter": True}
    by_centre = act(incident, Evaluate, VILLAGE_OP, at(100), satisfaction=2).incident
    assert by_centre.satisfaction == 2
    assert by_centre.timeline[-1].details == {"satisfaction": 2, "by_reporter": False}
    for outsider in (NEIGHBOUR_WORKER, HANDLER, TOWNSHIP_OP, STRANGER):
        with pytest.raises(NotPermitted, match="reporter"):
            act(incident, Evaluate, outsider, at(100), satisfaction=5)


@pytest.mark.parametrize("satisfaction", [0, 6, -1, True, 3.5, "5", None])
def test_satisfaction_is_a_whole_number_from_one_to_five(satisfaction):
    with pytest.raises(InvalidCommand, match=r"^satisfaction: "):
        act(case_in("closed"), Evaluate, WORKER, at(100), satisfaction=satisfaction)


@pytest.mark.parametrize("satisfaction", [1, 5])
def test_satisfaction_bounds_are_accepted(satisfaction):
    incident = act(case_in("closed"), Evaluate, WORKER, at(100), satisfaction=satisfaction).incident
    assert incident.satisfaction == satisfaction


# --- supervision (督办)


@pytest.mark.parametrize("actor", [TOWNSHIP_OP, COUNTY_OP, LEADER, SYSTEM, ADMIN])
def test_upper_levels_and_leaders_supervise(actor):
    change = act(case_in("handling"), Supervise, actor, at(100), note="please hurry")
    assert change.events == ("supervised",)
    assert change.incident.supervised
    assert change.incident.supervision_count == 1
    assert change.incident.state == "handling"
    assert change.incident.timeline[-1].comment == "please hurry"


def test_a_centre_cannot_supervise_itself():
    with pytest.raises(NotPermitted, match="only cases owned by centres below it"):
        act(case_in("handling"), Supervise, VILLAGE_OP, at(100), note="self-pressure")


@pytest.mark.parametrize(
    "actor",
    [
        OTHER_TOWNSHIP_OP,
        OTHER_VILLAGE_OP,
        WORKER,
        HANDLER,
        STRANGER,
        Actor("leader-2", ("leader",), scope=OTHER_TOWNSHIP),
    ],
)
def test_supervision_is_refused_to_others(actor):
    with pytest.raises(NotPermitted):
        act(case_in("handling"), Supervise, actor, at(100), note="hurry")


def test_after_escalation_only_levels_above_the_new_owner_supervise():
    incident = act(case_in("registered"), Escalate, VILLAGE_OP, at(100)).incident
    with pytest.raises(NotPermitted):
        act(incident, Supervise, TOWNSHIP_OP, at(110), note="hurry")
    assert act(incident, Supervise, COUNTY_OP, at(110), note="hurry").incident.supervised


def test_supervision_may_set_a_new_due_time_of_the_current_stage():
    incident = case_in("handling")
    new_due = at(100) + hours(3)
    change = act(incident, Supervise, COUNTY_OP, at(100), note="by 4 pm", new_due=new_due)
    supervised = change.incident

    assert supervised.stage_due == new_due
    assert supervised.stage_warn_at == min(incident.stage_warn_at, new_due)
    assert supervised.stage_seq == incident.stage_seq  # the same stage, a tighter deadline
    assert supervised.stage_started_at == incident.stage_started_at
    assert supervised.timeline[-1].details == {"new_due": new_due}


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"note": ""}, "note"),
        ({"note": "x", "new_due": datetime(2026, 3, 3, 9, 0)}, "new_due"),
        ({"note": "x", "new_due": T0}, "new_due"),
        ({"note": "x", "new_due": "2026-03-03"}, "new_due"),
    ],
)
def test_bad_supervision_fields_are_named(fields, field):
    with pytest.raises(InvalidCommand, match=f"^{field}: "):
        act(case_in("handling"), Supervise, COUNTY_OP, at(100), **fields)


# --- rejection


@pytest.mark.parametrize("reason", ["not_ours", "invalid"])
def test_a_centre_rejects_a_report_that_is_not_a_case(reason):
    change = act(new_case(), Reject, VILLAGE_OP, at(5), reason=reason, comment="see note")
    incident = change.incident
    assert change.events == ("rejected",)
    assert incident.state == "rejected"
    assert incident.rejection_reason == reason
    assert incident.duplicate_of is None
    assert incident.stage is None and incident.stage_due is None
    assert incident.timeline[-1].details == {"reason": reason}
    assert allowed_actions(incident) == []


def test_a_duplicate_names_the_case_it_duplicates():
    incident = act(new_case(), Reject, VILLAGE_OP, at(5), reason="duplicate", duplicate_of="inc-0")
    assert incident.incident.duplicate_of == "inc-0"
    assert incident.incident.timeline[-1].details == {
        "reason": "duplicate",
        "duplicate_of": "inc-0",
    }


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"reason": "boring"}, "reason"),
        ({"reason": "duplicate"}, "duplicate_of"),
        ({"reason": "duplicate", "duplicate_of": ""}, "duplicate_of"),
        ({"reason": "duplicate", "duplicate_of": "inc-1"}, "duplicate_of"),
        ({"reason": "invalid", "duplicate_of": "inc-0"}, "duplicate_of"),
    ],
)
def test_bad_rejections_are_named(fields, field):
    with pytest.raises(InvalidCommand, match=f"^{field}: "):
        act(new_case(), Reject, VILLAGE_OP, at(5), **fields)


# --- escalation (上报)


def test_a_case_climbs_village_township_county_and_no_further():
    incident = case_in("registered")
    change = act(incident, Escalate, VILLAGE_OP, at(100), reason="needs the police")
    township = change.incident
    assert change.events == ("escalated",)
    assert township.state == "registered"
    assert township.owning_centre == TOWNSHIP
    assert township.escalation_path == (VILLAGE, TOWNSHIP)
    assert township.routing_path == (VILLAGE, TOWNSHIP)
    assert township.escalated and township.escalation_count == 1
    assert township.stage == "dispatch"
    assert township.stage_seq == incident.stage_seq + 1  # a new stage at the new centre
    assert township.stage_due == at(100) + hours(4)
    assert township.timeline[-1].details == {"from_centre": VILLAGE, "to_centre": TOWNSHIP}
    assert township.timeline[-1].comment == "needs the police"
    with pytest.raises(NotPermitted):
        act(township, Dispatch, VILLAGE_OP, at(110), department_code=VILLAGE_DEPT)

    county = act(township, Escalate, TOWNSHIP_OP, at(110)).incident
    assert county.owning_centre == COUNTY
    assert county.escalation_path == (VILLAGE, TOWNSHIP, COUNTY)
    assert county.escalation_count == 2
    assert "escalate" not in allowed_actions(county)
    with pytest.raises(IllegalTransition, match=f"county centre {COUNTY} has no level above"):
        act(county, Escalate, COUNTY_OP, at(120))

    dispatched = act(county, Dispatch, COUNTY_OP, at(120), department_code=COUNTY_DEPT)
    assert dispatched.incident.department == COUNTY_DEPT
    assert act(dispatched.incident, Sign, COUNTY_HANDLER, at(130)).incident.state == "handling"


def test_an_accepted_case_escalates_straight_into_registered_above():
    incident = act(case_in("accepted"), Escalate, SYSTEM, at(100), reason="overdue").incident
    assert incident.state == "registered"
    assert incident.owning_centre == TOWNSHIP


def test_a_returned_case_may_be_escalated():
    returned = act(case_in("dispatched"), Return, HANDLER, at(100), reason="not ours").incident
    assert act(returned, Escalate, VILLAGE_OP, at(110)).incident.owning_centre == TOWNSHIP


@pytest.mark.parametrize("actor", [WORKER, HANDLER, LEADER, TOWNSHIP_OP])
def test_escalation_is_the_owning_centre_s_decision(actor):
    with pytest.raises(NotPermitted):
        act(case_in("registered"), Escalate, actor, at(100))


# --- dispatching down to a lower centre


def _at_county() -> Incident:
    incident = act(case_in("registered"), Escalate, VILLAGE_OP, at(100)).incident
    return act(incident, Escalate, TOWNSHIP_OP, at(110)).incident


def test_a_county_dispatches_a_case_down_to_a_township():
    county = _at_county()
    change = act(county, Dispatch, COUNTY_OP, at(120), to_centre=TOWNSHIP)
    township = change.incident
    assert change.events == ("dispatched",)
    assert township.state == "registered"
    assert township.owning_centre == TOWNSHIP
    assert township.department is None
    assert township.routing_path == (VILLAGE, TOWNSHIP, COUNTY, TOWNSHIP)
    assert township.escalation_path == (VILLAGE, TOWNSHIP, COUNTY)
    assert township.stage == "dispatch" and township.stage_seq == county.stage_seq + 1
    assert township.timeline[-1].details == {"from_centre": COUNTY, "to_centre": TOWNSHIP}
    dispatched = act(township, Dispatch, TOWNSHIP_OP, at(130), department_code=TOWNSHIP_DEPT)
    assert dispatched.incident.department == TOWNSHIP_DEPT

    # Escalated again, the path restarts from where the case was sent.
    again = act(township, Escalate, TOWNSHIP_OP, at(130)).incident
    assert again.escalation_path == (VILLAGE, TOWNSHIP, COUNTY, TOWNSHIP, COUNTY)


def test_a_county_may_dispatch_straight_down_to_the_village():
    village = act(_at_county(), Dispatch, COUNTY_OP, at(120), to_centre=VILLAGE).incident
    assert village.owning_centre == VILLAGE


@pytest.mark.parametrize(
    "to_centre",
    [OTHER_VILLAGE, OTHER_TOWNSHIP, COUNTY, GRID, "530402001002x", "", "53040", 530402001],
)
def test_dispatching_down_needs_a_lower_centre_over_the_grid(to_centre):
    with pytest.raises(InvalidCommand, match=r"^to_centre: "):
        act(_at_county(), Dispatch, COUNTY_OP, at(120), to_centre=to_centre)


def test_a_village_centre_has_nobody_below_to_dispatch_to():
    with pytest.raises(InvalidCommand, match=r"^to_centre: .*below"):
        act(case_in("registered"), Dispatch, VILLAGE_OP, at(100), to_centre=VILLAGE)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({}, "department_code"),
        ({"department_code": TOWNSHIP_DEPT}, "department_code"),  # not the village's level
        ({"department_code": OTHER_VILLAGE_DEPT}, "department_code"),
        ({"department_code": "530402001002-nowhere"}, "department_code"),
        ({"department_code": ""}, "department_code"),
        ({"department_code": VILLAGE_DEPT, "to_centre": TOWNSHIP}, "to_centre"),
    ],
)
def test_a_centre_dispatches_to_an_existing_department_of_its_own_level(fields, field):
    with pytest.raises(InvalidCommand, match=f"^{field}: "):
        act(case_in("registered"), Dispatch, VILLAGE_OP, at(100), **fields)


# --- return (退回) and re-dispatch


def test_a_department_returns_a_case_that_is_not_theirs_and_it_is_dispatched_again():
    dispatched = case_in("dispatched")
    change = act(dispatched, Return, HANDLER, at(100), reason="this is the power company's")
    returned = change.incident
    assert change.events == ("returned",)
    assert returned.state == "returned"
    assert returned.department is None
    assert returned.return_count == 1
    assert returned.stage == "dispatch"
    assert returned.stage_due == at(100) + hours(4)
    assert returned.timeline[-1].details == {
        "department": VILLAGE_DEPT,
        "reason": "this is the power company's",
    }
    assert allowed_actions(returned, HANDLER) == []

    again = act(returned, Dispatch, VILLAGE_OP, at(110), department_code=VILLAGE_DEPT).incident
    assert again.state == "dispatched"
    assert again.department == VILLAGE_DEPT
    assert act(again, Sign, HANDLER, at(120)).incident.state == "handling"


def test_a_case_in_hand_may_still_be_returned_and_its_extension_request_lapses():
    handling = act(
        case_in("handling"), RequestExtension, HANDLER, at(100), hours=7, reason="parts"
    ).incident
    returned = act(handling, Return, HANDLER, at(110), reason="not ours after all").incident
    assert returned.state == "returned"
    assert returned.pending_extension is None


def test_a_return_needs_a_reason():
    with pytest.raises(InvalidCommand, match=r"^reason: "):
        act(case_in("dispatched"), Return, HANDLER, at(100), reason="   ")


def test_feedback_needs_a_result_and_media_ids_as_a_list():
    with pytest.raises(InvalidCommand, match=r"^result: "):
        act(case_in("handling"), Feedback, HANDLER, at(100), result="")
    with pytest.raises(InvalidCommand, match=r"^media_ids: "):
        act(case_in("handling"), Feedback, HANDLER, at(100), result="ok", media_ids="after-1")
    no_photos = act(case_in("handling"), Feedback, HANDLER, at(100), result="ok").incident
    assert no_photos.state == "awaiting_verification"


# --- verification and rework (返工)


def test_a_failed_verification_sends_the_case_back_for_rework_with_a_new_stage():
    waiting = case_in("awaiting_verification")
    change = act(
        waiting, Verify, WORKER, at(100), passed=False, comment="still dark", media_ids=["p-9"]
    )
    rework = change.incident
    assert change.events == ("reworked",)
    assert rework.state == "handling"
    assert rework.rework_count == 1
    assert rework.department == VILLAGE_DEPT  # the same department keeps the case
    assert rework.stage == "handle"
    assert rework.stage_seq == waiting.stage_seq + 1
    assert rework.stage_started_at == at(100)
    assert rework.stage_due == at(100) + hours(35)
    assert rework.timeline[-1].details == {"passed": False, "department": VILLAGE_DEPT}
    assert rework.timeline[-1].media_ids == ("p-9",)

    fixed = act(rework, Feedback, HANDLER, at(110), result="wiring fixed").incident
    verified = act(fixed, Verify, WORKER, at(120), passed=True).incident
    assert verified.state == "verified"
    assert verified.rework_count == 1


def test_a_failed_verification_says_what_is_wrong():
    with pytest.raises(InvalidCommand, match=r"^comment: "):
        act(case_in("awaiting_verification"), Verify, WORKER, at(100), passed=False)


def test_verification_needs_a_yes_or_no():
    with pytest.raises(InvalidCommand, match=r"^passed: "):
        act(case_in("awaiting_verification"), Verify, WORKER, at(100), passed="yes")


# --- extensions (延期)


def test_an_approved_extension_moves_the_deadline_by_working_hours():
    handling = case_in("handling", rules=HALF_TIME)
    requested = act(
        handling, RequestExtension, HANDLER, at(100), HALF_TIME, hours=7, reason="parts"
    )
    pending = requested.incident
    assert requested.events == ()
    assert pending.state == "handling"
    assert pending.pending_extension.hours == 7
    assert pending.pending_extension.requested_by == HANDLER.user_id
    assert pending.pending_extension.requested_at == at(100)
    assert pending.stage_due == handling.stage_due
    assert pending.timeline[-1].details == {"hours": 7, "reason": "parts"}
    assert allowed_actions(pending, VILLAGE_OP) == ["decide_extension", "suspend"]
    with pytest.raises(IllegalTransition, match="already pending"):
        act(pending, RequestExtension, HANDLER, at(101), HALF_TIME, hours=1, reason="more")
    with pytest.raises(NotPermitted):
        act(pending, DecideExtension, HANDLER, at(101), HALF_TIME, approve=True)

    change = act(pending, DecideExtension, VILLAGE_OP, at(110), HALF_TIME, approve=True)
    extended = change.incident
    assert change.events == ("extended",)
    assert extended.pending_extension is None
    assert extended.approved_extensions == 1
    # 7 working hours on a calendar where half the wall time works: 14 hours later.
    assert extended.stage_due == handling.stage_due + hours(14)
    assert extended.stage_warn_at == handling.stage_warn_at + hours(14)
    assert extended.stage_seq == handling.stage_seq
    assert extended.timeline[-1].details == {"approved": True, "hours": 7}


def test_a_refused_extension_leaves_the_deadline():
    pending = act(
        case_in("handling"), RequestExtension, HANDLER, at(100), hours=7, reason="parts"
    ).incident
    change = act(pending, DecideExtension, VILLAGE_OP, at(110), approve=False, comment="no")
    assert change.events == ()
    assert change.incident.pending_extension is None
    assert change.incident.stage_due == pending.stage_due
    assert change.incident.approved_extensions == 0
    assert change.incident.timeline[-1].details == {"approved": False, "hours": 7}


def test_there_is_nothing_to_decide_without_a_request():
    with pytest.raises(IllegalTransition, match="no extension request is pending"):
        act(case_in("handling"), DecideExtension, VILLAGE_OP, at(100), approve=True)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"hours": 0, "reason": "x"}, "hours"),
        ({"hours": -2, "reason": "x"}, "hours"),
        ({"hours": math.nan, "reason": "x"}, "hours"),
        ({"hours": math.inf, "reason": "x"}, "hours"),
        ({"hours": True, "reason": "x"}, "hours"),
        ({"hours": "3", "reason": "x"}, "hours"),
        ({"hours": 3, "reason": ""}, "reason"),
    ],
)
def test_bad_extension_requests_are_named(fields, field):
    with pytest.raises(InvalidCommand, match=f"^{field}: "):
        act(case_in("handling"), RequestExtension, HANDLER, at(100), **fields)


def test_an_extension_decision_is_a_yes_or_no():
    pending = act(
        case_in("handling"), RequestExtension, HANDLER, at(100), hours=7, reason="parts"
    ).incident
    with pytest.raises(InvalidCommand, match=r"^approve: "):
        act(pending, DecideExtension, VILLAGE_OP, at(110), approve="yes")


# --- suspension (挂起)


def test_suspension_stops_the_clock_and_resume_shifts_the_deadline_by_working_time():
    handling = case_in("handling", rules=HALF_TIME)
    suspended = act(
        handling, Suspend, VILLAGE_OP, at(100), HALF_TIME, reason="court ruling awaited"
    )
    paused = suspended.incident
    assert suspended.events == ()
    assert paused.state == "suspended"
    assert paused.resume_state == "handling"
    assert paused.suspended_at == at(100)
    assert paused.stage == "handle"  # the stage is kept, its clock stopped
    assert paused.stage_due == handling.stage_due
    assert paused.timeline[-1].details == {"reason": "court ruling awaited"}
    assert allowed_actions(paused) == ["resume", "supervise"]

    resumed = act(paused, Resume, VILLAGE_OP, at(100 + 180), HALF_TIME)
    back = resumed.incident
    assert resumed.events == ()
    assert back.state == "handling"
    assert back.resume_state is None and back.suspended_at is None
    # Three wall hours suspended are 90 working minutes on this calendar; the deadline
    # moves by those 90 working minutes, which is again three wall hours.
    assert back.timeline[-1].details == {"suspended_minutes": 90}
    assert back.stage_due == handling.stage_due + hours(3)
    assert back.stage_warn_at == handling.stage_warn_at + hours(3)
    assert back.stage_seq == handling.stage_seq
    assert back.stage_started_at == handling.stage_started_at


@pytest.mark.parametrize(
    "state", ["accepted", "registered", "dispatched", "awaiting_verification", "verified"]
)
def test_a_suspended_case_resumes_where_it_was(state):
    incident = case_in(state)
    paused = act(incident, Suspend, VILLAGE_OP, at(100), reason="pause").incident
    back = act(paused, Resume, SYSTEM, at(160)).incident
    assert back.state == state
    assert back.department == incident.department
    assert back.stage_due == incident.stage_due + hours(1)


def test_a_fresh_report_cannot_be_suspended():
    with pytest.raises(IllegalTransition, match="state 'reported'"):
        act(new_case(), Suspend, VILLAGE_OP, at(5), reason="pause")


def test_a_suspended_case_cannot_be_suspended_again_but_may_be_supervised():
    paused = act(case_in("handling"), Suspend, VILLAGE_OP, at(100), reason="pause").incident
    with pytest.raises(IllegalTransition, match="allowed: resume, supervise"):
        act(paused, Suspend, VILLAGE_OP, at(110), reason="again")
    supervised = act(paused, Supervise, TOWNSHIP_OP, at(110), note="why paused?").incident
    assert supervised.state == "suspended"


def test_suspension_needs_a_reason():
    with pytest.raises(InvalidCommand, match=r"^reason: "):
        act(case_in("handling"), Suspend, VILLAGE_OP, at(100), reason="")


# --- documents


def _rich_case() -> Incident:
    """A case that has been everywhere: escalated, sent down, extended, suspended."""
    incident = _at_county()
    incident = act(incident, Dispatch, COUNTY_OP, at(120), to_centre=TOWNSHIP).incident
    incident = act(incident, Dispatch, TOWNSHIP_OP, at(130), department_code=TOWNSHIP_DEPT)
    incident = act(incident.incident, Sign, TOWNSHIP_HANDLER, at(140)).incident
    incident = act(
        incident, RequestExtension, TOWNSHIP_HANDLER, at(150), hours=3.5, reason="parts"
    ).incident
    incident = act(incident, Supervise, COUNTY_OP, at(160), note="hurry", new_due=at(600))
    return act(incident.incident, Suspend, TOWNSHIP_OP, at(170), reason="rain").incident


def _walk(value):
    yield value
    if isinstance(value, dict):
        for item in value.values():
            yield from _walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item)


def test_a_document_round_trips():
    incident = _rich_case()
    document = to_document(incident)
    assert from_document(document) == incident
    assert all(
        isinstance(value, str | int | float | bool | datetime | list | dict | None)
        for value in _walk(document)
    )
    assert document["routing_path"] == [VILLAGE, TOWNSHIP, COUNTY, TOWNSHIP]
    assert document["location"] == [102.54, 24.35]
    assert document["pending_extension"]["hours"] == 3.5
    assert document["timeline"][0]["from_state"] is None
    assert isinstance(document["stage_due"], datetime)


def test_every_state_round_trips():
    for state in ("reported", "closed", "evaluated"):
        incident = case_in(state)
        assert from_document(to_document(incident)) == incident
    on_spot = report_command(category=ON_SITE_CATEGORY, resolved_on_spot=True, location=None)
    incident = report(on_spot, WORKER, T0, RULES).incident
    assert from_document(to_document(incident)) == incident


def test_documents_as_a_store_returns_them_are_read():
    """pymongo hands back naive UTC datetimes and its own _id unless told otherwise."""
    incident = _rich_case()
    document = to_document(incident)
    stored = {
        **document,
        "_id": "inc-1",
        "overdue_marked_seq": 3,
        "stage_due": document["stage_due"].astimezone(UTC).replace(tzinfo=None),
        "timeline": [
            {**entry, "at": entry["at"].replace(tzinfo=None)} for entry in document["timeline"]
        ],
    }
    assert from_document(stored) == incident


def test_times_in_another_zone_are_the_same_moments():
    china = timezone(timedelta(hours=8))
    incident = new_case(now=T0.astimezone(china))
    assert incident.stage_due == T0 + hours(2)
    assert from_document(to_document(incident)) == incident
