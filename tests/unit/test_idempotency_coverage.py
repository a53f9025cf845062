"""Every operation that changes something either requires an Idempotency-Key or is listed
here with what makes its retry safe instead, so a new route cannot forget it.

Read from the OpenAPI document the gateway generates from its operation declarations:
the gateway enforces the header exactly where it documents it (both follow
`idempotent=True`), and the integration tests show the services keeping the key with
what they create (`tests/integration/gateway/test_idempotent_creation.py`)."""

from services.gateway.app import build_api

HEADER = "Idempotency-Key"
CHANGING = ("post", "put", "patch", "delete")

# Operations that change something without the header, and why a retry is still safe.
WITHOUT_KEY = {
    "POST /api/v1/auth/token": "issues a fresh token pair; a lost answer's pair expires unused",
    "POST /api/v1/auth/logout": "revoking a revoked token changes nothing",
    "PUT /api/v1/calendar/notices/{year}": "replaces the year's notice: the same PUT, same state",
    "PUT /api/v1/patrols/{patrol_id}": "the phone's own patrol id is the key",
    "PUT /api/v1/patrols/{patrol_id}/track/{piece}": "the patrol id and piece number are the key",
    "POST /api/v1/patrols/{patrol_id}/finish": "finishing a finished patrol answers it again",
    "PATCH /api/v1/residents/{resident_id}": "carries the expected_version it was decided on",
    "PATCH /api/v1/users/{username}": "sets the fields given; repeating it changes nothing more",
    "DELETE /api/v1/amqp-accounts/{department}": "revoking a revoked account is a 404",
    "DELETE /api/v1/media/{media_id}": "deleting deleted media changes nothing",
    "DELETE /api/v1/subscriptions/{subscription_id}": "an inactive subscription is a 404",
    "POST /open311/v2/requests.json": "GeoReport clients send no key; an optional "
    "Idempotency-Key is honoured",
    "POST /open311/v2/requests.xml": "as requests.json",
}


def _changing_operations() -> dict[str, dict]:
    api, _ = build_api()
    return {
        f"{method.upper()} {path}": operation
        for path, operations in api.document()["paths"].items()
        for method, operation in operations.items()
        if method in CHANGING
    }


def _key_parameter(operation: dict) -> dict | None:
    return next(
        (p for p in operation.get("parameters", []) if p["in"] == "header" and p["name"] == HEADER),
        None,
    )


def test_every_changing_operation_requires_the_key_or_says_why_not():
    operations = _changing_operations()
    listing = {
        name: ("requires" if (p := _key_parameter(op)) and p["required"] else "optional")
        if _key_parameter(op)
        else "no key"
        for name, op in sorted(operations.items())
    }
    forgotten = [
        name for name, status in listing.items() if status != "requires" and name not in WITHOUT_KEY
    ]
    table = "\n".join(f"{status:>8}  {name}" for name, status in listing.items())
    assert not forgotten, f"declare idempotent=True or list why not: {forgotten}\n{table}"
    # Every creating POST of the admin and integration families is among the keyed ones.
    for name in (
        "POST /api/v1/media",
        "POST /api/v1/media/uploads",
        "POST /api/v1/imports",
        "POST /api/v1/subscriptions",
        "POST /api/v1/amqp-accounts",
        "POST /open311/v2/clients",
        "POST /api/v1/incidents",
    ):
        assert listing[name] == "requires", table
    # GeoReport clients may send one: documented as optional.
    assert listing["POST /open311/v2/requests.json"] == "optional", table
    assert listing["POST /open311/v2/requests.xml"] == "optional", table


def test_the_exemptions_name_real_operations_that_take_no_required_key():
    operations = _changing_operations()
    stale = [name for name in WITHOUT_KEY if name not in operations]
    assert not stale, f"no such operation any more: {stale}"
    keyed = [
        name for name in WITHOUT_KEY if (p := _key_parameter(operations[name])) and p["required"]
    ]
    assert not keyed, f"requires the key now: remove from WITHOUT_KEY: {keyed}"


def test_the_key_is_documented_with_its_replay_and_its_conflicts():
    for name, operation in _changing_operations().items():
        parameter = _key_parameter(operation)
        if parameter is None:
            continue
        assert parameter["schema"] == {"type": "string", "minLength": 1, "maxLength": 100}, name
        assert "first response" in parameter["description"], name
        assert "different request" in parameter["description"], name
