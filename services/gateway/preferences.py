"""The `Prefer` request header (RFC 7240): what a client would rather the server did,
which the server may honour or ignore; an honoured preference is named back in
`Preference-Applied`."""

from __future__ import annotations

PREFER_HEADER = "Prefer"
APPLIED_HEADER = "Preference-Applied"
RETURN_MINIMAL = "return=minimal"


def preferences(header: str | None) -> dict[str, str]:
    """The header's preferences, name -> value ("" for none), names lowercased;
    parameters after `;` are left out, and the first of a name repeated counts."""
    found: dict[str, str] = {}
    for part in (header or "").split(","):
        name, _, value = part.split(";", 1)[0].partition("=")
        name = name.strip().lower()
        if name:
            found.setdefault(name, value.strip().strip('"'))
    return found


def prefers_minimal(header: str | None) -> bool:
    return preferences(header).get("return", "").lower() == "minimal"
