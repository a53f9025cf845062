"""The county's rules as the incident state machine asks for them: stage time limits and
on-site resolution from a catalogue version, departments' levels, the working calendar."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime

from services.events import calendar_watch
from services.events.domain.calendar import WorkingCalendar
from services.events.domain.catalogue import Catalogue


class CountyRules:
    def __init__(
        self,
        catalogue: Catalogue,
        departments: Mapping[str, str],
        calendar: WorkingCalendar,
        unconfirmed: Callable[[Iterable[int], str], None] = calendar_watch.count_unconfirmed,
    ):
        self.catalogue = catalogue
        self.departments = departments  # department code -> territory code
        self.calendar = calendar
        # Told of every computation that reached a year without a holiday notice: it is
        # done on weekends alone (a county cannot stop taking reports), but never silently.
        self.unconfirmed = unconfirmed

    def stage_hours(self, category: str, urgency: str, stage: str) -> float:
        return self.catalogue.entry(category).stage_hours(urgency, stage)

    def on_site_allowed(self, category: str) -> bool:
        return self.catalogue.entry(category).on_site_allowed

    def department_territory(self, department_code: str) -> str | None:
        return self.departments.get(department_code)

    def add_working_minutes(self, start: datetime, minutes: float) -> datetime:
        due = self.calendar.add_working_minutes(start, minutes)
        self._check_years(start, due, "deadline")
        return due

    def working_minutes_between(self, start: datetime, end: datetime) -> float:
        minutes = self.calendar.working_minutes_between(start, end)
        self._check_years(start, end, "working_time")
        return minutes

    def _check_years(self, start: datetime, end: datetime, computation: str) -> None:
        unknown = self.calendar.years_without_notice_between(start, end)
        if unknown:
            self.unconfirmed(unknown, computation)
