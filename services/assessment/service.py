"""Assessment: facts from other services' events, indicators over them, scoring.

Every consumed event becomes one fact (idempotent: the CloudEvent id is the key), its
changes to the live summaries recorded in the same transaction (a queue's deliveries are
taken in batches, one transaction each), compacted while a period fills and merged
into them on a timer; boards and indicators are read from the summaries and the records not
merged yet (summaries.py).
"""

from datetime import date, timedelta

import eventlet
from nameko.dependency_providers import Config
from nameko.timer import timer

from gridwork_common import roles
from gridwork_common.clock import ServiceClock, china_today
from gridwork_common.config import Settings
from gridwork_common.confirmed_events import ConfirmingEventDispatcher
from gridwork_common.context import Caller
from gridwork_common.errors import (
    Conflict,
    Forbidden,
    GridworkError,
    InvalidInput,
    NotFound,
    Unavailable,
)
from gridwork_common.event_batches import batched_event_handler
from gridwork_common.health import service_report
from gridwork_common.metrics import PrometheusMetrics
from gridwork_common.mongo import MongoDatabase, mongo_health
from gridwork_common.outbox import Outbox
from gridwork_common.probes import ServiceProbes
from gridwork_common.rpc import BoundedRpcProxy, rpc
from gridwork_common.service_names import ASSESSMENT, EVENTS, MEDIA, POPULATION
from services.assessment import (
    bulletins,
    facts,
    integrity,
    scorecards,
    store,
    summaries,
    workdays,
)
from services.assessment.domain.indicators import LEVELS
from services.assessment.domain.periods import Period

EXPECTED = (GridworkError,)
BULLETIN_CHECK_INTERVAL_S = 3600
OUTBOX_RETRY_INTERVAL_S = 10
MERGE_INTERVAL_S = 30  # pending change records merged at least this often
PUBLICATION_GRACE_DAYS = 3  # the month's scorecards and bulletin are made from the 4th
# A case's event waits this long for others to be folded with (one transaction a batch):
# at a county's few reports and steps a second, batches of several rather than one each,
# and a board is at most this much behind.
CASE_FACTS_WAIT_S = 0.1


class AssessmentService:
    name = ASSESSMENT

    db = MongoDatabase(indexes=store.INDEXES)
    # The outbox's sends after a commit do not wait for the broker's confirm; confirmed
    # entries are deleted a batch at a time (gridwork_common/sent_entries.py).
    events = ConfirmingEventDispatcher()
    caller = Caller()
    config = Config()
    metrics = PrometheusMetrics()
    probes = ServiceProbes()  # /healthz, /readyz on METRICS_PORT
    clock = ServiceClock()
    calendar = BoundedRpcProxy(EVENTS)  # the county's working calendar

    @rpc
    def health(self):
        return service_report(self.name, {"mongo": mongo_health(self.db)})

    # facts, from the topics the other services publish: each queue's deliveries in
    # batches, one transaction a batch, acked once it committed
    @batched_event_handler(EVENTS, "incident.#", wait_s=CASE_FACTS_WAIT_S)
    def on_incident(self, payloads):
        facts.record_all(self.db, payloads)

    @batched_event_handler(POPULATION, "visit.*")
    def on_visit(self, payloads):
        facts.record_all(self.db, payloads)

    @batched_event_handler(POPULATION, "resident.*")
    def on_resident(self, payloads):
        facts.record_all(self.db, payloads)

    @batched_event_handler(POPULATION, "patrol.*")
    def on_patrol(self, payloads):
        facts.record_all(self.db, payloads)

    @batched_event_handler(POPULATION, "grid.updated")
    def on_grid(self, payloads):
        """The county's grids: the denominator of the share of grids patrolled."""
        facts.record_all(self.db, payloads)

    @batched_event_handler(POPULATION, "import.finished")
    def on_import(self, payloads):
        facts.record_all(self.db, payloads)

    @batched_event_handler("gateway", "account.*")
    def on_account(self, payloads):
        facts.record_all(self.db, payloads)

    @batched_event_handler(MEDIA, "media.stored")
    def on_media(self, payloads):
        facts.record_all(self.db, payloads)

    @timer(interval=MERGE_INTERVAL_S)
    def merge_summaries(self):
        """Merge the change records still pending into the summaries (the handlers only
        compact and merge in the background, `summary_upkeep.py`: this when fewer arrive)."""
        return summaries.merge(self.db)

    # indicators and scorecards
    @rpc(expected_exceptions=EXPECTED)
    def indicators(self, territory, period):
        """A territory node's indicators and rates for a period."""
        period = Period.parse(period)
        level = scorecards.level_of_code(territory)
        caller = self.caller
        if not caller.has_role(roles.SYSTEM) and not (
            caller.scope and territory.startswith(caller.scope)
        ):
            raise NotFound(f"no territory {territory}")
        return scorecards.node_indicators(
            self.db, level, territory, period, self._working_days(period)
        )

    @rpc(expected_exceptions=EXPECTED)
    def scorecards(self, level, period, rules_version=None):
        """A level's scorecards for a period, ranked; by the rule set in force then (as
        published, once a settled period was), or recomputed under the given version."""
        period = Period.parse(period)
        if rules_version is None and _settled(period, self._today()):
            kept = scorecards.published_now(self.db, level, period, self._scope())
            if kept is not None:
                return kept
        return scorecards.scorecards(
            self.db, level, period, self._working_days(period), self._scope(), rules_version
        )

    @rpc(expected_exceptions=EXPECTED)
    def publish_scorecards(self, level, period):
        period = Period.parse(period)
        if not self.caller.has_role(roles.ADMIN, roles.SYSTEM):
            raise Forbidden("publishing scorecards needs the admin role")
        _check_settled(period, self._today())
        return self._publish([level], period)[level]

    def _publish(self, levels, period: Period) -> dict[str, dict]:
        return scorecards.publish(
            self.db, levels, period, self._working_days(period), self.clock, self._outbox()
        )

    def _outbox(self) -> Outbox:
        return Outbox(self.db, self.events, self.clock)

    @timer(interval=OUTBOX_RETRY_INTERVAL_S)
    def resend_outbox(self):
        """Send the events a crash or a broker outage left in the outbox."""
        return self._outbox().resend(OUTBOX_RETRY_INTERVAL_S)

    @rpc(expected_exceptions=EXPECTED)
    def published_scorecards(self, level, period):
        """A level's scorecards exactly as published, one board per rule version."""
        return scorecards.published(self.db, level, Period.parse(period), self._scope())

    @rpc(expected_exceptions=EXPECTED)
    def integrity_flags(self, period):
        """Signals for a supervisor to look at; nothing is deducted for them."""
        month = _month(period)
        if not self.caller.has_role(roles.ADMIN, roles.LEADER, roles.CENTRE_OPERATOR, roles.SYSTEM):
            raise Forbidden("integrity flags are for supervisors")
        return integrity.signals(self.db, month)

    @rpc(expected_exceptions=EXPECTED)
    def bulletin(self, period, format="html"):
        """The county's monthly bulletin as HTML or CSV (made now if it does not exist)."""
        month = _month(period)
        if format not in ("html", "csv"):
            raise InvalidInput("format", "must be html or csv")
        caller = self.caller
        if not (
            caller.has_role(roles.SYSTEM)
            or (
                caller.has_role(roles.ADMIN, roles.LEADER, roles.CENTRE_OPERATOR)
                and len(caller.scope or "") == 6
            )
        ):
            raise Forbidden("the county bulletin is for county-level users")
        _check_settled(Period.parse(month), self._today())  # a bulletin is kept once made
        return self._bulletin(month)[format]

    @timer(interval=BULLETIN_CHECK_INTERVAL_S)
    def monthly_bulletin(self):
        """Once a month has ended and its late traces had time to arrive (visits uploaded
        late, deadline notices, the population service's visit obligations), its
        scorecards of every level are published and its bulletin made, each once (any
        replica; the first wins)."""
        today = self._today()
        last_month = bulletins.previous_months(today.strftime("%Y-%m"), 2)[0]
        if _settled(Period.parse(last_month), today):
            self._bulletin(last_month)

    def _bulletin(self, period: str) -> dict:
        """The month's bulletin, made (with its scorecards of every level published, if
        they were not) the first time it is asked for."""
        county = Settings.from_nameko_config(self.config).county_code
        published = self._publish(LEVELS, Period.parse(period))
        document, _ = bulletins.bulletin(
            self.db, county, period, published, self.clock, self._outbox()
        )
        return document

    @rpc(expected_exceptions=EXPECTED)
    def rule_sets(self):
        return [rules.to_config() for rules in scorecards.rule_sets(self.db)]

    @rpc(expected_exceptions=EXPECTED)
    def publish_rules(self, config):
        if not self.caller.has_role(roles.ADMIN):
            raise Forbidden("publishing scoring rules needs the admin role")
        if not isinstance(config, dict):
            raise InvalidInput("rules", "must be an object")
        return scorecards.publish_rules(self.db, config)

    def _scope(self) -> str | None:
        """None for callers who see the whole county; else the node they may see."""
        caller = self.caller
        if caller.has_role(roles.SYSTEM) or (
            caller.has_role(roles.ADMIN, roles.LEADER) and len(caller.scope or "") == 6
        ):
            return None
        return caller.scope or "-"  # no scope: nothing is under "-"

    def _working_days(self, period: Period) -> set[str]:
        return workdays.working_days(self.db, self._ask_calendar, period, self._today())

    def _today(self) -> date:
        """Today in China: periods, grace days and working days gone by are China dates."""
        return china_today(self.clock)

    def _ask_calendar(self, first: str, last: str) -> list[str]:
        timeout = Settings.from_nameko_config(self.config).rpc_timeout
        with eventlet.Timeout(timeout, Unavailable("events: the working calendar did not answer")):
            return self.calendar.working_days(first, last)


def _settled(period: Period, today: date) -> bool:
    """Ended, and the grace days for late traces (visits uploaded late, deadline notices,
    the visit obligations) have passed: what is scored now is kept."""
    return (today - period.last).days > PUBLICATION_GRACE_DAYS


def _check_settled(period: Period, today: date) -> None:
    if not _settled(period, today):
        first = period.last + timedelta(days=PUBLICATION_GRACE_DAYS + 1)
        raise Conflict(f"period: {period.text} can be published from {first.isoformat()}")


def _month(period) -> str:
    parsed = Period.parse(period)
    if parsed.kind != "month":
        raise InvalidInput("period", "must be a month like 2026-11")
    return parsed.text
