"""The case queues' data: which queues a role has and what each asks the events service
(its `search` with the queue's own filters, within the caller's scope), the filters a
user sets in the URL, the whole filtered set loaded page by page (so the screen, its
sort and the CSV export are one and the same list), and each case's deadline status
from the working time the events service counts on the county calendar."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from flask_babel import lazy_gettext as _l

from gridwork_common import roles
from gridwork_common.context import CallerContext
from gridwork_common.paging import MAX_PAGE
from gridwork_common.service_names import EVENTS
from services.gateway.routes.incidents.shared import CATEGORY_CODE, TERRITORY_CODE
from services.gateway.ui import labels
from services.gateway.ui.pages import Page

# The most cases a queue loads (screen, sort and CSV alike): 25 pages of the service's
# largest page. A bigger set says so on the page and asks for a narrower filter.
MAX_ROWS = 5000
PAGE_SIZES = (20, 50, 100)
DEFAULT_PAGE_SIZE = 50
SORTS = ("deadline", "-deadline", "reported", "-reported")

CENTRE = (roles.CENTRE_OPERATOR, roles.ADMIN)
DEPARTMENT = (roles.DEPARTMENT_HANDLER,)
GRID = (roles.GRID_WORKER, roles.GRID_LEADER)
WATCHERS = (roles.LEADER, roles.CENTRE_OPERATOR, roles.ADMIN)
EVERYONE = CENTRE + DEPARTMENT + GRID + (roles.LEADER,)

STATUS_LABELS = {
    "green": _l("On time"),
    "amber": _l("Due soon"),
    "red": _l("Overdue"),
    "none": _l("No deadline"),
}


def _owned(state: str) -> Callable[[CallerContext], dict]:
    """Cases in `state` that the caller's own centre owns."""
    return lambda caller: {"state": state, "owning_centre": caller.scope or ""}


def _held(state: str) -> Callable[[CallerContext], dict]:
    """Cases in `state` held by the caller's department."""
    return lambda caller: {"state": state, "department": caller.department or ""}


def _returned(caller: CallerContext) -> dict:
    # A department sees the cases it returned (it stays involved); a centre the ones it owns.
    if caller.has_role(*CENTRE):
        return {"state": "returned", "owning_centre": caller.scope or ""}
    return {"state": "returned"}


@dataclass(frozen=True)
class Queue:
    kind: str
    label: object
    roles: tuple[str, ...]
    filters: Callable[[CallerContext], dict]
    bulk: str | None = None  # the loop action the queue offers on several cases at once

    def fixed(self, caller: CallerContext) -> dict:
        return self.filters(caller)

    def has_state(self, caller: CallerContext) -> bool:
        return "state" in self.filters(caller)


QUEUES = {
    queue.kind: queue
    for queue in (
        Queue("to-accept", _l("To accept"), CENTRE, _owned("reported"), "accept"),
        Queue("to-register", _l("To register"), CENTRE, _owned("accepted"), "register"),
        Queue("to-dispatch", _l("To dispatch"), CENTRE, _owned("registered"), "dispatch"),
        Queue("to-sign", _l("To sign"), DEPARTMENT, _held("dispatched"), "sign"),
        Queue("in-handling", _l("In handling"), DEPARTMENT, _held("handling")),
        Queue("returned", _l("Returned"), CENTRE + DEPARTMENT, _returned, "dispatch"),
        Queue("to-verify", _l("To verify"), GRID, lambda _: {"state": "awaiting_verification"}),
        Queue("to-close", _l("To close"), CENTRE, _owned("verified"), "close"),
        Queue("overdue", _l("Overdue"), EVERYONE, lambda _: {"overdue": True}),
        Queue(
            "supervised", _l("Supervised"), WATCHERS, lambda _: {"supervised": True, "open": True}
        ),
        Queue("escalated", _l("Escalated"), WATCHERS, lambda _: {"escalated": True, "open": True}),
    )
}


# Who may take each bulk step (the events service decides per case; this hides the form).
BULK_ROLES = {"accept": CENTRE, "register": CENTRE, "dispatch": CENTRE, "close": CENTRE}
BULK_ROLES["sign"] = DEPARTMENT


def bulk_action(queue: Queue, caller: CallerContext) -> str | None:
    """The bulk step this caller is offered on this queue, if any."""
    if queue.bulk and caller.has_role(*BULK_ROLES[queue.bulk]):
        return queue.bulk
    return None


def queues_for(caller: CallerContext) -> list[Queue]:
    return [queue for queue in QUEUES.values() if caller.has_role(*queue.roles)]


# ---------------------------------------------------------------------- the URL's filters


@dataclass
class Query:
    """What the URL asks for: filters, sort, page. Invalid values are dropped and named
    in `errors` (field → message) so the page can say which one it ignored."""

    filters: dict[str, str] = field(default_factory=dict)
    sort: str = "deadline"
    page: int = 1
    size: int = DEFAULT_PAGE_SIZE
    errors: dict[str, object] = field(default_factory=dict)

    def args(self, **changes) -> dict:
        """The URL arguments of this query, with `changes` (for links and the CSV)."""
        values = {**self.filters, "sort": self.sort, "size": self.size, "page": self.page}
        values.update(changes)
        return {k: v for k, v in values.items() if v not in (None, "")}


FILTER_PATTERNS = {
    "category": (re.compile(CATEGORY_CODE), _l("A category code such as 04.01")),
    "territory": (re.compile(TERRITORY_CODE), _l("A territory code of 6, 9, 12 or 15 digits")),
    "urgency": (re.compile(r"^(normal|urgent)$"), _l("Normal or urgent")),
    "state": (re.compile("^(" + "|".join(labels.CASE_STATES) + ")$"), _l("A state of the loop")),
}


def parse_query(args: Mapping[str, str], queue: Queue, caller: CallerContext) -> Query:
    query = Query()
    for name, (pattern, message) in FILTER_PATTERNS.items():
        value = (args.get(name) or "").strip()
        if not value or (name == "state" and queue.has_state(caller)):
            continue
        if pattern.match(value):
            query.filters[name] = value
        else:
            query.errors[name] = message
    query.sort = args.get("sort") if args.get("sort") in SORTS else "deadline"
    query.size = to_int(args.get("size"), DEFAULT_PAGE_SIZE)
    if query.size not in PAGE_SIZES:
        query.size = DEFAULT_PAGE_SIZE
    query.page = max(1, to_int(args.get("page"), 1))
    return query


def to_int(value, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


# ---------------------------------------------------------------------- loading


@dataclass
class Rows:
    items: list[dict]
    truncated: bool  # more than MAX_ROWS matched: the rest is not shown nor exported


def load(page: Page, queue: Queue, query: Query) -> Rows:
    """Every case of the queue under the URL's filters, sorted: the same RPC as the API's
    GET /incidents (`search`, scope checked by the service), all its pages."""
    filters = {**query.filters, **queue.fixed(page.caller)}
    items: list[dict] = []
    cursor = None
    while True:
        answer = page.rpc(EVENTS, "search", filters, cursor, MAX_PAGE)
        items.extend(answer["items"])
        cursor = answer["next_cursor"]
        if cursor is None or len(items) >= MAX_ROWS:
            break
    truncated = cursor is not None
    return Rows(sort_rows(items[:MAX_ROWS], query.sort), truncated)


def sort_rows(items: list[dict], sort: str) -> list[dict]:
    """By the current stage's deadline (cases without one last) or by report time; the
    case id breaks ties so the order is the same on every load."""
    key_name = "stage_due" if sort.endswith("deadline") else "reported_at"
    descending = sort.startswith("-")
    dated = [row for row in items if row.get(key_name)]
    undated = sorted((row for row in items if not row.get(key_name)), key=lambda r: r["id"])
    dated.sort(key=lambda row: (_instant(row[key_name]), row["id"]), reverse=descending)
    return dated + undated


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


# ---------------------------------------------------------------------- deadlines


@dataclass(frozen=True)
class Deadline:
    status: str  # green, amber (80 % of the stage gone), red (overdue), none
    minutes_left: float | None  # working minutes; negative = overdue by
    past_due: bool = False  # the due moment has passed (overdue by 0 working minutes at night)


def deadlines(page: Page, rows: list[dict]) -> dict[str, Deadline]:
    """Each case's deadline status: the working time left as the events service counts
    it on the county calendar (its clock, its calendar), amber from the stage's warning
    moment (80 % of the stage) and red once due or marked overdue."""
    timed = [row for row in rows if row.get("stage_due")]
    statuses = {row["id"]: Deadline("none", None) for row in rows if not row.get("stage_due")}
    for start in range(0, len(timed), MAX_PAGE):
        chunk = timed[start : start + MAX_PAGE]
        answer = page.rpc(EVENTS, "working_time_left", [row["stage_due"] for row in chunk])
        now = _instant(answer["now"])
        for row, minutes in zip(chunk, answer["minutes"], strict=True):
            past_due = _instant(row["stage_due"]) <= now
            statuses[row["id"]] = Deadline(_status(row, now), minutes, past_due)
    return statuses


def _status(row: Mapping, now: datetime) -> str:
    if row.get("overdue") or _instant(row["stage_due"]) <= now:
        return "red"
    warn_at = row.get("stage_warn_at")
    if warn_at and _instant(warn_at) <= now:
        return "amber"
    return "green"
