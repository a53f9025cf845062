"""The county's setup: catalogue versions, the departments registry, the working calendar
(with the holiday notices the county loads) and the deadline policy. Read often, written
rarely: reads are cached briefly per process (catalogue versions, being immutable, for good)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from datetime import UTC, date, timedelta

from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from gridwork_common import roles
from gridwork_common.context import CallerContext
from gridwork_common.errors import Conflict, Forbidden, InvalidInput, NotFound
from gridwork_common.health import UP, WARNING
from services.events import calendar_watch, store
from services.events.domain.calendar import DEFAULT_CALENDAR, WorkingCalendar
from services.events.domain.catalogue import (
    DEFAULT_DEPARTMENTS,
    LEVEL_BY_CODE_LENGTH,
    Catalogue,
    default_catalogue_document,
    parse_catalogue,
)
from services.events.domain.notices import COUNTY, merged, parse_notice
from services.events.domain.official_calendar import official_notices
from services.events.rules import CountyRules
from services.events.usecases.case_input import aware_time

SETUP_WRITERS = (roles.ADMIN, roles.SYSTEM)
CACHE_TTL_S = 10.0
CALENDAR_ID = "calendar"
POLICY_ID = "deadline_policy"
# After a stage is overdue by this many working hours, the case is escalated and
# supervised automatically (configurable per county).
DEFAULT_POLICY = {
    "auto_escalate_after_hours": 8.0,
    "duplicate_radius_m": 200.0,
    "duplicate_window_hours": 72.0,
}
# The largest value each setting may take: a year of working hours, 100 km, a year.
POLICY_LIMITS = {
    "auto_escalate_after_hours": 2000.0,
    "duplicate_radius_m": 100_000.0,
    "duplicate_window_hours": 8760.0,
}
# The policy setting counted in working time, hence on the holiday notices.
CALENDAR_POLICY_SETTING = "auto_escalate_after_hours"
# Next year's notice is wanted from 1 December at the latest (the State Council publishes it
# in October or November), even when no deadline reaches that far yet.
NOTICE_LEAD = timedelta(days=31)
NOTICE_ROUTE = "PUT /api/v1/calendar/notices/{year}"
MAX_DEADLINES = 200  # one page of cases

_catalogues: dict[tuple[str, int], Catalogue] = {}
_cached: dict[tuple[str, str], tuple[float, object]] = {}


def _cache(db: Database, key: str, load):
    now = time.monotonic()
    hit = _cached.get((db.name, key))
    if hit is not None and now - hit[0] < CACHE_TTL_S:
        return hit[1]
    value = load()
    _cached[(db.name, key)] = (now, value)
    return value


def _forget(db: Database, key: str) -> None:
    _cached.pop((db.name, key), None)


class CountySetup:
    def __init__(self, db: Database, caller: CallerContext, county_code: str, clock):
        self.db = db
        self.caller = caller
        self.county_code = county_code
        self.clock = clock

    def _require_writer(self, what: str) -> None:
        if not self.caller.has_role(*SETUP_WRITERS):
            raise Forbidden(f"{what} needs one of the roles: {', '.join(SETUP_WRITERS)}")

    # ---------------------------------------------------------------- catalogue
    def publish_catalogue(self, document: Mapping) -> dict:
        """A new version of the catalogue; earlier versions stay for the cases using them."""
        self._require_writer("publishing the catalogue")
        latest = self.db[store.CATALOGUES].find_one(sort=[("_id", -1)], projection={"_id": 1})
        version = (latest["_id"] if latest else 0) + 1
        catalogue = parse_catalogue(document, version)
        self._check_owner_slugs(catalogue)
        try:
            self.db[store.CATALOGUES].insert_one(
                {
                    "_id": version,
                    **catalogue.to_document(),
                    "published_at": self.clock(),
                    "published_by": self.caller.user_id,
                }
            )
        except DuplicateKeyError:
            raise Conflict("catalogue: another version was published meanwhile; retry") from None
        _forget(self.db, "catalogue_version")
        return self.catalogue(version)

    def catalogue_versions(self) -> list[dict]:
        """Every published version, newest first: when, by whom, how many items."""
        self.current_version()  # the default catalogue is version 1 of a new county
        cursor = self.db[store.CATALOGUES].aggregate(
            [
                {"$sort": {"_id": -1}},
                {
                    "$project": {
                        "published_at": 1,
                        "published_by": 1,
                        "entries": {"$size": "$entries"},
                    }
                },
            ]
        )
        return [
            {
                "version": doc["_id"],
                "published_at": doc["published_at"].replace(tzinfo=UTC).isoformat()
                if doc.get("published_at")
                else None,
                "published_by": doc.get("published_by"),
                "entries": doc["entries"],
            }
            for doc in cursor
        ]

    def _check_owner_slugs(self, catalogue: Catalogue) -> None:
        known = {slug for level in DEFAULT_DEPARTMENTS.values() for slug in level}
        known |= {doc["slug"] for doc in self.db[store.DEPARTMENTS].find({}, {"slug": 1})}
        for entry in catalogue.entries.values():
            for level, slug in entry.owners.items():
                if slug not in known:
                    raise InvalidInput(
                        f"entries.{entry.code}.owners.{level}", f"no department kind {slug!r}"
                    )

    def ensure_default_catalogue(self) -> Catalogue:
        if self.db[store.CATALOGUES].count_documents({}, limit=1) == 0:
            catalogue = parse_catalogue(default_catalogue_document(), 1)
            with contextlib.suppress(DuplicateKeyError):  # another replica seeded it first
                self.db[store.CATALOGUES].insert_one(
                    {
                        "_id": 1,
                        **catalogue.to_document(),
                        "published_at": self.clock(),
                        "published_by": "default",
                    }
                )
            _forget(self.db, "catalogue_version")
        # Read here, not through the cache: another worker may have cached "none yet"
        # just before the default was stored.
        return self.catalogue_version(self._latest_version())

    def current_version(self) -> int:
        version = _cache(self.db, "catalogue_version", self._latest_version)
        if version is None:
            _forget(self.db, "catalogue_version")  # not kept: it is being made now
            return self.ensure_default_catalogue().version
        return version

    def _latest_version(self) -> int | None:
        latest = self.db[store.CATALOGUES].find_one(sort=[("_id", -1)], projection={"_id": 1})
        return latest["_id"] if latest else None

    def current_catalogue(self) -> Catalogue:
        return self.catalogue_version(self.current_version())

    def catalogue_version(self, version: int) -> Catalogue:
        key = (self.db.name, version)
        if key not in _catalogues:
            document = self.db[store.CATALOGUES].find_one({"_id": version})
            if document is None:
                raise NotFound(f"no catalogue version {version}")
            _catalogues[key] = parse_catalogue(document, version)
        return _catalogues[key]

    def catalogue(self, version: int | None = None, public_only: bool = False) -> dict:
        catalogue = self.catalogue_version(version or self.current_version())
        document = catalogue.to_document()
        if public_only:
            document["entries"] = [e for e in document["entries"] if e["public"]]
        return document

    # ---------------------------------------------------------------- departments
    def register_department(self, code: str, name: str, territory_code: str, slug: str) -> dict:
        self._require_writer("registering departments")
        if not isinstance(territory_code, str) or len(territory_code) not in LEVEL_BY_CODE_LENGTH:
            raise InvalidInput("territory_code", "must be a county, township or village code")
        if not territory_code.isdigit() or not territory_code.startswith(self.county_code):
            raise InvalidInput("territory_code", f"must be inside county {self.county_code}")
        if code != f"{territory_code}-{slug}":
            raise InvalidInput("code", "must be <territory code>-<department kind>")
        if not isinstance(name, str) or not name.strip():
            raise InvalidInput("name", "is required")
        document = {
            "_id": code,
            "name": name.strip(),
            "slug": slug,
            "territory_code": territory_code,
            "level": LEVEL_BY_CODE_LENGTH[len(territory_code)],
        }
        self.db[store.DEPARTMENTS].replace_one({"_id": code}, document, upsert=True)
        _forget(self.db, "departments")
        return _render_department(document)

    def ensure_default_departments(self, territory_codes: list[str]) -> int:
        """Register the default departments at every given centre (county, townships,
        villages), keeping any that exist."""
        self._require_writer("registering departments")
        created = 0
        for territory_code in territory_codes:
            level = LEVEL_BY_CODE_LENGTH.get(len(territory_code))
            for slug, name in DEFAULT_DEPARTMENTS.get(level, {}).items():
                code = f"{territory_code}-{slug}"
                result = self.db[store.DEPARTMENTS].update_one(
                    {"_id": code},
                    {
                        "$setOnInsert": {
                            "name": name,
                            "slug": slug,
                            "territory_code": territory_code,
                            "level": level,
                        }
                    },
                    upsert=True,
                )
                created += result.upserted_id is not None
        _forget(self.db, "departments")
        return created

    def departments(self, territory_code: str | None = None) -> list[dict]:
        query = {"territory_code": territory_code} if territory_code else {}
        rows = self.db[store.DEPARTMENTS].find(query).sort("_id", 1)
        return [_render_department(row) for row in rows]

    def department_territories(self) -> dict[str, str]:
        def load():
            rows = self.db[store.DEPARTMENTS].find({}, {"territory_code": 1})
            return {row["_id"]: row["territory_code"] for row in rows}

        return _cache(self.db, "departments", load)

    # ---------------------------------------------------------------- calendar, policy
    def set_calendar(self, config: Mapping) -> dict:
        """Replace the county's settings (hours, weekend, its own days); the notices stay."""
        self._require_writer("setting the working calendar")
        try:
            calendar = WorkingCalendar.from_config(config)
        except ValueError as exc:
            raise _invalid(exc, "calendar.") from None
        self.db[store.SETTINGS].replace_one(
            {"_id": CALENDAR_ID}, {"_id": CALENDAR_ID, **calendar.to_config()}, upsert=True
        )
        _forget(self.db, CALENDAR_ID)
        return calendar.to_config()

    def working_days(self, first: str, last: str) -> list[str]:
        start, end = _iso_date(first, "first"), _iso_date(last, "last")
        if not start <= end <= start + timedelta(days=366):
            raise InvalidInput("last", "must be from first to a year after it")
        calendar = self.calendar()
        calendar_watch.count_unconfirmed(calendar.years_without_notice(start, end), "working_days")
        days = (start + timedelta(days=n) for n in range((end - start).days + 1))
        return [day.isoformat() for day in days if calendar.is_working_day(day)]

    def working_time_left(self, dues: list) -> dict:
        """Working minutes from now (the service's clock) to each deadline, counted on the
        county calendar; negative once a deadline has passed (minutes overdue). `now` lets a
        caller compare other stamps (a stage's warning moment) with the same instant."""
        if not isinstance(dues, list) or len(dues) > MAX_DEADLINES:
            raise InvalidInput("dues", f"must be a list of at most {MAX_DEADLINES} times")
        now = self.clock()
        calendar = self.calendar()
        minutes = []
        for index, value in enumerate(dues):
            due = aware_time(value, f"dues[{index}]")
            if due >= now:
                minutes.append(calendar.working_minutes_between(now, due))
            else:
                minutes.append(-calendar.working_minutes_between(due, now))
        return {"now": now.astimezone(UTC).isoformat(), "minutes": minutes}

    def calendar(self) -> WorkingCalendar:
        """The county's settings counted on the official notices and the ones it loaded."""

        def load():
            document = self.db[store.SETTINGS].find_one({"_id": CALENDAR_ID})
            if document is None:
                settings = DEFAULT_CALENDAR
            else:
                document.pop("_id")
                settings = WorkingCalendar.from_config(document)
            loaded = [_stored_notice(doc) for doc in self.db[store.CALENDAR_NOTICES].find()]
            return settings.with_notices(merged(official_notices(), loaded))

        return _cache(self.db, CALENDAR_ID, load)

    # ---------------------------------------------------------------- holiday notices
    def put_notice(self, year: int, notice: Mapping) -> dict:
        """Load (or correct) one year's State Council notice; other years stay as they are."""
        self._require_writer("loading a holiday notice")
        try:
            parsed = parse_notice(year, notice)
        except ValueError as exc:
            raise _invalid(exc) from None
        document = {
            "_id": parsed.year,
            **parsed.to_document(),
            "loaded_at": self.clock(),
            "loaded_by": self.caller.user_id,
        }
        self.db[store.CALENDAR_NOTICES].replace_one({"_id": parsed.year}, document, upsert=True)
        _forget(self.db, CALENDAR_ID)
        return self.notice(parsed.year)

    def notice(self, year: int) -> dict:
        if isinstance(year, bool) or not isinstance(year, int):
            raise InvalidInput("year", "must be a whole year")
        for notice in self.calendar().notices:
            if notice.year == year:
                return self._render_notice(notice.to_document())
        raise NotFound(f"no holiday notice for {year}: load it with {_route(year)}")

    def notices(self) -> dict:
        """Every year's notice, and the years deadlines can reach without one."""
        status = self.check_calendar()
        items = [self._render_notice(n.to_document()) for n in self.calendar().notices]
        return {
            "items": items,
            "missing_years": status["missing_years"],
            "last_notice_year": status["last_notice_year"],
        }

    def _render_notice(self, rendered: dict) -> dict:
        if rendered["source"] == COUNTY:
            stored = self.db[store.CALENDAR_NOTICES].find_one(
                {"_id": rendered["year"]}, {"loaded_at": 1, "loaded_by": 1}
            )
            if stored is not None:
                rendered["loaded_at"] = stored["loaded_at"].isoformat()
                rendered["loaded_by"] = stored["loaded_by"]
        return rendered

    def check_calendar(self) -> dict:
        """Whether deadlines set now can reach a year without a holiday notice (or one starts
        within NOTICE_LEAD): the `calendar` component of the service's health, a warning
        that does not take the county offline. Exports the gauges an alert watches."""
        calendar = self.calendar()
        now = self.clock()
        missing = calendar.years_without_notice_ahead(now, self._reach_minutes(), NOTICE_LEAD)
        this_year = now.astimezone(calendar.tz).year
        known = calendar.notice_years()
        last = max(known) if known else None
        calendar_watch.publish({this_year, this_year + 1, *missing}, missing, last)
        if not missing:
            return {"status": UP, "missing_years": [], "last_notice_year": last}
        years = ", ".join(str(year) for year in missing)
        return {
            "status": WARNING,
            "missing_years": missing,
            "last_notice_year": last,
            "error": f"no holiday notice for {years}: deadlines reaching it are counted on "
            f"weekends alone; load the State Council's notice with {_route(missing[0])}",
        }

    def _reach_minutes(self, escalate_after_hours: float | None = None) -> float:
        """How far ahead, in working minutes, a deadline set now is used: the catalogue's
        longest stage, then the automatic escalation after it."""
        if escalate_after_hours is None:
            escalate_after_hours = self.policy()[CALENDAR_POLICY_SETTING]
        return (_longest_stage_hours(self.current_catalogue()) + escalate_after_hours) * 60

    def set_policy(self, changes: Mapping) -> dict:
        self._require_writer("setting the deadline policy")
        if not isinstance(changes, Mapping):
            raise InvalidInput("policy", "must be an object of settings")
        policy = self.policy()
        for name, value in changes.items():
            if name not in DEFAULT_POLICY:
                raise InvalidInput(name, f"is not a policy setting ({', '.join(DEFAULT_POLICY)})")
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise InvalidInput(name, "must be a positive number")
            if not value <= POLICY_LIMITS[name]:  # also NaN and infinity
                raise InvalidInput(name, f"must be at most {POLICY_LIMITS[name]:g}")
            policy[name] = float(value)
        if CALENDAR_POLICY_SETTING in changes:
            self._refuse_to_guess(policy[CALENDAR_POLICY_SETTING])
        self.db[store.SETTINGS].replace_one(
            {"_id": POLICY_ID}, {"_id": POLICY_ID, **policy}, upsert=True
        )
        _forget(self.db, POLICY_ID)
        return policy

    def _refuse_to_guess(self, escalate_after_hours: float) -> None:
        """The escalation threshold is counted in working time after each deadline: a policy
        whose deadlines and escalations reach a year without a notice would be applied on a
        guess, so it is refused until the notice is loaded."""
        calendar = self.calendar()
        reach = self._reach_minutes(escalate_after_hours)
        missing = calendar.years_without_notice_ahead(self.clock(), reach)
        if missing:
            years = ", ".join(str(year) for year in missing)
            raise Conflict(
                f"{CALENDAR_POLICY_SETTING}: deadlines and escalations under this policy reach "
                f"{years}, which has no holiday notice; load the State Council's notice first "
                f"({_route(missing[0])})"
            )

    def policy(self) -> dict:
        def load():
            stored = self.db[store.SETTINGS].find_one({"_id": POLICY_ID}) or {}
            return {name: stored.get(name, default) for name, default in DEFAULT_POLICY.items()}

        return dict(_cache(self.db, POLICY_ID, load))

    # ---------------------------------------------------------------- the rules
    def rules(self, catalogue_version: int | None = None) -> CountyRules:
        return CountyRules(
            self.catalogue_version(catalogue_version or self.current_version()),
            self.department_territories(),
            self.calendar(),
        )


def _render_department(document: Mapping) -> dict:
    return {
        "code": document["_id"],
        "name": document["name"],
        "kind": document["slug"],
        "territory_code": document["territory_code"],
        "level": document["level"],
    }


def _invalid(exc: ValueError, prefix: str = "") -> InvalidInput:
    field, _, problem = str(exc).partition(": ")
    return InvalidInput(f"{prefix}{field}", problem or str(exc))


def _stored_notice(document: Mapping):
    body = {name: document[name] for name in ("holidays", "makeup_workdays")}
    return parse_notice(document["_id"], {**body, "reference": document.get("reference", "")})


def _longest_stage_hours(catalogue: Catalogue) -> float:
    return max(
        (
            hours
            for entry in catalogue.entries.values()
            for stages in entry.time_limits.values()
            for hours in stages.values()
        ),
        default=0.0,  # an empty catalogue sets no deadline
    )


def _route(year: int) -> str:
    return NOTICE_ROUTE.format(year=year)


def _iso_date(value, field: str) -> date:
    if isinstance(value, str) and len(value) == 10:
        with contextlib.suppress(ValueError):
            return date.fromisoformat(value)
    raise InvalidInput(field, "must be a date YYYY-MM-DD")
