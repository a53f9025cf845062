"""Population: territory and grids, residents, houses, entities, special groups, visits.

Each entrypoint hands the call to `Population` (application.py) with the caller's
context; scope and role checks live there, rules in the pure `domain` package.
"""

import logging

from nameko.dependency_providers import Config
from nameko.extensions import DependencyProvider
from nameko.timer import timer
from pydantic import ValidationError

from gridwork_common.clock import ServiceClock
from gridwork_common.config import Settings
from gridwork_common.confirmed_events import ConfirmingEventDispatcher
from gridwork_common.context import Caller, CallerContext
from gridwork_common.errors import GridworkError
from gridwork_common.event_batches import batched_event_handler
from gridwork_common.events import parse_event
from gridwork_common.health import service_report
from gridwork_common.metrics import PrometheusMetrics
from gridwork_common.mongo import MongoDatabase, mongo_health
from gridwork_common.outbox import Outbox
from gridwork_common.probes import ServiceProbes
from gridwork_common.rpc import rpc
from gridwork_common.service_names import EVENTS, POPULATION
from services.population import store
from services.population.application import Population
from services.population.importing import ImportJobs
from services.population.protection import PersonalDataCipher
from services.population.repositories.patrols import PatrolRepository
from services.population.usecases.patrols import PatrolDesk

SYSTEM_CALLER = CallerContext(user_id="population-timer", roles=("system",))
log = logging.getLogger(__name__)
# A report waits this long for others to be handled with (a patrol's list of incidents
# is read by people, later): at a busy county's few reports a second, batches of several.
PATROL_LINK_WAIT_S = 0.1
EXPECTED = (GridworkError,)
OVERDUE_CHECK_INTERVAL_S = 3600
IMPORT_POLL_INTERVAL_S = 1
OUTBOX_RETRY_INTERVAL_S = 10
OUTLINE_CHECK_INTERVAL_S = 5
OUTLINE_QUIET_S = 10


class PersonalDataProtection(DependencyProvider):
    """The AES-GCM cipher and blind-index keys, built once from configuration."""

    def setup(self):
        settings = Settings.from_nameko_config(self.container.config)
        self.cipher = PersonalDataCipher.from_settings(settings)

    def get_dependency(self, worker_ctx) -> PersonalDataCipher:
        return self.cipher


class PopulationService:
    name = POPULATION

    db = MongoDatabase(indexes=store.INDEXES)
    cipher = PersonalDataProtection()
    # The outbox's sends after a commit do not wait for the broker's confirm; confirmed
    # entries are deleted a batch at a time (gridwork_common/sent_entries.py).
    events = ConfirmingEventDispatcher()
    caller = Caller()
    config = Config()
    metrics = PrometheusMetrics()
    probes = ServiceProbes()  # /healthz, /readyz on METRICS_PORT
    clock = ServiceClock()

    def _population(self, caller: CallerContext | None = None) -> Population:
        county_code = Settings.from_nameko_config(self.config).county_code
        return Population(
            self.db, self.cipher, self.events, caller or self.caller, county_code, self.clock
        )

    def _patrols(self, caller: CallerContext | None = None) -> PatrolDesk:
        county_code = Settings.from_nameko_config(self.config).county_code
        repository = PatrolRepository(self.db, self.events, self.clock)
        return PatrolDesk(repository, caller or self.caller, county_code, self.clock)

    def _imports(self, caller: CallerContext | None = None) -> ImportJobs:
        return ImportJobs(self._population(caller))

    @rpc
    def health(self):
        return service_report(self.name, {"mongo": mongo_health(self.db)})

    # territory and grids
    @rpc(expected_exceptions=EXPECTED)
    def import_territory(self, feature_collection):
        return self._population().import_territory(feature_collection)

    @rpc(expected_exceptions=EXPECTED)
    def add_territory_node(self, code, name, geometry=None):
        return self._population().add_territory_node(code, name, geometry)

    @rpc(expected_exceptions=EXPECTED)
    def get_territory(self, code):
        return self._population().territory_node(code)

    @rpc(expected_exceptions=EXPECTED)
    def territory_children(self, code):
        return self._population().territory_children(code)

    @rpc(expected_exceptions=EXPECTED)
    def grid_shapes(self, code, tolerance=0.0):
        return self._population().grid_shapes(code, tolerance)

    @rpc(expected_exceptions=EXPECTED)
    def map_outlines(self, code, zoom, bbox=None):
        return self._population().map_outlines(code, zoom, bbox)

    @rpc(expected_exceptions=EXPECTED)
    def build_map_outlines(self):
        return self._population().build_map_outlines()

    @timer(interval=OUTLINE_CHECK_INTERVAL_S)
    def build_outlines_after_imports(self):
        """The map's outlines of a new territory version, at every zoom, once the
        territory has been quiet for a while (not once per node of an import)."""
        return self._population(SYSTEM_CALLER).build_map_outlines(OUTLINE_QUIET_S)

    @rpc(expected_exceptions=EXPECTED)
    def grid_geometries(self):
        return self._population().grid_geometries()

    @rpc(expected_exceptions=EXPECTED)
    def locate(self, lon, lat):
        return self._population().locate(lon, lat)

    @rpc(expected_exceptions=EXPECTED)
    def set_grid_staff(self, grid_code, staff):
        return self._population().set_grid_staff(grid_code, staff)

    @rpc(expected_exceptions=EXPECTED)
    def grid_staff(self, grid_code):
        return self._population().grid_staff(grid_code)

    @rpc(expected_exceptions=EXPECTED)
    def grids_served_by(self, person_id):
        return self._population().grids_served_by(person_id)

    @rpc(expected_exceptions=EXPECTED)
    def statistics(self, code):
        return self._population().statistics(code)

    # residents
    @rpc(expected_exceptions=EXPECTED)
    def register_resident(self, resident):
        return self._population().register_resident(resident)

    @rpc(expected_exceptions=EXPECTED)
    def get_resident(self, resident_id, reveal=None, purpose=None):
        return self._population().get_resident(resident_id, reveal, purpose)

    @rpc(expected_exceptions=EXPECTED)
    def find_resident(self, id_number=None, phone=None):
        return self._population().find_resident(id_number, phone)

    @rpc(expected_exceptions=EXPECTED)
    def list_residents(self, code, cursor=None, limit=50, status="active"):
        return self._population().list_residents(code, cursor, limit, status)

    @rpc(expected_exceptions=EXPECTED)
    def update_resident(self, resident_id, changes, expected_version):
        return self._population().update_resident(resident_id, changes, expected_version)

    @rpc(expected_exceptions=EXPECTED)
    def move_resident(
        self,
        resident_id,
        expected_version,
        to_grid_code=None,
        to_house_id=None,
        out_of_county=None,
    ):
        return self._population().move_resident(
            resident_id, expected_version, to_grid_code, to_house_id, out_of_county
        )

    @rpc(expected_exceptions=EXPECTED)
    def deregister_resident(self, resident_id, expected_version, reason):
        return self._population().deregister_resident(resident_id, expected_version, reason)

    @rpc(expected_exceptions=EXPECTED)
    def resident_history(self, resident_id):
        return self._population().resident_history(resident_id)

    # houses, households, legal entities
    @rpc(expected_exceptions=EXPECTED)
    def add_house(self, house):
        return self._population().add_house(house)

    @rpc(expected_exceptions=EXPECTED)
    def get_house(self, house_id):
        return self._population().get_house(house_id)

    @rpc(expected_exceptions=EXPECTED)
    def list_houses(self, code, cursor=None, limit=50):
        return self._population().list_houses(code, cursor, limit)

    @rpc(expected_exceptions=EXPECTED)
    def set_tenants(self, house_id, tenant_ids):
        return self._population().set_tenants(house_id, tenant_ids)

    @rpc(expected_exceptions=EXPECTED)
    def create_household(self, house_id, head_resident_id):
        return self._population().create_household(house_id, head_resident_id)

    @rpc(expected_exceptions=EXPECTED)
    def add_household_member(self, household_id, resident_id, relation):
        return self._population().add_household_member(household_id, resident_id, relation)

    @rpc(expected_exceptions=EXPECTED)
    def get_household(self, household_id):
        return self._population().get_household(household_id)

    @rpc(expected_exceptions=EXPECTED)
    def register_entity(self, entity):
        return self._population().register_entity(entity)

    @rpc(expected_exceptions=EXPECTED)
    def get_entity(self, credit_code):
        return self._population().get_entity(credit_code)

    @rpc(expected_exceptions=EXPECTED)
    def list_entities(self, code, cursor=None, limit=50):
        return self._population().list_entities(code, cursor, limit)

    # special and vulnerable groups, visits
    @rpc(expected_exceptions=EXPECTED)
    def flag_group(self, resident_id, group, risk_level, responsible_worker_id, note=None):
        return self._population().flag_group(
            resident_id, group, risk_level, responsible_worker_id, note
        )

    @rpc(expected_exceptions=EXPECTED)
    def clear_group(self, membership_id, reason):
        return self._population().clear_group(membership_id, reason)

    @rpc(expected_exceptions=EXPECTED)
    def list_group_members(self, code, group=None, risk_level=None, cursor=None, limit=50):
        return self._population().list_group_members(code, group, risk_level, cursor, limit)

    @rpc(expected_exceptions=EXPECTED)
    def set_visit_rule(self, group, risk_level, visits_per_month):
        return self._population().set_visit_rule(group, risk_level, visits_per_month)

    @rpc(expected_exceptions=EXPECTED)
    def visit_rules(self):
        return self._population().visit_rules()

    @rpc(expected_exceptions=EXPECTED)
    def record_visit(self, visit, idempotency_key=None):
        return self._population().record_visit(visit, idempotency_key)

    @rpc(expected_exceptions=EXPECTED)
    def visits_of(self, membership_id):
        return self._population().visits_of(membership_id)

    @rpc(expected_exceptions=EXPECTED)
    def visit_worklist(self, worker_id=None, period=None):
        return self._population().visit_worklist(worker_id, period)

    # patrols (巡查)
    @rpc(expected_exceptions=EXPECTED)
    def start_patrol(self, patrol_id, started_at, grid_code=None):
        return self._patrols().start(patrol_id, started_at, grid_code)

    @rpc(expected_exceptions=EXPECTED)
    def put_patrol_track(self, patrol_id, piece, points):
        return self._patrols().put_track(patrol_id, piece, points)

    @rpc(expected_exceptions=EXPECTED)
    def finish_patrol(self, patrol_id, ended_at):
        return self._patrols().finish(patrol_id, ended_at)

    @rpc(expected_exceptions=EXPECTED)
    def get_patrol(self, patrol_id):
        return self._patrols().get(patrol_id)

    @rpc(expected_exceptions=EXPECTED)
    def list_patrols(self, worker_id=None, grid_code=None, period=None, cursor=None, limit=50):
        return self._patrols().list(worker_id, grid_code, period, cursor, limit)

    @rpc(expected_exceptions=EXPECTED)
    def patrol_tracks(self, code, period):
        return self._patrols().tracks(code, period)

    @batched_event_handler(EVENTS, "incident.reported.#", wait_s=PATROL_LINK_WAIT_S)
    def on_incident_reported(self, payloads):
        """Incidents reported during a patrol are listed on their patrols. Most reports
        name none: their deliveries are taken a batch at a time, not one worker each."""
        desk = None
        for payload in payloads:
            data = payload.get("data") if isinstance(payload, dict) else None
            if not isinstance(data, dict) or not data.get("patrol_id"):
                continue  # nothing to list
            try:
                data = parse_event(payload).data
            except ValidationError as error:  # refused however often it came back
                log.error("not a CloudEvent, left out: %s", error)
                continue
            desk = desk or self._patrols(SYSTEM_CALLER)
            desk.link_incident(data)

    @timer(interval=OUTBOX_RETRY_INTERVAL_S)
    def resend_outbox(self):
        """Send the events a crash or a broker outage left in the outbox."""
        return Outbox(self.db, self.events, self.clock).resend(OUTBOX_RETRY_INTERVAL_S)

    @timer(interval=OVERDUE_CHECK_INTERVAL_S)
    def publish_overdue_visits(self):
        return self._population(SYSTEM_CALLER).publish_overdue_visits()

    # access audit
    @rpc(expected_exceptions=EXPECTED)
    def access_audit(self, resident_id=None, actor=None, cursor=None, limit=50):
        return self._population().access_audit(resident_id, actor, cursor, limit)

    # bulk imports and cross-department matching
    @rpc(expected_exceptions=EXPECTED)
    def start_import(self, kind, filename, content_base64, idempotency_key=None):
        return self._imports().start(kind, filename, content_base64, idempotency_key)

    @rpc(expected_exceptions=EXPECTED)
    def import_job(self, job_id):
        return self._imports().job(job_id)

    @rpc(expected_exceptions=EXPECTED)
    def import_error_report(self, job_id):
        return self._imports().error_report(job_id)

    @timer(interval=IMPORT_POLL_INTERVAL_S)
    def run_queued_imports(self):
        return self._imports(SYSTEM_CALLER).run_queued()

    @rpc(expected_exceptions=EXPECTED)
    def match_roster(self, rows, apply_group=None):
        return self._imports().match_roster(rows, apply_group)
