"""The population service's MongoDB collections and their indexes."""

from pymongo import ASCENDING, DESCENDING, GEOSPHERE, IndexModel

from gridwork_common.outbox import OUTBOX_INDEXES

TERRITORY = "territory"
STAFF = "staff"
RESIDENTS = "residents"
RESIDENT_HISTORY = "resident_history"
HOUSES = "houses"
HOUSEHOLDS = "households"
ENTITIES = "entities"
MEMBERSHIPS = "group_memberships"
VISIT_RULES = "visit_rules"
VISITS = "visits"
OVERDUE_NOTICES = "visit_overdue_notices"
ACCESS_AUDIT = "access_audit"
IMPORT_JOBS = "import_jobs"
IMPORT_ERRORS = "import_errors"
PATROLS = "patrols"
PATROL_PIECES = "patrol_pieces"  # a patrol's raw points, one document per uploaded piece
PATROL_LINKS = "patrol_links"  # incidents and visits made during a patrol
TERRITORY_VERSION = "territory_version"  # one document, raised by every node change
MAP_OUTLINES = "map_outlines"  # the map's simplified polygons per (version, zoom)
MAP_OUTLINE_BUILDS = "map_outline_builds"  # which (version, zoom) are complete

INDEXES = {
    TERRITORY: [
        IndexModel([("geometry", GEOSPHERE)], name="geometry_2dsphere"),
        IndexModel([("parent", ASCENDING)], name="parent"),
        IndexModel([("path", ASCENDING), ("level", ASCENDING)], name="path_level"),
    ],
    STAFF: [
        IndexModel([("grid_code", ASCENDING), ("role", ASCENDING)], name="grid_role"),
        IndexModel([("person_id", ASCENDING)], name="person"),
    ],
    RESIDENTS: [
        IndexModel([("id_index", ASCENDING)], unique=True, name="id_index_unique"),
        IndexModel([("phone_index", ASCENDING)], sparse=True, name="phone_index"),
        IndexModel([("path", ASCENDING), ("_id", ASCENDING)], name="path_id"),
        IndexModel([("household_id", ASCENDING)], sparse=True, name="household"),
    ],
    RESIDENT_HISTORY: [
        IndexModel([("resident_id", ASCENDING), ("at", ASCENDING)], name="resident_at"),
    ],
    HOUSES: [IndexModel([("path", ASCENDING), ("_id", ASCENDING)], name="path_id")],
    HOUSEHOLDS: [
        IndexModel(
            [("house_id", ASCENDING), ("head_resident_id", ASCENDING)],
            unique=True,
            name="house_head_unique",
        ),
        IndexModel([("path", ASCENDING)], name="path"),
    ],
    ENTITIES: [IndexModel([("path", ASCENDING), ("_id", ASCENDING)], name="path_id")],
    MEMBERSHIPS: [
        IndexModel(
            [("resident_id", ASCENDING), ("group", ASCENDING)],
            unique=True,
            partialFilterExpression={"active": True},
            name="one_active_membership_per_group",
        ),
        IndexModel([("responsible_worker_id", ASCENDING), ("active", ASCENDING)], name="worker"),
        IndexModel([("path", ASCENDING), ("active", ASCENDING)], name="path_active"),
    ],
    VISITS: [
        IndexModel([("membership_id", ASCENDING), ("at", DESCENDING)], name="membership_at"),
        IndexModel([("worker_id", ASCENDING), ("at", DESCENDING)], name="worker_at"),
    ],
    ACCESS_AUDIT: [
        IndexModel([("at", DESCENDING)], name="at"),
        IndexModel([("resident_id", ASCENDING), ("at", DESCENDING)], name="resident_at"),
        IndexModel([("actor", ASCENDING), ("at", DESCENDING)], name="actor_at"),
    ],
    IMPORT_JOBS: [IndexModel([("status", ASCENDING), ("lease_until", ASCENDING)], name="queue")],
    IMPORT_ERRORS: [IndexModel([("job_id", ASCENDING), ("row", ASCENDING)], name="job_row")],
    PATROLS: [
        IndexModel([("path", ASCENDING), ("_id", ASCENDING)], name="path_id"),
        IndexModel([("worker_id", ASCENDING), ("started_at", DESCENDING)], name="worker_started"),
        IndexModel([("period", ASCENDING), ("path", ASCENDING)], name="period_path"),
    ],
    PATROL_PIECES: [IndexModel([("patrol_id", ASCENDING), ("piece", ASCENDING)], name="patrol")],
    PATROL_LINKS: [IndexModel([("patrol_id", ASCENDING)], name="patrol")],
    MAP_OUTLINES: [
        IndexModel(
            [(name, ASCENDING) for name in ("version", "zoom", "level", "path")],
            name="version_zoom_level_path",
        ),
    ],
}
INDEXES.update(OUTBOX_INDEXES)  # events written with their change (gridwork_common.outbox)
