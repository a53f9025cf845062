"""One incident driven by random commands from random actors, right and wrong, at
increasing times. Each refusal must be the one the case's state and the actor predict and
leave the case untouched; after every step the case must still be a coherent record."""

import math
from datetime import timedelta
from itertools import pairwise

from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from services.events.domain.incident import (
    DEPARTMENT_STATES,
    STAGE_OF_STATE,
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
    InvalidCommand,
    NotPermitted,
    Register,
    Reject,
    RequestExtension,
    Resume,
    Return,
    Sign,
    StaleVersion,
    Supervise,
    Suspend,
    Verify,
    allowed_actions,
    apply,
    from_document,
    report,
    to_document,
)
from tests.unit.events.test_incident import (
    ADMIN,
    COUNTY,
    COUNTY_DEPT,
    COUNTY_HANDLER,
    COUNTY_OP,
    DEPARTMENTS,
    GRID,
    GRID_LEADER,
    HANDLER,
    LEADER,
    NEIGHBOUR_WORKER,
    ON_SITE_CATEGORY,
    OTHER_TOWNSHIP,
    OTHER_TOWNSHIP_OP,
    OTHER_VILLAGE_DEPT,
    OTHER_VILLAGE_OP,
    STRANGER,
    SYSTEM,
    T0,
    TOWNSHIP,
    TOWNSHIP_DEPT,
    TOWNSHIP_HANDLER,
    TOWNSHIP_OP,
    VILLAGE,
    VILLAGE_DEPT,
    VILLAGE_OP,
    WORKER,
    FakeRules,
    report_command,
)

CITIZEN = Actor("citizen-42", ())  # reported through Open311, evaluates from their phone
ACTORS = [
    WORKER,
    NEIGHBOUR_WORKER,
    GRID_LEADER,
    VILLAGE_OP,
    OTHER_VILLAGE_OP,
    TOWNSHIP_OP,
    OTHER_TOWNSHIP_OP,
    COUNTY_OP,
    HANDLER,
    TOWNSHIP_HANDLER,
    COUNTY_HANDLER,
    Actor("h-other", ("department_handler",), department=OTHER_VILLAGE_DEPT),
    LEADER,
    ADMIN,
    Actor("admin-township", ("admin",), scope=TOWNSHIP),
    Actor("admin-elsewhere", ("admin",), scope=OTHER_TOWNSHIP),
    SYSTEM,
    CITIZEN,
    STRANGER,
]

COMMAND_TYPES = {
    command_type.action: command_type
    for command_type in (
        Accept,
        Reject,
        Register,
        Dispatch,
        Sign,
        Return,
        Feedback,
        Verify,
        Close,
        Evaluate,
        Escalate,
        RequestExtension,
        DecideExtension,
        Suspend,
        Resume,
        Supervise,
    )
}
# Actions that start a new stage whenever they lead into a state that has one.
STAGE_STARTERS = {
    "report",
    "accept",
    "register",
    "dispatch",
    "sign",
    "return",
    "feedback",
    "verify",
    "escalate",
}
SIMPLE_EVENTS = {
    "accept": ("accepted",),
    "reject": ("rejected",),
    "register": ("registered",),
    "dispatch": ("dispatched",),
    "sign": ("signed",),
    "return": ("returned",),
    "feedback": ("handled",),
    "close": ("closed",),
    "evaluate": ("evaluated",),
    "escalate": ("escalated",),
    "request_extension": (),
    "suspend": (),
    "resume": (),
    "supervise": ("supervised",),
}
FINISHED = ("closed", "evaluated", "rejected")
MAIN_LINE = {
    "reported": "accept",
    "accepted": "register",
    "registered": "dispatch",
    "returned": "dispatch",
    "dispatched": "sign",
    "handling": "feedback",
    "awaiting_verification": "verify",
    "verified": "close",
    "closed": "evaluate",
    "suspended": "resume",
}
CENTRE_LENGTHS = (6, 9, 12)

texts = st.sampled_from(["", "  ", "ok", "still broken"])
media = st.sampled_from([[], ["m-1"], ["m-1", "m-2"], "m-1", [""]])

# Fields of each command, valid or not: the domain must sort them out.
ANY_FIELDS = {
    "accept": st.fixed_dictionaries({"comment": texts}),
    "reject": st.fixed_dictionaries(
        {
            "reason": st.sampled_from(["duplicate", "not_ours", "invalid", "boring"]),
            "duplicate_of": st.sampled_from([None, "inc-0", "inc-1", ""]),
        }
    ),
    "register": st.fixed_dictionaries({"comment": texts}),
    "dispatch": st.fixed_dictionaries(
        {
            "department_code": st.sampled_from(
                [None, VILLAGE_DEPT, TOWNSHIP_DEPT, COUNTY_DEPT, OTHER_VILLAGE_DEPT, "nope"]
            ),
            "to_centre": st.sampled_from(
                [None, None, VILLAGE, TOWNSHIP, COUNTY, OTHER_TOWNSHIP, GRID]
            ),
        }
    ),
    "sign": st.fixed_dictionaries({"comment": texts}),
    "return": st.fixed_dictionaries({"reason": texts}),
    "feedback": st.fixed_dictionaries({"result": texts, "media_ids": media}),
    "verify": st.fixed_dictionaries(
        {"passed": st.sampled_from([True, False, "yes"]), "comment": texts, "media_ids": media}
    ),
    "close": st.fixed_dictionaries({"comment": texts}),
    "evaluate": st.fixed_dictionaries({"satisfaction": st.integers(-1, 7)}),
    "escalate": st.fixed_dictionaries({"reason": texts}),
    "request_extension": st.fixed_dictionaries(
        {"hours": st.sampled_from([0, -1, 0.5, 3, 7, math.nan, True]), "reason": texts}
    ),
    "decide_extension": st.fixed_dictionaries({"approve": st.sampled_from([True, False, 1])}),
    "suspend": st.fixed_dictionaries({"reason": texts}),
    "resume": st.fixed_dictionaries({"comment": texts}),
    "supervise": st.fixed_dictionaries(
        {"note": texts, "new_due": st.sampled_from([None, None, -60, 0, 60, 600])}
    ),
}


def lower_centres(incident):
    """Centres strictly below the owning centre on the way to the case's grid."""
    owner = incident.owning_centre
    return [GRID[:length] for length in (9, 12) if length > len(owner)]


def departments_of(centre):
    return [code for code, territory in DEPARTMENTS.items() if territory == centre]


def valid_fields(data, incident, action):
    """Fields that make `action` succeed on `incident`."""
    draw = data.draw
    if action == "reject":
        reason = draw(st.sampled_from(["duplicate", "not_ours", "invalid"]))
        return {"reason": reason, "duplicate_of": "inc-0" if reason == "duplicate" else None}
    if action == "dispatch":
        targets = [{"department_code": code} for code in departments_of(incident.owning_centre)]
        targets += [{"to_centre": centre} for centre in lower_centres(incident)]
        return draw(st.sampled_from(targets))
    if action == "return":
        return {"reason": "not ours"}
    if action == "feedback":
        return {"result": "done", "media_ids": draw(st.sampled_from([[], ["after-1"]]))}
    if action == "verify":
        return {"passed": draw(st.booleans()), "comment": "looked at it"}
    if action == "evaluate":
        return {"satisfaction": draw(st.integers(1, 5))}
    if action == "request_extension":
        return {"hours": draw(st.sampled_from([0.5, 3, 7])), "reason": "parts on order"}
    if action == "decide_extension":
        return {"approve": draw(st.booleans())}
    if action == "suspend":
        return {"reason": "waiting for a court ruling"}
    if action == "supervise":
        return {"note": "hurry", "new_due": draw(st.sampled_from([None, 30, 600]))}
    return {}


class IncidentLoop(RuleBasedStateMachine):
    @initialize(
        how=st.sampled_from(
            ["worker", "worker", "leader", "centre", "citizen", "citizen", "on_spot"]
        ),
        urgency=st.sampled_from(["normal", "urgent"]),
        pace=st.sampled_from([1, 2]),
    )
    def open_a_case(self, how, urgency, pace):
        self.rules = FakeRules(pace)
        self.now = T0
        reporters = {
            "worker": (WORKER, {}),
            "leader": (GRID_LEADER, {}),
            "centre": (VILLAGE_OP, {}),
            "citizen": (SYSTEM, {"reporter_id": CITIZEN.user_id}),
            "on_spot": (WORKER, {"category": ON_SITE_CATEGORY, "resolved_on_spot": True}),
        }
        actor, fields = reporters[how]
        change = report(report_command(urgency=urgency, **fields), actor, self.now, self.rules)
        assert change.events == (("reported", "closed") if how == "on_spot" else ("reported",))
        self.incident = change.incident

    # -- steps

    def _tick(self, data):
        self.now += timedelta(minutes=data.draw(st.integers(0, 720), label="minutes later"))

    def _new_due(self, fields):
        offset = fields.get("new_due")
        if offset is not None:
            fields = {**fields, "new_due": self.now + timedelta(minutes=offset)}
        return fields

    @rule(data=st.data())
    def anyone_tries_anything(self, data):
        self._tick(data)
        action = data.draw(st.sampled_from(sorted(COMMAND_TYPES)), label="action")
        actor = data.draw(st.sampled_from(ACTORS), label="actor")
        fields = self._new_due(data.draw(ANY_FIELDS[action], label="fields"))
        version = self.incident.version + data.draw(
            st.sampled_from([0, 0, 0, 0, -1, 1, -3]), label="version offset"
        )
        command = COMMAND_TYPES[action](expected_version=version, **fields)
        before, snapshot = self.incident, to_document(self.incident)

        if version != before.version:
            expected_refusal = StaleVersion
        elif action not in allowed_actions(before):
            expected_refusal = IllegalTransition
        elif action not in allowed_actions(before, actor):
            expected_refusal = NotPermitted
        else:
            expected_refusal = InvalidCommand  # or success, if the fields are right
        try:
            change = apply(before, command, actor, self.now, self.rules)
        except (StaleVersion, IllegalTransition, NotPermitted, InvalidCommand) as refused:
            assert type(refused) is expected_refusal, (refused, expected_refusal)
            event(f"refused: {type(refused).__name__}")
            assert self.incident is before
            assert to_document(before) == snapshot  # nothing was changed in place
            return
        assert expected_refusal is InvalidCommand, f"{action} should have been refused"
        self._accept_change(before, change, action, actor)

    @rule(data=st.data())
    def someone_entitled_does_something_sensible(self, data):
        allowed = allowed_actions(self.incident)
        if allowed:
            self._act_sensibly(data, data.draw(st.sampled_from(allowed), label="action"))

    @rule(data=st.data())
    def the_case_moves_along_the_main_line(self, data):
        # Random choices among all allowed actions rarely get far; this keeps cases moving.
        action = MAIN_LINE.get(self.incident.state)
        if action is not None:
            self._act_sensibly(data, action)

    def _act_sensibly(self, data, action):
        self._tick(data)
        incident = self.incident
        entitled = [actor for actor in ACTORS if action in allowed_actions(incident, actor)]
        assert entitled, f"nobody may {action} a case in state {incident.state}"
        actor = data.draw(st.sampled_from(entitled), label="actor")
        fields = self._new_due(valid_fields(data, incident, action))
        command = COMMAND_TYPES[action](expected_version=incident.version, **fields)
        change = apply(incident, command, actor, self.now, self.rules)
        self._accept_change(incident, change, action, actor)

    def _accept_change(self, before, change, action, actor):
        after = change.incident
        entry = after.timeline[-1]
        assert change.action == action
        assert after.version == before.version + 1
        assert after.timeline[:-1] == before.timeline
        assert (entry.action, entry.from_state, entry.to_state) == (
            action,
            before.state,
            after.state,
        )
        assert (entry.actor_id, entry.at) == (actor.user_id, self.now)
        assert change.events == expected_events(action, entry)
        starts_stage = action in STAGE_STARTERS and after.state in STAGE_OF_STATE
        assert after.stage_seq == before.stage_seq + (1 if starts_stage else 0)
        if starts_stage:
            assert after.stage_started_at == self.now
        event(f"reached: {after.state}")
        self.incident = after

    # -- invariants

    @invariant()
    def the_state_is_known(self):
        assert self.incident.state in STATES

    @invariant()
    def the_version_counts_the_timeline(self):
        assert self.incident.version == len(self.incident.timeline)

    @invariant()
    def the_timeline_is_a_chain(self):
        timeline = self.incident.timeline
        assert timeline[0].action == "report" and timeline[0].from_state is None
        for before, after in pairwise(timeline):
            assert after.from_state == before.to_state
            assert after.at >= before.at
        assert timeline[-1].to_state == self.incident.state

    @invariant()
    def a_finished_case_allows_nothing_more(self):
        state = self.incident.state
        if state in ("rejected", "evaluated"):
            assert allowed_actions(self.incident) == []
        if state == "closed":
            assert allowed_actions(self.incident) == ["evaluate"]

    @invariant()
    def a_department_holds_exactly_the_cases_it_works_on(self):
        # While dispatched, handled, awaiting verification or verified the case has a
        # department of the owning centre's level; a closed case keeps it for the record
        # (unless it never had one: resolved on the spot); no other state has one.
        incident = self.incident
        if effective_state(incident) in DEPARTMENT_STATES:
            assert DEPARTMENTS[incident.department] == incident.owning_centre
        elif incident.state in ("closed", "evaluated"):
            assert (incident.department is None) == incident.resolved_on_spot
        else:
            assert incident.department is None

    @invariant()
    def counters_match_the_timeline(self):
        incident = self.incident

        def count(action, **details):
            return sum(
                1
                for entry in incident.timeline
                if entry.action == action
                and all(entry.details.get(key) == value for key, value in details.items())
            )

        assert incident.rework_count == count("verify", passed=False)
        assert incident.return_count == count("return")
        assert incident.approved_extensions == count("decide_extension", approved=True)
        assert incident.supervision_count == count("supervise")
        assert incident.escalation_count == count("escalate")
        assert incident.supervised == (incident.supervision_count > 0)

    @invariant()
    def the_stage_matches_the_state(self):
        incident = self.incident
        starts = sum(
            1
            for entry in incident.timeline
            if entry.action in STAGE_STARTERS and entry.to_state in STAGE_OF_STATE
        )
        assert incident.stage_seq == starts
        if incident.state in FINISHED:
            assert incident.stage is None
            assert incident.stage_started_at is None
            assert incident.stage_due is None
            assert incident.stage_warn_at is None
            return
        assert incident.stage == STAGE_OF_STATE[effective_state(incident)]
        assert incident.stage_started_at <= incident.stage_warn_at <= incident.stage_due

    @invariant()
    def the_owner_is_a_centre_over_the_grid(self):
        incident = self.incident
        owner, path = incident.owning_centre, incident.routing_path
        assert len(owner) in CENTRE_LENGTHS
        assert incident.grid_code.startswith(owner)
        assert path[0] == incident.grid_code[:12]
        assert path[-1] == owner
        assert all(incident.grid_code.startswith(centre) for centre in path)
        assert all(a != b for a, b in pairwise(path))
        moves = sum(
            1
            for entry in incident.timeline
            if entry.action == "escalate" or "to_centre" in entry.details
        )
        assert len(path) == 1 + moves

    @invariant()
    def the_escalation_path_follows_the_escalations(self):
        incident = self.incident
        path = ()
        moved_down_since = False
        for entry in incident.timeline:
            if entry.action == "escalate":
                low, high = entry.details["from_centre"], entry.details["to_centre"]
                assert high == low[:-3]  # one level up, to the centre above
                if not path or path[-1] != low:
                    path += (low,)
                path += (high,)
                moved_down_since = False
            elif entry.action == "dispatch" and "to_centre" in entry.details:
                moved_down_since = True
        assert incident.escalation_path == path
        assert incident.escalated == bool(path)
        if path and not moved_down_since:
            assert path[-1] == incident.owning_centre

    @invariant()
    def suspension_remembers_where_to_go_back(self):
        incident = self.incident
        suspended = incident.state == "suspended"
        assert (incident.resume_state is not None) == suspended
        assert (incident.suspended_at is not None) == suspended
        if suspended:
            assert incident.resume_state not in ("reported", "suspended", *FINISHED)

    @invariant()
    def only_a_case_in_hand_has_an_extension_pending(self):
        if self.incident.pending_extension is not None:
            assert effective_state(self.incident) == "handling"

    @invariant()
    def closure_and_satisfaction_are_recorded_when_they_happen(self):
        incident = self.incident
        assert (incident.closed_at is not None) == (incident.state in ("closed", "evaluated"))
        assert (incident.satisfaction is not None) == (incident.state == "evaluated")
        assert (incident.rejection_reason is not None) == (incident.state == "rejected")

    @invariant()
    def the_case_survives_storage(self):
        assert from_document(to_document(self.incident)) == self.incident


def effective_state(incident):
    """The state a suspended case is paused in; any other case's own state."""
    return incident.resume_state if incident.state == "suspended" else incident.state


def expected_events(action, entry):
    if action == "verify":
        return ("verified",) if entry.details["passed"] else ("reworked",)
    if action == "decide_extension":
        return ("extended",) if entry.details["approved"] else ()
    return SIMPLE_EVENTS[action]


IncidentLoop.TestCase.settings = settings(max_examples=150, stateful_step_count=30, deadline=None)
TestIncidentLoop = IncidentLoop.TestCase
