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
  them (the areas of the pairs whose interiors meet, as the import computes them), and
  `insert_many` of the same node documents into a collection with the territory's
  indexes.

Prints a per-stage breakdown of the import and the re-import (wall time in each stage's
function; `--profile` adds cProfile's listing, slowing the import) and, last,
`ratio <raw seconds / import seconds>` (1.0: as fast as raw).
"""

import gridwork_common.green  # noqa: F401  (first: patches eventlet before other imports)

# isort: split

import argparse
import cProfile
import functools
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
from gridwork_common.outbox import Outbox
from services.population import store
from services.population.application import Population
from services.population.domain.territory import nodes_from_feature_collection
from services.population.usecases import territory as territory_usecases
from services.population.usecases.territory import TerritoryUseCases

COUNTY = "530402"
ADMIN = CallerContext(user_id="bench", roles=("admin",), scope=COUNTY)
GRID_SIZE = 0.002  # degrees, about 200 m
SIDE = 10  # a village is SIDE x SIDE grids
VILLAGES_PER_ROW = 40
VILLAGES_PER_TOWNSHIP = 40
ORIGIN_LON, ORIGIN_LAT = 102.1, 24.1
# The functions timed as the import's stages: (label, owner, attribute).
STAGES = (
    ("validate (GeoJSON, shapely validity)", territory_usecases, "nodes_from_feature_collection"),
    ("overlap check (STRtree)", territory_usecases, "find_overlaps"),
    ("store: transactions of 250 nodes + events", TerritoryUseCases, "_store_batch"),
    ("send the outbox after each commit", Outbox, "send"),
)


class StageTimes:
    """Wall time spent in each stage function while in use (a wrapper per function, so
    the import runs at full speed, unlike under cProfile)."""

    def __init__(self):
        self.seconds = {label: 0.0 for label, _, _ in STAGES}
        self.originals = []

    def __enter__(self):
        for label, owner, name in STAGES:
            original = getattr(owner, name)
            self.originals.append((owner, name, original))
            setattr(owner, name, self._timed(label, original))
        return self

    def __exit__(self, *exc):
        for owner, name, original in self.originals:
            setattr(owner, name, original)

    def _timed(self, label, function):
        @functools.wraps(function)
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[label] += time.perf_counter() - started

        return timed

    def print(self, total: float) -> None:
        for label, seconds in self.seconds.items():
            print(f"  {label:<44} {seconds:7.2f} s  ({100 * seconds / total:4.1f} %)")
        rest = total - sum(self.seconds.values())
        print(f"  {'the rest (parents, existing grids, counts)':<44} {rest:7.2f} s")


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
    with StageTimes() as stages:
        started = time.perf_counter()
        if profiler:
            profiler.enable()
        counts = population(db).import_territory(collection)
        if profiler:
            profiler.disable()
        seconds = time.perf_counter() - started
    return counts, seconds, stages


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
    meet = shapely.relate_pattern(
        [polygons[a] for a, _ in pairs], [polygons[b] for _, b in pairs], "T********"
    )
    pairs = [pair for pair, interiors_meet in zip(pairs, meet, strict=True) if interiors_meet]
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


def bench(client, grids: int, vertices: int, profile: bool) -> float:
    db = client[f"bench_territory_{grids}"]
    ensure_indexes(db, store.INDEXES)
    started = time.perf_counter()
    collection = county(grids, vertices)
    print(
        f"generated {grids} grids of {4 * vertices + 1} vertices "
        f"in {time.perf_counter() - started:.1f} s (not timed)"
    )
    profiler = cProfile.Profile() if profile else None
    counts, seconds, stages = timed_import(db, collection, profiler)
    assert counts["created"] == len(collection["features"]), counts
    note = " under cProfile" if profile else ""
    print(f"import           {seconds:7.2f} s   ({grids / seconds:6.0f} grids/s{note}) {counts}")
    stages.print(seconds)
    again, again_s, stages = timed_import(db, collection)
    assert again["unchanged"] == len(collection["features"]), again
    print(f"re-import        {again_s:7.2f} s   (all unchanged)")
    stages.print(again_s)
    raw_s, stages = raw_baseline(db, collection)
    print(f"raw baseline     {raw_s:7.2f} s   ({grids / raw_s:6.0f} grids/s)")
    for label, stage_s in stages.items():
        print(f"  {label:<40} {stage_s:7.2f} s")
    if profiler:
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
