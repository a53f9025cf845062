"""A territory (GeoJSON FeatureCollection) uploaded as an import job's file.

A county's or a province's grids (5,000 to 80,000 polygons) take longer to check and store
than one RPC may wait, so `POST /imports?kind=territory` accepts the file once its outline
is sound (JSON, a FeatureCollection with features) and the population service's import
timer imports it (`TerritoryUseCases.import_territory`, batch by batch, with progress).
Pure: no database, so it is tested on plain bytes.
"""

from __future__ import annotations

import json

from services.population.tables import ImportFileError

TERRITORY = "territory"  # the import job kind
SUFFIXES = (".geojson", ".json")


def read_feature_collection(filename: str, content: bytes) -> dict:
    """The file as a FeatureCollection with a non-empty feature list (the features
    themselves are checked when the job runs); ImportFileError names what is wrong."""
    if not filename.lower().endswith(SUFFIXES):
        raise ImportFileError("file", "a territory is a GeoJSON file (.geojson or .json)")
    try:
        collection = json.loads(content.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ImportFileError("file", f"is not UTF-8 JSON: {exc}") from None
    if not isinstance(collection, dict) or collection.get("type") != "FeatureCollection":
        raise ImportFileError("type", "must be a GeoJSON FeatureCollection")
    features = collection.get("features")
    if not isinstance(features, list) or not features:
        raise ImportFileError("features", "must be a non-empty list")
    return collection
