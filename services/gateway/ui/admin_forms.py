"""Administration forms: a posted form checked by the same pydantic models the API's
routes check their JSON bodies with (so the page and the API accept the same values),
and the first problem found named by its field, in the catalogue's words."""

from __future__ import annotations

from flask_babel import gettext as _
from pydantic import BaseModel, ValidationError

from services.gateway.problems import ApiProblem
from services.gateway.ui.pages import FormError


def problem_message(error: dict) -> str:
    """A pydantic error in the catalogue's words."""
    kind = error.get("type", "")
    if kind.startswith("date") or kind.startswith("datetime"):
        return _("“%(value)s” is not a date (YYYY-MM-DD).", value=error.get("input"))
    if kind == "string_pattern_mismatch":
        return _("The format is not right.")
    if kind in ("string_too_short", "too_short"):
        limit = (error.get("ctx") or {}).get("min_length")
        return _("Too short: at least %(count)s.", count=limit)
    if kind in ("string_too_long", "too_long"):
        limit = (error.get("ctx") or {}).get("max_length")
        return _("Too long: at most %(count)s.", count=limit)
    if kind in ("greater_than", "float_parsing", "float_type"):
        return _("Give a number greater than 0.")
    if kind == "less_than_equal":
        limit = (error.get("ctx") or {}).get("le")
        return _("At most %(count)s.", count=limit)
    if kind == "literal_error":
        return _("Not one of the choices.")
    if kind == "missing":
        return _("Required.")
    return _("Not valid.")


def validated(model: type[BaseModel], data: dict) -> BaseModel:
    """`model` made from `data`, or FormError naming the first invalid field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first.get("loc") else None
        raise FormError(field, problem_message(first)) from None


def form_error(problem: ApiProblem) -> FormError:
    """What the gateway's identity store refuses (taken username, unknown role...) as a
    form error on its field; anything else is not a form's business."""
    if problem.status in (409, 422):
        field = problem.extensions.get("field")
        if problem.status == 409 and field == "username":
            return FormError("username", _("This username is already taken."))
        return FormError(field, problem.detail or _("Not valid."))
    raise problem


def lines(text: str) -> list[str]:
    """The non-empty lines (or comma-separated values) of a text area."""
    return [part.strip() for part in text.replace(",", "\n").splitlines() if part.strip()]
