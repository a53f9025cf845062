"""Population baseline: bulk resident import vs raw inserts, `locate` vs a raw geo query.

    make bench, or: PYTHONPATH=. .venv/bin/python bench/import.py [--rows N] [--profile]

Starts its own mongod (a single-node replica set in a temporary directory, on a free
port), so it needs no running stack and touches no data of `make up`. In one run:

- import: a CSV of synthetic residents (valid ID numbers, from services/population/demo.py)
  goes through `ImportJobs.start` and the job run the service's timer does
  (`ImportJobs.run_queued`: read, validate, encrypt, look up, bulk write, checkpoint),
  timed end to end; the baseline inserts the very documents the import path stores
  (built beforehand with `Population.resident_document` from validated records) with
  `insert_many`, in batches of the import's size, into a collection with the same indexes;
- locate: with `--grids` grid polygons loaded (setup, not timed), `Population.locate`
  on random points inside grids vs the same `$geoIntersects` `find_one` through pymongo.

The last line is `ratio <import rows/s / raw insert rows/s>`.
"""

import gridwork_common.green  # noqa: F401  (first: patches eventlet before other imports)

# isort: split

import argparse
import base64
import cProfile
import gc
import io
import math
import os
import pstats
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.results import record
from devstack.infra import init_replica_set, mongod_process
from devstack.processes import free_port
from gridwork_common.config import Settings
from gridwork_common.context import CallerContext
from gridwork_common.mongo import ensure_indexes, new_client
from services.population import store
from services.population.application import Population
from services.population.demo import demo_residents_csv, demo_territory
from services.population.domain.codes import path_codes
from services.population.domain.residents import check_resident
from services.population.domain.territory import TerritoryNode, nodes_from_feature_collection
from services.population.importing import BATCH_SIZE, RESIDENT_COLUMNS, ImportJobs
from services.population.protection import PersonalDataCipher
from services.population.tables import open_table

COUNTY = "530402"
SYSTEM = CallerContext(user_id="bench", roles=("system",))
RESIDENTS_SEED = 20_260_101

# Locate: villages of 10 x 10 square grids, 40 villages side by side per row of villages.
GRID_SIZE = 0.002  # degrees, about 200 m
GRIDS_PER_VILLAGE_SIDE = 10
VILLAGES_PER_ROW = 40
VILLAGES_PER_TOWNSHIP = 40
ORIGIN_LON, ORIGIN_LAT = 102.1, 24.1
GRID_INSERT_BATCH = 5000


def rate_line(label: str, rows: int, seconds: float, note: str = "") -> float:
    rate = rows / seconds
    print(f"{label:<16} {rate:9.0f} rows/s   ({rows} rows in {seconds:.1f} s{note})")
    return rate


def latency_line(label: str, latencies: list[float]) -> float:
    ordered = sorted(latencies)
    p50 = statistics.median(ordered) * 1000
    p99 = ordered[max(math.ceil(len(ordered) * 0.99) - 1, 0)] * 1000
    print(f"{label:<16} p50 {p50:6.2f} ms   p99 {p99:6.2f} ms   ({len(ordered)} calls)")
    return p50


# ---------------------------------------------------------------------------- import
def setup_county(db) -> None:
    ensure_indexes(db, store.INDEXES)
    nodes = nodes_from_feature_collection(demo_territory(COUNTY))
    db[store.TERRITORY].insert_many([node.document() for node in nodes])


def run_import(population: Population, content: bytes) -> tuple[dict, float, float]:
    """(finished job, seconds to accept the file, seconds of the job run)."""
    jobs = ImportJobs(population)
    encoded = base64.b64encode(content).decode()
    started = time.perf_counter()
    job = jobs.start("residents", "bench-residents.csv", encoded)
    accepted = time.perf_counter()
    assert jobs.run_queued() == 1
    finished = time.perf_counter()
    return jobs.job(job["id"]), accepted - started, finished - accepted


def stored_documents(population: Population, content: bytes) -> list[dict]:
    """The documents the import path writes for these rows, built without timing."""
    today = population.clock().date()
    documents = []
    for _, values in open_table(io.BytesIO(content), "bench.csv", RESIDENT_COLUMNS).rows:
        record, problems = check_resident(values, today)
        assert not problems, problems
        documents.append(population.resident_document(record))
    return documents


def raw_insert(db, documents: list[dict], batch: int) -> float:
    collection = db["residents_raw"]
    collection.create_indexes(store.INDEXES[store.RESIDENTS])
    started = time.perf_counter()
    for first in range(0, len(documents), batch):
        collection.insert_many(documents[first : first + batch], ordered=False)
    return time.perf_counter() - started


def bench_import(client, cipher, rows: int, profile: bool) -> float:
    db = client["bench_population"]
    setup_county(db)
    started = time.perf_counter()
    content = demo_residents_csv(demo_territory(COUNTY), count=rows, seed=RESIDENTS_SEED)
    print(
        f"generated {rows} residents: {len(content) / 1e6:.1f} MB of CSV "
        f"in {time.perf_counter() - started:.1f} s (not timed)"
    )
    population = Population(db, cipher, None, SYSTEM, COUNTY)

    job, accept_s, run_s = run_import(population, content)
    assert job["status"] == "finished", job
    assert job["counts"]["created"] == rows and job["counts"]["failed"] == 0, job["counts"]
    imported = rate_line("import job", rows, run_s, f"; start() took {accept_s:.1f} s more")

    documents = stored_documents(population, content)
    db.drop_collection(store.RESIDENTS)  # the baseline starts from the same empty state
    gc.collect()
    raw = rate_line("raw insert_many", rows, raw_insert(db, documents, BATCH_SIZE))
    del documents
    gc.collect()

    if profile:
        profile_import(client, cipher, content, min(rows, 50_000))
    record("import", "resident import job", imported, "raw insert_many", raw, "rows/s")
    return imported / raw


def profile_import(client, cipher, content: bytes, rows: int) -> None:
    """cProfile of one more job run (first `rows` rows, fresh database), to stderr."""
    lines = content.split(b"\r\n")
    sample = b"\r\n".join(lines[: rows + 1]) + b"\r\n"
    db = client["bench_population_profile"]
    setup_county(db)
    population = Population(db, cipher, None, SYSTEM, COUNTY)
    profiler = cProfile.Profile()
    profiler.enable()
    run_import(population, sample)
    profiler.disable()
    print(f"\nprofile of an import job of {rows} rows:", file=sys.stderr)
    stats = pstats.Stats(profiler, stream=sys.stderr).strip_dirs()
    stats.sort_stats("cumulative").print_stats(45)
    stats.sort_stats("tottime").print_stats(25)


# ---------------------------------------------------------------------------- locate
def grid_cell(index: int) -> tuple[int, int]:
    village, within = divmod(index, GRIDS_PER_VILLAGE_SIDE**2)
    block_row, block_column = divmod(village, VILLAGES_PER_ROW)
    row, column = divmod(within, GRIDS_PER_VILLAGE_SIDE)
    side = GRIDS_PER_VILLAGE_SIDE
    return block_column * side + column, block_row * side + row


def grid_code(index: int) -> str:
    village, within = divmod(index, GRIDS_PER_VILLAGE_SIDE**2)
    township, village_serial = divmod(village, VILLAGES_PER_TOWNSHIP)
    return f"{COUNTY}{township + 1:03d}{village_serial + 1:03d}{within + 1:03d}"


def grid_documents(count: int):
    """Documents shaped like `TerritoryNode.document()`: ancestors, then square grids
    tiling villages of 10 x 10 (neighbours share borders, none overlap)."""
    yield TerritoryNode(COUNTY, "基准县", "county", None, (COUNTY,)).document()
    ancestors = sorted(
        {code[:length] for code in map(grid_code, range(count)) for length in (9, 12)}
    )
    for code in ancestors:
        level = "township" if len(code) == 9 else "village"
        path = tuple(path_codes(code))
        yield TerritoryNode(code, f"{level} {code}", level, path[-2], path).document()
    for index in range(count):
        column, row = grid_cell(index)
        west, south = ORIGIN_LON + column * GRID_SIZE, ORIGIN_LAT + row * GRID_SIZE
        east, north = west + GRID_SIZE, south + GRID_SIZE
        west, south, east, north = (round(value, 6) for value in (west, south, east, north))
        ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
        code = grid_code(index)
        path = tuple(path_codes(code))
        geometry = {"type": "Polygon", "coordinates": [ring]}
        yield TerritoryNode(code, f"第{index + 1}网格", "grid", path[-2], path, geometry).document()


def load_grids(db, count: int) -> float:
    started = time.perf_counter()
    ensure_indexes(db, {store.TERRITORY: store.INDEXES[store.TERRITORY]})  # 2dsphere first
    batch = []
    for document in grid_documents(count):
        batch.append(document)
        if len(batch) == GRID_INSERT_BATCH:
            db[store.TERRITORY].insert_many(batch)
            batch = []
    if batch:
        db[store.TERRITORY].insert_many(batch)
    indexes = {index["name"] for index in db[store.TERRITORY].list_indexes()}
    assert "geometry_2dsphere" in indexes, indexes
    return time.perf_counter() - started


def bench_locate(client, cipher, grids: int, calls: int, warmup: int) -> float:
    db = client["bench_locate"]
    setup_s = load_grids(db, grids)
    print(f"loaded {grids} grid polygons with a 2dsphere index in {setup_s:.1f} s (not timed)")
    population = Population(db, cipher, None, SYSTEM, COUNTY)
    rng = random.Random(7)
    points = []
    for _ in range(warmup + calls):
        index = rng.randrange(grids)
        column, row = grid_cell(index)
        lon = ORIGIN_LON + (column + rng.uniform(0.05, 0.95)) * GRID_SIZE
        lat = ORIGIN_LAT + (row + rng.uniform(0.05, 0.95)) * GRID_SIZE
        points.append((grid_code(index), lon, lat))

    def raw_find(lon: float, lat: float):
        point = {"type": "Point", "coordinates": [lon, lat]}
        return db[store.TERRITORY].find_one(
            {"level": "grid", "path": COUNTY, "geometry": {"$geoIntersects": {"$geometry": point}}},
            {"geometry": 0},
        )

    locate_latencies, raw_latencies = [], []
    for number, (code, lon, lat) in enumerate(points):
        t0 = time.perf_counter()
        found = raw_find(lon, lat)
        t1 = time.perf_counter()
        located = population.locate(lon, lat)
        t2 = time.perf_counter()
        assert found["_id"] == code and located["grid"]["code"] == code, (code, found, located)
        if number >= warmup:
            raw_latencies.append(t1 - t0)
            locate_latencies.append(t2 - t1)
    located_p50 = latency_line("locate", locate_latencies)
    raw_p50 = latency_line("raw geo find_one", raw_latencies)
    record(
        "import",
        "locate p50",
        located_p50,
        "raw geo find_one p50",
        raw_p50,
        "ms",
        ratio=raw_p50 / located_p50,
    )
    return raw_p50 / located_p50


# ---------------------------------------------------------------------------- main
def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000, help="residents to import")
    parser.add_argument("--grids", type=int, default=80_000, help="grid polygons for locate")
    parser.add_argument("--calls", type=int, default=2000, help="locate calls (each side)")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument(
        "--profile", action="store_true", help="also cProfile an import job (to stderr)"
    )
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="gridwork-bench-"))
    port = free_port()
    mongod = mongod_process(root / "mongo", port, root / "run", root / "log", "bench-mongod")
    mongod.start()
    try:
        init_replica_set(port)
        uri = f"mongodb://127.0.0.1:{port}/?replicaSet=rs0&directConnection=true"
        settings = Settings.from_env({"MONGO_URI": uri, "GRIDWORK_DEV_MODE": "true"})
        cipher = PersonalDataCipher(settings.pii_encryption_key, settings.pii_index_key)
        client = new_client(settings, app_name="gridwork-bench")
        try:
            load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
            print(f"private mongod on port {port}; import batches of {BATCH_SIZE} rows")
            print(f"load average before the run: {load} ({os.cpu_count()} CPUs)")
            import_ratio = bench_import(client, cipher, args.rows, args.profile)
            print(f"import ratio {import_ratio:.3f}")
            locate_ratio = bench_locate(client, cipher, args.grids, args.calls, args.warmup)
            print(f"locate ratio {locate_ratio:.3f}")
        finally:
            client.close()
    finally:
        mongod.stop()
        shutil.rmtree(root, ignore_errors=True)
    print(f"ratio {import_ratio:.3f}")


if __name__ == "__main__":
    main()
