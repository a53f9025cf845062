"""HTTP operations declared once: the same pydantic models validate requests and generate
the OpenAPI 3.1 document. A route family is a module that declares its operations on a
blueprint with `api.operation(...)`; app.py registers the module.

Every operation: authenticates the caller (unless public: a bearer token, or a browser
session with its CSRF token in a header, see api_session.py) and checks its roles; validates
path, query and JSON body, answering problem+json that names the field; for a POST that
creates or acts, requires an `Idempotency-Key` and replays the first response to a retry;
calls the view with a `Call` that carries the caller into every RPC.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, Response, current_app, g, json, request
from pydantic import BaseModel, ValidationError

from gridwork_common.context import CallerContext
from services.gateway import api_session, idempotency, timing
from services.gateway.documented import (
    HTTP_SERVER_ERROR,
    HTTP_SERVER_STATUSES,
    PROBLEM_STATUSES,
    RETRY_AFTER,
    TOO_LARGE,
    as_enforced,
    as_form,
    form_fields,
    integral_floats_as_ints,
)
from services.gateway.idempotency import MAX_KEY_LENGTH
from services.gateway.problems import IDEMPOTENCY_HEADER, PROBLEM_JSON, ApiProblem

_PATH_PARAM = re.compile(r"\{(\w+)\}")


@dataclass
class Call:
    """What a view gets: the caller, the validated inputs and RPC in the caller's name."""

    caller: CallerContext
    body: Any = None
    query: Any = None
    path: dict = field(default_factory=dict)
    idempotency_key: str | None = None
    claims: dict = field(default_factory=dict)

    def rpc(self, service: str, method: str, *args, **kwargs):
        return current_app.extensions["rpc"].call(
            service, method, *args, caller=self.caller, **kwargs
        )


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    summary: str
    tag: str
    response: type[BaseModel] | None
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    status: int
    roles: tuple[str, ...] | None
    public: bool
    idempotent: bool
    form: bool
    description: str
    # For what pydantic models cannot describe: an upload's or download's media types.
    raw_body: dict | None = None  # an OpenAPI requestBody (e.g. multipart/form-data)
    raw_response: dict | None = None  # the success response, as an OpenAPI response
    headers: tuple[dict, ...] = ()  # header parameters the view reads itself
    # Error responses other than the problem+json ones (Open311's own error documents).
    error_responses: dict | None = None
    path_params: type[BaseModel] | None = None  # what the path's {parameters} must look like
    # The service finds what an earlier attempt under the key made and answers it again:
    # the gateway keeps only what the key was used for (services/gateway/idempotency.py).
    replayed_by_service: bool = False
    # The service's own event that counts as the caller's account activity (the
    # assessment reads its actor): no `account.action` is sent for the operation.
    activity_event: str | None = None


class Api:
    def __init__(self, title: str, version: str, description: str = ""):
        self.info = {"title": title, "version": version, "description": description}
        self.paths: dict[str, dict] = {}
        self.schemas: dict[str, dict] = {}
        self.tags: list[dict] = []
        # (METHOD, full path) -> its declaration: what answers 405 and who may call it
        self.operations: dict[tuple[str, str], Operation] = {}

    def tag(self, name: str, description: str) -> None:
        self.tags.append({"name": name, "description": description})

    def operation(
        self,
        blueprint: Blueprint,
        method: str,
        path: str,
        *,
        summary: str,
        tag: str,
        response: type[BaseModel] | None = None,
        body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        status: int = 200,
        roles: tuple[str, ...] | None = None,
        public: bool = False,
        idempotent: bool = False,
        form: bool = False,
        description: str = "",
        raw_body: dict | None = None,
        raw_response: dict | None = None,
        headers: tuple[dict, ...] = (),
        error_responses: dict | None = None,
        path_params: type[BaseModel] | None = None,
        replayed_by_service: bool = False,
        activity_event: str | None = None,
    ) -> Callable:
        """`form=True`: the body may also come as application/x-www-form-urlencoded
        (Open311 clients post forms). `raw_body`, `raw_response` and `headers` document
        what a view handles itself (uploads, CSV or HTML downloads, extra headers);
        `error_responses` replaces the problem+json error responses in the document.
        `path_params`: a model of the path's {parameters} (e.g. a territory code's
        pattern), validated like the query; without it they are any non-empty string.
        `replayed_by_service`: for an idempotent operation whose service replays a retry
        by the key itself (one write on the key's record instead of a claim and a kept
        answer). `activity_event`: the event the service publishes for the operation,
        which the assessment counts as the caller's account activity (so the gateway
        sends no `account.action` for it; services/gateway/activity.py)."""
        method = method.upper()
        if idempotent and method != "POST":
            raise ValueError("Idempotency-Key is for POST operations")
        if replayed_by_service and not idempotent:
            raise ValueError("replayed_by_service is for idempotent operations")

        spec = Operation(
            method,
            path,
            summary,
            tag,
            response,
            body,
            query,
            status,
            roles,
            public,
            idempotent,
            form,
            description,
            raw_body,
            raw_response,
            tuple(headers),
            error_responses,
            path_params,
            replayed_by_service,
            activity_event,
        )

        def register(view: Callable) -> Callable:
            def endpoint(**path_params):
                return self._handle(view, spec, path_params)

            endpoint.__name__ = view.__name__
            flask_path = _PATH_PARAM.sub(r"<\1>", path)
            blueprint.add_url_rule(flask_path, view.__name__, endpoint, methods=[method])
            self._document(blueprint, spec)
            return view

        return register

    # ------------------------------------------------------------------ handling
    def _handle(self, view, spec: Operation, path_params: dict) -> Response:
        identity = current_app.extensions["identity"]()
        if spec.public:
            caller, claims = CallerContext(user_id="public", request_id=g.request_id), {}
        else:
            with timing.stage("auth"):
                caller, claims = _authenticate(identity)
            if spec.roles and not caller.has_role(*spec.roles):
                needed = ", ".join(spec.roles)
                raise ApiProblem(403, "Forbidden", f"needs one of the roles: {needed}")
            g.caller = caller
            g.activity_event = spec.activity_event
        if spec.path_params is not None:
            path_params = _validate(spec.path_params, path_params, "path").model_dump()
        call = Call(caller=caller, path=path_params, claims=claims)
        with timing.stage("validate"):
            call.query = (
                _validate(spec.query, request.args.to_dict(), "query") if spec.query else None
            )
            if spec.body is not None:
                if spec.form and request.form:
                    fields = form_fields(spec.body, request.form.to_dict())
                    call.body = _validate(spec.body, fields, "body")
                elif request.get_json(silent=True) is None:
                    raise ApiProblem(
                        400, "Bad Request", "body: must be a JSON object", field="body"
                    )
                else:
                    # JSON as the document types it: no 0 for false, no "3" for 3 (but 3.0
                    # is the integer 3, as in JSON Schema).
                    exact = json.dumps(integral_floats_as_ints(request.get_json()))
                    call.body = _validate(spec.body, exact, "body", json_strict=True)
        if not spec.idempotent:
            return _respond(view(call), spec.status)
        return self._idempotent(view, call, spec)

    def _idempotent(self, view, call: Call, spec: Operation) -> Response:
        call.idempotency_key = idempotency.required_key()
        return idempotency.answer(
            lambda: _respond(view(call), spec.status),
            f"{call.caller.user_id}:{call.idempotency_key}",
            replayed_by_service=spec.replayed_by_service,
        )

    # ------------------------------------------------------------------ documenting
    def _document(self, blueprint, spec: Operation) -> None:
        full_path = (blueprint.url_prefix or "") + spec.path
        operation_id = re.sub(
            r"\W+", "_", f"{blueprint.name}_{spec.method.lower()}{spec.path}"
        ).strip("_")
        operation: dict[str, Any] = {
            "operationId": operation_id,
            "summary": spec.summary,
            "tags": [spec.tag],
            "parameters": self._path_parameters(spec),
            "responses": {
                str(spec.status): self._success(spec),
                **(
                    spec.error_responses
                    if spec.error_responses is not None
                    else {
                        code: {"$ref": f"#/components/responses/Problem{code}"}
                        for code in PROBLEM_STATUSES
                    }
                ),
                **{
                    code: {"$ref": f"#/components/responses/HttpServer{code}"}
                    for code in HTTP_SERVER_STATUSES
                },
            },
        }
        if spec.description or spec.roles:
            roles_text = f"Roles: {', '.join(spec.roles)}." if spec.roles else ""
            operation["description"] = " ".join(
                part for part in (spec.description, roles_text) if part
            )
        if not spec.public:
            operation["security"] = [{"bearer": []}, {"browserSession": [], "csrfHeader": []}]
        else:
            operation["security"] = []
        if spec.query is not None:
            schema = spec.query.model_json_schema()
            for name, prop in schema.get("properties", {}).items():
                operation["parameters"].append(
                    {
                        "name": name,
                        "in": "query",
                        "required": name in schema.get("required", []),
                        "schema": {k: v for k, v in prop.items() if k != "title"},
                    }
                )
        if spec.idempotent:
            operation["parameters"].append(
                {
                    "name": IDEMPOTENCY_HEADER,
                    "in": "header",
                    "required": True,
                    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH},
                    "description": (
                        "A retry with the same key answers with what the first response "
                        "reported, as it stands at the retry (also while the first request "
                        "is still running: never made twice)"
                        if spec.replayed_by_service
                        else "A retry with the same key returns the first response (also "
                        "when the first answer was lost: what it created is found, never "
                        "made twice)"
                    )
                    + "; the same key with a different request is refused (422 naming "
                    "the header).",
                }
            )
        if spec.body is not None or spec.raw_body is not None:
            operation["responses"]["413"] = {"$ref": "#/components/responses/Problem413"}
        if spec.body is not None:
            schema = self._schema(spec.body)
            content = {"application/json": {"schema": schema}}
            if spec.form:
                form_schema = as_form(self.schemas[spec.body.__name__], spec.body)
                self.schemas[f"{spec.body.__name__}Form"] = form_schema
                content["application/x-www-form-urlencoded"] = {
                    "schema": {"$ref": f"#/components/schemas/{spec.body.__name__}Form"}
                }
            operation["requestBody"] = {"required": True, "content": content}
        if spec.raw_body is not None:
            operation["requestBody"] = spec.raw_body
        operation["parameters"].extend(spec.headers)
        self.paths.setdefault(full_path, {})[spec.method.lower()] = operation
        self.operations[(spec.method, full_path)] = spec

    @staticmethod
    def _path_parameters(spec: Operation) -> list[dict]:
        properties = {}
        if spec.path_params is not None:
            properties = spec.path_params.model_json_schema().get("properties", {})
        return [
            {
                "name": name,
                "in": "path",
                "required": True,
                "schema": {
                    key: value
                    for key, value in properties.get(name, {"type": "string"}).items()
                    if key != "title"
                },
            }
            for name in _PATH_PARAM.findall(spec.path)
        ]

    def methods_of(self, path: str) -> set[str] | None:
        """The methods the document declares for `path` when it is one of its concrete
        paths (no {parameters}), else None. A concrete path wins over a template that
        also matches it (OpenAPI's rule): /residents/search is not /residents/{id}."""
        operations = self.paths.get(path)
        if operations is None or "{" in path:
            return None
        return {method.upper() for method in operations}

    def _success(self, spec: Operation) -> dict:
        if spec.raw_response is not None:
            return spec.raw_response
        if spec.response is None:
            return {"description": "OK"}
        return {
            "description": "OK",
            "content": {"application/json": {"schema": self._schema(spec.response)}},
        }

    def _schema(self, model: type[BaseModel]) -> dict:
        schema = as_enforced(model.model_json_schema(ref_template="#/components/schemas/{model}"))
        for name, definition in schema.pop("$defs", {}).items():
            self.schemas[name] = definition
        self.schemas[model.__name__] = schema
        return {"$ref": f"#/components/schemas/{model.__name__}"}

    def document(self, server_url: str = "/") -> dict:
        problem_schema = {
            "type": "object",
            "required": ["type", "title", "status"],
            "properties": {
                "type": {"type": "string"},
                "title": {"type": "string"},
                "status": {"type": "integer"},
                "detail": {"type": "string"},
                "instance": {"type": "string"},
                "field": {"type": "string", "description": "the offending field, if any"},
            },
        }
        return {
            "openapi": "3.1.0",
            "info": self.info,
            "servers": [{"url": server_url}],
            "tags": self.tags,
            "paths": self.paths,
            "components": {
                "schemas": {**self.schemas, "Problem": problem_schema},
                "responses": {
                    **{
                        f"Problem{code}": {
                            "description": text,
                            "content": {
                                PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}},
                                **(HTTP_SERVER_ERROR if code == "400" else {}),
                            },
                            **({"headers": RETRY_AFTER} if code in ("409", "503") else {}),
                        }
                        for code, text in {**PROBLEM_STATUSES, **TOO_LARGE}.items()
                    },
                    **{
                        f"HttpServer{code}": {
                            "description": f"{text} (answered by the HTTP server, as HTML)",
                            "content": HTTP_SERVER_ERROR,
                        }
                        for code, text in HTTP_SERVER_STATUSES.items()
                    },
                },
                "securitySchemes": {
                    "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                    "browserSession": {
                        "type": "apiKey",
                        "in": "cookie",
                        "name": "gridwork_session",
                        "description": "The signed-in browser's session (the phone app), "
                        "only together with csrfHeader and from the gateway's own origin",
                    },
                    "csrfHeader": {
                        "type": "apiKey",
                        "in": "header",
                        "name": "X-CSRFToken",
                        "description": "The session's CSRF token (the page's csrf-token meta)",
                    },
                },
            },
        }


def _authenticate(identity) -> tuple[CallerContext, dict]:
    """A bearer token, or the phone app's browser session with its CSRF header."""
    if api_session.wants_session(request):
        return api_session.session_caller(g.request_id), {}
    return identity.authenticate(request.headers.get("Authorization"), g.request_id)


def _validate(model: type[BaseModel], raw: Any, where: str, json_strict: bool = False):
    try:
        if json_strict:
            return model.model_validate_json(raw, strict=True)
        return model.model_validate(raw)
    except ValidationError as exc:
        errors = [
            {
                "field": ".".join(str(part) for part in error["loc"]) or where,
                "problem": error["msg"],
            }
            for error in exc.errors()
        ]
        first = errors[0]
        raise ApiProblem(
            400,
            "Bad Request",
            f"{first['field']}: {first['problem']}",
            field=first["field"],
            errors=errors,
        ) from None


def _respond(result: Any, status: int) -> Response:
    if isinstance(result, Response):
        return result
    if isinstance(result, BaseModel):
        result = result.model_dump(mode="json")
    if status == 204:
        return Response(status=204)
    return Response(json.dumps(result), status=status, mimetype="application/json")
