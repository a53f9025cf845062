"""/api/v1/calendar/notices: the State Council's holiday notices the working calendar counts on.

Past years' notices ship with Gridwork (from the chinesecalendar package); a county loads each
new year's notice, when the State Council publishes it, with one PUT for that year, without
resending the other years or its calendar settings. Registered by the incident setup routes
(services.gateway.routes.incidents.county_setup), next to /calendar.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Literal

from flask import Blueprint
from pydantic import BaseModel, ConfigDict, Field

from gridwork_common import roles
from gridwork_common.service_names import EVENTS
from services.gateway.api import Api, Call
from services.gateway.fields import IsoDate
from services.gateway.problems import ApiProblem

SETUP_WRITERS = (roles.ADMIN,)
_YEAR = re.compile(r"\d{4}")


class YearPath(BaseModel):
    year: str = Field(pattern=r"^[1-9][0-9]{3}$", description="The year, written YYYY")


class HolidayNotice(BaseModel):
    model_config = ConfigDict(extra="allow")
    year: int
    source: Literal["official", "county"] = Field(
        description="official: shipped with Gridwork (chinesecalendar); county: loaded here"
    )
    reference: str = Field(description="The notice's number or title, as given")
    holidays: list[date] = Field(description="Every rest day of each break")
    makeup_workdays: list[date] = Field(description="Weekend days worked (调休)")
    loaded_at: datetime | None = None
    loaded_by: str | None = None


class HolidayNoticeList(BaseModel):
    model_config = ConfigDict(extra="allow")
    items: list[HolidayNotice]
    missing_years: list[int] = Field(
        description="Years deadlines can reach (or next year, from December) without a notice"
    )
    last_notice_year: int | None


class NewHolidayNotice(BaseModel):
    model_config = ConfigDict(extra="forbid")
    holidays: list[IsoDate] = Field(
        min_length=1,
        description="Every rest day of each break, weekends inside it included; a New Year "
        "break may start in the last days of the December before",
    )
    makeup_workdays: list[IsoDate] = Field(
        description="Saturdays and Sundays worked instead (调休); [] if none"
    )
    reference: str | None = Field(
        default=None,
        max_length=200,
        description="The notice's number or title, e.g. 国办发明电〔2026〕12号",  # noqa: RUF001
    )


def register_notices(api: Api, blueprint: Blueprint, tag: str) -> None:
    @api.operation(
        blueprint,
        "GET",
        "/calendar/notices",
        summary="Every year's holiday notice, and the years that lack one",
        tag=tag,
        response=HolidayNoticeList,
    )
    def list_notices(call: Call):
        return call.rpc(EVENTS, "calendar_notices")

    @api.operation(
        blueprint,
        "GET",
        "/calendar/notices/{year}",
        summary="One year's holiday notice",
        tag=tag,
        response=HolidayNotice,
        description="404 when the year has no notice (deadlines in it count weekends alone).",
        path_params=YearPath,
    )
    def get_notice(call: Call):
        return call.rpc(EVENTS, "calendar_notice", _year(call))

    @api.operation(
        blueprint,
        "PUT",
        "/calendar/notices/{year}",
        summary="Load (or correct) the State Council's holiday notice for a year",
        tag=tag,
        body=NewHolidayNotice,
        response=HolidayNotice,
        roles=SETUP_WRITERS,
        description="Replaces that year's notice only; other years and the calendar's "
        "settings stay. The county's notice wins over the shipped one for the same year. "
        "Deadlines already set are not moved.",
        path_params=YearPath,
    )
    def put_notice(call: Call):
        body: NewHolidayNotice = call.body
        notice = body.model_dump(mode="json")
        if notice["reference"] is None:
            del notice["reference"]
        return call.rpc(EVENTS, "put_calendar_notice", _year(call), notice)


def _year(call: Call) -> int:
    text = call.path["year"]
    if not _YEAR.fullmatch(text):
        raise ApiProblem(422, "Invalid input", "year: must be a year written YYYY", field="year")
    return int(text)
