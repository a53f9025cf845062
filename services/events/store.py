"""The events service's MongoDB collections and their indexes."""

from pymongo import ASCENDING, DESCENDING, GEOSPHERE, IndexModel

INCIDENTS = "incidents"
# An older release's idempotency records (now kept in their cases: repository.py); drained.
COMMANDS = "commands"
CATALOGUES = "catalogue_versions"
DEPARTMENTS = "departments"
SETTINGS = "settings"  # the working calendar and deadline policy of the county
CALENDAR_NOTICES = "calendar_notices"  # holiday notices the county loaded, one per year
# The shared outbox (gridwork_common/outbox.py): deadline notices, and an older release's
# events of case changes (now kept in their cases until sent: repository.py).
OUTBOX = "outbox"

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
        # A command's Idempotency-Key is used once, whichever case it was used on.
        IndexModel([("commands._id", ASCENDING)], name="command_keys", unique=True, sparse=True),
        # Only cases with events not yet known sent, for the outbox timer.
        IndexModel(
            [("outbox.created_at", ASCENDING)],
            name="unsent_events",
            partialFilterExpression={"outbox.created_at": {"$exists": True}},
        ),
    ],
    COMMANDS: [IndexModel([("at", ASCENDING)], name="at")],
    OUTBOX: [IndexModel([("created_at", ASCENDING)], name="created_at")],
    DEPARTMENTS: [IndexModel([("territory_code", ASCENDING)], name="territory")],
}


TOWNSHIP_CODE_LENGTH = 9  # services/population/domain/codes.py


def open_incidents_by_township(db) -> list[dict]:
    """Open incidents counted per township and state, with how many of them are overdue
    on their current stage and how many are supervised (the worklists' definitions)."""
    township = {
        "$arrayElemAt": [
            {
                "$filter": {
                    "input": "$path",
                    "cond": {"$eq": [{"$strLenCP": "$$this"}, TOWNSHIP_CODE_LENGTH]},
                }
            },
            0,
        ]
    }
    rows = db[INCIDENTS].aggregate(
        [
            {"$match": {"open": True}},
            {
                "$group": {
                    "_id": {"township": township, "state": "$state"},
                    "count": {"$sum": 1},
                    "overdue": {"$sum": {"$cond": [{"$eq": ["$overdue_seq", "$stage_seq"]}, 1, 0]}},
                    "supervised": {"$sum": {"$cond": [{"$gt": ["$supervision_count", 0]}, 1, 0]}},
                }
            },
        ]
    )
    return [
        {
            "township": row["_id"].get("township"),
            "state": row["_id"]["state"],
            "count": row["count"],
            "overdue": row["overdue"],
            "supervised": row["supervised"],
        }
        for row in rows
    ]
