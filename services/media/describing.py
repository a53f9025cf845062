"""After a photo is confirmed: its EXIF metadata and its thumbnail, made once per content.

The media service handles its own `media.stored` events (at least once, by any replica):
it reads the photo's bytes once, checks them against their SHA-256 on the way (bytes that
no longer match are marked corrupted, as `verify` does), reads the EXIF capture time and
GPS, writes a thumbnail without any EXIF, keeps both on the content's `objects` entry and
copies them to every media record of that content still pending, announcing each with
`media.described`. Handling the same event twice, or an event of content described
already, only copies what is kept.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import timedelta

from eventlet import tpool
from pymongo.database import Database

from gridwork_common.clock import Clock, utc_now
from gridwork_common.events import EventPublisher
from gridwork_common.outbox import Outbox
from services.media import store, topics
from services.media.domain.photos import photo_metadata, thumbnail
from services.media.storage import MediaStore

STORED = "stored"
# A photo still pending this long after its confirm lost its event (or the describing
# failed: storage was down); a timer describes it then.
OVERDUE_AFTER = timedelta(minutes=2)
OVERDUE_BATCH = 100


class MediaDescriber:
    def __init__(
        self,
        db: Database,
        storage: MediaStore,
        events: EventPublisher | None,
        clock: Clock = utc_now,
    ):
        self.db = db
        self.storage = storage
        self.events = events
        self.clock = clock

    def describe(self, media_id: str) -> int:
        """Describe the stored photo `media_id`'s content if nobody has; returns how many
        media records got their metadata and thumbnail status now."""
        media = self.db[store.MEDIA].find_one({"_id": media_id, "state": STORED})
        if media is None or media["kind"] != "photo":
            return 0  # deleted meanwhile, or nothing to describe
        content = self.db[store.OBJECTS].find_one({"_id": media["sha256"]})
        if content is None:
            return 0  # its content was forgotten (deleted) meanwhile
        if "thumbnail" not in content:
            content = self._describe_content(content)
        return self._copy_to_media(content)

    def describe_overdue(self) -> int:
        """Describe the photos whose event was lost or whose describing failed."""
        overdue = self.db[store.MEDIA].find(
            {
                "state": STORED,
                "thumbnail.status": "pending",
                "stored_at": {"$lt": self.clock() - OVERDUE_AFTER},
            },
            {"_id": 1},
        )
        return sum(self.describe(row["_id"]) for row in overdue.limit(OVERDUE_BATCH))

    def _describe_content(self, content: Mapping) -> Mapping:
        sha256 = content["_id"]
        data = self.storage.read(f"objects/{sha256}")
        if hashlib.sha256(data).hexdigest() != sha256:
            # Not the evidence that was confirmed: nothing is read from it or shown of it.
            self.db[store.MEDIA].update_many(
                {"sha256": sha256}, {"$set": {"corrupted": True, "verified_at": self.clock()}}
            )
            metadata, small = {}, None
        else:
            metadata = photo_metadata(data)
            # Decoding and resizing hold the CPU for tens of milliseconds: in a real thread
            # (Pillow releases the GIL), so the service's other green threads move on.
            small = tpool.execute(thumbnail, data)
        if small is not None:
            self.storage.put(f"thumbnails/{sha256}.jpg", small, "image/jpeg")
        described = {"metadata": metadata, "thumbnail": {"status": "ready" if small else "none"}}
        self.db[store.OBJECTS].update_one({"_id": sha256}, {"$set": described})
        return {**content, **described}

    def _copy_to_media(self, content: Mapping) -> int:
        def copy(staged) -> int:
            pending = {"sha256": content["_id"], "thumbnail.status": "pending"}
            rows = list(self.db[store.MEDIA].find(pending, session=staged.session))
            if not rows:
                return 0
            changes = {"metadata": content["metadata"], "thumbnail": content["thumbnail"]}
            self.db[store.MEDIA].update_many(
                {"_id": {"$in": [row["_id"] for row in rows]}},
                {"$set": changes},
                session=staged.session,
            )
            for row in rows:
                if row["state"] == STORED:
                    staged.announce(
                        topics.MEDIA_DESCRIBED, row["owner"]["id"], _described({**row, **changes})
                    )
            return len(rows)

        return Outbox(self.db, self.events, self.clock).run(copy)


def _described(media: Mapping) -> dict:
    metadata = media["metadata"]
    return {
        "media_id": media["_id"],
        "sha256": media["sha256"],
        "owner": media["owner"],
        "uploader": media["uploader"],
        "thumbnail": media["thumbnail"]["status"],
        "taken_at": metadata.get("taken_at"),
        "gps": metadata.get("gps"),
        "width": metadata.get("width"),
        "height": metadata.get("height"),
    }
