"""The assessment service's MongoDB collections and their indexes."""

from pymongo import ASCENDING, IndexModel

from gridwork_common.outbox import OUTBOX_INDEXES

FACTS = "facts"  # one per consumed CloudEvent, keyed by its id: redelivery counts once
RULE_SETS = "rule_sets"  # versions of the scoring rules after the shipped default
PUBLISHED = "published_scorecards"  # as scored at publication, never rewritten
BULLETINS = "bulletins"  # one per month, kept once made
WORKING_DAYS = "working_days"  # the county calendar's working days of each ended month

INDEXES = {
    FACTS: [
        IndexModel([("type", ASCENDING), ("period", ASCENDING)], name="type_period"),
        IndexModel([("type", ASCENDING), ("day", ASCENDING)], name="type_day"),
        IndexModel([("path", ASCENDING), ("day", ASCENDING)], name="path_day"),
        IndexModel(
            [("incident_id", ASCENDING), ("type", ASCENDING)], name="incident_type", sparse=True
        ),
        IndexModel([("actor", ASCENDING), ("period", ASCENDING)], name="actor_period"),
    ],
}
INDEXES.update(OUTBOX_INDEXES)  # events written with their change (gridwork_common.outbox)
