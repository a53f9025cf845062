"""The territory tree, grids, locating points, staff rosters and statistics."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from gridwork_common.errors import InvalidInput, OutsideTerritory
from services.population import store, topics
from services.population.domain import access
from services.population.domain.codes import level_of
from services.population.domain.residents import (
    ACTIVE,
)
from services.population.domain.shapes import check_tolerance, simplified
from services.population.domain.territory import (
    find_overlaps,
    nodes_from_feature_collection,
)
from services.population.outline_store import OutlineStore
from services.population.repositories.territory import NodeRefused, TerritoryRepository
from services.population.usecases.base import UseCases

NAME_CACHE_TTL_S = 60.0
_NAME_CACHE: dict[tuple[str, str], tuple[float, str]] = {}
STAFF_ROLES = ("grid_leader", "supervisor", "full_time", "part_time")
# Nodes stored per transaction: few round trips, small enough a transaction (and the
# outbox's send after it) stays well under the quiet time the outline timer waits for
# (service.OUTLINE_QUIET_S) on a loaded machine.
STORE_BATCH = 250


class TerritoryUseCases(UseCases):
    def import_territory(
        self, collection: Mapping, progress: Callable[[dict], None] | None = None
    ) -> dict:
        """Upsert the collection's nodes by code (parents first), refusing grids that
        overlap each other or the county's other grids. Nodes are stored a batch at a
        time, each batch in one transaction with its grids' `grid.updated` events and a
        raised territory version; unchanged nodes are not written (a re-import changes
        nothing). A batch refused by mongod leaves the batches before it stored: the
        import is idempotent, so the county fixes the file and imports it again.
        `progress(counts)` is called once the file is checked and after every batch (a
        background job records it; see importing.py)."""
        self.require(access.ADMINISTRATORS, "importing the territory tree")
        nodes = nodes_from_feature_collection(collection)
        territory = TerritoryRepository(self.db)
        self._check_parents(nodes, territory)
        incoming = {node.code: node.polygon for node in nodes if node.level == "grid"}
        existing = territory.grid_polygons({node.path[0] for node in nodes}, set(incoming))
        overlaps = find_overlaps(incoming, existing)
        if overlaps:
            listed = ", ".join(f"{a} and {b}" for a, b in overlaps[:20])
            raise InvalidInput("features", f"grid polygons overlap: {listed}")

        counts = {"created": 0, "updated": 0, "unchanged": 0}
        if progress:
            progress(dict(counts))
        for first in range(0, len(nodes), STORE_BATCH):
            batch = nodes[first : first + STORE_BATCH]
            try:
                stored = self.changes(lambda session, b=batch: self._store_batch(b, session))
            except NodeRefused as refused:
                raise InvalidInput("features", str(refused)) from None
            for key, value in stored.items():
                counts[key] += value
            if progress:
                progress(dict(counts))
        return counts

    def _check_parents(self, nodes, territory: TerritoryRepository) -> None:
        codes = {node.code for node in nodes}
        missing = {node.parent for node in nodes if node.parent and node.parent not in codes}
        unknown = missing - territory.existing_codes(missing)
        for node in nodes:
            if node.parent in unknown:
                raise InvalidInput(
                    "features",
                    f"{node.code} needs its parent {node.parent}, "
                    "which is neither in the file nor imported before",
                )

    def _store_batch(self, nodes, session) -> dict[str, int]:
        """One transaction: the batch's changed nodes, their grids' events and, if any
        changed, a raised territory version (the map's outlines are stale from here on;
        raised batch after batch, the territory is not quiet while an import runs, so
        the outline timer waits for its end)."""
        territory = TerritoryRepository(self.db)
        before = territory.stored_nodes([node.code for node in nodes], session)
        counts = {"created": 0, "updated": 0, "unchanged": 0}
        changed = []
        for node in nodes:
            document = node.document()
            stored = before.get(node.code)
            if stored == document:
                counts["unchanged"] += 1
                continue
            counts["created" if stored is None else "updated"] += 1
            changed.append((node, document))
        if not changed:
            return counts
        territory.replace_nodes([document for _, document in changed], session)
        for node, _ in changed:
            if node.level == "grid":
                self.publish(topics.GRID_UPDATED, node.code, {"code": node.code, "name": node.name})
        OutlineStore(self.db).territory_changed(self.clock(), session=session)
        for node, _ in changed:
            _NAME_CACHE.pop((self.db.name, node.code), None)  # other replicas: the TTL
        return counts

    def add_territory_node(self, code: str, name: str, geometry: Mapping | None = None) -> dict:
        self.require(access.ADMINISTRATORS, "adding territory nodes")
        feature = {
            "type": "Feature",
            "properties": {"code": code, "name": name},
            "geometry": geometry,
        }
        return self.import_territory({"type": "FeatureCollection", "features": [feature]})

    def territory_node(self, code: str) -> dict:
        level_of(code)
        node = self._visible(self.db[store.TERRITORY].find_one({"_id": code}), "territory", code)
        return _render_node(node)

    def territory_children(self, code: str) -> list[dict]:
        self.territory_node(code)
        children = self.db[store.TERRITORY].find({"parent": code}).sort("_id", 1)
        return [_render_node(child, with_geometry=False) for child in children]

    def grid_shapes(self, code: str, tolerance: float = 0.0) -> list[dict]:
        """The grids under a territory node, as the caller may see them, with polygons
        simplified to `tolerance` degrees (what a map at a given zoom can show)."""
        self.territory_node(code)
        tolerance = check_tolerance(tolerance)
        grids = self.db[store.TERRITORY].find(
            {"$and": [{"path": code, "level": "grid"}, access.scope_filter(self.caller)]},
            {"name": 1, "parent": 1, "geometry": 1},
        )
        return [
            {
                "code": grid["_id"],
                "name": grid["name"],
                "parent": grid.get("parent"),
                "geometry": simplified(grid["geometry"], tolerance),
            }
            for grid in grids.sort("_id", 1)
        ]

    def grid_geometries(self) -> list[dict]:
        """Every grid of the county, code and polygon as stored: what another service
        needs to locate points itself (the events service's grid cache). Geometry only,
        no names or staff, so no scope applies; the gateway has no route to it."""
        grids = self.db[store.TERRITORY].find(
            {"path": self.county_code, "level": "grid"}, {"geometry": 1}
        )
        return [{"code": grid["_id"], "geometry": grid["geometry"]} for grid in grids]

    def locate(self, lon: float, lat: float) -> dict:
        for name, value, bound in (("lon", lon, 180), ("lat", lat, 90)):
            if isinstance(value, bool) or not isinstance(value, int | float) or abs(value) > bound:
                raise InvalidInput(name, f"must be a number from -{bound} to {bound}")
        point = {"type": "Point", "coordinates": [float(lon), float(lat)]}
        grid = self.db[store.TERRITORY].find_one(
            {
                "level": "grid",
                "path": self.county_code,
                "geometry": {"$geoIntersects": {"$geometry": point}},
            },
            {"geometry": 0},
        )
        if grid is None:
            raise OutsideTerritory(
                "location",
                f"({lon}, {lat}) is outside the county {self.county_code}: no grid contains it",
            )
        names = self._territory_names(grid["path"])
        return {
            "grid": {"code": grid["_id"], "name": grid["name"]},
            "path": [
                {"code": code, "name": names.get(code), "level": level_of(code)}
                for code in grid["path"]
            ],
        }

    def _territory_names(self, codes: list[str]) -> dict[str, str]:
        """Names of territory nodes, cached briefly: every `locate` needs the names of a
        grid's ancestors, and they change only when the territory is re-imported."""
        now = time.monotonic()
        names, missing = {}, []
        for code in codes:
            cached = _NAME_CACHE.get((self.db.name, code))
            if cached is not None and now - cached[0] < NAME_CACHE_TTL_S:
                names[code] = cached[1]
            else:
                missing.append(code)
        if missing:
            for doc in self.db[store.TERRITORY].find({"_id": {"$in": missing}}, {"name": 1}):
                names[doc["_id"]] = doc["name"]
                _NAME_CACHE[(self.db.name, doc["_id"])] = (now, doc["name"])
        return names

    def set_grid_staff(self, grid_code: str, staff: list[Mapping]) -> list[dict]:
        """Replace a grid's roster: one grid leader, one supervisor, one full-time grid
        worker and any number of part-time social grid workers ("1+1+N")."""
        self.require(access.ROSTER_MANAGERS, "setting a grid's staff")
        self._grid(grid_code)
        if not isinstance(staff, list):
            raise InvalidInput("staff", "must be a list")
        members = []
        for index, member in enumerate(staff):
            where = f"staff[{index}]"
            if not isinstance(member, Mapping):
                raise InvalidInput(where, "must be an object")
            role = member.get("role")
            if role not in STAFF_ROLES:
                raise InvalidInput(f"{where}.role", f"must be one of {', '.join(STAFF_ROLES)}")
            person_id = str(member.get("person_id") or "").strip()
            name = str(member.get("name") or "").strip()
            if not person_id:
                raise InvalidInput(f"{where}.person_id", "is required")
            if not name:
                raise InvalidInput(f"{where}.name", "is required")
            members.append({"person_id": person_id, "name": name, "role": role})
        for role in ("grid_leader", "supervisor", "full_time"):
            if sum(member["role"] == role for member in members) > 1:
                raise InvalidInput("staff", f"a grid has at most one {role}")
        pairs = [(member["person_id"], member["role"]) for member in members]
        if len(set(pairs)) != len(pairs):
            raise InvalidInput("staff", "a person is listed twice in the same role")
        documents = [
            {"_id": f"{grid_code}:{m['role']}:{m['person_id']}", "grid_code": grid_code, **m}
            for m in members
        ]

        def replace_staff(session):
            self.db[store.STAFF].delete_many({"grid_code": grid_code}, session=session)
            if documents:
                self.db[store.STAFF].insert_many(documents, session=session)
            self.publish(
                topics.GRID_UPDATED, grid_code, {"code": grid_code, "staff": len(documents)}
            )

        self.changes(replace_staff)
        return self.grid_staff(grid_code)

    def grid_staff(self, grid_code: str) -> list[dict]:
        self._grid(grid_code)
        order = {role: index for index, role in enumerate(STAFF_ROLES)}
        staff = self.db[store.STAFF].find({"grid_code": grid_code}, {"_id": 0, "grid_code": 0})
        return sorted(staff, key=lambda m: (order[m["role"]], m["person_id"]))

    def grids_served_by(self, person_id: str) -> list[dict]:
        rows = self.db[store.STAFF].find({"person_id": person_id}, {"_id": 0})
        return [row for row in rows if access.sees(self.caller, row["grid_code"])]

    def statistics(self, code: str) -> dict:
        """Counts over the subtree of a territory node."""
        self.territory_node(code)
        by_residence = {
            row["_id"]: row["count"]
            for row in self.db[store.RESIDENTS].aggregate(
                [
                    {"$match": {"path": code, "status": ACTIVE}},
                    {"$group": {"_id": "$residence_type", "count": {"$sum": 1}}},
                ]
            )
        }
        group_rows = self.db[store.MEMBERSHIPS].aggregate(
            [
                {"$match": {"path": code, "active": True}},
                {
                    "$group": {
                        "_id": {"group": "$group", "risk": "$risk_level"},
                        "count": {"$sum": 1},
                    }
                },
            ]
        )
        by_group: dict[str, dict[str, int]] = {}
        for row in group_rows:
            by_group.setdefault(row["_id"]["group"], {})[row["_id"]["risk"]] = row["count"]
        statistics = {
            "code": code,
            "grids": self.db[store.TERRITORY].count_documents({"path": code, "level": "grid"}),
            "households": self.db[store.HOUSEHOLDS].count_documents({"path": code}),
            "residents": sum(by_residence.values()),
            "residents_by_residence_type": by_residence,
        }
        if self.caller.has_role(*access.GROUP_READERS):
            statistics["group_members"] = by_group
        return statistics


def _render_node(doc: Mapping, with_geometry: bool = True) -> dict:
    rendered = {
        "code": doc["_id"],
        "name": doc["name"],
        "level": doc["level"],
        "parent": doc.get("parent"),
        "path": doc["path"],
    }
    if with_geometry and doc.get("geometry") is not None:
        rendered["geometry"] = doc["geometry"]
    return rendered
