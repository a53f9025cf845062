"""`python -m services.media [all|api|describer]` runs the media service: both roles in
one process (`all`, the default), or one of them (service.py)."""

import gridwork_common.green  # noqa: F401  (first: patches eventlet before other imports)

# isort: split

import sys

from gridwork_common.run import run_service
from services.media.configuration import media_rules
from services.media.service import MediaApiService, MediaDescriberService, MediaService

ROLES = {"all": MediaService, "api": MediaApiService, "describer": MediaDescriberService}

role = sys.argv[1] if len(sys.argv) > 1 else "all"
if role not in ROLES:
    sys.exit(f"usage: python -m services.media [{'|'.join(ROLES)}]")
run_service(ROLES[role], check_settings=media_rules)
