"""The case page's action forms: a submitted form becomes the fields of the events
service's `act`, as the API's command bodies carry them (services/gateway/ui/case_actions.py)."""

from __future__ import annotations

import pytest

from services.gateway.ui.case_actions import FORMS, FieldProblems, command_fields


def test_blank_optional_fields_are_left_out_and_text_is_trimmed():
    assert command_fields(FORMS["accept"], {"comment": "  "}) == {}
    assert command_fields(FORMS["accept"], {"comment": " 属实 "}) == {"comment": "属实"}


def test_a_missing_required_field_is_named():
    with pytest.raises(FieldProblems) as refused:
        command_fields(FORMS["return"], {"reason": ""})
    assert set(refused.value.errors) == {"reason"}


def test_values_take_the_types_the_commands_take():
    assert command_fields(FORMS["verify"], {"passed": "no", "comment": "未清理"}) == {
        "passed": False,
        "comment": "未清理",
    }
    assert command_fields(FORMS["evaluate"], {"satisfaction": "4"}) == {"satisfaction": 4}
    assert command_fields(FORMS["request_extension"], {"hours": "8", "reason": "等材料"}) == {
        "hours": 8.0,
        "reason": "等材料",
    }


def test_a_new_deadline_is_read_as_china_time():
    fields = command_fields(FORMS["supervise"], {"note": "尽快", "new_due": "2026-10-08T09:30"})
    assert fields["new_due"] == "2026-10-08T09:30:00+08:00"


@pytest.mark.parametrize(
    ("action", "form"),
    [
        ("reject", {"reason": "because"}),  # not one of the reasons
        ("evaluate", {"satisfaction": "6"}),
        ("verify", {"passed": "maybe"}),
        ("request_extension", {"hours": "0", "reason": "x"}),
        ("supervise", {"note": "x", "new_due": "next week"}),
    ],
)
def test_unreadable_values_are_refused_before_any_call(action, form):
    with pytest.raises(FieldProblems):
        command_fields(FORMS[action], form)


def test_every_form_is_an_action_of_the_events_service():
    from services.events.usecases.incidents import COMMANDS

    assert set(FORMS) == set(COMMANDS)


def test_every_field_is_one_the_command_takes():
    import dataclasses

    from services.events.usecases.incidents import COMMANDS

    for action, form in FORMS.items():
        taken = {field.name for field in dataclasses.fields(COMMANDS[action])}
        asked = {field.name for field in form.fields} | ({"media_ids"} if form.photos else set())
        assert asked <= taken, action
