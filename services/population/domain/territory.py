"""The territory tree as imported from GeoJSON: node validation and grid overlap checks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import shapely
from shapely import STRtree
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity

from services.population.domain.codes import level_of, parent_code, path_codes
from services.population.domain.errors import InvalidField

POLYGON_TYPES = ("Polygon", "MultiPolygon")
# Grids that only share a border intersect with zero area; anything above this (in
# square degrees, about 1 m² at these latitudes) is a real overlap.
OVERLAP_TOLERANCE = 1e-10
INTERIORS_MEET = "T********"  # DE-9IM: the interiors of two polygons intersect


@dataclass(frozen=True)
class TerritoryNode:
    code: str
    name: str
    level: str
    parent: str | None
    path: tuple[str, ...]
    geometry: dict | None = None
    # The polygon as shapely built it for validation: kept for the overlap check.
    polygon: BaseGeometry | None = field(default=None, compare=False, repr=False)

    def document(self) -> dict:
        doc = {
            "_id": self.code,
            "name": self.name,
            "level": self.level,
            "parent": self.parent,
            "path": list(self.path),
        }
        if self.geometry is not None:
            doc["geometry"] = self.geometry
        return doc


def check_polygon(geometry: Mapping, field: str):
    """A GeoJSON Polygon/MultiPolygon in lon/lat that MongoDB's 2dsphere index accepts."""
    if not isinstance(geometry, Mapping) or geometry.get("type") not in POLYGON_TYPES:
        raise InvalidField(field, "must be a GeoJSON Polygon or MultiPolygon")
    try:
        polygon = shape(geometry)
    except (ValueError, TypeError, AttributeError, IndexError, KeyError) as exc:
        raise InvalidField(field, f"is not valid GeoJSON: {exc}") from None
    if polygon.is_empty:
        raise InvalidField(field, "is empty")
    min_lon, min_lat, max_lon, max_lat = polygon.bounds
    if not (-180 <= min_lon <= max_lon <= 180 and -90 <= min_lat <= max_lat <= 90):
        raise InvalidField(field, "coordinates must be longitude, latitude in degrees")
    if not polygon.is_valid:
        raise InvalidField(field, f"is not a valid polygon: {explain_validity(polygon)}")
    return polygon


def node_from_feature(feature: Mapping, index: int) -> TerritoryNode:
    where = f"features[{index}]"
    if not isinstance(feature, Mapping) or feature.get("type") != "Feature":
        raise InvalidField(where, "must be a GeoJSON Feature")
    properties = feature.get("properties") or {}
    code = str(properties.get("code", "")).strip()
    level = level_of(code, field=f"{where}.properties.code")
    name = str(properties.get("name", "")).strip()
    if not name or len(name) > 100:
        raise InvalidField(f"{where}.properties.name", "is required (at most 100 characters)")
    geometry = feature.get("geometry")
    polygon = None
    if geometry is not None:
        if level == "building":
            raise InvalidField(f"{where}.geometry", "buildings carry no polygon")
        polygon = check_polygon(geometry, f"{where}.geometry")
    elif level == "grid":
        raise InvalidField(f"{where}.geometry", "a grid needs its polygon")
    return TerritoryNode(
        code=code,
        name=name,
        level=level,
        parent=parent_code(code),
        path=tuple(path_codes(code)),
        geometry=dict(geometry) if geometry is not None else None,
        polygon=polygon,
    )


def nodes_from_feature_collection(collection: Mapping) -> list[TerritoryNode]:
    """Every feature as a node, parents before children; duplicate codes refused."""
    if not isinstance(collection, Mapping) or collection.get("type") != "FeatureCollection":
        raise InvalidField("type", "must be a GeoJSON FeatureCollection")
    features = collection.get("features")
    if not isinstance(features, Sequence) or not features:
        raise InvalidField("features", "must be a non-empty list")
    nodes = [node_from_feature(feature, index) for index, feature in enumerate(features)]
    seen: dict[str, int] = {}
    for index, node in enumerate(nodes):
        if node.code in seen:
            raise InvalidField(
                f"features[{index}].properties.code",
                f"{node.code} appears twice (also features[{seen[node.code]}])",
            )
        seen[node.code] = index
    return sorted(nodes, key=lambda node: (len(node.code), node.code))


def find_overlaps(
    incoming: Mapping[str, Mapping | BaseGeometry], existing: Mapping[str, Mapping]
) -> list[tuple[str, str]]:
    """Pairs of grid codes whose polygons overlap (sharing a border is fine), comparing the
    incoming grids with each other and with existing ones (an incoming grid replaces the
    existing grid of the same code). One STRtree query for all incoming grids, then the
    overlap area of the candidate pairs whose interiors meet, vectorised (not a Python
    loop per pair)."""
    if not incoming:
        return []
    polygons = {code: shape(geometry) for code, geometry in existing.items()}
    polygons.update({code: _as_shape(geometry) for code, geometry in incoming.items()})
    codes = list(polygons)
    geometries = [polygons[code] for code in codes]
    index_of = {code: index for index, code in enumerate(codes)}
    queried = [index_of[code] for code in incoming]
    tree = STRtree(geometries)
    sources, targets = tree.query([geometries[i] for i in queried], predicate="intersects")
    pairs = {
        tuple(sorted((queried[int(source)], int(target))))
        for source, target in zip(sources, targets, strict=True)
        if queried[int(source)] != int(target)
    }
    if not pairs:
        return []
    left, right = zip(*pairs, strict=True)
    # Neighbours touch along their borders: only pairs whose interiors meet can overlap
    # by any area (a relate test, several times cheaper than the intersection's area).
    interiors_meet = shapely.relate_pattern(
        [geometries[i] for i in left], [geometries[i] for i in right], INTERIORS_MEET
    )
    left = [i for i, meet in zip(left, interiors_meet, strict=True) if meet]
    right = [i for i, meet in zip(right, interiors_meet, strict=True) if meet]
    areas = shapely.area(
        shapely.intersection([geometries[i] for i in left], [geometries[i] for i in right])
    )
    return sorted(
        tuple(sorted((codes[a], codes[b])))
        for a, b, area in zip(left, right, areas, strict=True)
        if area > OVERLAP_TOLERANCE
    )


def _as_shape(geometry: Mapping | BaseGeometry) -> BaseGeometry:
    return geometry if isinstance(geometry, BaseGeometry) else shape(geometry)
