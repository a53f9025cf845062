"""The events the population service publishes on its `population.events` exchange
(routing key = the name below). docs/asyncapi.yaml documents each one; a test keeps the
two in step."""

RESIDENT_REGISTERED = "resident.registered"
RESIDENT_UPDATED = "resident.updated"
RESIDENT_MOVED = "resident.moved"
GROUP_FLAGGED = "group.flagged"
GROUP_CLEARED = "group.cleared"
VISIT_RECORDED = "visit.recorded"
VISIT_OVERDUE = "visit.overdue"
VISIT_OBLIGATIONS = "visit.obligations"
GRID_UPDATED = "grid.updated"
IMPORT_FINISHED = "import.finished"
PATROL_FINISHED = "patrol.finished"
PATROL_UPDATED = "patrol.updated"  # a finished patrol's figures changed (late track pieces)

TOPICS = (
    RESIDENT_REGISTERED,
    RESIDENT_UPDATED,
    RESIDENT_MOVED,
    GROUP_FLAGGED,
    GROUP_CLEARED,
    VISIT_RECORDED,
    VISIT_OVERDUE,
    VISIT_OBLIGATIONS,
    GRID_UPDATED,
    IMPORT_FINISHED,
    PATROL_FINISHED,
    PATROL_UPDATED,
)
