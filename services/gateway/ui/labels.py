"""Labels the command centre's pages show for the services' codes (case states, urgency,
staff roles, groups, risk levels, case stages, centre levels), through the message
catalogue: one table per code."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

CASE_STATES = {
    "reported": _l("Reported"),
    "accepted": _l("Accepted"),
    "rejected": _l("Rejected"),
    "registered": _l("Registered"),
    "dispatched": _l("Dispatched"),
    "handling": _l("Being handled"),
    "returned": _l("Returned"),
    "awaiting_verification": _l("Awaiting verification"),
    "verified": _l("Verified"),
    "closed": _l("Closed"),
    "evaluated": _l("Evaluated"),
    "suspended": _l("Suspended"),
}
URGENCIES = {"normal": _l("Normal"), "urgent": _l("Urgent")}
STAFF_ROLES = {
    "grid_leader": _l("Grid leader (1)"),
    "supervisor": _l("Grid supervisor (1)"),
    "full_time": _l("Full-time grid worker (1)"),
    "part_time": _l("Part-time grid worker (N)"),
}
GROUPS = {
    "severe_mental_disorder": _l("Severe mental disorder"),
    "drug_user": _l("Drug user"),
    "community_correction": _l("Community correction"),
    "released_prisoner": _l("Released prisoner"),
    "key_youth": _l("Key youth"),
    "low_income": _l("Low income"),
    "elderly_alone": _l("Elderly living alone"),
    "disabled": _l("Disabled"),
    "left_behind_child": _l("Left-behind child"),
}
STAGES = {
    "accept": _l("Accept"),
    "register": _l("Register"),
    "dispatch": _l("Dispatch"),
    "sign": _l("Sign"),
    "handle": _l("Handle"),
    "verify": _l("Verify"),
    "close": _l("Close"),
}
CENTRE_LEVELS = {"village": _l("Village"), "township": _l("Township"), "county": _l("County")}
RISK_LEVELS = {"high": _l("High risk"), "medium": _l("Medium risk"), "low": _l("Low risk")}


def label(labels: dict, code: str | None) -> str:
    """The label of a code, or the code itself when the service sends one we do not know."""
    return str(labels.get(code, code or ""))
