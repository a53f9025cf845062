"""The media service's MongoDB collections and their indexes."""

from pymongo import ASCENDING, IndexModel

from gridwork_common.outbox import OUTBOX_INDEXES

MEDIA = "media"  # one per upload: declared type, purpose, owner, state, metadata
OBJECTS = "objects"  # one per distinct content (SHA-256): identical bytes stored once

INDEXES = {
    MEDIA: [
        IndexModel([("state", ASCENDING), ("expires_at", ASCENDING)], name="state_expiry"),
        IndexModel([("owner.kind", ASCENDING), ("owner.id", ASCENDING)], name="owner"),
        IndexModel([("sha256", ASCENDING)], name="sha256"),
        # What the timer of describing.py looks for; both small (records a moment old).
        IndexModel(
            [("stored_at", ASCENDING)],
            name="unannounced",
            partialFilterExpression={"announced": False},
        ),
        IndexModel(
            [("stored_at", ASCENDING)],
            name="thumbnail_pending",
            partialFilterExpression={"thumbnail.status": "pending"},
        ),
    ],
}
INDEXES.update(OUTBOX_INDEXES)  # events written with their change (gridwork_common.outbox)
