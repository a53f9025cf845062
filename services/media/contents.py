"""One stored copy per distinct content: the `objects` collection and the object keys.

`objects/<sha256>` is a content address. A slot that declares a SHA-256 claims that address
for its PUT (an `objects` entry in state `claimed`, naming the slot) unless another upload
holds it already: one open slot at a time may write there. Content becomes `stored`, the
only state a later upload of the same bytes is pointed at (deduplication), once its bytes
were checked against their SHA-256: by the S3 server as they arrived (MinIO, S3), by the
confirm's read-back, or by the checking step after the confirm (describing.py) on a server
that does not check checksums. An upload whose content address is held by another open
slot keeps its own key, so what lands at an address never depends on a second client.

A claim is written without waiting for the journal (w=1): the slot's own record, written
next with a majority write, waits for it too (one journal, one oplog, in order), so a slot
returned to its caller has a durable claim behind it. Only a failover between the two
writes could lose a claim under an acknowledged slot; `holds` checks for that in the
majority's view after the slot is written, and the slot falls back to its own key.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from pymongo.database import Database
from pymongo.errors import DuplicateKeyError
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

from gridwork_common.clock import Clock, utc_now
from services.media import store
from services.media.storage import MediaStore

CLAIMED, STORED = "claimed", "stored"
# Held while a server-side copy makes the content address (a crash leaves it to expire).
COPY_CLAIM = timedelta(minutes=15)
# A slot's claim: made durable by the slot's own majority write right after it.
UNJOURNALED = WriteConcern(w=1)
MAJORITY = ReadConcern("majority")


def content_key(sha256: str) -> str:
    return f"objects/{sha256}"


def upload_key(media_id: str) -> str:
    return f"uploads/{media_id}"


class ContentIndex:
    def __init__(self, db: Database, storage: MediaStore, clock: Clock = utc_now):
        self.db = db
        self.storage = storage
        self.clock = clock

    def claim(self, sha256: str, media_id: str, until: datetime) -> str:
        """Where the PUT of slot `media_id`, declaring `sha256`, goes: the content address
        if this slot may write there (nobody holds it, or only a slot that expired
        unconfirmed), else the slot's own `uploads/` key."""
        objects = self.db[store.OBJECTS].with_options(write_concern=UNJOURNALED)
        claim = {"state": CLAIMED, "media_id": media_id, "expires_at": until}
        try:
            objects.insert_one({"_id": sha256, **claim})
            return content_key(sha256)
        except DuplicateKeyError:
            taken = objects.update_one(
                {
                    "_id": sha256,
                    "state": CLAIMED,
                    "$or": [{"media_id": media_id}, {"expires_at": {"$lt": self.clock()}}],
                },
                {"$set": claim},
            )
            return content_key(sha256) if taken.matched_count else upload_key(media_id)

    def holds(self, sha256: str, media_id: str) -> bool:
        """Whether slot `media_id`'s claim of `sha256` is in the majority's view (asked after
        the slot's own majority write, which carried the claim with it)."""
        objects = self.db[store.OBJECTS].with_options(read_concern=MAJORITY)
        held = {"_id": sha256, "state": CLAIMED, "media_id": media_id}
        return objects.find_one(held, {"_id": 1}) is not None  # a find by _id, not an aggregate

    def store_verified(self, media: Mapping, sha256: str, size: int) -> str:
        """Record bytes checked against `sha256`; the key they are served from from now on:
        the content address (theirs, or the copy stored before them, in which case the
        caller removes theirs), or their own key while another open slot holds it."""
        objects = self.db[store.OBJECTS]
        target = content_key(sha256)
        described = {"state": STORED, "size": size, "content_type": media["content_type"]}
        if media["object_key"] == target:  # the claimant: the address holds these bytes
            objects.update_one(
                {"_id": sha256},
                {
                    "$set": described,
                    "$unset": {"media_id": "", "expires_at": ""},
                    "$setOnInsert": {"created_at": self.clock()},
                },
                upsert=True,
            )
            return target
        existing = objects.find_one({"_id": sha256}, {"state": 1})
        if existing is None:  # an undeclared upload, the first of its content: copy it there
            try:
                until = self.clock() + COPY_CLAIM
                objects.insert_one(
                    {"_id": sha256, "state": CLAIMED, "media_id": media["_id"], "expires_at": until}
                )
            except DuplicateKeyError:
                return media["object_key"]  # another upload of it, at this very moment
            self.storage.copy(media["object_key"], target)
            objects.update_one(
                {"_id": sha256},
                {
                    "$set": {**described, "created_at": self.clock()},
                    "$unset": {"media_id": "", "expires_at": ""},
                },
            )
            return target
        return target if existing["state"] == STORED else media["object_key"]

    def release(self, media: Mapping) -> None:
        """Remove what a refused, expired or rejected upload left, and its claim; never
        content another upload holds (stored, or claimed after this slot expired)."""
        key = media["object_key"]
        if key.startswith("objects/"):
            released = self.db[store.OBJECTS].delete_one(
                {"_id": key.removeprefix("objects/"), "state": CLAIMED, "media_id": media["_id"]}
            )
            if not released.deleted_count:
                return
        self.storage.remove(key)

    def described(self, sha256: str) -> Mapping | None:
        """The stored content's entry, with its metadata and thumbnail once made."""
        return self.db[store.OBJECTS].find_one({"_id": sha256, "state": STORED})

    def keep_description(self, sha256: str, description: Mapping) -> None:
        self.db[store.OBJECTS].update_one({"_id": sha256, "state": STORED}, {"$set": description})

    def forget(self, media: Mapping) -> None:
        """After `media` was deleted: its own upload's key, and its content once no
        stored media refers to it any more."""
        sha256 = media["sha256"]
        if media["object_key"] != content_key(sha256):
            self.storage.remove(media["object_key"])
        if self.db[store.MEDIA].count_documents({"sha256": sha256, "state": "stored"}, limit=1):
            return  # another upload still refers to the same bytes
        self.storage.remove(content_key(sha256))
        self.storage.remove(f"thumbnails/{sha256}.jpg")
        self.db[store.OBJECTS].delete_one({"_id": sha256, "state": STORED})
