"""The territory import's pure parts: the uploaded file's outline and the overlap check."""

import json

import pytest

from services.population.domain.territory import find_overlaps, nodes_from_feature_collection
from services.population.tables import ImportFileError
from services.population.territory_file import read_feature_collection


def square(lon: float, lat: float, size: float = 1.0) -> dict:
    ring = [[lon, lat], [lon + size, lat], [lon + size, lat + size], [lon, lat + size]]
    return {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}


def collection(*features) -> dict:
    return {"type": "FeatureCollection", "features": list(features)}


def test_a_territory_file_is_a_utf8_feature_collection_with_features():
    body = collection({"type": "Feature", "properties": {"code": "530402", "name": "红塔区"}})
    encoded = json.dumps(body, ensure_ascii=False).encode()
    assert read_feature_collection("县.geojson", encoded) == body
    assert read_feature_collection("县.JSON", b"\xef\xbb\xbf" + encoded) == body  # with a BOM
    for filename, content, field in (
        ("县.csv", encoded, "file"),
        ("县.geojson", b"{", "file"),
        ("县.geojson", "{}".encode("utf-16"), "file"),
        ("县.geojson", b"[]", "type"),
        ("县.geojson", json.dumps(collection()).encode(), "features"),
    ):
        with pytest.raises(ImportFileError) as refused:
            read_feature_collection(filename, content)
        assert refused.value.field == field, (filename, content)


def test_overlaps_are_pairs_of_codes_sharing_area_not_a_border():
    incoming = {"a": square(0, 0), "b": square(1, 0), "c": square(0.5, 0.5)}
    assert find_overlaps(incoming, {}) == [("a", "c"), ("b", "c")]
    assert find_overlaps({"a": square(0, 0), "b": square(1, 0)}, {}) == []
    assert find_overlaps({}, {"a": square(0, 0)}) == []  # no grid in the file: nothing


def test_an_incoming_grid_is_checked_against_existing_ones_and_replaces_its_own_code():
    existing = {"old": square(5, 5), "a": square(0.5, 0)}
    assert find_overlaps({"a": square(0, 0)}, existing) == []  # "a" moves: no self-overlap
    assert find_overlaps({"n": square(5.5, 5.5)}, existing) == [("n", "old")]


def test_validated_nodes_keep_their_polygon_for_the_overlap_check():
    nodes = nodes_from_feature_collection(
        collection(
            {"type": "Feature", "properties": {"code": "530402", "name": "县"}},
            {
                "type": "Feature",
                "properties": {"code": "530402001001001", "name": "网格"},
                "geometry": square(0, 0),
            },
        )
    )
    grid = nodes[-1]
    assert grid.polygon is not None and grid.polygon.area == 1.0
    assert find_overlaps({grid.code: grid.polygon}, {"x": square(0.5, 0.5)}) == [(grid.code, "x")]
    assert "polygon" not in grid.document()
