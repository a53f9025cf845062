"""GeoReport v2's rules without infrastructure: the query window, what the public reads,
the answers to a service's questions, the XML documents and the error lists."""

from datetime import UTC, datetime, timedelta

import pytest
import xmltodict

from gridwork_common.clock import CHINA_TIME
from services.gateway.open311 import definitions, formats
from services.gateway.open311.errors import descriptions, route_format
from services.gateway.open311.requests import (
    MAX_REQUESTS,
    WINDOW,
    InvalidQuery,
    parse_query,
    public_request,
)

NOW = datetime(2026, 11, 18, 2, 0, tzinfo=UTC)


# ------------------------------------------------------------------ the query
def test_without_dates_the_window_is_the_most_recent_90_days():
    query = parse_query({}, NOW)
    assert (query.start, query.end) == (NOW - WINDOW, NOW)


def test_one_date_gives_90_days_from_it_and_both_may_not_span_more():
    start = parse_query({"start_date": "2026-01-01T00:00:00Z"}, NOW)
    assert start.end - start.start == WINDOW
    end = parse_query({"end_date": "2026-06-01T00:00:00+08:00"}, NOW)
    assert end.end == datetime(2026, 6, 1, tzinfo=CHINA_TIME) and end.end - end.start == WINDOW
    both = parse_query({"start_date": "2026-01-01", "end_date": "2026-03-31"}, NOW)
    assert both.start == datetime(2026, 1, 1, tzinfo=CHINA_TIME)  # a date alone: China time
    with pytest.raises(InvalidQuery, match="90 days") as refused:
        parse_query({"start_date": "2026-01-01", "end_date": "2026-04-02"}, NOW)
    assert refused.value.field == "end_date"
    with pytest.raises(InvalidQuery, match="before"):
        parse_query({"start_date": "2026-02-01", "end_date": "2026-01-01"}, NOW)
    with pytest.raises(InvalidQuery) as malformed:
        parse_query({"start_date": "last week"}, NOW)
    assert malformed.value.field == "start_date"


def test_statuses_codes_and_id_lists():
    query = parse_query({"status": "open, closed", "service_code": "04.01,04.03"}, NOW)
    assert query.statuses == ("open", "closed")
    assert query.service_codes == ("04.01", "04.03")
    with pytest.raises(InvalidQuery, match="pending"):
        parse_query({"status": "pending"}, NOW)
    # An id list overrides the other filters (even a bad one).
    ids = parse_query({"service_request_id": "b,a", "status": "pending"}, NOW)
    assert ids.ids == ("b", "a") and ids.statuses == () and ids.start is None
    with pytest.raises(InvalidQuery, match=str(MAX_REQUESTS)):
        parse_query({"service_request_id": ",".join(map(str, range(MAX_REQUESTS + 1)))}, NOW)


# ------------------------------------------------------------------ what the public reads
ROW = {
    "_id": "r1",
    "service_code": "04.01",
    "description": "小区门口垃圾堆积",
    "address": "玉兴路1号",
    "contact": {"phone": "13800000000", "email": "a@example.cn"},
    "media_url": None,
}
INCIDENT = {
    "state": "rejected",
    "description": "小区门口垃圾堆积（玉兴路1号）",
    "location": [102.5054321, 24.3054321],
    "reported_at": "2026-11-18T02:00:00+00:00",
    "owning_centre": "530402001001",
}


def test_a_public_request_has_no_contact_and_no_exact_address_unless_published():
    withheld = public_request(ROW, INCIDENT, "垃圾乱堆乱放", exact_address=False)
    assert withheld["status"] == "closed"  # rejected: finished
    assert withheld["address"] is None
    assert (withheld["lat"], withheld["long"]) == (24.305, 102.505)
    assert withheld["description"] == "小区门口垃圾堆积"  # not the case's, which has the address
    assert "13800000000" not in str(withheld) and "a@example.cn" not in str(withheld)
    exact = public_request(ROW, INCIDENT, "垃圾乱堆乱放", exact_address=True)
    assert exact["address"] == "玉兴路1号" and exact["lat"] == 24.3054321
    assert "13800000000" not in str(exact)


# ------------------------------------------------------------------ questions
def test_answers_come_from_attribute_fields_and_are_checked():
    form = [
        ("api_key", "k"),
        ("attribute[injury]", "no"),
        ("attribute[hazards][]", "pothole"),
        ("attribute[hazards][]", "no-cover"),
    ]
    answers = definitions.answers_from_form(form)
    assert answers == {"injury": ["no"], "hazards": ["pothole", "no-cover"]}
    definition = definitions.definition_of("05.02")
    checked = definitions.check_answers(definition, answers)
    assert definitions.summary(definition, checked) == (
        "是否已造成人员受伤或车辆损坏：否\n现场情况（可多选）：路面坑洞、井盖缺失"
    )
    for wrong, field in (
        ({}, "attribute[injury]"),  # required
        ({"injury": ["maybe"]}, "attribute[injury]"),
        ({"injury": ["yes", "no"]}, "attribute[injury]"),  # one answer only
        ({"injury": ["no"], "other": ["x"]}, "attribute[other]"),
    ):
        with pytest.raises(InvalidQuery) as refused:
            definitions.check_answers(definition, wrong)
        assert refused.value.field == field
    residents = definitions.definition_of("07.02")
    assert definitions.check_answers(residents, {"residents": ["3"]}) == {"residents": ["3"]}
    with pytest.raises(InvalidQuery, match="number"):
        definitions.check_answers(residents, {"residents": ["three"]})
    assert definitions.check_answers(definitions.definition_of("04.01"), {}) == {}


def test_a_definition_document_numbers_its_questions():
    document = definitions.render(definitions.definition_of("05.02"))
    assert [a["order"] for a in document["attributes"]] == [1, 2]
    assert document["attributes"][0]["values"] == [
        {"key": "yes", "name": "是"},
        {"key": "no", "name": "否"},
    ]


# ------------------------------------------------------------------ formats and errors
def test_xml_documents_name_lists_and_items_as_georeport_does():
    body = formats.encode(
        [{"service_code": "04.01", "metadata": False, "keywords": None}], "xml", "services"
    )
    assert body.startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    assert xmltodict.parse(body) == {
        "services": {"service": {"service_code": "04.01", "metadata": "false", "keywords": None}}
    }
    definition = formats.encode(
        definitions.render(definitions.definition_of("05.02")), "xml", "service_definition"
    )
    attributes = xmltodict.parse(definition)["service_definition"]["attributes"]["attribute"]
    assert attributes[0]["values"]["value"][0] == {"key": "yes", "name": "是"}
    assert formats.encode([{"code": 404}], "json", "errors") == b'[{"code": 404}]'


def test_georeport_addresses_and_error_descriptions():
    assert route_format("/open311/v2/requests/abc.xml") == "xml"
    assert route_format("/open311/v2/services.json") == "json"
    assert route_format("/open311/v2/clients") is None
    assert route_format("/api/v1/incidents.json") is None
    problem = {
        "detail": "lat: Field required",
        "errors": [
            {"field": "lat", "problem": "Field required"},
            {"field": "long", "problem": "Field required"},
        ],
    }
    assert descriptions(problem) == ["lat: Field required", "long: Field required"]
    assert descriptions({"title": "Not Found"}) == ["Not Found"]


def test_the_window_is_measured_from_the_clock_handed_in():
    later = NOW + timedelta(days=365)
    assert parse_query({}, later).end == later
