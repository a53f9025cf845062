"""Territory import at county scale: `Population.import_territory` of N grids vs a raw baseline.

    PYTHONPATH=. .venv/bin/python bench/territory.py [--grids 5000] [--vertices 40] [--profile]

Starts its own mongod (a single-node replica set in a temporary directory, on a free
port), so it needs no running stack. The county is generated: villages of 10 x 10 square
grids whose sides carry `--vertices` surveyed points each (neighbours share their borders
point for point, none overlap). In one run:

- import: the FeatureCollection through `Population.import_territory` (validation, the
  overlap check against the county's grids, the stored nodes with their `grid.updated`
  events in the outbox, the territory version), with a publisher whose sends go nowhere
  (the outbox is written and drained as in the service; no broker is needed);
- re-import: the same file again (idempotent: everything unchanged);
- baseline: shapely's validity check of every polygon, one STRtree overlap query over
  them, and `insert_many` of the same node documents into a collection with the
  territory's indexes.

Prints a per-stage breakdown of the import (from cProfile's cumulative times of the
stage functions) and, last, `ratio <raw seconds / import seconds>` (1.0: as fast as raw).
"""

import gridwork_common.green  # noqa: F401  (first: patches eventlet before other imports)

# isort: split

import argparse
import cProfile
import gc
import os
import pstats
import shutil
import sys
import tempfile
import time
from pathlib import Path

import shapely
from shapely.geometry import shape

from bench.results import record
from devstack.infra import init_replica_set, mongod_process
from devstack.processes import free_port
from gridwork_common.config import Settings
from gridwork_common.context import CallerContext
from gridwork_common.events import EventPublisher
from gridwork_common.mongo import ensure_indexes, new_client
from services.population import store
from services.population.application import Population
from services.population.domain.territory import nodes_from_feature_collection

COUNTY = "530402"
ADMIN = CallerContext(user_id="bench", roles=("admin",), scope=COUNTY)
GRID_SIZE = 0.002  # degrees, about 200 m
SIDE = 10  # a village is SIDE x SIDE grids
VILLAGES_PER_ROW = 40
VILLAGES_PER_TOWNSHIP = 40
ORIGIN_LON, ORIGIN_LAT = 102.1, 24.1
# The use-case functions whose cumulative time is each stage of the breakdown.
STAGES = {
    "validate (GeoJSON, shapely validity)": "nodes_from_feature_collection",
    "read existing grids": "_existing_grid_polygons",
    "overlap check (STRtree)": "find_overlaps",
    "store nodes + outbox (transactions)": "_store_batch",
    "send outbox events": "send",
    "territory version": "territory_changed",
}


def grid_code(index: int) -> str:
    village, within = divmod(index, SIDE * SIDE)
    township, serial = divmod(village, VILLAGES_PER_TOWNSHIP)
    return f"{COUNTY}{township + 1:03d}{serial + 1:03d}{within + 1:03d}"


def grid_ring(index: int, vertices: int) -> list[list[float]]:
    village, within = divmod(index, SIDE * SIDE)
    block_row, block_column = divmod(village, VILLAGES_PER_ROW)
    row, column = divmod(within, SIDE)
    x, y = block_column * SIDE + column, block_row * SIDE + row

    def point(i: float, j: float) -> list[float]:
        lon = ORIGIN_LON + i * GRID_SIZE
        lat = ORIGIN_LAT + j * GRID_SIZE
        return [round(lon, 7), round(lat, 7)]

    steps = [k / vertices for k in range(vertices)]
    ring = (
        [point(x + s, y) for s in steps]
        + [point(x + 1, y + s) for s in steps]
        + [point(x + 1 - s, y + 1) for s in steps]
        + [point(x, y + 1 - s) for s in steps]
    )
    return [*ring, ring[0]]


def county(grids: int, vertices: int) -> dict:
    def feature(code, name, geometry=None):
        return {
            "type": "Feature",
            "properties": {"code": code, "name": name},
            "geometry": geometry,
        }

    codes = [grid_code(index) for index in range(grids)]
    ancestors = sorted({code[:length] for code in codes for length in (9, 12)})
    features = [feature(COUNTY, "基准县")]
    features += [feature(code, f"节点{code}") for code in ancestors]
    features += [
        feature(
            code,
            f"第{index + 1}网格",
            {"type": "Polygon", "coordinates": [grid_ring(index, vertices)]},
        )
        for index, code in enumerate(codes)
    ]
    return {"type": "FeatureCollection", "features": features}


def population(db) -> Population:
    publisher = EventPublisher(lambda key, envelope: None, f"/counties/{COUNTY}/population")
    return Population(db, None, publisher, ADMIN, COUNTY)


def timed_import(db, collection: dict, profiler: cProfile.Profile | None = None):
    started = time.perf_counter()
    if profiler:
        profiler.enable()
    counts = population(db).import_territory(collection)
    if profiler:
        profiler.disable()
    return counts, time.perf_counter() - started


def raw_baseline(db, collection: dict) -> tuple[float, dict[str, float]]:
    """Validity + one STRtree overlap query + insert_many of the same documents."""
    nodes = nodes_from_feature_collection(collection)  # documents built untimed
    documents = [node.document() for node in nodes]
    gc.collect()
    stages = {}
    started = time.perf_counter()
    polygons = [shape(node.geometry) for node in nodes if node.geometry is not None]
    assert all(shapely.is_valid(polygons))
    stages["validity"] = time.perf_counter() - started
    t = time.perf_counter()
    tree = shapely.STRtree(polygons)
    left, right = tree.query(polygons, predicate="intersects")
    pairs = [(a, b) for a, b in zip(left, right, strict=True) if a < b]
    areas = shapely.area(
        shapely.intersection([polygons[a] for a, _ in pairs], [polygons[b] for _, b in pairs])
    )
    assert not (areas > 1e-10).any()
    stages["STRtree overlap"] = time.perf_counter() - t
    t = time.perf_counter()
    raw = db["territory_raw"]
    raw.create_indexes(store.INDEXES[store.TERRITORY])
    raw.insert_many(documents, ordered=False)
    stages["insert_many"] = time.perf_counter() - t
    return time.perf_counter() - started, stages


def breakdown(profiler: cProfile.Profile, total: float) -> None:
    stats = pstats.Stats(profiler).stats
    for label, function in STAGES.items():
        seconds = sum(
            cumulative
            for (path, _, name), (_, _, _, cumulative, _) in stats.items()
            if name == function and ("population" in path or "outbox" in path)
        )
        print(f"  {label:<40} {seconds:7.2f} s  ({100 * seconds / total:4.1f} %)")


def bench(client, grids: int, vertices: int, profile: bool) -> float:
    db = client[f"bench_territory_{grids}"]
    ensure_indexes(db, store.INDEXES)
    started = time.perf_counter()
    collection = county(grids, vertices)
    print(
        f"generated {grids} grids of {4 * vertices + 1} vertices "
        f"in {time.perf_counter() - started:.1f} s (not timed)"
    )
    profiler = cProfile.Profile()
    counts, seconds = timed_import(db, collection, profiler)
    assert counts["created"] == len(collection["features"]), counts
    print(f"import           {seconds:7.2f} s   ({grids / seconds:6.0f} grids/s) {counts}")
    breakdown(profiler, seconds)
    again, again_s = timed_import(db, collection)
    assert again["unchanged"] == len(collection["features"]), again
    print(f"re-import        {again_s:7.2f} s   (all unchanged)")
    raw_s, stages = raw_baseline(db, collection)
    print(f"raw baseline     {raw_s:7.2f} s   ({grids / raw_s:6.0f} grids/s)")
    for label, stage_s in stages.items():
        print(f"  {label:<40} {stage_s:7.2f} s")
    if profile:
        stats = pstats.Stats(profiler, stream=sys.stderr).strip_dirs()
        stats.sort_stats("cumulative").print_stats(40)
    record(
        "territory",
        f"territory import, {grids} grids",
        grids / seconds,
        "validity + STRtree + insert_many",
        grids / raw_s,
        "grids/s",
    )
    return raw_s / seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grids", type=int, nargs="+", default=[5000], help="grids per county")
    parser.add_argument("--vertices", type=int, default=40, help="surveyed points per side")
    parser.add_argument("--profile", action="store_true", help="print cProfile (to stderr)")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="gridwork-bench-"))
    port = free_port()
    mongod = mongod_process(root / "mongo", port, root / "run", root / "log", "bench-mongod")
    mongod.start()
    ratios = []
    try:
        init_replica_set(port)
        uri = f"mongodb://127.0.0.1:{port}/?replicaSet=rs0&directConnection=true"
        settings = Settings.from_env({"MONGO_URI": uri, "GRIDWORK_DEV_MODE": "true"})
        client = new_client(settings, app_name="gridwork-bench")
        try:
            load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
            print(f"private mongod on port {port}; load average {load} ({os.cpu_count()} CPUs)")
            for grids in args.grids:
                ratio = bench(client, grids, args.vertices, args.profile)
                print(f"{grids} grids: ratio {ratio:.3f} (raw seconds / import seconds)\n")
                ratios.append(ratio)
        finally:
            client.close()
    finally:
        mongod.stop()
        shutil.rmtree(root, ignore_errors=True)
    print(f"ratio {min(ratios):.3f}")


if __name__ == "__main__":
    main()
