"""What the gateway's OpenAPI document says beyond each operation's own models: the error
statuses every operation may answer (the application's problem+json ones and the HTTP
server's own), and JSON Schema made to say exactly what pydantic enforces."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

PROBLEM_STATUSES = {
    "400": "Malformed request (the field is named; the HTTP server's own answer to a "
    "malformed request line or header is HTML)",
    "401": "Missing, invalid, expired or revoked access token (or login credentials)",
    "403": "The caller's role does not allow this",
    "404": "Not found, or outside the caller's territory scope",
    "409": "Conflict: a stale version, an illegal transition or a duplicate",
    "422": "The request breaks a rule (the field is named)",
    "429": "Too many requests",
    "503": "A service or store is unavailable: retry after Retry-After seconds, with the "
    "same Idempotency-Key",
}
# What the HTTP server (gunicorn) answers itself, before the application sees a request:
# text/html, not problem+json. Its 400 (a malformed request line or header) shares the
# application's 400 response.
HTTP_SERVER_STATUSES = {
    "414": "The request line (method, path and query) is longer than 4094 bytes",
    "431": "A header field is longer than 8190 bytes, or there are more than 100",
}
HTTP_SERVER_ERROR = {"text/html": {"schema": {"type": "string"}}}
TOO_LARGE = {"413": "The request body is larger than the gateway accepts"}
RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before retrying (on 503, and on 409 while the first "
        "request with the same Idempotency-Key is still running)",
        "schema": {"type": "integer", "minimum": 1},
    }
}


def integral_floats_as_ints(value: Any) -> Any:
    """JSON as JSON Schema counts it: 3.0 is the integer 3 (strict pydantic would refuse
    it for an int field)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [integral_floats_as_ints(item) for item in value]
    if isinstance(value, dict):
        return {key: integral_floats_as_ints(item) for key, item in value.items()}
    return value


def as_enforced(schema: Any) -> Any:
    """The JSON Schema pydantic generates, where it says less than pydantic enforces: a
    dict whose keys have a pattern refuses any other key (`propertyNames`), where
    `patternProperties` alone would let other keys through."""
    if isinstance(schema, list):
        return [as_enforced(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    schema = {key: as_enforced(value) for key, value in schema.items()}
    keyed = schema.get("patternProperties")
    if (
        isinstance(keyed, dict)
        and len(keyed) == 1
        and "properties" not in schema
        and "additionalProperties" not in schema
    ):
        ((pattern, values),) = keyed.items()
        del schema["patternProperties"]
        schema["propertyNames"] = {"pattern": pattern}
        schema["additionalProperties"] = values
    return schema


def object_fields(model: type[BaseModel]) -> frozenset[str]:
    """The body fields whose value is an object: a form field holds text, so a
    form-encoded body cannot carry them (Open311's answers come as `attribute[<code>]`
    fields instead, read by the view)."""
    return frozenset(
        name
        for name, definition in model.model_json_schema().get("properties", {}).items()
        if "object" in _types(definition)
    )


def as_form(schema: dict, model: type[BaseModel]) -> dict:
    """A body schema as the form-encoded body: without the object fields, which the
    gateway ignores in a form (`form_fields`)."""
    dropped = object_fields(model)
    return {
        **schema,
        "properties": {
            name: definition
            for name, definition in schema.get("properties", {}).items()
            if name not in dropped
        },
        "required": [name for name in schema.get("required", []) if name not in dropped],
    }


def form_fields(model: type[BaseModel], form: dict[str, str]) -> dict[str, str]:
    """A form's fields to validate against the body model: the object fields are not
    form fields (a client's `attribute=...` is ignored like any other extra field)."""
    dropped = object_fields(model)
    return {name: value for name, value in form.items() if name not in dropped}


def _types(definition: dict) -> set[str]:
    declared = definition.get("type")
    types = set(declared) if isinstance(declared, list) else {declared} if declared else set()
    for option in definition.get("anyOf", []):
        types |= _types(option)
    return types
