"""Start one nameko service as a process, with Gridwork's config and JSON logging.

Each service's `__main__` patches eventlet first, then calls `run_service`, which hands
over to nameko's own runner (the one `nameko run` uses: signal handling, graceful stop).
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from nameko.cli.run import run

from gridwork_common.config import ConfigError, Settings, settings_or_exit, warn_if_clock_pinned
from gridwork_common.logs import configure_logging


def run_service(service_cls, check_settings: Callable[[Settings], object] | None = None) -> None:
    """`check_settings` parses a service's own settings before nameko starts, so a value it
    cannot use stops the process with one line naming the setting."""
    settings = settings_or_exit()
    configure_logging(service_cls.name, settings.log_level)
    warn_if_clock_pinned(settings)
    try:
        if check_settings is not None:
            check_settings(settings)
        run([service_cls], settings.nameko_config())
    except ConfigError as exc:
        print(f"gridwork: refusing to start: {exc}", file=sys.stderr, flush=True)
        sys.exit(1)
