"""Media: photos, video and audio from the field, in MinIO, tamper-evident and scoped."""

from nameko.rpc import rpc

from gridwork_common.context import Caller
from gridwork_common.health import probe, service_report
from gridwork_common.metrics import PrometheusMetrics
from gridwork_common.mongo import MongoDatabase, mongo_health
from services.media.storage import ObjectStorage


class MediaService:
    name = "media"

    db = MongoDatabase()
    storage = ObjectStorage()
    caller = Caller()
    metrics = PrometheusMetrics()

    @rpc
    def health(self):
        return service_report(
            self.name,
            {"mongo": mongo_health(self.db), "object_storage": probe(self.storage.check_bucket)},
        )
