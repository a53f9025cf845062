"""The events service's MongoDB collections and their indexes."""

from pymongo import ASCENDING, DESCENDING, GEOSPHERE, IndexModel

INCIDENTS = "incidents"
COMMANDS = "commands"  # idempotency: the first result of every command, by key
CATALOGUES = "catalogue_versions"
DEPARTMENTS = "departments"
SETTINGS = "settings"  # the working calendar and deadline policy of the county
CALENDAR_NOTICES = "calendar_notices"  # holiday notices the county loaded, one per year
OUTBOX = "outbox"  # events written with the change they announce, sent after commit

INDEXES = {
    INCIDENTS: [
        IndexModel([("geo", GEOSPHERE)], name="geo_2dsphere"),
        IndexModel(
            [("path", ASCENDING), ("state", ASCENDING), ("_id", ASCENDING)], name="path_state"
        ),
        IndexModel([("department", ASCENDING), ("state", ASCENDING)], name="department_state"),
        IndexModel([("open", ASCENDING), ("stage_warn_at", ASCENDING)], name="open_warn"),
        IndexModel([("open", ASCENDING), ("stage_due", ASCENDING)], name="open_due"),
        IndexModel([("category", ASCENDING), ("reported_at", DESCENDING)], name="category_time"),
        IndexModel([("owning_centre", ASCENDING), ("state", ASCENDING)], name="owner_state"),
    ],
    COMMANDS: [IndexModel([("at", ASCENDING)], name="at")],
    OUTBOX: [IndexModel([("created_at", ASCENDING)], name="created_at")],
    DEPARTMENTS: [IndexModel([("territory_code", ASCENDING)], name="territory")],
}
