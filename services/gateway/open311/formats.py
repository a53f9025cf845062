"""GeoReport v2's two formats: every route answers `.json` or `.xml` by its extension.

XML follows the specification's documents: a list is an element named for the list
(`services`, `service_requests`, `attributes`, `errors`) holding one element per item
(`service`, `request`, `attribute`, `error`); true and false are written `true` and
`false`; a missing value is an empty element."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any

from flask import Response

FORMATS = ("json", "xml")
JSON_MEDIA = "application/json"
XML_MEDIA = "application/xml"
MEDIA_TYPES = {"json": JSON_MEDIA, "xml": XML_MEDIA}
# The element of each item of a list, by the list's element.
ITEM_TAGS = {
    "services": "service",
    "service_requests": "request",
    "attributes": "attribute",
    "values": "value",
    "endpoints": "endpoint",
    "formats": "format",
    "errors": "error",
}


def encode(payload: Any, fmt: str, root: str) -> bytes:
    """The payload as JSON, or as XML under the `root` element."""
    if fmt == "json":
        return json.dumps(payload, ensure_ascii=False).encode()
    return ET.tostring(_element(root, payload), encoding="utf-8", xml_declaration=True)


def respond(payload: Any, fmt: str, root: str, status: int = 200) -> Response:
    return Response(encode(payload, fmt, root), status=status, mimetype=MEDIA_TYPES[fmt])


def _element(tag: str, value: Any) -> ET.Element:
    element = ET.Element(tag)
    if isinstance(value, list):
        item_tag = ITEM_TAGS[tag]
        element.extend(_element(item_tag, item) for item in value)
    elif isinstance(value, dict):
        element.extend(_element(key, item) for key, item in value.items())
    elif isinstance(value, bool):
        element.text = "true" if value else "false"
    elif value is not None:
        element.text = str(value)
    return element
