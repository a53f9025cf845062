"""Open311 GeoReport v2 (docs/open311.md): the formats and error documents GeoReport
clients expect (`formats`, `errors`), the rules of its queries and of what the public
may read (`requests`), the questions some services ask (`definitions`) and the gateway's
records of clients and requests (`repository`). The routes are in
services/gateway/routes/open311.py."""
