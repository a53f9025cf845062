"""After an upload is confirmed: its SHA-256 checked (when the confirm could not), a photo's
EXIF metadata and thumbnail made once per content, and `media.stored` announced.

The media service handles its own `media.received` events (at least once, by any replica).
It reads the bytes once: a photo whole (it is decoded anyway), anything else streamed, and
hashes them on the way. Bytes whose SHA-256 was declared but not yet checked (an S3 server
that does not check checksums) are accepted only if they match it: then their content
becomes `stored` (contents.py), the only state another upload of the same bytes is pointed
at; if not, the upload is removed and its record `rejected`, and nothing of it was ever
served or announced. Bytes checked before that no longer match are marked corrupted, as
`verify` does. A photo's capture time, GPS and EXIF-free thumbnail are kept with its
content and copied to the record; then `media.stored` and `media.described` are sent and
the record marked announced (announcing.py). Handling the same event twice, or an event of
content described already, only copies what is kept.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import timedelta

from eventlet import tpool
from pymongo.database import Database

from gridwork_common.clock import Clock, utc_now
from gridwork_common.events import EventPublisher
from services.media import store, topics
from services.media.announcing import described_event, send_once, stored_event
from services.media.contents import ContentIndex, content_key
from services.media.domain.photos import photo_metadata, thumbnail
from services.media.storage import MediaStore

STORED, REJECTED, PENDING, VERIFIED = "stored", "rejected", "pending", "verified"
# A record still not announced this long after its confirm lost its event (or the steps
# failed: storage was down); a timer runs them then.
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
        self.contents = ContentIndex(db, storage, clock)

    def describe(self, media_id: str) -> int:
        """Check, describe and announce the stored media `media_id` if nobody has; 1 if
        its record changed now, else 0."""
        media = self.db[store.MEDIA].find_one({"_id": media_id, "state": STORED})
        if media is None:
            return 0  # deleted or rejected meanwhile
        is_photo = media["kind"] == "photo"
        to_describe = is_photo and media.get("thumbnail", {}).get("status") == "pending"
        if media.get("announced", True) and not to_describe:
            return 0  # done already (or stored before events came from here)
        read = None
        if media.get("integrity") == PENDING:
            read = self._read(media["object_key"], whole=is_photo)
            if read[0] != media["sha256"]:
                self._reject(media)
                return 0
            media = self._store(media, read[1])
        changes = {"integrity": VERIFIED, "object_key": media["object_key"], "announced": True}
        if to_describe:
            changes.update(self._description(media, read[2] if read else None))
        done = {**media, **changes}
        if media.get("announced") is False:
            send_once(self.events, topics.MEDIA_STORED, done, stored_event(done))
        if to_describe:
            send_once(self.events, topics.MEDIA_DESCRIBED, done, described_event(done))
        updated = self.db[store.MEDIA].update_one(
            {"_id": media_id, "state": STORED}, {"$set": changes}
        )
        return updated.modified_count

    def describe_overdue(self) -> int:
        """Run the steps for records whose event was lost or whose steps failed."""
        overdue = self.db[store.MEDIA].find(
            {
                "state": STORED,
                "stored_at": {"$lt": self.clock() - OVERDUE_AFTER},
                "$or": [{"announced": False}, {"thumbnail.status": "pending"}],
            },
            {"_id": 1},
        )
        return sum(self.describe(row["_id"]) for row in overdue.limit(OVERDUE_BATCH))

    def _read(self, key: str, whole: bool) -> tuple[str, int, bytes | None]:
        """(SHA-256, size, the bytes if `whole`) of the object at `key`, in one GET."""
        if whole:
            data = self.storage.read(key)
            return hashlib.sha256(data).hexdigest(), len(data), data
        sha256, size, _ = self.storage.digest(key)
        return sha256, size, None

    def _reject(self, media: Mapping) -> None:
        """Bytes that are not the SHA-256 their uploader declared: removed, never served."""
        self.contents.release(media)
        self.db[store.MEDIA].update_one(
            {"_id": media["_id"], "state": STORED},
            {"$set": {"state": REJECTED, "rejected_at": self.clock(), "integrity": "mismatch"}},
        )

    def _store(self, media: Mapping, size: int) -> Mapping:
        """The checked bytes' content recorded; the media served from the copy stored
        before them if there is one (theirs removed then)."""
        key = self.contents.store_verified(media, media["sha256"], size)
        if key != media["object_key"]:
            self.storage.remove(media["object_key"])
        return {**media, "object_key": key}

    def _description(self, media: Mapping, data: bytes | None) -> dict:
        """The photo's metadata and thumbnail status: its content's, made now if nobody
        has made them (thumbnails are kept by content: `thumbnails/<sha256>.jpg`)."""
        sha256 = media["sha256"]
        shared = media["object_key"] == content_key(sha256)
        content = self.contents.described(sha256) if shared else None
        if content is not None and "thumbnail" in content:
            return {"metadata": content["metadata"], "thumbnail": content["thumbnail"]}
        checked = data is not None  # read and hashed a moment ago
        if data is None:
            data = self.storage.read(media["object_key"])
        if not checked and hashlib.sha256(data).hexdigest() != sha256:
            # Not the evidence that was confirmed: nothing is read from it or shown of it.
            self.db[store.MEDIA].update_many(
                {"sha256": sha256, "object_key": media["object_key"]},
                {"$set": {"corrupted": True, "verified_at": self.clock()}},
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
        if shared:
            self.contents.keep_description(sha256, described)
        return described
