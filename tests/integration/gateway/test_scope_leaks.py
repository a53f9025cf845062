"""No GET route shows a record outside the caller's territory scope.

One record of every kind is created in GRID_A1 by users allowed to (a resident, a house,
a household, a legal entity, a grid roster, a group membership and a visit, an audited
reveal, an incident, an Open311 request, an import job and a webhook subscription). Then
every GET route of the OpenAPI document is called as `township-b`, a centre operator of
the other township, and as an insider who may see the records (so a 404 proves the scope,
not a wrong id):

- a route with path parameters, filled with the GRID_A1 record's id, is 404 (403 where a
  centre operator's role may not use the route at all), never 200 with the record;
- a list route (its answer has `items`), filtered by GRID_A1's territory codes where it
  takes a code, lists no GRID_A1 record.

The routes come from the OpenAPI document: a new GET route the tables below do not know
fails the test until someone decides how it is filled and what it must answer.
"""

import base64
import csv
import io
import json
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from PIL import Image

from gridwork_common.clock import CHINA_TIME
from tests.conftest import PINNED_AT
from tests.population_data import (
    BUILDING_A1,
    COUNTY,
    GRID_A1,
    GRID_B1,
    TOWNSHIP_A,
    VILLAGE_A,
    credit_code,
    random_resident_ids,
)

pytestmark = pytest.mark.integration

API = "/api/v1"
OUTSIDER = "township-b"  # a centre operator of the other township
INSIDER = "township-a"  # a centre operator over GRID_A1 (and the importer, the subscriber)
POINT_A1 = [102.505, 24.305]  # inside GRID_A1 (lon 102.50-102.51, lat 24.30-24.31)
POINT_B1 = [102.605, 24.305]  # inside GRID_B1
NAME = "范围测试甲"  # a name no other record carries
PHONE = "13955550001"
PERSON = "scope-full-time"  # on GRID_A1's roster
WORKLIST_KINDS = (
    "my_grid",
    "verification",
    "centre_queue",
    "department_inbox",
    "overdue",
    "supervised",
)
# Query parameters that filter a list by territory: each is tried with GRID_A1's codes.
TERRITORY_FILTERS = ("code", "territory", "territory_code")
GRID_A1_CODES = (GRID_A1, VILLAGE_A, TOWNSHIP_A, COUNTY)
# The month the test's facts fall in: the services' clock starts at PINNED_AT (periods are
# months in China Standard Time).
THIS_MONTH = PINNED_AT.astimezone(CHINA_TIME).strftime("%Y-%m")
JOB_TIMEOUT_S = 30


@dataclass
class Grid:
    """The GRID_A1 records and their ids; `markers` betray any of them in an answer."""

    ids: dict[str, str] = field(default_factory=dict)
    open311_keys: dict[str, str] = field(default_factory=dict)

    @property
    def markers(self) -> set[str]:
        return {GRID_A1, NAME, *self.ids.values()}

    def leaked(self, value) -> set[str]:
        text = json.dumps(value, ensure_ascii=False)
        return {marker for marker in self.markers if marker in text}


@dataclass(frozen=True)
class Probe:
    params: dict
    query: dict = field(default_factory=dict)


# ------------------------------------------------------------------ how each route is filled
# Path-parameter GET routes: the probes filling them with GRID_A1 records.
PATH_ROUTES = {
    f"{API}/territories/{{code}}": lambda g: [
        Probe({"code": GRID_A1}),
        Probe({"code": BUILDING_A1}),
    ],
    f"{API}/territories/{{code}}/children": lambda g: [
        Probe({"code": GRID_A1}),
        Probe({"code": VILLAGE_A}),
    ],
    f"{API}/territories/{{code}}/statistics": lambda g: [
        Probe({"code": GRID_A1}),
        Probe({"code": VILLAGE_A}),
    ],
    f"{API}/grids/{{code}}/staff": lambda g: [Probe({"code": GRID_A1})],
    f"{API}/staff/{{person_id}}/grids": lambda g: [Probe({"person_id": PERSON})],
    f"{API}/residents/{{resident_id}}": lambda g: [
        Probe({"resident_id": g.ids["resident"]}),
        Probe({"resident_id": g.ids["resident"]}, {"reveal": "id_number,phone"}),
    ],
    f"{API}/residents/{{resident_id}}/history": lambda g: [
        Probe({"resident_id": g.ids["resident"]})
    ],
    f"{API}/houses/{{house_id}}": lambda g: [Probe({"house_id": g.ids["house"]})],
    f"{API}/households/{{household_id}}": lambda g: [Probe({"household_id": g.ids["household"]})],
    f"{API}/entities/{{credit_code}}": lambda g: [Probe({"credit_code": g.ids["entity"]})],
    f"{API}/groups/{{membership_id}}/visits": lambda g: [
        Probe({"membership_id": g.ids["membership"]})
    ],
    f"{API}/imports/{{job_id}}": lambda g: [Probe({"job_id": g.ids["import_job"]})],
    f"{API}/imports/{{job_id}}/errors.csv": lambda g: [Probe({"job_id": g.ids["import_job"]})],
    f"{API}/incidents/{{incident_id}}": lambda g: [
        Probe({"incident_id": g.ids["incident"]}),
        Probe({"incident_id": g.ids["open311_request"]}),
    ],
    f"{API}/incidents/{{incident_id}}/timeline": lambda g: [
        Probe({"incident_id": g.ids["incident"]})
    ],
    f"{API}/incidents/{{incident_id}}/duplicates": lambda g: [
        Probe({"incident_id": g.ids["incident"]})
    ],
    f"{API}/incidents/worklists/{{kind}}": lambda g: [
        Probe({"kind": kind}) for kind in WORKLIST_KINDS
    ],
    f"{API}/media/{{media_id}}": lambda g: [Probe({"media_id": g.ids["media"]})],
    f"{API}/media/{{media_id}}/link": lambda g: [
        Probe({"media_id": g.ids["media"]}),
        Probe({"media_id": g.ids["media"]}, {"variant": "thumbnail"}),
    ],
    f"{API}/incidents/{{incident_id}}/media": lambda g: [Probe({"incident_id": g.ids["incident"]})],
    f"{API}/subscriptions/{{subscription_id}}/dead-letters": lambda g: [
        Probe({"subscription_id": g.ids["subscription"]})
    ],
    **{
        f"/open311/v2/requests/{{service_request_id}}.{fmt}": lambda g: [
            Probe({"service_request_id": g.ids["open311_request"]})
        ]
        for fmt in ("json", "xml")
    },
    **{
        f"/open311/v2/tokens/{{token}}.{fmt}": lambda g: [Probe({"token": g.ids["open311_token"]})]
        for fmt in ("json", "xml")
    },
    **{
        f"/open311/v2/services/{{service_code}}.{fmt}": lambda g: [Probe({"service_code": "04.01"})]
        for fmt in ("json", "xml")
    },
    f"{API}/calendar/notices/{{year}}": lambda g: [Probe({"year": "2026"})],
    f"{API}/patrols/{{patrol_id}}": lambda g: [Probe({"patrol_id": g.ids["patrol"]})],
}
# Path-parameter routes that are lists of what the caller may see, keyed by something
# that is not a record: the outsider gets 200 and a list without GRID_A1 records.
LIST_SHAPED = {
    f"{API}/staff/{{person_id}}/grids": "the grids a person serves within the caller's scope",
    f"{API}/incidents/worklists/{{kind}}": "a worklist kind, not a record",
}
# Path-parameter routes keyed by a county-wide setting, not a record: everyone who may read
# them gets the same 200, which must hold no GRID_A1 record.
COUNTY_WIDE = {f"{API}/calendar/notices/{{year}}": "a year's holiday notice"}
# Open311 reads are public by design (GeoReport v2: a citizen's app follows a report by its
# id, without a key): anyone gets 200, and never the citizen's personal data.
OPEN311 = {path for path in PATH_ROUTES if path.startswith("/open311/")}
# What an Open311 client sent about its citizen, which no public read may show.
OPEN311_PRIVATE = {
    "phone": "13955550002",
    "email": "scope.test@example.cn",
    "address_string": "范围测试路9号",
    "lat": "24.3051234",
    "long": "102.5051234",
}
# Known leaks, {path: reason}: the main test then checks only that no GRID_A1 data comes
# back, and a strict-xfail test asserts the right answer. None is known.
KNOWN_LEAKS: dict[str, str] = {}

# Extra queries for list routes (besides the territory filters and no query at all).
LIST_QUERIES = {
    f"{API}/residents/search": lambda g: [{"id_number": g.ids["id_number"]}, {"phone": PHONE}],
    f"{API}/residents": lambda g: [
        {"code": code, "status": status}
        for code in GRID_A1_CODES
        for status in ("active", "moved_out", "deregistered")
    ],
    f"{API}/access-audit": lambda g: [
        {"resident_id": g.ids["resident"]},
        {"actor": "worker-a1"},
    ],
    f"{API}/groups": lambda g: [
        {"code": GRID_A1, "group": "severe_mental_disorder", "risk_level": "high"}
    ],
    f"{API}/incidents": lambda g: [{"state": "reported"}, {"category": "04.01"}],
    f"{API}/assessment/scorecards": lambda g: [
        {"level": level, "period": THIS_MONTH} for level in ("grid", "village", "township")
    ],
    f"{API}/assessment/integrity-flags": lambda g: [{"period": THIS_MONTH}],
    f"{API}/assessment/publications": lambda g: [
        {"level": level, "period": THIS_MONTH} for level in ("grid", "worker")
    ],
    f"{API}/patrols": lambda g: [
        {"grid": GRID_A1},
        {"worker": "worker-a1"},
        {"period": THIS_MONTH, "grid": GRID_A1},
    ],
}
# List routes that refuse a query without their (optional) parameters.
NEED_A_QUERY = {f"{API}/residents/search": "exactly one of id_number and phone"}
# List routes where no GRID_A1 record is expected even for an insider.
NO_GRID_A1_RECORDS = {
    f"{API}/departments": "departments belong to centres, not to grids",
    f"{API}/assessment/rule-sets": "county-wide scoring rules",
    f"{API}/assessment/integrity-flags": "no suspicious visits or photos in this test",
    f"{API}/assessment/publications": "a month is published once it has ended",
    f"{API}/calendar/notices": "the county's holiday notices, one per year",
    # Administrators only (others get 403 above); tested in test_department_amqp.py.
    f"{API}/amqp-accounts": "departments' broker accounts: none made in this test",
}
# GET routes without path parameters whose answer has no `items`.
NOT_LISTS = {
    f"{API}/auth/me": "the caller's own account",
    f"{API}/locate": "which grid contains a point: the county's map, not a record",
    f"{API}/visit-rules": "county-wide settings",
    f"{API}/catalogue": "county-wide settings",
    f"{API}/calendar": "county-wide settings",
    f"{API}/deadline-policy": "county-wide settings",
    f"{API}/assessment/bulletin": "the county's bulletin: county-level users only (403 below)",
    "/open311/v2/services.json": "the public catalogue",
    "/open311/v2/services.xml": "the public catalogue",
    "/open311/v2/discovery.json": "where the endpoint is",
    "/open311/v2/discovery.xml": "where the endpoint is",
    # Checked by test_lists_without_items_show_no_record_outside_the_scope:
    f"{API}/visits/worklist": "checked below",
    f"{API}/incidents/counts": "checked below",
    f"{API}/assessment/indicators": "checked below",
    f"{API}/patrol-tracks": "checked below",
    "/open311/v2/requests.json": "checked below",
    "/open311/v2/requests.xml": "checked below",
}


# ------------------------------------------------------------------ helpers
def url_of(path: str, params: dict) -> str:
    return re.sub(r"\{(\w+)\}", lambda match: params[match.group(1)], path)


def allowed_roles(operation: dict) -> set[str] | None:
    """The roles the gateway itself checks (the `Roles: a, b.` of the description)."""
    found = re.search(r"Roles: ([^.]+)\.", operation.get("description", ""))
    return {role.strip() for role in found.group(1).split(",")} if found else None


def centre_may_use(operation: dict) -> bool:
    roles = allowed_roles(operation)
    return roles is None or "centre_operator" in roles


def get_routes(client) -> tuple[dict[str, dict], dict]:
    document = client.get(f"{API}/openapi.json").get_json()
    routes = {path: ops["get"] for path, ops in document["paths"].items() if "get" in ops}
    return routes, document["components"]["schemas"]


def lists_items(operation: dict, schemas: dict) -> bool:
    content = operation["responses"].get("200", {}).get("content", {})
    reference = content.get("application/json", {}).get("schema", {}).get("$ref", "")
    schema = schemas.get(reference.rsplit("/", 1)[-1], {})
    return "items" in schema.get("properties", {})


def wait_for_job(user, job_id: str) -> dict:
    deadline = time.monotonic() + JOB_TIMEOUT_S
    job = None
    while time.monotonic() < deadline:
        job = user.get(f"{API}/imports/{job_id}").get_json()
        if job["status"] in ("finished", "failed"):
            return job
        time.sleep(0.2)
    pytest.fail(f"import job {job_id} did not finish within {JOB_TIMEOUT_S} s: {job}")


def open311_private_data(response) -> set[str]:
    text = response.get_data(as_text=True)
    return {value for value in OPEN311_PRIVATE.values() if value in text}


def created(response, status: int = 201) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    return response.get_json()


# ------------------------------------------------------------------ the GRID_A1 records
@pytest.fixture
def grid_a1(county, services, client, as_user, monkeypatch, clock) -> Grid:
    monkeypatch.setenv("WEBHOOK_ALLOW_PRIVATE_URLS", "true")
    grid = Grid()
    worker, insider, admin = as_user("worker-a1"), as_user(INSIDER), as_user("admin")
    head_number, spouse_number, imported_number = random_resident_ids(3, seed=41)

    created(
        insider.post(
            f"{API}/grids/{GRID_A1}/staff",
            key="roster",
            json={
                "staff": [
                    {"person_id": "scope-leader", "name": "范网格长", "role": "grid_leader"},
                    {"person_id": PERSON, "name": "范专职", "role": "full_time"},
                ]
            },
        ),
        200,
    )
    resident = created(
        worker.post(
            f"{API}/residents",
            key="resident",
            json={"id_number": head_number, "name": NAME, "phone": PHONE, "grid_code": GRID_A1},
        )
    )
    spouse = created(
        worker.post(
            f"{API}/residents",
            key="spouse",
            json={"id_number": spouse_number, "name": "范围测试乙", "grid_code": GRID_A1},
        )
    )
    grid.ids.update(resident=resident["id"], id_number=head_number)
    house = created(
        worker.post(f"{API}/houses", key="house", json={"building_code": BUILDING_A1, "room": "9"})
    )
    grid.ids["house"] = house["id"]
    household = created(
        worker.post(
            f"{API}/households",
            key="household",
            json={"house_id": house["id"], "head_resident_id": resident["id"]},
        )
    )
    grid.ids["household"] = household["id"]
    created(
        worker.post(
            f"{API}/households/{household['id']}/members",
            key="member",
            json={"resident_id": spouse["id"], "relation": "spouse"},
        ),
        200,
    )
    code = credit_code("91530402MA6K999")
    created(
        worker.post(
            f"{API}/entities",
            key="entity",
            json={
                "credit_code": code,
                "name": "范围商店",
                "type": "个体工商户",
                "grid_code": GRID_A1,
            },
        )
    )
    grid.ids["entity"] = code
    membership = created(
        worker.post(
            f"{API}/groups",
            key="group",
            json={
                "resident_id": resident["id"],
                "group": "severe_mental_disorder",
                "risk_level": "high",
                "responsible_worker_id": "worker-a1",
            },
        )
    )
    grid.ids["membership"] = membership["id"]
    visit = created(
        worker.post(
            f"{API}/visits",
            key="visit",
            json={
                "membership_id": membership["id"],
                "at": (clock() - timedelta(minutes=5)).isoformat(),
                "location": {"type": "Point", "coordinates": POINT_A1},
                "notes": "范围测试走访",
            },
        )
    )
    grid.ids["visit"] = visit["id"]
    patrol_id = str(uuid.uuid4())
    started = clock() - timedelta(minutes=30)
    patrol_url = f"{API}/patrols/{patrol_id}"
    created(
        client.put(patrol_url, headers=worker.headers, json={"started_at": started.isoformat()})
    )
    points = [
        {
            "lon": POINT_A1[0] + i * 0.0001,
            "lat": POINT_A1[1],
            "at": (started + timedelta(seconds=10 * i)).isoformat(),
        }
        for i in range(3)
    ]
    created(
        client.put(f"{patrol_url}/track/0", headers=worker.headers, json={"points": points}), 200
    )
    grid.ids["patrol"] = patrol_id
    revealed = worker.get(
        f"{API}/residents/{resident['id']}?reveal=phone",
        headers={"X-Reveal-Purpose": "scope leak test"},
    )
    assert revealed.get_json()["phone"] == PHONE  # an access-audit entry

    report = {"category": "04.01", "description": "范围测试事件", "location": POINT_A1}
    incident = created(worker.post(f"{API}/incidents", key="incident", json=report))
    grid.ids["incident"] = incident["incident"]["id"]
    photo = io.BytesIO()
    Image.new("RGB", (32, 32), (10, 20, 30)).save(photo, "JPEG")
    grid.ids["media"] = created(
        worker.post(
            f"{API}/media",
            key="photo",
            data={
                "file": (io.BytesIO(photo.getvalue()), "photo.jpg"),
                "content_type": "image/jpeg",
                "purpose": "incident_report",
                "owner_kind": "incident",
                "owner_id": grid.ids["incident"],
            },
            content_type="multipart/form-data",
        ),
        201,
    )["id"]

    for name in ("mine",):
        key = created(admin.post("/open311/v2/clients", key=name, json={"name": name}))
        grid.open311_keys[name] = key["api_key"]
    (receipt,) = created(
        client.post(
            "/open311/v2/requests.json",
            data={
                "api_key": grid.open311_keys["mine"],
                "service_code": "04.01",
                "description": "范围测试市民报告",
                **OPEN311_PRIVATE,
            },
        )
    )
    grid.ids.update(open311_request=receipt["service_request_id"], open311_token=receipt["token"])

    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerows([["id_number", "name", "grid_code"], [imported_number, "范围测试丙", GRID_A1]])
    writer.writerow(["110101199003070000", "坏行", GRID_A1])
    job = created(
        insider.post(
            f"{API}/imports?kind=residents",
            key="import",
            data={"file": (io.BytesIO(text.getvalue().encode()), "scope.csv")},
            content_type="multipart/form-data",
        ),
        202,
    )
    assert wait_for_job(insider, job["id"])["status"] == "finished"
    grid.ids["import_job"] = job["id"]

    subscription = created(
        insider.post(
            f"{API}/subscriptions",
            key="subscription",
            json={
                "url": "http://127.0.0.1:9/hook",
                "event_types": ["incident.*"],
                "territory": GRID_A1,
            },
        )
    )
    grid.ids["subscription"] = subscription["id"]
    return grid


# ------------------------------------------------------------------ the tests
def call(client, as_user, grid: Grid, path: str, probe: Probe, outsider: bool):
    url = url_of(path, probe.params)
    if path in OPEN311:  # public: no key, no token
        return client.get(url, query_string=probe.query)
    user = as_user(OUTSIDER if outsider else INSIDER)
    headers = {"X-Reveal-Purpose": "scope leak test"} if "reveal" in probe.query else {}
    return user.get(url, query_string=probe.query, headers=headers)


def test_no_route_with_a_path_parameter_shows_a_grid_a1_record(client, as_user, grid_a1):
    routes, _ = get_routes(client)
    with_parameters = {path for path in routes if "{" in path}
    unknown = sorted(with_parameters - set(PATH_ROUTES))
    assert not unknown, f"decide how to fill, and what township-b must get from: {unknown}"
    assert not set(PATH_ROUTES) - with_parameters, "PATH_ROUTES names routes that are gone"

    problems = []
    for path in sorted(with_parameters):
        operation = routes[path]
        for probe in PATH_ROUTES[path](grid_a1):
            label = f"GET {url_of(path, probe.params)} {probe.query or ''}"
            inside = call(client, as_user, grid_a1, path, probe, outsider=False)
            if inside.status_code != 200:
                problems.append(f"{label}: the insider got {inside.status_code}, not 200")
            outside = call(client, as_user, grid_a1, path, probe, outsider=True)
            body = outside.get_json(silent=True)
            if path in OPEN311:
                shown = open311_private_data(outside)
                if outside.status_code != 200 or shown:
                    problems.append(f"{label}: {outside.status_code}, shows {shown}")
                continue
            if path in LIST_SHAPED or path in COUNTY_WIDE or path in KNOWN_LEAKS:
                if path not in KNOWN_LEAKS and outside.status_code != 200:
                    problems.append(f"{label}: {outside.status_code}, expected 200 and a list")
                if outside.status_code == 200 and grid_a1.leaked(body):
                    problems.append(f"{label}: shows {grid_a1.leaked(body)} to {OUTSIDER}")
                continue
            expected = 404 if centre_may_use(operation) else 403
            if outside.status_code != expected:
                problems.append(
                    f"{label}: {outside.status_code} {outside.get_data(as_text=True)[:300]}, "
                    f"expected {expected}"
                )
    assert not problems, "\n".join(problems)


def test_no_list_shows_a_grid_a1_record_outside_the_scope(client, as_user, grid_a1):
    routes, schemas = get_routes(client)
    without_parameters = {path for path in routes if "{" not in path}
    lists = {path for path in without_parameters if lists_items(routes[path], schemas)}
    undecided = sorted(without_parameters - lists - set(NOT_LISTS))
    assert not undecided, f"decide whether these show records, and check them: {undecided}"
    assert not lists & set(NOT_LISTS), "a route in NOT_LISTS now returns items: check it here"

    problems = []
    for path in sorted(lists):
        operation = routes[path]
        parameters = {p["name"]: p for p in operation["parameters"] if p["in"] == "query"}
        filters = [name for name in parameters if name in TERRITORY_FILTERS]
        required = {name for name, p in parameters.items() if p["required"]}
        queries = [{name: code} for name in filters for code in GRID_A1_CODES]
        if not required and path not in NEED_A_QUERY:
            queries.append({})
        queries += LIST_QUERIES.get(path, lambda g: [])(grid_a1)
        unfilled = [q for q in queries if not required <= set(q)]
        assert queries and not unfilled, f"{path}: decide how to fill {sorted(required)}"

        insider = as_user(INSIDER if centre_may_use(operation) else "admin")
        seen_inside = set()
        for query in queries:
            label = f"GET {path} {query}"
            inside = insider.get(path, query_string=query)
            outside = as_user(OUTSIDER).get(path, query_string=query)
            if inside.status_code == 200:
                seen_inside |= grid_a1.leaked(inside.get_json()["items"])
            if not centre_may_use(operation):
                if outside.status_code != 403:
                    problems.append(f"{label}: {outside.status_code}, expected 403")
                continue
            if outside.status_code == 400 and outside.get_json().get("field") in filters:
                continue  # this filter takes no codes of that level
            if outside.status_code != 200:
                problems.append(f"{label}: {outside.status_code}, expected 200")
            elif leaked := grid_a1.leaked(outside.get_json()["items"]):
                problems.append(f"{label}: shows {leaked} to {OUTSIDER}")
        if path not in NO_GRID_A1_RECORDS and not seen_inside:
            problems.append(f"GET {path}: the insider saw no GRID_A1 record with {queries}")
    assert not problems, "\n".join(problems)


def test_lists_without_items_show_no_record_outside_the_scope(client, as_user, grid_a1):
    outsider, insider = as_user(OUTSIDER), as_user(INSIDER)

    worklist = f"{API}/visits/worklist?worker_id=worker-a1"
    theirs = outsider.get(worklist).get_json()
    assert theirs["due"] == [] and theirs["overdue"] == [], theirs
    assert grid_a1.ids["membership"] in grid_a1.leaked(insider.get(worklist).get_json())

    for territory in GRID_A1_CODES:
        counts = outsider.get(f"{API}/incidents/counts?territory={territory}")
        assert counts.status_code in (200, 404), counts.get_json()
        if counts.status_code == 200:
            assert counts.get_json()["total"] == 0, (territory, counts.get_json())
    assert insider.get(f"{API}/incidents/counts?territory={GRID_A1}").get_json()["total"] == 2

    for territory in GRID_A1_CODES:
        indicators = outsider.get(
            f"{API}/assessment/indicators?territory={territory}&period=2026-11"
        )
        if territory.startswith(TOWNSHIP_A):
            assert indicators.status_code == 404, (territory, indicators.get_json())
    inside = insider.get(f"{API}/assessment/indicators?territory={GRID_A1}&period=2026-11")
    assert inside.status_code == 200, inside.get_json()
    bulletin = outsider.get(f"{API}/assessment/bulletin?period={THIS_MONTH}")
    assert bulletin.status_code == 403, bulletin.get_json()

    for territory in GRID_A1_CODES:
        layer = outsider.get(f"{API}/patrol-tracks?territory={territory}&period={THIS_MONTH}")
        assert layer.status_code == 404, (territory, layer.get_json())
    layer = insider.get(f"{API}/patrol-tracks?territory={TOWNSHIP_A}&period={THIS_MONTH}")
    assert grid_a1.ids["patrol"] in grid_a1.leaked(layer.get_json()), layer.get_json()

    # Open311's public list shows the request to anyone, without its citizen's data.
    request_id = grid_a1.ids["open311_request"]
    for fmt in ("json", "xml"):
        for query in ({"service_request_id": request_id}, {}):
            listed = client.get(f"/open311/v2/requests.{fmt}", query_string=query)
            assert listed.status_code == 200 and request_id in listed.get_data(as_text=True)
            assert not open311_private_data(listed), (fmt, query)


# ------------------------------------------------------------------ side channels
def test_the_duplicates_of_a_hidden_case_are_404(as_user, county):
    """Duplicates are searched within the caller's scope; were the case itself not checked,
    township-b would get its own nearby open case of the same category as a duplicate of
    a GRID_A1 case it cannot see (with a radius reaching the other township), and so learn
    that a hidden case exists, is open, of that category, near there, and recent."""
    admin, outsider = as_user("admin"), as_user(OUTSIDER)
    policy = admin.post(f"{API}/deadline-policy", key="radius", json={"duplicate_radius_m": 20000})
    assert policy.status_code == 200, policy.get_json()
    report = {"category": "04.01", "description": "范围测试", "location": POINT_B1}
    own = created(outsider.post(f"{API}/incidents", key="own", json=report))["incident"]
    assert own["grid_code"] == GRID_B1
    hidden = created(
        as_user("worker-a1").post(
            f"{API}/incidents", key="hidden", json={**report, "location": POINT_A1}
        )
    )["incident"]
    seen = as_user(INSIDER).get(f"{API}/incidents/{hidden['id']}/duplicates").get_json()
    assert seen["items"] == []  # township-a does not see B1's case
    own_duplicates = outsider.get(f"{API}/incidents/{own['id']}/duplicates").get_json()
    assert own_duplicates["items"] == []  # nor township-b A1's: the radius alone shows nothing

    answer = outsider.get(f"{API}/incidents/{hidden['id']}/duplicates")
    missing = outsider.get(f"{API}/incidents/{'0' * 32}/duplicates")
    assert answer.status_code == missing.status_code == 404, answer.get_json()
    assert answer.get_json()["title"] == missing.get_json()["title"]


# ------------------------------------------------------------------ tokens
def segment(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def claims_of(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_a_token_with_tampered_claims_is_refused(client, as_user, county):
    outsider = as_user(OUTSIDER)
    token = outsider.headers["Authorization"].removeprefix("Bearer ")
    header, _, signature = token.split(".")
    claims = claims_of(token)
    assert claims["roles"] == ["centre_operator"] and claims["scope"] != COUNTY

    def status(bearer: str, path: str = f"{API}/users") -> int:
        return client.get(path, headers={"Authorization": f"Bearer {bearer}"}).status_code

    assert status(token) == 403  # the genuine token: authenticated, not an administrator
    assert status(token, f"{API}/territories/{TOWNSHIP_A}") == 404
    tampered = [
        {**claims, "roles": ["admin"]},
        {**claims, "roles": ["admin", "system"], "scope": COUNTY},
        {**claims, "scope": TOWNSHIP_A},
        {**claims, "sub": "admin"},
    ]
    for changed in tampered:
        forged = f"{header}.{segment(changed)}.{signature}"
        assert status(forged) == 401, changed
        assert status(forged, f"{API}/territories/{TOWNSHIP_A}") == 401, changed
    unsigned = (
        f"{segment({'alg': 'none', 'typ': 'JWT'})}.{segment({**claims, 'roles': ['admin']})}."
    )
    assert status(unsigned) == 401
