"""Open311 GeoReport v2 for citizens' reporting apps: services (the catalogue items open
to the public), service requests (incidents) created and read by trusted clients with an
API key, and tokens. Field names and formats follow GeoReport v2 so existing Open311
clients work unchanged (JSON; XML is not offered)."""

from __future__ import annotations

import hashlib
import secrets
import uuid

from flask import Blueprint, current_app
from pydantic import BaseModel, ConfigDict, Field, RootModel
from pymongo.errors import DuplicateKeyError

from gridwork_common import roles
from gridwork_common.context import CallerContext
from services.gateway import store
from services.gateway.api import Api, Call
from services.gateway.problems import ApiProblem
from services.gateway.ratelimits import limit_open311

FINISHED_STATES = ("closed", "evaluated", "rejected")


class Service(BaseModel):
    service_code: str
    service_name: str
    description: str
    metadata: bool
    type: str
    keywords: str
    group: str


class Services(RootModel[list[Service]]):
    pass


class NewRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")  # GeoReport clients send optional extras
    api_key: str = Field(min_length=8, max_length=100)
    service_code: str = Field(pattern=r"^\d{2}\.\d{2}$")
    lat: float = Field(ge=-90, le=90)
    long: float = Field(ge=-180, le=180)
    description: str = Field(min_length=1, max_length=2000)
    address_string: str | None = Field(default=None, max_length=200)
    media_url: str | None = Field(default=None, max_length=500)
    email: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=30)
    first_name: str | None = Field(default=None, max_length=50)
    last_name: str | None = Field(default=None, max_length=50)
    device_id: str | None = Field(default=None, max_length=100)
    account_id: str | None = Field(default=None, max_length=100)


class RequestReceipt(BaseModel):
    service_request_id: str
    token: str
    service_notice: str
    account_id: str | None = None


class Receipts(RootModel[list[RequestReceipt]]):
    pass


class ServiceRequest(BaseModel):
    service_request_id: str
    status: str
    status_notes: str | None = None
    service_name: str | None = None
    service_code: str
    description: str | None = None
    agency_responsible: str | None = None
    service_notice: str | None = None
    requested_datetime: str
    updated_datetime: str | None = None
    expected_datetime: str | None = None
    address: str | None = None
    lat: float | None = None
    long: float | None = None
    media_url: str | None = None


class ServiceRequests(RootModel[list[ServiceRequest]]):
    pass


class RequestQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    api_key: str = Field(min_length=8, max_length=100)
    service_request_id: str | None = Field(default=None, max_length=2000)


class KeyQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    api_key: str = Field(min_length=8, max_length=100)


class TokenAnswer(BaseModel):
    service_request_id: str
    token: str


class TokenAnswers(RootModel[list[TokenAnswer]]):
    pass


class NewClient(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100)


class ClientKey(BaseModel):
    client_id: str
    name: str
    api_key: str = Field(description="shown once; only its hash is kept")


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _db():
    return store.gateway_db(current_app.config["GRIDWORK_SETTINGS"])


def _client_caller(api_key: str, request_id: str) -> tuple[dict, CallerContext]:
    client = _db()[store.OPEN311_CLIENTS].find_one({"_id": _digest(api_key), "disabled": False})
    if client is None:
        raise ApiProblem(403, "Forbidden", "api_key: unknown or disabled", field="api_key")
    settings = current_app.config["GRIDWORK_SETTINGS"]
    # Trusted clients report on a citizen's behalf, as the system, anywhere in the county.
    caller = CallerContext(
        user_id=f"open311:{client['client_id']}",
        roles=(roles.SYSTEM,),
        scope=settings.county_code,
        request_id=request_id,
    )
    return client, caller


def _rpc(caller: CallerContext, service: str, method: str, *args):
    return current_app.extensions["rpc"].call(service, method, *args, caller=caller)


def register(api: Api) -> Blueprint:
    blueprint = Blueprint("open311", __name__, url_prefix="/open311/v2")
    api.tag("open311", "Open311 GeoReport v2 for citizens' reporting apps")

    @api.operation(
        blueprint,
        "GET",
        "/services.json",
        summary="Services open to the public",
        tag="open311",
        response=Services,
        public=True,
    )
    def services(call: Call):
        limit_open311()
        catalogue = _rpc(call.caller, "events", "catalogue", None, True)
        return [
            {
                "service_code": entry["code"],
                "service_name": entry["name"],
                "description": entry["name"],
                "metadata": False,
                "type": "realtime",
                "keywords": "",
                "group": catalogue["categories"].get(entry["code"][:2], ""),
            }
            for entry in catalogue["entries"]
        ]

    @api.operation(
        blueprint,
        "POST",
        "/requests.json",
        summary="Create a service request",
        tag="open311",
        body=NewRequest,
        response=Receipts,
        status=201,
        public=True,
        form=True,
    )
    def create_request(call: Call):
        limit_open311()
        body: NewRequest = call.body
        client, caller = _client_caller(body.api_key, call.caller.request_id)
        token = uuid.uuid4().hex
        description = body.description
        if body.address_string:
            description = f"{description}（{body.address_string}）"
        result = _rpc(
            caller,
            "events",
            "report_incident",
            {
                "category": body.service_code,
                "description": description,
                "location": [body.long, body.lat],
                "reporter_id": f"citizen:{body.account_id or body.device_id or token}",
            },
            token,
        )
        incident = result["incident"]
        _db()[store.OPEN311_REQUESTS].insert_one(
            {
                "_id": incident["id"],
                "token": token,
                "client_id": client["client_id"],
                "service_code": body.service_code,
                "address": body.address_string,
                "media_url": body.media_url,
                "contact": {
                    "email": body.email,
                    "phone": body.phone,
                    "first_name": body.first_name,
                    "last_name": body.last_name,
                },
                "created_at": current_app.extensions["clock"](),
            }
        )
        return [
            {
                "service_request_id": incident["id"],
                "token": token,
                "service_notice": "已受理登记，处理进度可凭编号查询",
                "account_id": body.account_id,
            }
        ]

    @api.operation(
        blueprint,
        "GET",
        "/requests.json",
        summary="Service requests by id",
        tag="open311",
        query=RequestQuery,
        response=ServiceRequests,
        public=True,
    )
    def list_requests(call: Call):
        limit_open311()
        client, caller = _client_caller(call.query.api_key, call.caller.request_id)
        query = {"client_id": client["client_id"]}
        if call.query.service_request_id:
            query["_id"] = {"$in": call.query.service_request_id.split(",")[:50]}
        rows = _db()[store.OPEN311_REQUESTS].find(query).sort("created_at", -1).limit(50)
        return [_service_request(caller, row) for row in rows]

    @api.operation(
        blueprint,
        "GET",
        "/requests/{service_request_id}.json",
        summary="One service request",
        tag="open311",
        query=KeyQuery,
        response=ServiceRequests,
        public=True,
    )
    def get_request(call: Call):
        limit_open311()
        client, caller = _client_caller(call.query.api_key, call.caller.request_id)
        row = _db()[store.OPEN311_REQUESTS].find_one(
            {"_id": call.path["service_request_id"], "client_id": client["client_id"]}
        )
        if row is None:
            raise ApiProblem(404, "Not Found", "no such service request")
        return [_service_request(caller, row)]

    @api.operation(
        blueprint,
        "GET",
        "/tokens/{token}.json",
        summary="The request a token became",
        tag="open311",
        query=KeyQuery,
        response=TokenAnswers,
        public=True,
    )
    def get_token(call: Call):
        limit_open311()
        client, _ = _client_caller(call.query.api_key, call.caller.request_id)
        row = _db()[store.OPEN311_REQUESTS].find_one(
            {"token": call.path["token"], "client_id": client["client_id"]}
        )
        if row is None:
            raise ApiProblem(404, "Not Found", "no such token")
        return [{"service_request_id": row["_id"], "token": row["token"]}]

    @api.operation(
        blueprint,
        "POST",
        "/clients",
        summary="Register a trusted Open311 client (its API key is shown once)",
        tag="open311",
        body=NewClient,
        response=ClientKey,
        status=201,
        roles=(roles.ADMIN,),
        idempotent=True,
    )
    def create_client(call: Call):
        api_key = secrets.token_urlsafe(24)
        client_id = uuid.uuid4().hex[:12]
        try:
            _db()[store.OPEN311_CLIENTS].insert_one(
                {
                    "_id": _digest(api_key),
                    "client_id": client_id,
                    "name": call.body.name,
                    "disabled": False,
                    "created_by": call.caller.user_id,
                    "created_at": current_app.extensions["clock"](),
                }
            )
        except DuplicateKeyError:  # a 192-bit random key collided: astronomically unlikely
            raise ApiProblem(409, "Conflict", "try again") from None
        return {"client_id": client_id, "name": call.body.name, "api_key": api_key}

    return blueprint


def _service_request(caller: CallerContext, row: dict) -> dict:
    incident = current_app.extensions["rpc"].call(
        "events", "get_incident", row["_id"], caller=caller
    )
    lon, lat = incident.get("location") or [None, None]
    return {
        "service_request_id": row["_id"],
        "status": "closed" if incident["state"] in FINISHED_STATES else "open",
        "status_notes": incident["state"],
        "service_name": None,
        "service_code": row["service_code"],
        "description": incident.get("description"),
        "agency_responsible": incident.get("department") or incident.get("owning_centre"),
        "service_notice": None,
        "requested_datetime": incident["reported_at"],
        # The latest stage start is the latest change a citizen cares about.
        "updated_datetime": incident.get("closed_at")
        or incident.get("stage_started_at")
        or incident["reported_at"],
        "expected_datetime": incident.get("stage_due"),
        "address": row.get("address"),
        "lat": lat,
        "long": lon,
        "media_url": row.get("media_url"),
    }
