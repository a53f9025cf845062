"""The case page's action forms: which fields each step of the loop asks for, and how a
submitted form becomes the `fields` the events service's `act` takes (the same fields
the API's command bodies carry, services/gateway/routes/incidents/actions.py).

Which actions a user sees is not decided here: the events service lists them in the
case's `allowed_actions` (its state machine and the caller's role and scope)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask_babel import lazy_gettext as _l

from gridwork_common.clock import CHINA_TIME
from services.gateway.ui import labels

MAX_TEXT = 2000  # as the API's Text fields


@dataclass(frozen=True)
class Field:
    name: str  # the command's field name
    label: object
    kind: str = "text"  # text, textarea, choice, yes_no, number, stars, moment, department
    required: bool = False
    choices: tuple[tuple[str, object], ...] = ()


@dataclass(frozen=True)
class ActionForm:
    action: str  # the events service's action name
    label: object
    fields: tuple[Field, ...] = ()
    confirm: object = ""
    photos: bool = False  # after-photos uploaded with the form (feedback)


COMMENT = Field("comment", _l("Comment"), "textarea")
REJECT_REASONS = (
    ("duplicate", _l("Duplicate of another case")),
    ("not_ours", _l("Not for this centre")),
    ("invalid", _l("Not a valid report")),
)

FORMS: dict[str, ActionForm] = {
    form.action: form
    for form in (
        ActionForm("accept", _l("Accept"), (COMMENT,)),
        ActionForm(
            "reject",
            _l("Reject"),
            (
                Field("reason", _l("Reason"), "choice", True, REJECT_REASONS),
                Field("duplicate_of", _l("Duplicate of (case number)")),
                COMMENT,
            ),
            confirm=_l("Reject this case?"),
        ),
        ActionForm("register", _l("Register"), (COMMENT,)),
        ActionForm(
            "dispatch",
            _l("Dispatch"),
            (
                Field("department_code", _l("Department"), "department"),
                Field("to_centre", _l("Or down to the centre (code)")),
                COMMENT,
            ),
        ),
        ActionForm("sign", _l("Sign for it"), (COMMENT,)),
        ActionForm(
            "return",
            _l("Return"),
            (Field("reason", _l("Reason"), "textarea", True),),
            confirm=_l("Return this case?"),
        ),
        ActionForm(
            "feedback",
            _l("Feedback"),
            (Field("result", _l("Work done"), "textarea", True),),
            photos=True,
        ),
        ActionForm(
            "request_extension",
            _l("Ask for an extension"),
            (
                Field("hours", _l("Working hours asked for"), "number", True),
                Field("reason", _l("Reason"), "textarea", True),
            ),
        ),
        ActionForm(
            "decide_extension",
            _l("Decide the extension"),
            (Field("approve", _l("Approve the extension"), "yes_no", True), COMMENT),
        ),
        ActionForm(
            "supervise",
            _l("Supervise"),
            (
                Field("note", _l("Supervision note"), "textarea", True),
                Field("new_due", _l("New deadline (China time)"), "moment"),
            ),
        ),
        ActionForm(
            "verify",
            _l("Verify"),
            (Field("passed", _l("The work is done"), "yes_no", True), COMMENT),
        ),
        ActionForm("close", _l("Close"), (COMMENT,), confirm=_l("Close this case?")),
        ActionForm(
            "evaluate",
            _l("Evaluate"),
            (Field("satisfaction", _l("Satisfaction (1 to 5)"), "stars", True), COMMENT),
        ),
        ActionForm("escalate", _l("Escalate"), (Field("reason", _l("Reason"), "textarea"),)),
        ActionForm("suspend", _l("Suspend"), (Field("reason", _l("Reason"), "textarea", True),)),
        ActionForm("resume", _l("Resume"), (COMMENT,)),
    )
}


class FieldProblems(Exception):
    def __init__(self, errors: dict[str, str]):
        super().__init__(errors)
        self.errors = errors


def command_fields(form: ActionForm, submitted) -> dict:
    """The `fields` of the events service's `act` from a submitted form (blank optional
    fields left out, as the API leaves out unset ones); FieldProblems names the fields
    that are missing or unreadable."""
    fields: dict = {}
    errors: dict[str, str] = {}
    for spec in form.fields:
        raw = (submitted.get(spec.name) or "").strip()
        if not raw:
            if spec.required:
                errors[spec.name] = str(_l("This field is required."))
            continue
        try:
            fields[spec.name] = _value(spec, raw)
        except ValueError:
            errors[spec.name] = str(_l("This value cannot be read."))
    if errors:
        raise FieldProblems(errors)
    return fields


def _value(spec: Field, raw: str):
    if len(raw) > MAX_TEXT:
        raise ValueError(spec.name)
    if spec.kind == "yes_no":
        if raw not in ("yes", "no"):
            raise ValueError(spec.name)
        return raw == "yes"
    if spec.kind == "stars":
        value = int(raw)
        if not 1 <= value <= 5:
            raise ValueError(spec.name)
        return value
    if spec.kind == "number":
        value = float(raw)
        if not 0 < value <= 2000:
            raise ValueError(spec.name)
        return value
    if spec.kind == "moment":  # <input type=datetime-local>, read as China time
        return datetime.fromisoformat(raw).replace(tzinfo=CHINA_TIME).isoformat()
    if spec.kind == "choice" and raw not in {value for value, _ in spec.choices}:
        raise ValueError(spec.name)
    return raw


# Timeline steps: the forms' labels, and the steps no form takes.
STEP_LABELS = {
    **{action: form.label for action, form in FORMS.items()},
    "report": _l("Report"),
    "merge": _l("Merge"),
}


def rejection_label(reason: str | None) -> str:
    return str(dict(REJECT_REASONS).get(reason, reason or ""))


def state_label(state: str | None) -> str:
    return labels.label(labels.CASE_STATES, state)


def step_label(action: str) -> str:
    return str(STEP_LABELS.get(action, action))
