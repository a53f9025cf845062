"""The raw baseline of bench/import.py's reads served over RPC: a bare nameko service
whose methods run only the indexed query (a page of a grid's residents after a keyset
cursor; a resident by a blind index) on the population service's database and return
the stored documents as they are. No caller context, scope, blind index, decryption or
rendering: what is left of its latency is the transport and the query.

    python -m bench.raw_population   (bench/import.py starts it; needs AMQP_URI, MONGO_URI)
"""

import gridwork_common.green  # noqa: F401  (first: patches eventlet before other imports)

# isort: split

from datetime import datetime

from nameko.extensions import DependencyProvider
from nameko.rpc import rpc

from gridwork_common.config import Settings
from gridwork_common.mongo import new_client
from gridwork_common.run import run_service

SERVICE = "population_raw"


class PopulationDatabase(DependencyProvider):
    """The population service's own database (not one named after this service)."""

    def setup(self):
        settings = Settings.from_nameko_config(self.container.config)
        self.client = new_client(settings, app_name="gridwork-bench-raw")
        self.database = self.client[settings.database_name("population")]

    def stop(self):
        self.client.close()

    def get_dependency(self, worker_ctx):
        return self.database


class RawResidentQueries:
    name = SERVICE
    db = PopulationDatabase()

    @rpc
    def page(self, grid_code, cursor, limit):
        query = {"path": grid_code, "status": "active", "_id": {"$gt": cursor}}
        return [_plain(doc) for doc in self.db.residents.find(query).sort("_id", 1).limit(limit)]

    @rpc
    def find(self, field, index):
        return [_plain(doc) for doc in self.db.residents.find({field: index})]


def _plain(doc: dict) -> dict:
    """JSON-ready: times as ISO text."""
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in doc.items()}


if __name__ == "__main__":
    run_service(RawResidentQueries)
