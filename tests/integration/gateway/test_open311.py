import pytest

pytestmark = pytest.mark.integration


@pytest.fixture
def api_key(as_user):
    created = as_user("admin").post("/open311/v2/clients", key="c1", json={"name": "市民App"})
    assert created.status_code == 201
    return created.get_json()["api_key"]


def test_services_list_only_public_catalogue_items(client, county):
    services = client.get("/open311/v2/services.json").get_json()
    codes = {service["service_code"] for service in services}
    assert "02.01" in codes and "04.01" in codes
    assert "02.02" not in codes  # gambling tips are not for public apps
    assert all(service["metadata"] is False for service in services)


def test_a_citizen_request_becomes_an_incident_and_can_be_followed(client, county, api_key):
    created = client.post(
        "/open311/v2/requests.json",
        data={
            "api_key": api_key,
            "service_code": "04.01",
            "lat": "24.305",
            "long": "102.505",
            "description": "小区门口垃圾堆积",
            "address_string": "玉兴路1号",
            "phone": "13800000000",
        },
    )
    assert created.status_code == 201, created.get_json()
    (receipt,) = created.get_json()
    request_id, token = receipt["service_request_id"], receipt["token"]

    (found,) = client.get(
        f"/open311/v2/requests/{request_id}.json", query_string={"api_key": api_key}
    ).get_json()
    assert found["status"] == "open" and found["service_code"] == "04.01"
    assert found["agency_responsible"] == "530402001001"  # the village centre owns it
    assert (found["lat"], found["long"]) == (24.305, 102.505)
    listed = client.get(
        "/open311/v2/requests.json",
        query_string={"api_key": api_key, "service_request_id": request_id},
    ).get_json()
    assert [r["service_request_id"] for r in listed] == [request_id]
    (answer,) = client.get(
        f"/open311/v2/tokens/{token}.json", query_string={"api_key": api_key}
    ).get_json()
    assert answer["service_request_id"] == request_id


def test_keys_and_locations_are_checked(client, county, api_key):
    wrong_key = client.post(
        "/open311/v2/requests.json",
        data={
            "api_key": "not-a-key-at-all",
            "service_code": "04.01",
            "lat": "24.305",
            "long": "102.505",
            "description": "x",
        },
    )
    assert wrong_key.status_code == 403 and wrong_key.get_json()["field"] == "api_key"
    outside = client.post(
        "/open311/v2/requests.json",
        data={
            "api_key": api_key,
            "service_code": "04.01",
            "lat": "30.0",
            "long": "100.0",
            "description": "x",
        },
    )
    assert outside.status_code == 422
    assert outside.mimetype == "application/problem+json"
    missing = client.post("/open311/v2/requests.json", data={"api_key": api_key})
    assert missing.status_code == 400 and missing.get_json()["field"] == "service_code"
