"""Start one nameko service as a process, with Gridwork's config and JSON logging.

Each service's `__main__` patches eventlet first, then calls `run_service`, which hands
over to nameko's own runner (the one `nameko run` uses: signal handling, graceful stop).
"""

from __future__ import annotations

from nameko.cli.run import run

from gridwork_common.config import settings_or_exit
from gridwork_common.logs import configure_logging


def run_service(service_cls) -> None:
    settings = settings_or_exit()
    configure_logging(service_cls.name, settings.log_level)
    run([service_cls], settings.nameko_config())
