"""How the GeoReport routes appear in the OpenAPI document: each route twice (`.json`
and `.xml`), its XML answer named as GeoReport names its elements, and its errors as
GeoReport error lists instead of problem+json."""

from __future__ import annotations

from services.gateway.open311 import formats

ERROR_SCHEMA = "Open311Errors"
SCHEMAS = {
    ERROR_SCHEMA: {
        "type": "array",
        "items": {
            "type": "object",
            "required": ["code", "description"],
            "properties": {
                "code": {"type": "integer", "description": "the HTTP status"},
                "description": {"type": "string"},
            },
            "xml": {"name": "error"},
        },
        "xml": {"name": "errors", "wrapped": True},
    }
}
ERROR_STATUSES = {
    "400": "Malformed request, or one the service cannot take (the field is named)",
    "403": "api_key unknown or disabled",
    "404": "No such service, service request or token; or another jurisdiction_id",
    "429": "Too many requests from this address (Retry-After)",
    "503": "A service or store is unavailable (Retry-After)",
}
URI_TOO_LONG = {
    "description": "The request line is longer than the server takes (4,094 bytes, about "
    "120 service_request_id values): answered by the HTTP server, not as an Open311 list",
    "content": {"text/html": {"schema": {"type": "string"}}},
}


def error_responses(fmt: str, statuses: tuple[str, ...]) -> dict:
    media = formats.MEDIA_TYPES[fmt]
    responses = {
        status: {
            "description": ERROR_STATUSES[status],
            "content": {media: {"schema": {"$ref": f"#/components/schemas/{ERROR_SCHEMA}"}}},
            **(
                {"headers": {"Retry-After": {"schema": {"type": "integer", "minimum": 1}}}}
                if status in ("429", "503")
                else {}
            ),
        }
        for status in statuses
    }
    responses["414"] = URI_TOO_LONG
    return responses


def xml_success(schema_name: str, root: str, item: str | None, status: int) -> dict:
    """The XML answer: the JSON answer's schema under GeoReport's element names."""
    reference = {"$ref": f"#/components/schemas/{schema_name}"}
    if item is None:
        schema = {**reference, "xml": {"name": root}}
    else:
        schema = {
            "type": "array",
            "items": {**reference, "xml": {"name": item}},
            "xml": {"name": root, "wrapped": True},
        }
    return {
        "description": "Created" if status == 201 else "OK",
        "content": {formats.XML_MEDIA: {"schema": schema}},
    }
