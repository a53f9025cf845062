"""The county's rules as the incident state machine asks for them: stage time limits and
on-site resolution from a catalogue version, departments' levels, the working calendar."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from services.events.domain.calendar import WorkingCalendar
from services.events.domain.catalogue import Catalogue


class CountyRules:
    def __init__(
        self,
        catalogue: Catalogue,
        departments: Mapping[str, str],
        calendar: WorkingCalendar,
    ):
        self.catalogue = catalogue
        self.departments = departments  # department code -> territory code
        self.calendar = calendar

    def stage_hours(self, category: str, urgency: str, stage: str) -> float:
        return self.catalogue.entry(category).stage_hours(urgency, stage)

    def on_site_allowed(self, category: str) -> bool:
        return self.catalogue.entry(category).on_site_allowed

    def department_territory(self, department_code: str) -> str | None:
        return self.departments.get(department_code)

    def add_working_minutes(self, start: datetime, minutes: float) -> datetime:
        return self.calendar.add_working_minutes(start, minutes)

    def working_minutes_between(self, start: datetime, end: datetime) -> float:
        return self.calendar.working_minutes_between(start, end)
