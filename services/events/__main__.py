"""`python -m services.events` runs the events service."""

import gridwork_common.green  # noqa: F401  (first: patches eventlet before other imports)

# isort: split

from gridwork_common.run import run_service
from services.events.service import EventsService

run_service(EventsService)
