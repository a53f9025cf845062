"""`python -m services.population` runs the population service."""

import gridwork_common.green  # noqa: F401  (first: patches eventlet before other imports)

# isort: split

from gridwork_common.run import run_service
from services.population.service import PopulationService

run_service(PopulationService)
