"""Assessment: facts from other services' events, indicators over them, scoring.

Every consumed event becomes one fact (idempotent: the CloudEvent id is the key);
indicators are MongoDB aggregation pipelines over the facts (facts.py).
"""

import re
from datetime import datetime, timedelta, timezone

from nameko.dependency_providers import Config
from nameko.events import event_handler
from nameko.rpc import rpc
from nameko.timer import timer

from gridwork_common import roles
from gridwork_common.config import Settings
from gridwork_common.context import Caller
from gridwork_common.errors import Forbidden, GridworkError, InvalidInput, NotFound
from gridwork_common.events import CloudEventDispatcher
from gridwork_common.health import service_report
from gridwork_common.metrics import PrometheusMetrics
from gridwork_common.mongo import MongoDatabase, mongo_health
from services.assessment import bulletins, facts, integrity, scorecards, store, topics

EXPECTED = (GridworkError,)
BULLETIN_CHECK_INTERVAL_S = 3600
CHINA_TIME = timezone(timedelta(hours=8))
PERIOD = re.compile(r"\d{4}-(0[1-9]|1[0-2])")


class AssessmentService:
    name = "assessment"

    db = MongoDatabase(indexes=store.INDEXES)
    events = CloudEventDispatcher()
    caller = Caller()
    config = Config()
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

    # indicators and scorecards
    @rpc(expected_exceptions=EXPECTED)
    def indicators(self, territory, period):
        _check_period(period)
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

    @rpc(expected_exceptions=EXPECTED)
    def scorecards(self, level, period):
        _check_period(period)
        caller = self.caller
        everywhere = caller.has_role(roles.SYSTEM) or (
            caller.has_role(roles.ADMIN, roles.LEADER) and len(caller.scope or "") == 6
        )
        return scorecards.scorecards(self.db, level, period, caller.scope, everywhere)

    @rpc(expected_exceptions=EXPECTED)
    def publish_scorecards(self, level, period):
        _check_period(period)
        if not self.caller.has_role(roles.ADMIN, roles.SYSTEM):
            raise Forbidden("publishing scorecards needs the admin role")
        board = scorecards.publish(self.db, level, period)
        if not board["republished"]:
            self.events.publish(
                topics.SCORECARD_PUBLISHED,
                level,
                {
                    "level": level,
                    "period": period,
                    "rules_version": board["rules_version"],
                    "subjects": len(board["items"]),
                    "bottom": board["bottom"],
                },
            )
        return board

    @rpc(expected_exceptions=EXPECTED)
    def integrity_flags(self, period):
        """Signals for a supervisor to look at; nothing is deducted for them."""
        _check_period(period)
        if not self.caller.has_role(roles.ADMIN, roles.LEADER, roles.CENTRE_OPERATOR, roles.SYSTEM):
            raise Forbidden("integrity flags are for supervisors")
        return integrity.signals(self.db, period)

    @rpc(expected_exceptions=EXPECTED)
    def bulletin(self, period, format="html"):
        """The county's monthly bulletin as HTML or CSV (made now if it does not exist)."""
        _check_period(period)
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
        return self._bulletin(period)[format]

    @timer(interval=BULLETIN_CHECK_INTERVAL_S)
    def monthly_bulletin(self):
        """After a month ends, its bulletin is made once (any replica; the first wins)."""
        today = datetime.now(CHINA_TIME)
        last_month = bulletins.previous_months(today.strftime("%Y-%m"), 2)[0]
        self._bulletin(last_month)

    def _bulletin(self, period) -> dict:
        county = Settings.from_nameko_config(self.config).county_code
        document, made_now = bulletins.bulletin(self.db, county, period)
        if made_now:
            self.events.publish(
                topics.BULLETIN_PUBLISHED, county, {"county": county, "period": period}
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


def _check_period(period) -> None:
    if not isinstance(period, str) or not PERIOD.fullmatch(period):
        raise InvalidInput("period", "must be a month like 2026-11")
