"""Open311 in-process (Flask test client) on the test's pinned clock: what needs the
county's time or a setting of its own. Clients in both formats, errors and discovery are
driven through the real gateway in test_open311_clients.py."""

import dataclasses
from datetime import timedelta

import pytest

from gridwork_common.clock import utc_now
from services.gateway.app import create_app

pytestmark = pytest.mark.integration


@pytest.fixture
def api_key(as_user):
    created = as_user("admin").post("/open311/v2/clients", key="c1", json={"name": "市民App"})
    assert created.status_code == 201
    return created.get_json()["api_key"]


def _report(client, api_key, **fields):
    created = client.post(
        "/open311/v2/requests.json",
        data={
            "api_key": api_key,
            "service_code": "04.01",
            "lat": "24.3054321",
            "long": "102.5054321",
            "description": "小区门口垃圾堆积",
            "address_string": "玉兴路1号",
            "phone": "13800000000",
            **fields,
        },
    )
    assert created.status_code == 201, created.get_json()
    return created.get_json()[0]


def test_the_default_window_is_the_most_recent_90_days_of_the_countys_clock(
    client, county, api_key, clock
):
    request_id = _report(client, api_key)["service_request_id"]

    def listed(**query) -> list[str]:
        answer = client.get("/open311/v2/requests.json", query_string=query)
        assert answer.status_code == 200, answer.get_json()
        return [r["service_request_id"] for r in answer.get_json()]

    assert listed() == [request_id]
    clock.advance(timedelta(days=89))
    assert listed() == [request_id]
    clock.advance(timedelta(days=2))  # 91 days on: out of the default window
    assert listed() == []
    assert listed(start_date="2026-11-18") == [request_id]  # a date: China time
    assert listed(end_date="2026-11-17T00:00:00+08:00") == []


def test_the_public_sees_the_exact_address_only_where_the_county_publishes_it(
    settings, services, clock, county, client, api_key
):
    request_id = _report(client, api_key)["service_request_id"]
    (withheld,) = client.get(f"/open311/v2/requests/{request_id}.json").get_json()
    assert withheld["address"] is None
    assert (withheld["lat"], withheld["long"]) == (24.305, 102.505)

    published = create_app(
        dataclasses.replace(settings, open311_exact_address=True),
        clock=clock,
        system_clock=utc_now,
    ).test_client()
    (exact,) = published.get(f"/open311/v2/requests/{request_id}.json").get_json()
    assert exact["address"] == "玉兴路1号"
    assert (exact["lat"], exact["long"]) == (24.3054321, 102.5054321)
    assert "13800000000" not in str(exact)  # contact fields never


def test_registering_clients_is_gridwork_api_but_georeport_errors_are_lists(client):
    # Registering clients is Gridwork's administration, not GeoReport: problem+json.
    refused = client.post("/open311/v2/clients", json={"name": "x"})
    assert refused.status_code == 401
    assert refused.mimetype == "application/problem+json"
    unknown = client.get("/open311/v2/requests.json", query_string={"unknown": "1"})
    assert unknown.status_code == 400
    assert unknown.get_json() == [
        {"code": 400, "description": "unknown: Extra inputs are not permitted"}
    ]


def test_a_form_has_no_attribute_field_and_the_dates_and_statuses_follow_the_document(
    client, county, api_key
):
    # A form field holds text: `attribute=...` is an extra field, ignored (the answers
    # come as attribute[<code>]); the document's form schema has no `attribute`.
    assert _report(client, api_key, attribute="null")["service_request_id"]
    for query, field in (
        ({"end_date": "0" * 40}, "end_date"),
        ({"start_date": "2026-02-29"}, "start_date"),  # not a leap year
        ({"status": "pending"}, "status"),
    ):
        refused = client.get("/open311/v2/requests.json", query_string=query)
        assert refused.status_code == 400
        assert refused.get_json()[0]["description"].startswith(f"{field}: ")
    for query in (
        {"start_date": "2028-02-29", "end_date": "2028-03-01T10:00Z"},
        {"status": "open,closed", "end_date": "2026-11-18T10:00:00.5+08:00"},
    ):
        assert client.get("/open311/v2/requests.json", query_string=query).status_code == 200
