"""Media use cases: upload slots, confirmation with real checks of the stored bytes,
content-addressed storage, download links after a scope check with the owning service,
before/after pairs, integrity checks, deletion and expiry. Checking a declared SHA-256 on a
server that does not, metadata and thumbnails come after the confirm (describing.py).

Object keys: `objects/<sha256>` (identical bytes are stored once; contents.py says who may
write there), `uploads/<media id>` for a slot whose content address is held by another
upload, `thumbnails/<sha256>.jpg` (no EXIF, so no GPS).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import uuid
from collections.abc import Callable, Mapping
from datetime import timedelta

from pymongo import ReturnDocument
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from gridwork_common.clock import Clock, as_stored, utc_now
from gridwork_common.context import CallerContext
from gridwork_common.errors import Conflict, Forbidden, InvalidInput, NotFound
from gridwork_common.events import EventPublisher
from gridwork_common.idempotency import check_replay, fingerprint, keyed_id
from services.media import store
from services.media.announcing import announce_received
from services.media.contents import ContentIndex, content_key, upload_key
from services.media.domain.kinds import KINDS, PURPOSES, check_bytes, check_declared
from services.media.metrics import MEDIA_BYTES
from services.media.storage import MediaStore, checksum_header

SLOT_TTL = timedelta(minutes=15)
LINK_TTL = timedelta(minutes=5)
PENDING, STORED, REJECTED, EXPIRED, DELETED = "pending", "stored", "rejected", "expired", "deleted"
VERIFIED = "verified"  # integrity: the bytes were checked against their SHA-256 (or "pending")
OWNER_KINDS = ("incident", "membership", "resident")  # visits: the group membership
BEFORE = ("incident_report",)
AFTER = ("feedback", "verification")
FINISHED_CASE_STATES = ("closed", "evaluated", "rejected")  # the states in which a case is over
SHA256 = re.compile(r"[0-9a-f]{64}")
THUMBNAIL_PENDING = {"status": "pending"}  # made after the confirm (describing.py)
OwnerLookup = Callable[[str, str], Mapping]


class MediaDesk:
    def __init__(
        self,
        db: Database,
        storage: MediaStore,
        events: EventPublisher | None,
        owner_lookup: OwnerLookup,
        caller: CallerContext,
        limits: Mapping[str, int],
        clock: Clock = utc_now,
        slot_owner_lookup: OwnerLookup | None = None,
    ):
        self.db = db
        self.storage = storage
        self.events = events
        self.owner_lookup = owner_lookup  # (kind, id) -> the owner as its service shows it
        # An upload slot's check may be answered from a recent yes (owners.py).
        self.slot_owner_lookup = slot_owner_lookup or owner_lookup
        self.caller = caller
        self.limits = limits
        self.clock = clock
        self.contents = ContentIndex(db, storage, clock)

    # ------------------------------------------------------------------ uploading
    def request_upload(
        self,
        content_type: str,
        size: int,
        purpose: str,
        owner: Mapping,
        idempotency_key: str | None = None,
        sha256: str | None = None,
    ) -> dict:
        """An upload slot. With the SHA-256 of the bytes declared, the PUT goes straight to
        their content address (unless another upload holds it: contents.py) and is signed
        over the checksum header, which S3 servers that check checksums hold the bytes to.
        A retry under the same key gets the same slot (its object key and headers, a fresh
        URL)."""
        declared = _declared(sha256)
        request = {"content_type": content_type, "size": size, "purpose": purpose, "owner": owner}
        if declared:  # undeclared, the fingerprint is the one slots had before sha256
            request["sha256"] = declared
        slot = self._slot_made_under(idempotency_key, request)
        if slot is None:
            slot = self._new_slot(content_type, size, purpose, owner, declared, idempotency_key)
            slot["request_fingerprint"] = fingerprint(request)
            slot = self._insert_slot(slot, request)
        headers = {"Content-Type": slot["content_type"]}
        if slot.get("declared_sha256"):
            headers.update(checksum_header(slot["declared_sha256"]))
        signed = headers if slot.get("declared_sha256") else None
        return {
            "media_id": slot["_id"],
            "upload_url": self.storage.upload_url(_upload_key(slot), SLOT_TTL, signed),
            "method": "PUT",
            "headers": headers,
            "expires_at": (slot.get("expires_at") or slot["created_at"] + SLOT_TTL).isoformat(),
        }

    def _slot_made_under(self, idempotency_key: str | None, request: Mapping) -> Mapping | None:
        """The slot a first attempt with this key made, if it did."""
        if idempotency_key is None:
            return None
        media_id = keyed_id("media", self.caller.user_id or "", idempotency_key)
        slot = self.db[store.MEDIA].find_one({"_id": media_id})
        if slot is not None:
            check_replay(slot, fingerprint(request))
        return slot

    def _insert_slot(self, slot: dict, request: Mapping) -> Mapping:
        try:
            self.db[store.MEDIA].insert_one(slot)
        except DuplicateKeyError:  # the same key's retry, concurrently: its slot
            existing = self.db[store.MEDIA].find_one({"_id": slot["_id"]})
            check_replay(existing, fingerprint(request))
            return existing
        sha256 = slot.get("declared_sha256")
        if (
            sha256
            and slot["object_key"] == content_key(sha256)
            and not self.contents.holds(sha256, slot["_id"])
        ):  # its claim was lost in a failover (contents.py): the slot's own key then
            slot["object_key"] = upload_key(slot["_id"])
            self.db[store.MEDIA].update_one(
                {"_id": slot["_id"]}, {"$set": {"object_key": slot["object_key"]}}
            )
        return slot

    def _new_slot(
        self,
        content_type: str,
        size: int,
        purpose: str,
        owner: Mapping,
        sha256: str | None = None,
        idempotency_key: str | None = None,
    ) -> dict:
        if isinstance(size, bool) or not isinstance(size, int):
            raise InvalidInput("size", "must be the number of bytes")
        check_declared(content_type, size, self.limits)
        if purpose not in PURPOSES:
            raise InvalidInput("purpose", f"must be one of {', '.join(PURPOSES)}")
        owner = self._check_owner(owner)
        media_id = (
            uuid.uuid4().hex
            if idempotency_key is None
            else keyed_id("media", self.caller.user_id or "", idempotency_key)
        )
        now = as_stored(self.clock())
        key = upload_key(media_id)
        if sha256:
            key = self.contents.claim(sha256, media_id, now + SLOT_TTL)
        return {
            "_id": media_id,
            "state": PENDING,
            "content_type": content_type,
            "kind": KINDS[content_type].kind,
            "size": size,
            "purpose": purpose,
            "owner": owner,
            "uploader": self.caller.user_id,
            "object_key": key,
            "declared_sha256": sha256,
            "created_at": now,
            "expires_at": now + SLOT_TTL,
        }

    def _check_owner(self, owner: Mapping) -> dict:
        if not isinstance(owner, Mapping) or owner.get("kind") not in OWNER_KINDS:
            raise InvalidInput("owner.kind", f"must be one of {', '.join(OWNER_KINDS)}")
        owner_id = owner.get("id")
        if not isinstance(owner_id, str) or not owner_id:
            raise InvalidInput("owner.id", "is required")
        self.slot_owner_lookup(owner["kind"], owner_id)  # NotFound outside the caller's scope
        return {"kind": owner["kind"], "id": owner_id}

    def upload(
        self,
        content_type: str,
        purpose: str,
        owner: Mapping,
        data_base64: str,
        idempotency_key: str | None = None,
    ) -> dict:
        """The fallback for clients that cannot use presigned uploads: the bytes come
        through the gateway and take the same checks as a confirmed upload (hashed here,
        written once at their content address, not read back). A retry under the same key
        finishes or finds the first attempt's media."""
        try:
            data = base64.b64decode(data_base64 or "", validate=True)
        except (binascii.Error, ValueError):
            raise InvalidInput("file", "is not valid base64") from None
        sha256 = hashlib.sha256(data).hexdigest()
        request = {
            "content_type": content_type,
            "purpose": purpose,
            "owner": owner,
            "sha256": sha256,
        }
        slot = self._slot_made_under(idempotency_key, request)
        if slot is None:
            slot = self._new_slot(content_type, len(data), purpose, owner, sha256, idempotency_key)
            slot["request_fingerprint"] = fingerprint(request)
            slot = self._insert_slot(slot, request)
        if slot["state"] == PENDING:
            self.storage.put(slot["object_key"], data, content_type)
        return self._confirm(slot, streamed=(sha256, len(data), data[:64]))

    def confirm(self, media_id: str) -> dict:
        return self._confirm(self._own_slot(media_id))

    def _confirm(self, media: Mapping, streamed: tuple[str, int, bytes] | None = None) -> dict:
        """Check what arrived (size and type by its bytes; its SHA-256 here when the bytes
        were streamed, read back or checked by the S3 server, else after the confirm),
        record it stored and announce `media.received` for the steps after the confirm
        (describing.py), which announce `media.stored` once the bytes are checked."""
        media_id = media["_id"]
        if media["state"] == STORED:
            return render(media)  # a retried confirm: done already
        if media["state"] != PENDING:
            raise Conflict(f"media_id: the upload slot is {media['state']}")
        if media["expires_at"] < self.clock():
            raise Conflict("media_id: the upload slot expired; ask for a new one")
        declared = media.get("declared_sha256")
        sha256, actual_size, head, verified = self._received(media, declared, streamed)
        try:
            check_bytes(media["content_type"], media["size"], actual_size, head, self.limits)
            if declared and sha256 != declared:
                raise InvalidInput("sha256", "the uploaded bytes have another SHA-256")
        except InvalidInput:
            # Nothing of a refused upload stays in storage.
            self.contents.release(media)
            self.db[store.MEDIA].update_one({"_id": media_id}, {"$set": {"state": REJECTED}})
            raise
        key = media["object_key"]
        if verified:
            key = self.contents.store_verified(media, sha256, actual_size)
        changes = {
            "state": STORED,
            "sha256": sha256,
            "stored_at": self.clock(),
            "metadata": {},
            "object_key": key,
            "integrity": VERIFIED if verified else PENDING,
            "announced": False,  # media.stored, sent after the checks that follow
        }
        if media["kind"] == "photo":
            changes["thumbnail"] = THUMBNAIL_PENDING
        stored = self.db[store.MEDIA].find_one_and_update(
            {"_id": media_id, "state": PENDING},
            {"$set": changes, "$unset": {"expires_at": ""}},
            return_document=ReturnDocument.AFTER,
        )
        if stored is None:  # a concurrent confirm finished first
            return render(self.db[store.MEDIA].find_one({"_id": media_id}))
        if key != media["object_key"]:
            self.storage.remove(media["object_key"])  # the content was stored before
        announce_received(self.events, stored)
        MEDIA_BYTES.labels(media["kind"]).inc(actual_size)
        return render(stored)

    def _received(
        self, media: Mapping, declared: str | None, streamed: tuple[str, int, bytes] | None
    ) -> tuple[str, int, bytes, bool]:
        """(SHA-256, size, first bytes, whether the bytes were checked against that SHA-256)
        of what was uploaded to the slot. A declared SHA-256 costs one small ranged GET: the
        bytes are checked by the S3 server as they arrived (MinIO, S3) or, on a server that
        does not check checksums, after the confirm by the step that reads them anyway.
        Undeclared, the bytes are read back and hashed in one GET."""
        if streamed is not None:
            return (*streamed, True)
        key = media["object_key"]
        if declared:
            found = self.storage.head(key)
            received = None if found is None else (declared, *found)
        else:
            received = self.storage.digest_if_any(key)
        if received is None:
            raise InvalidInput("media_id", "nothing was uploaded to the slot")
        return (*received, not declared or self.storage.checks_sha256())

    def _own_slot(self, media_id: str) -> Mapping:
        media = self.db[store.MEDIA].find_one({"_id": media_id})
        if media is None or (
            media["uploader"] != self.caller.user_id and not self.caller.has_role("system")
        ):
            raise NotFound(f"no upload {media_id}")
        return media

    # ------------------------------------------------------------------ reading
    def _visible(self, media_id: str) -> Mapping:
        media = self.db[store.MEDIA].find_one({"_id": media_id, "state": STORED})
        if media is None:
            raise NotFound(f"no media {media_id}")
        self.owner_lookup(media["owner"]["kind"], media["owner"]["id"])  # scope, by its owner
        return media

    def get(self, media_id: str) -> dict:
        return render(self._visible(media_id))

    def download_link(self, media_id: str, variant: str = "original") -> dict:
        media = self._visible(media_id)
        if media.get("corrupted"):
            raise Conflict("media_id: the stored bytes no longer match their SHA-256")
        if media.get("integrity") == PENDING:  # nothing is served before it is checked
            raise Conflict("media_id: the upload's SHA-256 is being checked; ask again shortly")
        if variant == "thumbnail":
            if media["kind"] != "photo":
                raise InvalidInput("variant", "only photos have thumbnails")
            status = _thumbnail(media)["status"]
            if status != "ready":
                raise Conflict(f"variant: the thumbnail is {status}; show a placeholder")
            key, content_type = f"thumbnails/{media['sha256']}.jpg", "image/jpeg"
        elif variant == "original":
            key, content_type = media["object_key"], media["content_type"]
        else:
            raise InvalidInput("variant", "must be original or thumbnail")
        return {
            "media_id": media_id,
            "url": self.storage.download_url(key, LINK_TTL, content_type),
            "expires_at": (self.clock() + LINK_TTL).isoformat(),
            "sha256": media["sha256"] if variant == "original" else None,
        }

    def verify(self, media_id: str) -> dict:
        """Hash the stored bytes again; a mismatch is recorded and reported."""
        media = self._visible(media_id)
        sha256, _, _ = self.storage.digest(media["object_key"])
        intact = sha256 == media["sha256"]
        self.db[store.MEDIA].update_many(
            {"sha256": media["sha256"], "object_key": media["object_key"]},
            {"$set": {"corrupted": not intact, "verified_at": self.clock()}},
        )
        return {
            "media_id": media_id,
            "intact": intact,
            "expected": media["sha256"],
            "actual": sha256,
        }

    def pairs(self, incident_id: str) -> dict:
        """An incident's media as the verifier compares them: before (the report) and
        after (the department's feedback and the verification)."""
        self.owner_lookup("incident", incident_id)
        rows = list(
            self.db[store.MEDIA]
            .find({"owner.kind": "incident", "owner.id": incident_id, "state": STORED})
            .sort("stored_at", 1)
        )
        return {
            "incident_id": incident_id,
            "before": [render(row) for row in rows if row["purpose"] in BEFORE],
            "after": [render(row) for row in rows if row["purpose"] in AFTER],
        }

    # ------------------------------------------------------------------ deleting
    def delete(self, media_id: str) -> dict:
        media = self._visible(media_id)
        if media["uploader"] != self.caller.user_id and not self.caller.has_role("admin"):
            raise Forbidden("only the uploader or an administrator deletes media")
        if media["owner"]["kind"] == "incident":
            case = self.owner_lookup("incident", media["owner"]["id"])
            if case.get("state") not in FINISHED_CASE_STATES:
                raise Conflict("media_id: a case's evidence stays while the case is open")
        self.db[store.MEDIA].update_one(
            {"_id": media_id}, {"$set": {"state": DELETED, "deleted_at": self.clock()}}
        )
        self.contents.forget(media)
        return {"media_id": media_id, "state": DELETED}

    def apply_retention(self, days_by_purpose: Mapping[str, int]) -> int:
        """Delete media kept longer than their purpose's retention, except a case's
        evidence while the case is still open."""
        removed = 0
        now = self.clock()
        for purpose, days in days_by_purpose.items():
            old = (
                self.db[store.MEDIA]
                .find(
                    {
                        "state": STORED,
                        "purpose": purpose,
                        "stored_at": {"$lt": now - timedelta(days=days)},
                    }
                )
                .limit(500)
            )
            for media in old:
                if media["owner"]["kind"] == "incident":
                    try:
                        case = self.owner_lookup("incident", media["owner"]["id"])
                    except NotFound:
                        case = {"state": "closed"}  # the case is gone: nothing to keep for
                    if case.get("state") not in FINISHED_CASE_STATES:
                        continue
                self.db[store.MEDIA].update_one(
                    {"_id": media["_id"]},
                    {"$set": {"state": DELETED, "deleted_at": now, "deleted_by": "retention"}},
                )
                self.contents.forget(media)
                removed += 1
        return removed

    def expire_slots(self) -> int:
        """Remove what was uploaded to slots never confirmed in time."""
        expired = 0
        for media in (
            self.db[store.MEDIA]
            .find({"state": PENDING, "expires_at": {"$lt": self.clock()}})
            .limit(500)
        ):
            self.contents.release(media)
            self.db[store.MEDIA].update_one(
                {"_id": media["_id"], "state": PENDING}, {"$set": {"state": EXPIRED}}
            )
            expired += 1
        return expired


def render(media: Mapping) -> dict:
    return {
        "id": media["_id"],
        "state": media["state"],
        "content_type": media["content_type"],
        "kind": media["kind"],
        "size": media["size"],
        "purpose": media["purpose"],
        "owner": media["owner"],
        "uploader": media["uploader"],
        "sha256": media.get("sha256"),
        "metadata": media.get("metadata", {}),
        "thumbnail": _thumbnail(media) if media["kind"] == "photo" else None,
        "stored_at": media["stored_at"].isoformat() if media.get("stored_at") else None,
        "corrupted": media.get("corrupted", False),
        "integrity": _integrity(media),
    }


def _integrity(media: Mapping) -> str | None:
    """ "pending" until the bytes were checked against their SHA-256, then "verified";
    media stored before the check could come after the confirm were checked in it."""
    if media["state"] != STORED:
        return None
    return media.get("integrity", VERIFIED)


def _thumbnail(media: Mapping) -> dict:
    """{"status": "pending" | "ready" | "none"}; photos stored before thumbnails were made
    after the confirm had theirs made with it."""
    return dict(media.get("thumbnail") or {"status": "ready" if media.get("sha256") else "pending"})


def _upload_key(slot: Mapping) -> str:
    """Where a slot's PUT goes: its object key while it is open. Once it is closed (a
    keyed retry after the confirm) its own `uploads/` key, never stored content."""
    return slot["object_key"] if slot["state"] == PENDING else upload_key(slot["_id"])


def _declared(sha256: object) -> str | None:
    if sha256 is None:
        return None
    if not isinstance(sha256, str) or not SHA256.fullmatch(sha256.lower()):
        raise InvalidInput("sha256", "must be the SHA-256 of the bytes, 64 hexadecimal digits")
    return sha256.lower()
