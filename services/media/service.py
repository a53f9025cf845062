"""Media: photos, video and audio from the field, in MinIO, tamper-evident and scoped.

Each entrypoint hands the call to the media desk (usecases.py); whether the caller may
see a piece of media is decided by the service that owns what it belongs to (an
incident, a group membership's visits, a resident), asked over RPC in the caller's name.

Two roles, which run in one process or apart (`python -m services.media [all|api|describer]`):
- `MediaApiService`: upload slots, confirms, reads, deletion, expiry, retention;
- `MediaDescriberService`: the steps after a confirm (describing.py: the SHA-256 checked,
  a photo's EXIF and thumbnail, a JPEG decode of tens of milliseconds of CPU), so that the
  replicas answering phones do no decoding;
- `MediaService`: both, the default, as every deployment ran it before the split.
All three are named `media`, so the handler's queue is the same one whichever runs it
(`evt-media-media.received--media.check_and_describe`): replicas of any of them compete for
its events, and an upgrade from the combined process to the two roles (or both at once,
during a rolling update) leaves no queue without a consumer. The handler is idempotent.
Only the API role answers RPC: the describer has no `rpc-media` consumer.
"""

from nameko.events import event_handler
from nameko.exceptions import RemoteError
from nameko.timer import timer

from gridwork_common.clock import ServiceClock
from gridwork_common.context import Caller, CallerContext
from gridwork_common.errors import GridworkError, NotFound
from gridwork_common.events import CloudEventDispatcher, parse_event
from gridwork_common.health import probe, service_report
from gridwork_common.metrics import PrometheusMetrics
from gridwork_common.mongo import MongoDatabase, mongo_health
from gridwork_common.outbox import Outbox
from gridwork_common.probes import ServiceProbes, local_check
from gridwork_common.rpc import BoundedRpcProxy, rpc
from gridwork_common.service_names import EVENTS, MEDIA, POPULATION
from services.media import store, topics
from services.media.configuration import MediaConfiguration
from services.media.describing import MediaDescriber
from services.media.owners import OwnerChecks
from services.media.storage import ObjectStorage
from services.media.usecases import MediaDesk

SYSTEM_CALLER = CallerContext(user_id="media-timer", roles=("system",))
OUTBOX_RETRY_INTERVAL_S = 10
EXPECTED = (GridworkError,)
EXPIRY_INTERVAL_S = 60
RETENTION_INTERVAL_S = 6 * 3600


class MediaApiService:
    """The role that answers RPC (the gateway's upload, confirm and read routes)."""

    name = MEDIA

    db = MongoDatabase(indexes=store.INDEXES)
    storage = ObjectStorage()
    events = CloudEventDispatcher()
    # media.received, for this service's own next step: not waiting for the broker's
    # confirm, since a record not announced is found by `describe_overdue` anyway.
    received_events = CloudEventDispatcher(use_confirms=False)
    incidents = BoundedRpcProxy(EVENTS)
    population = BoundedRpcProxy(POPULATION)
    caller = Caller()
    owner_checks = OwnerChecks()
    metrics = PrometheusMetrics()
    probes = ServiceProbes()  # /healthz, /readyz on METRICS_PORT
    clock = ServiceClock()
    rules = MediaConfiguration()

    def _desk(self, caller: CallerContext | None = None) -> MediaDesk:
        return MediaDesk(
            self.db,
            self.storage,
            self.received_events,
            self._owner,
            caller or self.caller,
            self.rules.size_limits,
            self.clock,
            self.owner_checks.remembering(self._owner, caller or self.caller),
        )

    def _owner(self, kind: str, owner_id: str):
        try:
            if kind == "incident":
                return self.incidents.get_incident(owner_id)
            if kind == "membership":
                return {"visits": self.population.visits_of(owner_id)}
            return self.population.get_resident(owner_id)
        except RemoteError as exc:
            if exc.exc_type in ("NotFound", "Forbidden", "InvalidInput"):
                raise NotFound(f"no {kind} {owner_id}") from None
            raise

    @rpc
    def health(self):
        return service_report(
            self.name,
            {"mongo": mongo_health(self.db), "object_storage": probe(self.storage.check_bucket)},
        )

    @rpc(expected_exceptions=EXPECTED)
    def request_upload(self, content_type, size, purpose, owner, idempotency_key=None, sha256=None):
        return self._desk().request_upload(
            content_type, size, purpose, owner, idempotency_key, sha256
        )

    @rpc(expected_exceptions=EXPECTED)
    def confirm_upload(self, media_id):
        return self._desk().confirm(media_id)

    @rpc(expected_exceptions=EXPECTED)
    def upload(self, content_type, purpose, owner, data_base64, idempotency_key=None):
        return self._desk().upload(content_type, purpose, owner, data_base64, idempotency_key)

    @rpc(expected_exceptions=EXPECTED)
    def get_media(self, media_id):
        return self._desk().get(media_id)

    @rpc(expected_exceptions=EXPECTED)
    def download_link(self, media_id, variant="original"):
        return self._desk().download_link(media_id, variant)

    @rpc(expected_exceptions=EXPECTED)
    def verify_integrity(self, media_id):
        return self._desk().verify(media_id)

    @rpc(expected_exceptions=EXPECTED)
    def pairs(self, incident_id):
        return self._desk().pairs(incident_id)

    @rpc(expected_exceptions=EXPECTED)
    def delete_media(self, media_id):
        return self._desk().delete(media_id)

    @timer(interval=OUTBOX_RETRY_INTERVAL_S)
    def resend_outbox(self):
        """Send the events a crash or a broker outage left in the outbox."""
        return Outbox(self.db, self.events, self.clock).resend(OUTBOX_RETRY_INTERVAL_S)

    @timer(interval=EXPIRY_INTERVAL_S)
    def expire_slots(self):
        return self._desk(SYSTEM_CALLER).expire_slots()

    @timer(interval=RETENTION_INTERVAL_S)
    def apply_retention(self):
        return self._desk(SYSTEM_CALLER).apply_retention(self.rules.retention_days)


class Describing:
    """The steps after a confirm, as entrypoints: shared by the describer and the combined
    service (the same method names, so the same queue)."""

    db = MongoDatabase(indexes=store.INDEXES)
    storage = ObjectStorage()
    events = CloudEventDispatcher()
    clock = ServiceClock()

    @event_handler(MEDIA, topics.MEDIA_RECEIVED)
    def check_and_describe(self, payload):
        """The SHA-256 checked if the confirm could not, a photo's EXIF metadata and
        thumbnail, then media.stored (describing.py)."""
        media_id = parse_event(payload).data["media_id"]
        MediaDescriber(self.db, self.storage, self.events, self.clock).describe(media_id)

    @timer(interval=EXPIRY_INTERVAL_S)
    def describe_overdue(self):
        """Records whose media.received was lost, or whose steps failed (storage down)."""
        return MediaDescriber(self.db, self.storage, self.events, self.clock).describe_overdue()


class MediaDescriberService(Describing):
    """The describing role by itself (`python -m services.media describer`): its own
    deployment and CPU budget. No RPC: its readiness is its own health, run locally."""

    name = MEDIA

    metrics = PrometheusMetrics()
    probes = ServiceProbes()  # /healthz, /readyz on METRICS_PORT

    @local_check
    def health(self):
        return service_report(
            self.name,
            {"mongo": mongo_health(self.db), "object_storage": probe(self.storage.check_bucket)},
        )


class MediaService(MediaApiService, Describing):
    """Both roles in one process: what `python -m services.media` runs unless told a role
    (a deployment that never split keeps describing after an upgrade)."""
