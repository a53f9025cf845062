"""`python -m services.assessment` runs the assessment service."""

import gridwork_common.green  # noqa: F401  (first: patches eventlet before other imports)

# isort: split

from gridwork_common.run import run_service
from services.assessment.service import AssessmentService

run_service(AssessmentService)
