"""gunicorn's entry: `gunicorn -c services/gateway/gunicorn_conf.py services.gateway.wsgi:app`.

Importing this builds the Flask app only; RPC proxies are created lazily per thread,
after gunicorn has forked its workers.
"""

from gridwork_common.config import settings_or_exit
from gridwork_common.logs import configure_logging
from services.gateway.app import create_app

# A worker exiting with 3 (gunicorn's WORKER_BOOT_ERROR) stops gunicorn, instead of
# workers restarted forever without their keys.
_settings = settings_or_exit(exit_status=3)
configure_logging("gateway", _settings.log_level)
app = create_app(_settings)
