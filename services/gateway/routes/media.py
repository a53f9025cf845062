"""/api/v1/media: photos, video and audio from the field (the media service).

The primary path: ask for an upload slot, PUT the bytes to its presigned URL, confirm.
The fallback for clients that cannot: a multipart upload through the gateway, up to
GATEWAY_MEDIA_UPLOAD_BYTES. Either way the media service checks the stored bytes."""

from __future__ import annotations

import base64
import os
from typing import Any, Literal, get_args

from flask import Blueprint, request
from pydantic import BaseModel, ConfigDict, Field

from gridwork_common import roles
from gridwork_common.service_names import MEDIA
from services.gateway.api import Api, Call
from services.gateway.problems import ApiProblem
from services.gateway.ratelimits import limit_uploads

SERVICE = MEDIA
TAG = "media"
FILE_FIELD = "file"
DIRECT_UPLOAD_BYTES = int(os.environ.get("GATEWAY_MEDIA_UPLOAD_BYTES", str(10 * 1024 * 1024)))
UPLOADERS = (
    roles.GRID_WORKER,
    roles.GRID_LEADER,
    roles.CENTRE_OPERATOR,
    roles.DEPARTMENT_HANDLER,
    roles.ADMIN,
)
ContentType = Literal[
    "image/jpeg",
    "image/png",
    "image/webp",
    "image/heic",
    "video/mp4",
    "audio/aac",
    "audio/mp4",
    "audio/amr",
]
Purpose = Literal["incident_report", "feedback", "verification", "visit", "record"]


class Owner(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["incident", "membership", "resident"]
    id: str = Field(min_length=1, max_length=64)


class UploadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    content_type: ContentType
    size: int = Field(ge=1, le=1024 * 1024 * 1024)
    purpose: Purpose
    owner: Owner
    sha256: str | None = Field(
        default=None,
        pattern="^[0-9a-fA-F]{64}$",
        description="SHA-256 of the bytes (hex), if the client knows it: the PUT then lands "
        "at the content's address, signed over the checksum header it must send",
    )


class UploadSlot(BaseModel):
    model_config = ConfigDict(extra="allow")
    media_id: str
    upload_url: str
    method: str
    headers: dict[str, str]
    expires_at: str


class Media(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    state: str
    content_type: str
    kind: str
    size: int
    purpose: str
    owner: dict[str, str]
    uploader: str | None = None
    sha256: str | None = None
    metadata: dict[str, Any] = {}
    thumbnail: dict[str, str] | None = Field(
        default=None,
        description='photos: {"status": "pending"} until the thumbnail and EXIF metadata '
        'are made after the confirm, then "ready" (or "none": not decodable)',
    )
    stored_at: str | None = None
    corrupted: bool = False
    integrity: Literal["pending", "verified"] | None = Field(
        default=None,
        description='stored media: "pending" until the bytes were checked against their '
        "SHA-256 (right after the confirm when the S3 server did not check a declared one; "
        'no download link until then, 409), then "verified"; bytes that do not match are '
        "removed and the media is no longer found",
    )


class LinkQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    variant: Literal["original", "thumbnail"] = "original"


class Link(BaseModel):
    media_id: str
    url: str
    expires_at: str
    sha256: str | None = None


class Integrity(BaseModel):
    media_id: str
    intact: bool
    expected: str
    actual: str


class Pairs(BaseModel):
    incident_id: str
    before: list[Media]
    after: list[Media]


class Deleted(BaseModel):
    media_id: str
    state: str


# The multipart fallback's body, which the view reads itself.
DIRECT_UPLOAD = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": [FILE_FIELD, "content_type", "purpose", "owner_kind", "owner_id"],
                # the same values as an upload slot's request (UploadRequest)
                "properties": {
                    FILE_FIELD: {
                        "type": "string",
                        "contentMediaType": "application/octet-stream",
                        "minLength": 1,
                        "maxLength": DIRECT_UPLOAD_BYTES,
                    },
                    "content_type": {"type": "string", "enum": list(get_args(ContentType))},
                    "purpose": {"type": "string", "enum": list(get_args(Purpose))},
                    "owner_kind": {
                        "type": "string",
                        "enum": list(get_args(Owner.model_fields["kind"].annotation)),
                    },
                    "owner_id": {"type": "string", "minLength": 1, "maxLength": 64},
                },
            }
        }
    },
}


def register(api: Api) -> Blueprint:
    blueprint = Blueprint("media", __name__, url_prefix="/api/v1")
    api.tag(TAG, "Photos, video and audio: upload slots, checks, links, before/after pairs")

    @api.operation(
        blueprint,
        "POST",
        "/media/uploads",
        summary="Ask for an upload slot (a presigned PUT URL)",
        tag=TAG,
        body=UploadRequest,
        response=UploadSlot,
        status=201,
        roles=UPLOADERS,
        idempotent=True,
    )
    def request_upload(call: Call):
        limit_uploads(call.caller.user_id)
        body: UploadRequest = call.body
        return call.rpc(
            SERVICE,
            "request_upload",
            body.content_type,
            body.size,
            body.purpose,
            body.owner.model_dump(),
            call.idempotency_key,
            sha256=body.sha256,
        )

    @api.operation(
        blueprint,
        "POST",
        "/media/{media_id}/confirm",
        summary="Confirm an upload (its size and type are checked; its SHA-256 at once "
        "or just after)",
        tag=TAG,
        response=Media,
        roles=UPLOADERS,
        idempotent=True,
    )
    def confirm(call: Call):
        return call.rpc(SERVICE, "confirm_upload", call.path["media_id"])

    @api.operation(
        blueprint,
        "POST",
        "/media",
        summary="Upload a small file through the "
        "gateway (for clients that cannot use upload slots)",
        tag=TAG,
        response=Media,
        status=201,
        roles=UPLOADERS,
        idempotent=True,
        raw_body=DIRECT_UPLOAD,
    )
    def upload(call: Call):
        limit_uploads(call.caller.user_id)
        upload = request.files.get(FILE_FIELD)
        if upload is None:
            raise ApiProblem(
                400,
                "Bad Request",
                f"{FILE_FIELD}: send it as multipart/form-data",
                field=FILE_FIELD,
            )
        data = upload.read(DIRECT_UPLOAD_BYTES + 1)
        if not data or len(data) > DIRECT_UPLOAD_BYTES:
            raise ApiProblem(
                422,
                "Invalid input",
                f"{FILE_FIELD}: 1 to {DIRECT_UPLOAD_BYTES} "
                "bytes here; larger files use an upload slot",
                field=FILE_FIELD,
            )
        form = request.form
        for name in ("content_type", "purpose", "owner_kind", "owner_id"):
            if not form.get(name):
                raise ApiProblem(400, "Bad Request", f"{name}: is required", field=name)
        owner = {"kind": form["owner_kind"], "id": form["owner_id"]}
        return call.rpc(
            SERVICE,
            "upload",
            form["content_type"],
            form["purpose"],
            owner,
            base64.b64encode(data).decode("ascii"),
            call.idempotency_key,
        )

    @api.operation(
        blueprint,
        "GET",
        "/media/{media_id}",
        summary="A stored file's record",
        tag=TAG,
        response=Media,
    )
    def get_media(call: Call):
        return call.rpc(SERVICE, "get_media", call.path["media_id"])

    @api.operation(
        blueprint,
        "GET",
        "/media/{media_id}/link",
        summary="A short-lived download link (after a scope check)",
        tag=TAG,
        query=LinkQuery,
        response=Link,
    )
    def link(call: Call):
        return call.rpc(SERVICE, "download_link", call.path["media_id"], call.query.variant)

    @api.operation(
        blueprint,
        "POST",
        "/media/{media_id}/verify",
        summary="Check the stored bytes against their SHA-256",
        tag=TAG,
        response=Integrity,
        idempotent=True,
    )
    def verify(call: Call):
        return call.rpc(SERVICE, "verify_integrity", call.path["media_id"])

    @api.operation(
        blueprint,
        "DELETE",
        "/media/{media_id}",
        summary="Delete (not while its case is open)",
        tag=TAG,
        response=Deleted,
        roles=UPLOADERS,
    )
    def delete(call: Call):
        return call.rpc(SERVICE, "delete_media", call.path["media_id"])

    @api.operation(
        blueprint,
        "GET",
        "/incidents/{incident_id}/media",
        summary="An incident's media as before/after pairs",
        tag=TAG,
        response=Pairs,
    )
    def pairs(call: Call):
        return call.rpc(SERVICE, "pairs", call.path["incident_id"])

    return blueprint
