"""The assessment service's MongoDB collections and their indexes."""

from pymongo import ASCENDING, IndexModel

from gridwork_common.outbox import OUTBOX_INDEXES

FACTS = "facts"  # one per consumed CloudEvent, keyed by its id: redelivery counts once
RULE_SETS = "rule_sets"  # versions of the scoring rules after the shipped default
PUBLISHED = "published_scorecards"  # as scored at publication, never rewritten
BULLETINS = "bulletins"  # one per month, kept once made
WORKING_DAYS = "working_days"  # the county calendar's working days of each ended month
# The live summaries (summaries.py), kept with each fact in its transaction (the cases,
# the change records) or merged from the change records (summaries, activity):
SUMMARIES = "summaries"  # per (period, level, subject): additive parts of the indicators
CASES = "case_summaries"  # per case: what it did in each period it touched
ACTIVITY = "activity"  # per (period, person): the days with a login or action
# a batch's changes to the summaries and activity, one per period, until merged into them
CHANGES = "summary_changes"

INDEXES = {
    FACTS: [
        # the integrity signals read a month's media and visits; boards read summaries
        IndexModel([("type", ASCENDING), ("period", ASCENDING)], name="type_period"),
    ],
    SUMMARIES: [IndexModel([("period", ASCENDING), ("level", ASCENDING)], name="period_level")],
    ACTIVITY: [IndexModel([("period", ASCENDING), ("person", ASCENDING)], name="period_person")],
    CHANGES: [IndexModel([("period", ASCENDING)], name="period")],
}
INDEXES.update(OUTBOX_INDEXES)  # events written with their change (gridwork_common.outbox)
