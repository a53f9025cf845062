"""Assessment: facts from other services' events, scoring rules, scorecards, bulletins."""

from nameko.rpc import rpc

from gridwork_common.context import Caller
from gridwork_common.health import service_report
from gridwork_common.metrics import PrometheusMetrics
from gridwork_common.mongo import MongoDatabase, mongo_health


class AssessmentService:
    name = "assessment"

    db = MongoDatabase()
    caller = Caller()
    metrics = PrometheusMetrics()

    @rpc
    def health(self):
        return service_report(self.name, {"mongo": mongo_health(self.db)})
