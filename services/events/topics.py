"""The events the events service publishes on its `events.events` exchange.

Routing key: `incident.<action>.<department>.<county>.<township>.<village>.<grid>`, where
<department> is the department code the case is with (e.g. `530402001-police-station`)
or `none`. A department's system binds `incident.*.530402001-police-station.#` to get
only its cases; a township binds `incident.*.*.530402.530402001.#` for its subtree; a
plain `incident.closed.#` gets every closure. docs/asyncapi.yaml documents each one.
"""

TRANSITIONS = (
    "reported",
    "accepted",
    "rejected",
    "registered",
    "dispatched",
    "signed",
    "returned",
    "handled",
    "verified",
    "reworked",
    "closed",
    "evaluated",
    "escalated",
    "extended",
    "supervised",
)
DEADLINES = ("warning", "overdue")
TOPICS = tuple(f"incident.{name}" for name in (*TRANSITIONS, *DEADLINES))
NO_DEPARTMENT = "none"


def route(grid_code: str, department: str | None) -> tuple[str, ...]:
    """The routing-key words after `incident.<action>`: department, then the territory
    path county, township, village, grid."""
    return (
        department or NO_DEPARTMENT,
        grid_code[:6],
        grid_code[:9],
        grid_code[:12],
        grid_code,
    )
