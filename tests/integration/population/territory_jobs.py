"""Importing a territory (GeoJSON) as an import job, the way a county's thousands of
grids are imported, and waiting for the job."""

import base64
import json

from devstack.processes import wait_until

# The job runs in the service's timer: this only bounds a test that would otherwise hang
# (the 1,200-grid township takes seconds alone, far longer on a loaded machine).
JOB_DEADLINE_S = 240


def import_territory_file(proxy, collection: dict, filename: str = "territory.geojson") -> dict:
    """Upload `collection` as a territory import job; the job once finished or failed."""
    content = json.dumps(collection, ensure_ascii=False).encode()
    job = proxy.start_import("territory", filename, base64.b64encode(content).decode())
    assert job["status"] == "queued" and job["kind"] == "territory", job
    seen = {}

    def done() -> bool:
        seen["job"] = proxy.import_job(job["id"])
        return seen["job"]["status"] in ("finished", "failed")

    wait_until(done, JOB_DEADLINE_S, f"territory import job {job['id']}", interval_s=0.2)
    return seen["job"]
