"""`python -m services.media` runs the media service."""

import gridwork_common.green  # noqa: F401  (first: patches eventlet before other imports)

# isort: split

from gridwork_common.run import run_service
from services.media.configuration import media_rules
from services.media.service import MediaService

run_service(MediaService, check_settings=media_rules)
