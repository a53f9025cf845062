"""Events: the incident catalogue, departments, working calendar and the incident loop.

Each entrypoint hands the call to the county setup or the incident desk (usecases/) with
the caller's context; the loop's rules live in the pure `domain` package.
"""

from nameko.dependency_providers import Config
from nameko.exceptions import RemoteError
from nameko.timer import timer

from gridwork_common.clock import ServiceClock
from gridwork_common.config import Settings
from gridwork_common.confirmed_events import ConfirmingEventDispatcher
from gridwork_common.context import Caller, CallerContext
from gridwork_common.errors import GridworkError, InvalidInput, OutsideTerritory
from gridwork_common.health import UP, advisory, service_report
from gridwork_common.metrics import PrometheusMetrics
from gridwork_common.mongo import MongoDatabase, mongo_health
from gridwork_common.probes import ServiceProbes
from gridwork_common.queues import broadcast_handler
from gridwork_common.rpc import BoundedRpcProxy, rpc
from gridwork_common.service_names import EVENTS, POPULATION
from services.events import store
from services.events.grid_cache import GridLocator
from services.events.metrics import observe_report_stage, publish_incident_gauges
from services.events.sent_events import SentEvents
from services.events.usecases import map_view
from services.events.usecases.incidents import IncidentDesk
from services.events.usecases.setup import CountySetup

SYSTEM_CALLER = CallerContext(user_id="events-timer", roles=("system",))
EXPECTED = (GridworkError,)
DEADLINE_CHECK_INTERVAL_S = 30
OUTBOX_RETRY_INTERVAL_S = 10
CALENDAR_CHECK_INTERVAL_S = 300
METRICS_REFRESH_INTERVAL_S = 60


class EventsService:
    name = EVENTS

    db = MongoDatabase(indexes=store.INDEXES)
    # A step's events are written without waiting for the broker's confirm; they leave
    # their case when it comes (sent_events.py). The outbox timer's sends wait for it.
    events = ConfirmingEventDispatcher()
    population = BoundedRpcProxy(POPULATION)
    grids = GridLocator()  # the county's grid polygons, to locate reports in memory
    caller = Caller()
    config = Config()
    metrics = PrometheusMetrics()
    probes = ServiceProbes()  # /healthz, /readyz on METRICS_PORT
    clock = ServiceClock()
    sent_events = SentEvents()  # pulls sent events off their cases, a batch at a time

    def _setup(self, caller: CallerContext | None = None) -> CountySetup:
        county_code = Settings.from_nameko_config(self.config).county_code
        return CountySetup(self.db, caller or self.caller, county_code, self.clock)

    def _desk(self, caller: CallerContext | None = None) -> IncidentDesk:
        caller = caller or self.caller
        return IncidentDesk(
            self.db,
            self._setup(caller),
            self.events,
            self._grid_of,
            caller,
            self.clock,
            forget_sent=self.sent_events,
            observe_stage=observe_report_stage,
        )

    def _grid_of(self, lon: float, lat: float) -> str:
        return self.grids.grid_of(lon, lat, self.population.grid_geometries, self._locate)

    def _locate(self, lon: float, lat: float) -> dict:
        try:
            return self.population.locate(lon, lat)
        except RemoteError as exc:
            if exc.exc_type in ("OutsideTerritory", "InvalidInput"):
                problem = str(exc.value).split(": ", 1)[-1]
                raise OutsideTerritory("location", problem) from None
            raise

    @broadcast_handler(POPULATION, "grid.updated")
    def on_grid_updated(self, payload):
        """Every replica drops its grid index (a broadcast: each has its own queue),
        unless the event tells of a staff roster, which moves no outline."""
        data = payload.get("data") if isinstance(payload, dict) else None
        if "staff" not in (data or {}):
            self.grids.invalidate()

    @rpc
    def health(self):
        components = {"mongo": mongo_health(self.db)}
        if components["mongo"]["status"] == UP:
            # A missing holiday notice is a warning: the county keeps working meanwhile.
            components["calendar"] = advisory(self._setup(SYSTEM_CALLER).check_calendar)
        return service_report(self.name, components)

    # catalogue, departments, calendar
    @rpc(expected_exceptions=EXPECTED)
    def catalogue(self, version=None, public_only=False):
        return self._setup().catalogue(version, public_only)

    @rpc(expected_exceptions=EXPECTED)
    def publish_catalogue(self, document):
        return self._setup().publish_catalogue(document)

    @rpc(expected_exceptions=EXPECTED)
    def catalogue_versions(self):
        return self._setup().catalogue_versions()

    @rpc(expected_exceptions=EXPECTED)
    def departments(self, territory_code=None):
        return self._setup().departments(territory_code)

    @rpc(expected_exceptions=EXPECTED)
    def register_department(self, code, name, territory_code, kind):
        return self._setup().register_department(code, name, territory_code, kind)

    @rpc(expected_exceptions=EXPECTED)
    def ensure_default_departments(self, territory_codes):
        if not isinstance(territory_codes, list):
            raise InvalidInput("territory_codes", "must be a list of centre codes")
        return self._setup().ensure_default_departments(territory_codes)

    @rpc(expected_exceptions=EXPECTED)
    def calendar(self):
        return self._setup().calendar().to_config()

    @rpc(expected_exceptions=EXPECTED)
    def working_days(self, first, last):
        """The county's working days from `first` to `last` ("YYYY-MM-DD", at most a year
        apart), for counting activity against the real calendar."""
        return self._setup().working_days(first, last)

    @rpc(expected_exceptions=EXPECTED)
    def working_time_left(self, dues):
        """Working minutes from now to each deadline ("ISO 8601 with offset"; negative once
        past), counted on the county calendar: what a queue shows as time left."""
        return self._setup().working_time_left(dues)

    @rpc(expected_exceptions=EXPECTED)
    def set_calendar(self, config):
        return self._setup().set_calendar(config)

    @rpc(expected_exceptions=EXPECTED)
    def calendar_notices(self):
        return self._setup().notices()

    @rpc(expected_exceptions=EXPECTED)
    def calendar_notice(self, year):
        return self._setup().notice(year)

    @rpc(expected_exceptions=EXPECTED)
    def put_calendar_notice(self, year, notice):
        """Load (or correct) the State Council's holiday notice for one year."""
        return self._setup().put_notice(year, notice)

    @timer(interval=CALENDAR_CHECK_INTERVAL_S)
    def check_calendar(self):
        """Keeps the calendar gauges current even when nobody asks /readyz."""
        return self._setup(SYSTEM_CALLER).check_calendar()

    @rpc(expected_exceptions=EXPECTED)
    def policy(self):
        return self._setup().policy()

    @rpc(expected_exceptions=EXPECTED)
    def set_policy(self, changes):
        return self._setup().set_policy(changes)

    # the incident loop
    @rpc(expected_exceptions=EXPECTED)
    def report_incident(self, report, idempotency_key, duplicates=True):
        return self._desk().report(report, idempotency_key, duplicates)

    @rpc(expected_exceptions=EXPECTED)
    def act(self, incident_id, action, expected_version, idempotency_key, fields=None):
        return self._desk().act(incident_id, action, expected_version, idempotency_key, fields)

    @rpc(expected_exceptions=EXPECTED)
    def merge(self, incident_id, duplicate_id, expected_version, idempotency_key):
        return self._desk().merge(incident_id, duplicate_id, expected_version, idempotency_key)

    @rpc(expected_exceptions=EXPECTED)
    def get_incident(self, incident_id):
        return self._desk().get(incident_id)

    @rpc(expected_exceptions=EXPECTED)
    def timeline(self, incident_id):
        return self._desk().timeline(incident_id)

    @rpc(expected_exceptions=EXPECTED)
    def possible_duplicates(self, incident_id):
        desk = self._desk()
        desk.get(incident_id)  # scope check
        return desk.possible_duplicates(incident_id)

    @rpc(expected_exceptions=EXPECTED)
    def worklist(self, kind, cursor=None, limit=50):
        return self._desk().worklist(kind, cursor, limit)

    @rpc(expected_exceptions=EXPECTED)
    def search(self, filters=None, cursor=None, limit=50):
        return self._desk().search(filters, cursor, limit)

    @rpc(expected_exceptions=EXPECTED)
    def counts(self, territory_code):
        return self._desk().counts(territory_code)

    @rpc(expected_exceptions=EXPECTED)
    def map_summary(self, territory_code, filters=None):
        return map_view.summary(self._desk(), territory_code, filters)

    # deadlines and the outbox
    @timer(interval=DEADLINE_CHECK_INTERVAL_S)
    def check_deadlines(self):
        return self._desk(SYSTEM_CALLER).check_deadlines()

    @timer(interval=OUTBOX_RETRY_INTERVAL_S)
    def resend_outbox(self):
        return self._desk(SYSTEM_CALLER).flush_outbox(older_than_s=OUTBOX_RETRY_INTERVAL_S)

    @timer(interval=METRICS_REFRESH_INTERVAL_S)
    def refresh_incident_metrics(self):
        """Open, overdue and supervised cases per township for /metrics."""
        rows = store.open_incidents_by_township(self.db)
        publish_incident_gauges(rows)
        return len(rows)
