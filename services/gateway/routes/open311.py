"""Open311 GeoReport v2 for citizens' reporting apps (docs/open311.md): discovery, services
and their definitions, service requests (created by trusted clients with an API key, read
by anyone without their citizen's personal data) and tokens, each as `.json` or `.xml`,
errors as GeoReport error lists. Field names and formats follow GeoReport v2 so existing
Open311 clients work unchanged."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime
from itertools import islice

from flask import Blueprint, current_app, g, request
from pymongo.errors import DuplicateKeyError

from gridwork_common import idempotency, roles
from gridwork_common.context import CallerContext
from gridwork_common.errors import InvalidInput
from gridwork_common.service_names import EVENTS
from services.gateway import store
from services.gateway.api import Api, Call
from services.gateway.open311 import definitions, formats, openapi
from services.gateway.open311 import requests as public
from services.gateway.open311.errors import as_open311_errors
from services.gateway.open311.models import (
    ClientKey,
    Discovery,
    JurisdictionQuery,
    NewClient,
    NewRequest,
    PublicReadQuery,
    Receipts,
    RequestsQuery,
    ServiceDefinition,
    ServiceRequests,
    Services,
    TokenAnswers,
)
from services.gateway.open311.repository import Open311Records
from services.gateway.problems import IDEMPOTENCY_HEADER, ApiProblem, key_reused
from services.gateway.ratelimits import limit_open311

SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
# When this endpoint's GeoReport surface last changed (discovery's changeset).
CHANGESET = "2026-11-30T00:00:00+08:00"
RECEIVED_NOTICE = "已受理登记，处理进度可凭编号查询"
INCIDENT_BATCH = 200  # incidents asked of the events service per call (its page limit)


def register(api: Api) -> Blueprint:
    blueprint = Blueprint("open311", __name__, url_prefix="/open311/v2")
    api.tag("open311", "Open311 GeoReport v2 for citizens' reporting apps (JSON and XML)")
    api.schemas.update(openapi.SCHEMAS)
    blueprint.after_app_request(as_open311_errors)
    georeport = _GeoReportRoutes(api, blueprint)

    @georeport.route(
        "GET", "/discovery", Discovery, "discovery", summary="Where and how to use this endpoint"
    )
    def discovery(call: Call):
        settings = _settings()
        endpoint = {
            "specification": SPECIFICATION,
            "url": request.host_url.rstrip("/") + blueprint.url_prefix,
            "changeset": CHANGESET,
            "type": "test" if settings.dev_mode else "production",
            "formats": [formats.JSON_MEDIA, formats.XML_MEDIA],
        }
        return {
            "changeset": CHANGESET,
            "contact": "县综治中心（网格化服务管理中心）",
            "key_service": "API key 由县综治中心管理员登记发放（POST /open311/v2/clients）",
            "endpoints": [endpoint],
        }

    @georeport.route(
        "GET",
        "/services",
        Services,
        "services",
        item="Service",
        summary="Services open to the public",
    )
    def services(call: Call):
        catalogue = _rpc("catalogue", None, True)
        return [
            {
                "service_code": entry["code"],
                "service_name": entry["name"],
                "description": entry["name"],
                "metadata": bool(definitions.definition_of(entry["code"]).questions),
                "type": "realtime",
                "keywords": "",
                "group": catalogue["categories"].get(entry["code"][:2], ""),
            }
            for entry in catalogue["entries"]
        ]

    @georeport.route(
        "GET",
        "/services/{service_code}",
        ServiceDefinition,
        "service_definition",
        summary="A service's definition: the questions it asks",
    )
    def service_definition(call: Call):
        code = call.path["service_code"]
        if code not in _public_codes():
            raise ApiProblem(404, "Not Found", f"service_code: no public service {code}")
        return definitions.render(definitions.definition_of(code))

    @georeport.route(
        "POST",
        "/requests",
        Receipts,
        "service_requests",
        item="RequestReceipt",
        summary="Create a service request (a trusted client's api_key)",
        body=NewRequest,
        status=201,
        errors=("400", "403", "404", "429", "503"),
        headers=(OPTIONAL_KEY,),
    )
    def create_request(call: Call):
        body: NewRequest = call.body
        client = _records().client_by_key(body.api_key)
        if client is None:
            raise ApiProblem(403, "Forbidden", "api_key: unknown or disabled", field="api_key")
        if body.service_code not in _public_codes():
            # GeoReport v2: 404 for a service_code not found (the pattern holds; the
            # catalogue is stored data no schema states)
            raise ApiProblem(
                404, "Not Found", f"service_code: no public service {body.service_code}"
            )
        definition = definitions.definition_of(body.service_code)
        answers = _checked(
            lambda: definitions.check_answers(definition, _posted_answers(body)),
        )
        return [_create(client, body, definition, answers)]

    @georeport.route(
        "GET",
        "/requests",
        ServiceRequests,
        "service_requests",
        item="ServiceRequest",
        summary="Service requests (public: no personal data)",
        query=RequestsQuery,
    )
    def list_requests(call: Call):
        query = _checked(
            lambda: public.parse_query(call.query.model_dump(), current_app.extensions["clock"]())
        )
        records = _records()
        if query.ids:
            rows = records.by_ids(query.ids)
            return _public_requests(rows, query)
        found: list[dict] = []
        rows = records.newest_in_window(query)
        while len(found) < public.MAX_REQUESTS:
            batch = list(islice(rows, INCIDENT_BATCH))
            if not batch:
                break
            found.extend(_public_requests(batch, query))
        return found[: public.MAX_REQUESTS]

    @georeport.route(
        "GET",
        "/requests/{service_request_id}",
        ServiceRequests,
        "service_requests",
        item="ServiceRequest",
        summary="One service request (public: no personal data)",
        query=PublicReadQuery,
    )
    def get_request(call: Call):
        row = _records().request(call.path["service_request_id"])
        if row is None:
            raise ApiProblem(404, "Not Found", "service_request_id: no such service request")
        return _public_requests([row], public.RequestQuery())

    @georeport.route(
        "GET",
        "/tokens/{token}",
        TokenAnswers,
        "service_requests",
        item="TokenAnswer",
        summary="The service request a token became",
        query=PublicReadQuery,
    )
    def get_token(call: Call):
        row = _records().by_token(call.path["token"])
        if row is None:
            raise ApiProblem(404, "Not Found", "token: no such token")
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
        # A retry under the same key derives the same client and API key, so it finds the
        # client a first attempt registered (its answer lost) instead of adding another.
        admin, key = call.caller.user_id, call.idempotency_key
        secret_key = current_app.config["GRIDWORK_SETTINGS"].token_secret
        api_key = idempotency.keyed_secret(secret_key, "open311_client", admin, key)
        client_id = idempotency.keyed_id("open311_client", admin, key)[:12]
        name = call.body.name
        records = _records()
        try:
            records.add_client(api_key, client_id, name, admin, _clock())
        except DuplicateKeyError:
            first = records.client_by_key(api_key)
            if first is None or first["name"] != name:
                raise ApiProblem(
                    422,
                    "Invalid input",
                    f"{IDEMPOTENCY_HEADER}: already used for a different request",
                    field=IDEMPOTENCY_HEADER,
                ) from None
        return {"client_id": client_id, "name": name, "api_key": api_key}

    return blueprint


OPTIONAL_KEY = {
    "name": IDEMPOTENCY_HEADER,
    "in": "header",
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": idempotency.MAX_KEY_LENGTH},
    "description": "Optional (GeoReport defines none): a retry with the same key returns the "
    "first response (also when the first answer was lost: the request is found, never made "
    "twice); the same key with a different request is refused (400 naming the header).",
}


class _GeoReportRoutes:
    """Declares a GeoReport route in both formats: `<path>.json` and `<path>.xml`, rate
    limited per client address, with `jurisdiction_id` checked and errors as GeoReport
    error lists."""

    def __init__(self, api: Api, blueprint: Blueprint):
        self.api = api
        self.blueprint = blueprint

    def route(
        self,
        method: str,
        path: str,
        response,
        root: str,
        *,
        summary: str,
        item: str | None = None,
        query=JurisdictionQuery,
        body=None,
        status: int = 200,
        errors: tuple[str, ...] = ("400", "404", "429", "503"),
        headers: tuple[dict, ...] = (),
    ) -> Callable:
        def declare(view: Callable) -> Callable:
            for fmt in formats.FORMATS:
                self.api.operation(
                    self.blueprint,
                    method,
                    f"{path}.{fmt}",
                    summary=f"{summary} ({fmt.upper()})",
                    tag="open311",
                    response=response,
                    query=query if body is None else None,
                    body=body,
                    status=status,
                    public=True,
                    form=body is not None,
                    raw_response=(
                        openapi.xml_success(
                            item or response.__name__,
                            root,
                            formats.ITEM_TAGS[root] if item else None,
                            status,
                        )
                        if fmt == "xml"
                        else None
                    ),
                    error_responses=openapi.error_responses(fmt, errors),
                    headers=headers,
                )(_in_format(view, fmt, root, status))
            return view

        return declare


def _in_format(view: Callable, fmt: str, root: str, status: int) -> Callable:
    def answer(call: Call):
        limit_open311()
        given = call.body if call.body is not None else call.query
        _check_jurisdiction(getattr(given, "jurisdiction_id", None))
        return formats.respond(view(call), fmt, root, status)

    answer.__name__ = f"{view.__name__}_{fmt}"
    return answer


# ---------------------------------------------------------------- helpers
def _settings():
    return current_app.config["GRIDWORK_SETTINGS"]


def _clock() -> datetime:
    return current_app.extensions["clock"]()


def _records() -> Open311Records:
    return Open311Records(store.gateway_db(_settings()))


def _check_jurisdiction(jurisdiction_id: str | None) -> None:
    if jurisdiction_id and jurisdiction_id != _settings().county_code:
        raise ApiProblem(
            404,
            "Not Found",
            f"jurisdiction_id: {jurisdiction_id} is not served here "
            f"(this endpoint serves {_settings().county_code})",
            field="jurisdiction_id",
        )


def _checked(work: Callable):
    """Runs a GeoReport rule check, answering its refusal as a 400 naming the field."""
    try:
        return work()
    except public.InvalidQuery as exc:
        raise ApiProblem(400, "Bad Request", str(exc), field=exc.field) from None


def _gateway_caller(user_id: str = "open311") -> CallerContext:
    """Open311 acts as the system, anywhere in the county: trusted clients report on a
    citizen's behalf, and public reads show only what anyone may see."""
    return CallerContext(
        user_id=user_id,
        roles=(roles.SYSTEM,),
        scope=_settings().county_code,
        request_id=g.request_id,
    )


def _rpc(method: str, *args, caller: CallerContext | None = None):
    return current_app.extensions["rpc"].call(
        EVENTS, method, *args, caller=caller or _gateway_caller()
    )


def _public_codes() -> set[str]:
    return {entry["code"] for entry in _rpc("catalogue", None, True)["entries"]}


def _posted_answers(body: NewRequest) -> dict[str, list[str]]:
    if request.form:
        return definitions.answers_from_form(request.form.items(multi=True))
    return definitions.answers_from_json(body.attribute)


def _create(client: dict, body: NewRequest, definition, answers: dict) -> dict:
    # Under an Idempotency-Key the token follows from the client and the key: the events
    # service de-duplicates the report by it, and a retry finds the first request's record.
    key = request.headers.get(IDEMPOTENCY_HEADER)
    request_print = idempotency.fingerprint(
        {**body.model_dump(mode="json", exclude={"api_key"}), "answers": answers}
    )
    token = uuid.uuid4().hex
    if key is not None:
        try:
            token = idempotency.keyed_id("open311_request", client["client_id"], key)
            first = _records().by_token(token)
            if first is not None:
                idempotency.check_replay(first, request_print)
                return _receipt(first["_id"], token, body)
        except InvalidInput as exc:  # too long, or the key of another request
            raise key_reused(exc) from None
    # The case carries what the centre needs: the words, the address and the answers.
    details = [body.description]
    if body.address_string:
        details[0] = f"{body.description}（{body.address_string}）"
    if answers:
        details.append(definitions.summary(definition, answers))
    caller = _gateway_caller(f"open311:{client['client_id']}")
    result = _rpc(
        "report_incident",
        {
            "category": body.service_code,
            "description": "\n".join(details),
            "location": [body.long, body.lat],
            "reporter_id": f"citizen:{body.account_id or body.device_id or token}",
        },
        token,
        caller=caller,
    )
    incident = result["incident"]
    with contextlib.suppress(DuplicateKeyError):  # the same key's retry stored it meanwhile
        _records().add_request(
            {
                "_id": incident["id"],
                "token": token,
                "client_id": client["client_id"],
                "service_code": body.service_code,
                "description": body.description,
                "address": body.address_string,
                "media_url": body.media_url,
                "answers": answers,
                "contact": {
                    "email": body.email,
                    "phone": body.phone,
                    "first_name": body.first_name,
                    "last_name": body.last_name,
                },
                "created_at": _clock(),
                "requested_at": datetime.fromisoformat(incident["reported_at"]),
                "request_fingerprint": request_print,
            }
        )
    return _receipt(incident["id"], token, body)


def _receipt(service_request_id: str, token: str, body: NewRequest) -> dict:
    return {
        "service_request_id": service_request_id,
        "token": token,
        "service_notice": RECEIVED_NOTICE,
        "account_id": body.account_id,
    }


def _public_requests(rows: Iterable[dict], query: public.RequestQuery) -> list[dict]:
    """The rows as anyone may read them, with their cases' progress (one events call per
    batch), those of the asked statuses only."""
    rows = list(rows)
    if not rows:
        return []
    incidents = {}
    for start in range(0, len(rows), INCIDENT_BATCH):
        ids = [row["_id"] for row in rows[start : start + INCIDENT_BATCH]]
        found = _rpc("search", {"ids": ids}, None, len(ids))
        incidents.update((incident["id"], incident) for incident in found["items"])
    names = _service_names()
    exact = _settings().open311_exact_address
    return [
        public.public_request(row, incidents[row["_id"]], names.get(row["service_code"]), exact)
        for row in rows
        if row["_id"] in incidents and public.matches(query, incidents[row["_id"]])
    ]


def _service_names() -> dict[str, str]:
    """Every catalogue item's name by code, asked once per request."""
    if "open311_service_names" not in g:
        entries = _rpc("catalogue")["entries"]
        g.open311_service_names = {entry["code"]: entry["name"] for entry in entries}
    return g.open311_service_names
