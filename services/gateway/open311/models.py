"""The GeoReport v2 documents and queries as pydantic models: they validate the queries
and bodies and describe the JSON answers in the OpenAPI document (the XML answers carry
the same fields, services/gateway/open311/formats.py)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, RootModel

from services.gateway.open311.requests import DATE_TIME_PATTERN, STATUS_PATTERN

JURISDICTION = Field(
    default=None,
    max_length=50,
    description="The county's code (e.g. 530402); optional, another one is refused (404)",
)
NOT_NEEDED_KEY = Field(
    default=None, max_length=100, description="Not needed: this read is public (ignored)"
)


def _xml(name: str) -> dict:
    """The element a document or list item is in the XML format (OpenAPI's `xml`)."""
    return {"xml": {"name": name}}


WRAPPED = {"xml": {"wrapped": True}}  # a list element holding one element per item


class JurisdictionQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    jurisdiction_id: str | None = JURISDICTION


class PublicReadQuery(JurisdictionQuery):
    api_key: str | None = NOT_NEEDED_KEY


class RequestsQuery(PublicReadQuery):
    service_request_id: str | None = Field(
        default=None,
        max_length=33000,
        description="Comma-separated ids (at most 1,000); overrides every other filter",
    )
    service_code: str | None = Field(default=None, max_length=2000, description="Comma-separated")
    status: str | None = Field(
        default=None,
        max_length=20,
        pattern=STATUS_PATTERN,
        description="Comma-separated: open, closed",
    )
    start_date: str | None = Field(
        default=None,
        max_length=40,
        pattern=DATE_TIME_PATTERN,
        description="W3C date-time (or a date: from its start); without an offset, China time",
    )
    end_date: str | None = Field(
        default=None,
        max_length=40,
        pattern=DATE_TIME_PATTERN,
        description="W3C date-time; at most 90 days after start_date (default: the most "
        "recent 90 days)",
    )


class Service(BaseModel):
    model_config = ConfigDict(json_schema_extra=_xml("service"))
    service_code: str
    service_name: str
    description: str
    metadata: bool = Field(description="true: the service asks questions (its definition)")
    type: str
    keywords: str
    group: str


class Services(RootModel[list[Service]]):
    pass


class AttributeValue(BaseModel):
    model_config = ConfigDict(json_schema_extra=_xml("value"))
    key: str
    name: str


class Attribute(BaseModel):
    model_config = ConfigDict(json_schema_extra=_xml("attribute"))
    variable: bool
    code: str
    datatype: str = Field(
        description="string, number, datetime, text, singlevaluelist or multivaluelist"
    )
    required: bool
    datatype_description: str | None = None
    order: int
    description: str
    values: list[AttributeValue] = Field(json_schema_extra=WRAPPED)


class ServiceDefinition(BaseModel):
    model_config = ConfigDict(json_schema_extra=_xml("service_definition"))
    service_code: str
    attributes: list[Attribute] = Field(json_schema_extra=WRAPPED)


class NewRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")  # GeoReport clients send optional extras
    jurisdiction_id: str | None = JURISDICTION
    api_key: str = Field(min_length=8, max_length=100)
    service_code: str = Field(pattern=r"^[0-9]{2}\.[0-9]{2}$")
    lat: float = Field(ge=-90, le=90)
    long: float = Field(ge=-180, le=180)
    description: str = Field(min_length=1, max_length=2000)
    address_string: str | None = Field(default=None, max_length=200)
    media_url: str | None = Field(default=None, max_length=500)
    email: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=30)
    first_name: str | None = Field(default=None, max_length=50)
    last_name: str | None = Field(default=None, max_length=50)
    device_id: str | None = Field(default=None, max_length=100)
    account_id: str | None = Field(default=None, max_length=100)
    attribute: dict[str, str | list[str]] | None = Field(
        default=None,
        description="Answers to the service definition's questions. Form-encoded, as "
        "GeoReport v2 posts them: attribute[<code>]=<value>, and attribute[<code>][]=<value> "
        "repeated for a multivaluelist",
    )


class RequestReceipt(BaseModel):
    model_config = ConfigDict(json_schema_extra=_xml("request"))
    service_request_id: str
    token: str
    service_notice: str
    account_id: str | None = None


class Receipts(RootModel[list[RequestReceipt]]):
    pass


class ServiceRequest(BaseModel):
    model_config = ConfigDict(json_schema_extra=_xml("request"))
    service_request_id: str
    status: str = Field(
        description="open, or closed once the case is closed, evaluated or rejected"
    )
    status_notes: str | None = None
    service_name: str | None = None
    service_code: str
    description: str | None = None
    agency_responsible: str | None = None
    service_notice: str | None = None
    requested_datetime: str
    updated_datetime: str | None = None
    expected_datetime: str | None = None
    address: str | None = Field(
        default=None, description="Only where the county publishes exact addresses"
    )
    lat: float | None = None
    long: float | None = None
    media_url: str | None = None


class ServiceRequests(RootModel[list[ServiceRequest]]):
    pass


class TokenAnswer(BaseModel):
    model_config = ConfigDict(json_schema_extra=_xml("request"))
    service_request_id: str
    token: str


class TokenAnswers(RootModel[list[TokenAnswer]]):
    pass


class Endpoint(BaseModel):
    model_config = ConfigDict(json_schema_extra=_xml("endpoint"))
    specification: str
    url: str
    changeset: str
    type: str
    formats: list[str] = Field(
        json_schema_extra={**WRAPPED, "items": {"type": "string", "xml": {"name": "format"}}}
    )


class Discovery(BaseModel):
    model_config = ConfigDict(json_schema_extra=_xml("discovery"))
    changeset: str
    contact: str
    key_service: str
    endpoints: list[Endpoint] = Field(json_schema_extra=WRAPPED)


class NewClient(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100)


class ClientKey(BaseModel):
    client_id: str
    name: str
    api_key: str = Field(description="shown once; only its hash is kept")
