"""The map's precomputed outlines in MongoDB, and the territory version they are keyed by.

An import that changes territory nodes raises the territory version in the transaction of
every batch of nodes it stores (a batch takes well under the quiet time). The
population service's timer, once the territory has been quiet for a few seconds, builds
the outlines of the new version at every zoom (seconds for 5,000 grids) and drops the
older versions'; until it has, maps are served the newest complete version's outlines.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime

from pymongo import ReplaceOne
from pymongo.client_session import ClientSession
from pymongo.database import Database

from services.population import store
from services.population.domain.outlines import GridShape, Outline

VERSION_ID = "territory"
BBOX_FIELDS = ("west", "south", "east", "north")


class OutlineStore:
    def __init__(self, db: Database):
        self.db = db

    # the territory version
    def territory_version(self) -> int:
        return self.territory_change()[0]

    def territory_change(self) -> tuple[int, datetime | None]:
        """The territory version and when it last changed."""
        doc = self.db[store.TERRITORY_VERSION].find_one({"_id": VERSION_ID})
        return (doc["version"], doc.get("changed_at")) if doc else (0, None)

    def territory_changed(self, at: datetime, session: ClientSession | None = None) -> None:
        """Raise the version: the outlines built so far are stale."""
        self.db[store.TERRITORY_VERSION].update_one(
            {"_id": VERSION_ID},
            {"$inc": {"version": 1}, "$set": {"changed_at": at}},
            upsert=True,
            session=session,
        )

    # building
    def grid_shapes(self) -> Iterator[GridShape]:
        """Every grid with its surveyed polygon (the outlines are built county-wide)."""
        cursor = self.db[store.TERRITORY].find(
            {"level": "grid"}, {"name": 1, "path": 1, "geometry": 1}
        )
        for doc in cursor:
            yield GridShape(doc["_id"], doc["name"], tuple(doc["path"]), doc["geometry"])

    def node_names(self, levels: Iterable[str]) -> dict[str, str]:
        cursor = self.db[store.TERRITORY].find({"level": {"$in": list(levels)}}, {"name": 1})
        return {doc["_id"]: doc["name"] for doc in cursor}

    def built_zooms(self, version: int) -> set[int]:
        cursor = self.db[store.MAP_OUTLINE_BUILDS].find({"version": version}, {"zoom": 1})
        return {doc["zoom"] for doc in cursor}

    def latest_build(self, zoom: int, up_to: int) -> int | None:
        """The newest version (at most `up_to`) whose outlines at `zoom` are complete."""
        doc = self.db[store.MAP_OUTLINE_BUILDS].find_one(
            {"zoom": zoom, "version": {"$lte": up_to}}, sort=[("version", -1)]
        )
        return doc["version"] if doc else None

    def save_outlines(self, version: int, zoom: int, outlines: Iterable[Outline]) -> None:
        """Store outlines of one (version, zoom) (idempotent: two builders at once write
        the same documents)."""
        writes = [
            ReplaceOne({"_id": f"{_key(version, zoom)}:{outline.code}"}, document, upsert=True)
            for outline in outlines
            for document in [_document(version, zoom, outline)]
        ]
        if writes:
            self.db[store.MAP_OUTLINES].bulk_write(writes, ordered=False)

    def mark_built(self, version: int, zoom: int) -> None:
        """Every outline of (version, zoom) is stored: maps may read them."""
        self.db[store.MAP_OUTLINE_BUILDS].replace_one(
            {"_id": _key(version, zoom)}, {"version": version, "zoom": zoom}, upsert=True
        )

    def drop_versions_before(self, version: int) -> None:
        """Older versions' outlines, once `version` is complete at every zoom."""
        self.db[store.MAP_OUTLINE_BUILDS].delete_many({"version": {"$lt": version}})
        self.db[store.MAP_OUTLINES].delete_many({"version": {"$lt": version}})

    # reading
    def count_in_view(self, version: int, zoom: int, level: str, scope: Mapping, view) -> int:
        return self.db[store.MAP_OUTLINES].count_documents(
            _query(version, zoom, level, scope, view)
        )

    def outlines_in_view(
        self, version: int, zoom: int, level: str, scope: Mapping, view
    ) -> list[dict]:
        cursor = self.db[store.MAP_OUTLINES].find(
            _query(version, zoom, level, scope, view),
            {"_id": 0, "code": 1, "name": 1, "level": 1, "grids": 1, "geometry": 1},
        )
        return list(cursor.sort("code", 1))

    def extent(self, version: int, zoom: int, scope: Mapping) -> dict:
        """How many grids the scope has and their bounding box (None without grids)."""
        rows = list(
            self.db[store.MAP_OUTLINES].aggregate(
                [
                    {"$match": _query(version, zoom, "grid", scope, None)},
                    {
                        "$group": {
                            "_id": None,
                            "grids": {"$sum": 1},
                            "west": {"$min": "$west"},
                            "south": {"$min": "$south"},
                            "east": {"$max": "$east"},
                            "north": {"$max": "$north"},
                        }
                    },
                ]
            )
        )
        if not rows:
            return {"grids": 0, "bbox": None}
        return {"grids": rows[0]["grids"], "bbox": [rows[0][name] for name in BBOX_FIELDS]}


def _key(version: int, zoom: int) -> str:
    return f"{version}:{zoom}"


def _document(version: int, zoom: int, outline: Outline) -> dict:
    return {
        "version": version,
        "zoom": zoom,
        "level": outline.level,
        "code": outline.code,
        "name": outline.name,
        "path": list(outline.path),
        "grids": outline.grids,
        "geometry": outline.geometry,
        **dict(zip(BBOX_FIELDS, outline.bbox, strict=True)),
    }


def _query(version: int, zoom: int, level: str, scope: Mapping, view) -> dict:
    query = {"version": version, "zoom": zoom, "level": level}
    if view is not None:
        west, south, east, north = view
        query.update(
            west={"$lte": east}, east={"$gte": west}, south={"$lte": north}, north={"$gte": south}
        )
    return {"$and": [query, scope]} if scope else query
