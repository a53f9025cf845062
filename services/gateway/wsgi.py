"""gunicorn's entry: `gunicorn -c services/gateway/gunicorn_conf.py services.gateway.wsgi:app`.

Importing this builds the Flask app only; RPC proxies are created lazily per thread,
after gunicorn has forked its workers.
"""

from gridwork_common.clock import utc_now
from gridwork_common.config import settings_or_exit, warn_if_clock_pinned
from gridwork_common.logs import configure_logging
from services.gateway.app import create_app

# A worker exiting with 3 (gunicorn's WORKER_BOOT_ERROR) stops gunicorn, instead of
# workers restarted forever without their keys.
_settings = settings_or_exit(exit_status=3)
configure_logging("gateway", _settings.log_level)
warn_if_clock_pinned(_settings)
# A test of the whole stack may pin the clock that dates the county's work; what mongod's
# TTL monitor, pyjwt and webhook receivers judge stays on the machine's clock.
app = create_app(_settings, clock=_settings.clock(), system_clock=utc_now)
