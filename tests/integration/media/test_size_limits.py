"""MEDIA_SIZE_LIMITS applied by the real media service (real broker, mongod and S3): a
county's smaller limit refuses larger uploads when the slot is asked for and when it is
confirmed, and a value the service cannot use (or a wrong MEDIA_RETENTION_DAYS) stops it
from starting."""

import io
import os
import subprocess
import sys

import pytest
import requests
from nameko.exceptions import RemoteError
from nameko.standalone.rpc import ClusterRpcProxy
from PIL import Image

from gridwork_common.clock import CLOCK_CONFIG_KEY
from gridwork_common.config import ConfigError
from services.events.service import EventsService
from services.media.service import MediaService
from services.media.storage import media_store
from services.population.service import PopulationService
from tests.conftest import settings_env
from tests.integration.media.test_media import SETUP, WORKER, jpeg
from tests.population_data import COUNTY, TOWNSHIP_A, VILLAGE_A, county_features

pytestmark = pytest.mark.integration

PHOTO_LIMIT = 40_000  # bytes; the default for photos is 20 MiB


def _noisy_photo() -> bytes:
    """A JPEG well over PHOTO_LIMIT (noise does not compress)."""
    buffer = io.BytesIO()
    Image.frombytes("RGB", (400, 300), os.urandom(400 * 300 * 3)).save(buffer, "JPEG")
    return buffer.getvalue()


def _config(settings, clock, limits: str) -> dict:
    return {
        **settings.with_changes(media_size_limits=limits).nameko_config(),
        CLOCK_CONFIG_KEY: clock,
    }


def _start(runner_factory, config):
    runner = runner_factory(config, PopulationService, EventsService, MediaService)
    runner.start()
    return runner


def _incident(config) -> str:
    with ClusterRpcProxy(config, context_data=SETUP.to_context_data(), timeout=30) as rpc:
        rpc.population.import_territory(county_features())
        rpc.events.ensure_default_departments([COUNTY, TOWNSHIP_A, VILLAGE_A])
    with ClusterRpcProxy(config, context_data=WORKER.to_context_data(), timeout=30) as rpc:
        reported = rpc.events.report_incident(
            {"category": "04.01", "description": "垃圾", "location": [102.505, 24.305]}, "sl1"
        )
    return reported["incident"]["id"]


def _slot(media, size: int, incident_id: str) -> dict:
    return media.request_upload(
        "image/jpeg", size, "incident_report", {"kind": "incident", "id": incident_id}
    )


def _put(slot: dict, data: bytes) -> None:
    put = requests.put(slot["upload_url"], data=data, headers=slot["headers"], timeout=10)
    assert put.status_code in (200, 204), put.text


def test_a_configured_limit_refuses_larger_uploads_and_passes_smaller_ones(
    runner_factory, settings, clock, cluster_as
):
    media_store(settings).ensure_bucket()
    config = _config(settings, clock, f"photo={PHOTO_LIMIT}")
    _start(runner_factory, config)
    incident_id = _incident(config)
    media = cluster_as(WORKER).media

    with pytest.raises(RemoteError) as refused:
        _slot(media, PHOTO_LIMIT + 1, incident_id)
    assert refused.value.exc_type == "InvalidInput"
    assert refused.value.value.startswith("size: ")
    assert f"at most {PHOTO_LIMIT} bytes" in refused.value.value

    small = jpeg(size=(64, 48))
    assert len(small) < PHOTO_LIMIT
    slot = _slot(media, len(small), incident_id)
    _put(slot, small)
    assert media.confirm_upload(slot["media_id"])["state"] == "stored"


def test_a_limit_lowered_after_the_slot_was_given_applies_at_confirm(
    runner_factory, settings, clock, cluster_as
):
    media_store(settings).ensure_bucket()
    defaults = _start(runner_factory, _config(settings, clock, ""))
    incident_id = _incident(_config(settings, clock, ""))
    large = _noisy_photo()
    assert len(large) > PHOTO_LIMIT
    slot = _slot(cluster_as(WORKER).media, len(large), incident_id)  # 20 MiB allowed then
    _put(slot, large)
    defaults.stop()

    _start(runner_factory, _config(settings, clock, f"photo={PHOTO_LIMIT}"))
    with pytest.raises(RemoteError) as refused:
        cluster_as(WORKER).media.confirm_upload(slot["media_id"])
    assert refused.value.exc_type == "InvalidInput"
    assert refused.value.value.startswith("size: ") and str(PHOTO_LIMIT) in refused.value.value
    assert media_store(settings).size_of(f"uploads/{slot['media_id']}") is None


@pytest.mark.parametrize(
    ("changes", "setting"),
    [
        ({"media_size_limits": "photo=lots"}, "MEDIA_SIZE_LIMITS"),
        ({"media_retention_days": "visit=0"}, "MEDIA_RETENTION_DAYS"),
    ],
)
def test_an_unusable_setting_stops_the_service_at_start(
    runner_factory, settings, clock, changes, setting
):
    config = {**settings.with_changes(**changes).nameko_config(), CLOCK_CONFIG_KEY: clock}
    runner = runner_factory(config, MediaService)
    with pytest.raises(ConfigError) as raised:
        runner.start()
    assert raised.value.variable == setting


def test_the_media_process_refuses_to_start_naming_the_setting(infra, rabbit_config):
    env = settings_env(infra, rabbit_config["AMQP_URI"], MEDIA_SIZE_LIMITS="pdf=1000")
    started = subprocess.run(
        [sys.executable, "-m", "services.media"],
        env={"PATH": os.environ.get("PATH", ""), **env},
        capture_output=True,
        text=True,
        timeout=120,  # a bound on a hang, not a duration under test
    )
    assert started.returncode != 0
    assert "refusing to start: MEDIA_SIZE_LIMITS: 'pdf' is neither" in started.stderr
    assert "Traceback" not in started.stderr
