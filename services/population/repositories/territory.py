"""Territory nodes in MongoDB for the import: the only code of the territory import that
touches pymongo. Reads and writes go a batch at a time (a county is thousands of grids:
a round trip per node was most of an import's time)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from pymongo import ReplaceOne
from pymongo.client_session import ClientSession
from pymongo.database import Database
from pymongo.errors import BulkWriteError

from services.population import store


class NodeRefused(Exception):
    """mongod refused a node (e.g. a polygon its 2dsphere index cannot take)."""

    def __init__(self, code: str, problem: str):
        super().__init__(f"{code}: {problem}")
        self.code, self.problem = code, problem


class TerritoryRepository:
    def __init__(self, db: Database):
        self.db = db

    def existing_codes(self, codes: Iterable[str]) -> set[str]:
        cursor = self.db[store.TERRITORY].find({"_id": {"$in": list(codes)}}, {})
        return {doc["_id"] for doc in cursor}

    def grid_polygons(self, counties: Iterable[str], excluding: set[str]) -> dict[str, dict]:
        """The stored grids of these counties (but `excluding`'s) and their polygons."""
        cursor = self.db[store.TERRITORY].find(
            {"path": {"$in": list(counties)}, "level": "grid", "_id": {"$nin": list(excluding)}},
            {"geometry": 1},
        )
        return {doc["_id"]: doc["geometry"] for doc in cursor}

    def stored_nodes(self, codes: Sequence[str], session: ClientSession) -> dict[str, dict]:
        """The nodes of these codes as stored now (in the transaction's snapshot)."""
        cursor = self.db[store.TERRITORY].find({"_id": {"$in": list(codes)}}, session=session)
        return {doc["_id"]: doc for doc in cursor}

    def replace_nodes(self, documents: Sequence[Mapping], session: ClientSession) -> None:
        """Upsert whole node documents by code; NodeRefused names the first refused."""
        writes = [ReplaceOne({"_id": doc["_id"]}, doc, upsert=True) for doc in documents]
        try:
            self.db[store.TERRITORY].bulk_write(writes, ordered=True, session=session)
        except BulkWriteError as exc:
            error = exc.details["writeErrors"][0]
            problem = str(error.get("errmsg", "refused"))[:300]
            raise NodeRefused(documents[error["index"]]["_id"], problem) from None
