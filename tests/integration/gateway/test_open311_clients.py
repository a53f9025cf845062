"""Open311 GeoReport v2 as an integrator meets it: the gateway under gunicorn with the
real services (tests/stack.py, one stack for this module), driven by `georeport` 0.3.1,
a published GeoReport v2 client nobody here wrote, in JSON and in XML.

georeport reads services, service definitions and service requests. It has no call for
discovery, tokens or creating a request, and it raises on any error status without
reading the body: those are sent with plain `requests` and read with `xmltodict` (the
parser georeport itself uses), as a GeoReport client would."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta

import pytest
import requests
import xmltodict
from georeport import GeoReport
from nameko.standalone.rpc import ClusterRpcProxy

from gridwork_common.context import CallerContext
from services.gateway.auth import Identity
from services.gateway.store import gateway_db
from tests.conftest import drop_databases, settings_env
from tests.population_data import (
    COUNTY,
    TOWNSHIP_A,
    TOWNSHIP_B,
    VILLAGE_A,
    VILLAGE_B,
    county_features,
)
from tests.stack import running_stack

pytestmark = pytest.mark.integration

FORMATS = ("json", "xml")
PASSWORD = "correct horse battery"
# A point in grid 530402001001001, with more digits than the public may see.
LAT, LONG = 24.3054321, 102.5054321
CONTACT = {
    "email": "zhang.san@example.cn",
    "phone": "13800000000",
    "first_name": "三",
    "last_name": "张",
}
CONTACT_VALUES = set(CONTACT.values())


@pytest.fixture(scope="module")
def stack(infra, request, vhost_pipeline, tmp_path_factory):
    amqp = request.config.getoption("RABBIT_AMQP_URI").rstrip("/")
    with vhost_pipeline.get() as vhost:
        # Every request of this module comes from 127.0.0.1: the limit itself is tested
        # in tests/integration/gateway/test_login_limits.py.
        env = settings_env(infra, f"{amqp}/{vhost}", OPEN311_LIMIT_PER_MINUTE="100000")
        with running_stack(env, tmp_path_factory.mktemp("open311")) as running:
            settings = running["settings"]
            setup = CallerContext(user_id="setup", roles=("admin", "system"), scope=COUNTY)
            with ClusterRpcProxy(
                settings.nameko_config(), context_data=setup.to_context_data(), timeout=30
            ) as rpc:
                rpc.population.import_territory(county_features())
                rpc.events.ensure_default_departments(
                    [COUNTY, TOWNSHIP_A, TOWNSHIP_B, VILLAGE_A, VILLAGE_B]
                )
            Identity(gateway_db(settings), settings).create_user(
                "admin", PASSWORD, ["admin"], COUNTY, None
            )
            gateway = running["gateway"]
            login = requests.post(
                f"{gateway}/api/v1/auth/token",
                json={"grant_type": "password", "username": "admin", "password": PASSWORD},
                timeout=10,
            )
            admin = {"Authorization": f"Bearer {login.json()['access_token']}"}
            client = requests.post(
                f"{gateway}/open311/v2/clients",
                json={"name": "市民随手拍"},
                headers={**admin, "Idempotency-Key": "open311-client"},
                timeout=10,
            )
            assert client.status_code == 201, client.text
            yield {
                "gateway": gateway,
                "root": f"{gateway}/open311/v2",
                "api_key": client.json()["api_key"],
                "admin": admin,
            }
        drop_databases(infra["mongo_uri"], settings.mongo_db_prefix)


@pytest.fixture(params=FORMATS)
def fmt(request) -> str:
    return request.param


@pytest.fixture
def client(stack, fmt) -> GeoReport:
    # No api_key: every read a citizen's app makes is public.
    return GeoReport(stack["root"], jurisdiction=COUNTY, output_format=fmt)


# ------------------------------------------------------------------ reading answers
def parsed(response: requests.Response, fmt: str):
    """The body as the format's parser reads it."""
    if fmt == "json":
        assert response.headers["Content-Type"].startswith("application/json")
        return response.json()
    assert response.headers["Content-Type"].startswith("application/xml")
    return xmltodict.parse(response.content)


def items(value, tag: str) -> list:
    """An XML list's items (xmltodict gives one item as a dict, none as None)."""
    if value is None:
        return []
    found = value[tag]
    return found if isinstance(found, list) else [found]


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def errors(response: requests.Response, fmt: str) -> list[dict]:
    """The GeoReport error list, with codes as integers in both formats."""
    body = parsed(response, fmt)
    listed = body if fmt == "json" else items(body["errors"], "error")
    return [{"code": int(e["code"]), "description": e["description"]} for e in listed]


def post_request(stack, fmt: str, service_code: str = "04.01", **fields) -> requests.Response:
    form = {
        "api_key": stack["api_key"],
        "jurisdiction_id": COUNTY,
        "service_code": service_code,
        "lat": str(LAT),
        "long": str(LONG),
        "description": "小区门口垃圾堆积",
        **fields,
    }
    return requests.post(f"{stack['root']}/requests.{fmt}", data=form, timeout=10)


def created(stack, fmt: str, service_code: str = "04.01", **fields) -> dict:
    response = post_request(stack, fmt, service_code, **fields)
    assert response.status_code == 201, response.text
    body = parsed(response, fmt)
    (receipt,) = body if fmt == "json" else items(body["service_requests"], "request")
    return receipt


def flatten(value) -> list:
    """Every scalar in a parsed document."""
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in flatten(item)]
    if isinstance(value, list):
        return [leaf for item in value for leaf in flatten(item)]
    return [value]


# ------------------------------------------------------------------ services
def test_the_service_list_and_definitions_read_by_georeport(client, fmt):
    services = {s["service_code"]: s for s in as_list(client.get_service_list())}
    assert "02.01" in services and "04.01" in services
    assert "02.02" not in services  # gambling tips are not for public apps
    metadata = {code: str(service["metadata"]).lower() for code, service in services.items()}
    assert metadata["05.02"] == "true" and metadata["04.01"] == "false"
    assert services["05.02"]["group"] == "市政设施"

    definition = client.get_service_definition("05.02")
    assert definition["service_code"] == "05.02"
    attributes = (
        definition["attributes"] if fmt == "json" else items(definition["attributes"], "attribute")
    )
    by_code = {attribute["code"]: attribute for attribute in attributes}
    assert str(by_code["injury"]["required"]).lower() == "true"
    assert by_code["hazards"]["datatype"] == "multivaluelist"
    values = by_code["injury"]["values"]
    keys = [v["key"] for v in (values if fmt == "json" else items(values, "value"))]
    assert keys == ["yes", "no"]

    plain = client.get_service_definition("04.01")  # asks nothing beyond the description
    assert plain["attributes"] in ([], None)


def test_discovery_names_the_endpoint_and_both_formats(stack, fmt):
    # georeport has no discovery call: plain requests, parsed like georeport parses.
    response = requests.get(f"{stack['root']}/discovery.{fmt}", timeout=10)
    assert response.status_code == 200
    body = parsed(response, fmt)
    discovery = body if fmt == "json" else body["discovery"]
    endpoints = (
        discovery["endpoints"] if fmt == "json" else items(discovery["endpoints"], "endpoint")
    )
    (endpoint,) = endpoints
    assert endpoint["url"] == stack["root"]
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    listed = endpoint["formats"] if fmt == "json" else items(endpoint["formats"], "format")
    assert set(listed) == {"application/json", "application/xml"}


# ------------------------------------------------------------------ requests
def test_a_request_is_created_then_followed_publicly_without_personal_data(stack, client, fmt):
    receipt = created(
        stack,
        fmt,
        "05.02",
        description="井盖缺失，夜里很危险",
        address_string="玉兴路1号",
        **CONTACT,
        **{
            "attribute[injury]": "no",
            "attribute[hazards][]": ["no-cover", "no-lights"],
        },
    )
    request_id = receipt["service_request_id"]

    # A citizen's app follows it by id, with no api_key.
    found = client.get_service_request(request_id)
    assert found["service_request_id"] == request_id
    assert found["status"] == "open" and found["service_code"] == "05.02"
    assert found["service_name"] == "道路破损、井盖缺失"
    assert found["description"] == "井盖缺失，夜里很危险"  # without the address
    assert not found.get("address")  # the county does not publish exact addresses
    assert (float(found["lat"]), float(found["long"])) == (24.305, 102.505)
    assert not CONTACT_VALUES & {str(v) for v in flatten(found)}
    assert not {"email", "phone", "first_name", "last_name"} & set(found)

    listed = as_list(client.get_service_requests(service_request_id=request_id))
    assert [r["service_request_id"] for r in listed] == [request_id]

    # The centre reads the address and the answers with the case.
    case = requests.get(
        f"{stack['gateway']}/api/v1/incidents/{request_id}", headers=stack["admin"], timeout=10
    ).json()
    assert "玉兴路1号" in case["description"]
    assert "是否已造成人员受伤或车辆损坏：否" in case["description"]
    assert "现场情况（可多选）：井盖缺失、夜间无照明" in case["description"]

    # The token the client got leads back to the request.
    token = requests.get(f"{stack['root']}/tokens/{receipt['token']}.{fmt}", timeout=10)
    body = parsed(token, fmt)
    (answer,) = body if fmt == "json" else items(body["service_requests"], "request")
    assert answer == {"service_request_id": request_id, "token": receipt["token"]}


def test_status_dates_codes_and_id_lists_filter_the_public_list(stack, client, fmt):
    first = created(stack, fmt, "04.01")["service_request_id"]
    second = created(stack, fmt, "04.03", description="夜间施工噪声")["service_request_id"]
    third = created(stack, fmt, "04.01", description="垃圾桶满溢")["service_request_id"]
    _reject(stack, second)

    def ids(**filters) -> list[str]:
        return [r["service_request_id"] for r in as_list(client.get_service_requests(**filters))]

    newest_first = ids()  # the most recent 90 days by default
    assert [i for i in newest_first if i in (first, second, third)] == [third, second, first]
    assert second in ids(status="closed") and first not in ids(status="closed")
    assert second not in ids(status="open") and {first, third} <= set(ids(status="open"))
    assert second in ids(status="open,closed")
    assert set(ids(service_code="04.03")) & {first, second, third} == {second}

    requested = datetime.fromisoformat(client.get_service_request(second)["requested_datetime"])
    before = (requested - timedelta(microseconds=1)).isoformat()
    after_second = ids(start_date=requested.isoformat())
    assert second in after_second and first not in after_second
    assert first in ids(end_date=before) and second not in ids(end_date=before)

    # An id list overrides every other filter, in the order asked.
    assert ids(service_request_id=f"{third},{first}", status="closed") == [third, first]


def _reject(stack, incident_id: str) -> None:
    case = requests.get(
        f"{stack['gateway']}/api/v1/incidents/{incident_id}", headers=stack["admin"], timeout=10
    ).json()
    rejected = requests.post(
        f"{stack['gateway']}/api/v1/incidents/{incident_id}/reject",
        json={"expected_version": case["version"], "reason": "invalid"},
        headers={**stack["admin"], "Idempotency-Key": uuid.uuid4().hex},
        timeout=10,
    )
    assert rejected.status_code == 200, rejected.text


# ------------------------------------------------------------------ errors
def test_errors_are_georeport_error_lists_with_their_status(stack, fmt):
    root = stack["root"]

    def check(response, status: int, mentions: str) -> None:
        assert response.status_code == status, response.text
        (error,) = errors(response, fmt)
        assert error["code"] == status and mentions in error["description"], error

    check(requests.get(f"{root}/requests/no-such-request.{fmt}", timeout=10), 404, "no such")
    check(requests.get(f"{root}/services/02.02.{fmt}", timeout=10), 404, "02.02")
    check(requests.get(f"{root}/tokens/not-a-token.{fmt}", timeout=10), 404, "token")
    check(requests.get(f"{root}/no-such-route.{fmt}", timeout=10), 404, "not found")
    check(
        requests.get(f"{root}/requests.{fmt}", params={"start_date": "yesterday"}, timeout=10),
        400,
        "start_date",
    )
    check(
        requests.get(
            f"{root}/requests.{fmt}",
            params={"start_date": "2026-01-01T00:00:00Z", "end_date": "2026-06-01T00:00:00Z"},
            timeout=10,
        ),
        400,
        "90 days",
    )
    check(
        requests.get(f"{root}/requests.{fmt}", params={"status": "pending"}, timeout=10),
        400,
        "status",
    )
    check(post_request(stack, fmt, api_key="not-a-key-at-all"), 403, "api_key")
    check(post_request(stack, fmt, lat="30.0", long="100.0"), 400, "location")
    check(post_request(stack, fmt, "02.02"), 404, "service_code")
    check(post_request(stack, fmt, "05.02"), 400, "attribute[injury]")
    check(post_request(stack, fmt, "05.02", **{"attribute[injury]": "maybe"}), 400, "maybe")
    check(
        post_request(stack, fmt, "07.02", **{"attribute[residents]": "many"}),
        400,
        "attribute[residents]",
    )
    check(post_request(stack, fmt, "04.01", **{"attribute[extra]": "x"}), 400, "attribute[extra]")
    missing = requests.post(
        f"{root}/requests.{fmt}", data={"api_key": stack["api_key"]}, timeout=10
    )
    assert missing.status_code == 400
    assert {e["description"].split(":")[0] for e in errors(missing, fmt)} >= {
        "service_code",
        "lat",
        "long",
        "description",
    }
    wrong_method = requests.delete(f"{root}/services.{fmt}", timeout=10)
    assert wrong_method.status_code == 405 and errors(wrong_method, fmt)[0]["code"] == 405


def test_another_jurisdiction_is_refused_on_every_route(stack, fmt):
    elsewhere = GeoReport(stack["root"], jurisdiction="110101", output_format=fmt)
    for read in (
        elsewhere.get_service_list,
        lambda: elsewhere.get_service_definition("04.01"),
        elsewhere.get_service_requests,
    ):
        with pytest.raises(requests.HTTPError) as refused:
            read()
        assert refused.value.response.status_code == 404
        (error,) = errors(refused.value.response, fmt)
        assert error["code"] == 404 and "jurisdiction_id" in error["description"]
    posted = post_request(stack, fmt, jurisdiction_id="110101")
    assert posted.status_code == 404 and "jurisdiction_id" in errors(posted, fmt)[0]["description"]


def test_a_request_line_too_long_is_414_as_documented(stack):
    too_many = ",".join(uuid.uuid4().hex for _ in range(200))  # ~6,600 bytes
    response = requests.get(
        f"{stack['root']}/requests.json", params={"service_request_id": too_many}, timeout=10
    )
    assert response.status_code == 414
    document = requests.get(f"{stack['gateway']}/api/v1/openapi.json", timeout=10).json()
    for path in ("/open311/v2/requests.json", "/open311/v2/requests.xml"):
        assert "414" in document["paths"][path]["get"]["responses"]


def test_the_openapi_document_states_both_formats_and_the_error_lists(stack):
    document = requests.get(f"{stack['gateway']}/api/v1/openapi.json", timeout=10).json()
    paths = document["paths"]
    for stem in ("discovery", "services", "services/{service_code}", "requests", "tokens/{token}"):
        for fmt, media in (("json", "application/json"), ("xml", "application/xml")):
            operation = paths[f"/open311/v2/{stem}.{fmt}"]["get"]
            assert media in operation["responses"]["200"]["content"]
            assert operation["security"] == []
            errors_schema = operation["responses"]["404"]["content"][media]["schema"]
            assert errors_schema == {"$ref": "#/components/schemas/Open311Errors"}
    post_xml = paths["/open311/v2/requests.xml"]["post"]
    xml_schema = post_xml["responses"]["201"]["content"]["application/xml"]["schema"]
    assert xml_schema["xml"] == {"name": "service_requests", "wrapped": True}
    assert json.dumps(document["components"]["schemas"]["Open311Errors"])


def test_a_retry_with_an_idempotency_key_finds_the_first_request(stack, client):
    """GeoReport defines no key; a client that sends one gets one request per key (the
    gateway keeps no answer for this public route: every retry reaches the view, as a
    retry after a lost answer does), and a reused key with another request is refused."""
    root, form = (
        stack["root"],
        {
            "api_key": stack["api_key"],
            "jurisdiction_id": COUNTY,
            "service_code": "04.01",
            "lat": str(LAT),
            "long": str(LONG),
            "description": "路灯不亮",
        },
    )

    def post(data, key="georeport-retry-1"):
        return requests.post(
            f"{root}/requests.json", data=data, headers={"Idempotency-Key": key}, timeout=10
        )

    first, retried = post(form), post(form)
    assert first.status_code == retried.status_code == 201, first.text
    assert retried.json() == first.json()
    (receipt,) = first.json()
    listed = as_list(client.get_service_requests(service_request_id=receipt["service_request_id"]))
    assert len(listed) == 1
    other = post(form, key="georeport-retry-2")
    assert other.json()[0]["service_request_id"] != receipt["service_request_id"]

    refused = post({**form, "description": "另一件事"})
    assert refused.status_code == 400
    assert "Idempotency-Key" in errors(refused, "json")[0]["description"]
