"""Assessment: facts from other services' events, indicators over them, scoring.

Every consumed event becomes one fact (idempotent: the CloudEvent id is the key);
indicators are MongoDB aggregation pipelines over the facts (facts.py).
"""

import re

from nameko.events import event_handler
from nameko.rpc import rpc

from gridwork_common.context import Caller
from gridwork_common.errors import GridworkError, InvalidInput, NotFound
from gridwork_common.health import service_report
from gridwork_common.metrics import PrometheusMetrics
from gridwork_common.mongo import MongoDatabase, mongo_health
from services.assessment import facts, store

EXPECTED = (GridworkError,)
PERIOD = re.compile(r"\d{4}-(0[1-9]|1[0-2])")


class AssessmentService:
    name = "assessment"

    db = MongoDatabase(indexes=store.INDEXES)
    caller = Caller()
    metrics = PrometheusMetrics()

    @rpc
    def health(self):
        return service_report(self.name, {"mongo": mongo_health(self.db)})

    # facts, from the topics the other services publish
    @event_handler("events", "incident.#")
    def on_incident(self, payload):
        facts.record(self.db, payload)

    @event_handler("population", "visit.*")
    def on_visit(self, payload):
        facts.record(self.db, payload)

    @event_handler("population", "resident.*")
    def on_resident(self, payload):
        facts.record(self.db, payload)

    @event_handler("population", "import.finished")
    def on_import(self, payload):
        facts.record(self.db, payload)

    @event_handler("gateway", "account.*")
    def on_account(self, payload):
        facts.record(self.db, payload)

    @event_handler("media", "media.stored")
    def on_media(self, payload):
        facts.record(self.db, payload)

    # indicators
    @rpc(expected_exceptions=EXPECTED)
    def indicators(self, territory, period):
        if not isinstance(period, str) or not PERIOD.fullmatch(period):
            raise InvalidInput("period", "must be a month like 2026-11")
        path = facts.territory_path(territory)
        if not path or path[-1] != territory:
            raise InvalidInput("territory", "must be a county, township, village or grid code")
        caller = self.caller
        if not caller.has_role("system") and not (
            caller.scope and territory.startswith(caller.scope)
        ):
            raise NotFound(f"no territory {territory}")
        return {
            "territory": territory,
            "period": period,
            **facts.incident_indicators(self.db, territory, period),
            **facts.visit_indicators(self.db, territory, period),
            **facts.activity_indicators(self.db, territory, period),
        }
