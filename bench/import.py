"""Population at county scale: bulk resident import vs raw inserts, resident list and
search over RPC vs the raw indexed queries, `locate` vs a raw geo query.

    make bench, or: PYTHONPATH=. .venv/bin/python bench/import.py [--rows 2000000]
        [--file-rows 250000] [--calls 1000] [--grids 80000] [--profile]

Starts its own mongod (a single-node replica set in a temporary directory, on a free
port) and uses the RabbitMQ on 127.0.0.1:5672 in a fresh vhost, so it touches no data of
`make up`; the population service runs as its own process (`python -m
services.population`), so its memory is measured alone. In one run:

- raw baseline: the very documents the import path stores (built beforehand, not timed,
  with `Population.resident_document` from validated records) inserted with
  `insert_many`, in batches of the import's size, into a collection with the same indexes
  (then dropped);
- import: `--rows` synthetic residents (valid ID numbers, from
  services/population/demo.py) as CSV files of `--file-rows` each (a file is at most 64
  MiB: a county imports township by township), each sent with the `start_import` RPC; the
  service's timer runs the jobs (read, validate, encrypt, look up, bulk write, history,
  checkpoints). Timed from the first upload until the last job is finished; the service's
  RSS is sampled every half second meanwhile. The stored residents and their `imported`
  history entries are counted in mongod afterwards (not the jobs' own counters);
- reads at that size, over RPC as a grid worker of the grid, each interleaved with the
  raw indexed query through pymongo: a page of 50 residents of a grid after a random
  keyset cursor (`list_residents`), and `find_resident` by full ID number and by phone
  (blind indexes) of random imported residents; p50 and p99 of each, `ratio` = raw p99 /
  RPC p99. A `health` RPC (one mongod ping) shows the floor of any call;
- locate: with `--grids` grid polygons loaded (setup, not timed), `Population.locate`
  on random points inside grids vs the same `$geoIntersects` `find_one` through pymongo
  (in this process).

The last line is `ratio <import rows/s / raw insert rows/s>`.
"""

import gridwork_common.green  # noqa: F401  (first: patches eventlet before other imports)

# isort: split

import argparse
import base64
import cProfile
import csv
import gc
import io
import itertools
import pstats
import random
import signal
import sys
import time
from collections import defaultdict
from pathlib import Path
from urllib.parse import urlsplit

import eventlet
from nameko.standalone.rpc import ClusterRpcProxy

from bench.raw_population import SERVICE as RAW_SERVICE
from bench.results import record
from bench.support import load_line, percentiles, private_servers, private_vhost, tail
from devstack.processes import ManagedProcess, free_port, wait_until
from gridwork_common.config import Settings
from gridwork_common.context import CallerContext
from gridwork_common.mongo import ensure_indexes, new_client
from services.population import store
from services.population.application import Population
from services.population.demo import RESIDENT_CSV_COLUMNS, demo_residents, demo_territory
from services.population.domain.codes import path_codes
from services.population.domain.residents import check_resident
from services.population.domain.territory import TerritoryNode, nodes_from_feature_collection
from services.population.importing import BATCH_SIZE, MAX_FILE_BYTES, RESIDENT_COLUMNS, ImportJobs
from services.population.protection import PersonalDataCipher
from services.population.tables import open_table

COUNTY = "530402"
SYSTEM = CallerContext(user_id="bench", roles=("system",))
IMPORTER = CallerContext(user_id="bench-importer", roles=("admin",), scope=COUNTY)
RESIDENTS_SEED = 20_260_101
PAGE = 50
RSS_SAMPLE_S = 0.5
SAMPLED_RESIDENTS = 5000  # residents kept aside (ID, phone, grid) for the searches

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


def latency_line(label: str, latencies: list[float]) -> tuple[float, float]:
    p50, p99 = percentiles(latencies)
    print(f"{label:<24} p50 {p50:6.2f} ms   p99 {p99:6.2f} ms   ({len(latencies)} calls)")
    return p50, p99


# ---------------------------------------------------------------------------- files
def import_files(rows: int, file_rows: int) -> tuple[list[bytes], list[dict]]:
    """The residents as CSV files of `file_rows` rows (one generator: no ID number or
    phone twice across files), and a sample of them (ID number, phone, grid) to search."""
    territory = demo_territory(COUNTY)
    generated = demo_residents(territory, count=rows, seed=RESIDENTS_SEED)
    rng = random.Random(11)
    sample_every = max(rows // SAMPLED_RESIDENTS, 1)
    files, sample = [], []
    for first in range(0, rows, file_rows):
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=RESIDENT_CSV_COLUMNS, lineterminator="\r\n")
        writer.writeheader()
        for number, row in enumerate(itertools.islice(generated, min(file_rows, rows - first))):
            writer.writerow(row)
            if (first + number) % sample_every == 0:
                sample.append(row)
        files.append(text.getvalue().encode("utf-8"))
    assert all(len(content) <= MAX_FILE_BYTES for content in files), "--file-rows too large"
    rng.shuffle(sample)
    return files, sample


# ---------------------------------------------------------------------------- import
def setup_county(db) -> None:
    ensure_indexes(db, store.INDEXES)
    nodes = nodes_from_feature_collection(demo_territory(COUNTY))
    db[store.TERRITORY].insert_many([node.document() for node in nodes])


def stored_documents(population: Population, content: bytes) -> list[dict]:
    """The documents the import path writes for these rows, built without timing."""
    today = population.clock().date()
    documents = []
    for _, values in open_table(io.BytesIO(content), "bench.csv", RESIDENT_COLUMNS).rows:
        record, problems = check_resident(values, today)
        assert not problems, problems
        documents.append(population.resident_document(record))
    return documents


def raw_insert(db, population: Population, files: list[bytes]) -> float:
    """Seconds of `insert_many` alone (documents built per file, untimed), then dropped."""
    collection = db["residents_raw"]
    collection.create_indexes(store.INDEXES[store.RESIDENTS])
    seconds, building = 0.0, time.perf_counter()
    for content in files:
        documents = stored_documents(population, content)
        gc.collect()
        started = time.perf_counter()
        for first in range(0, len(documents), BATCH_SIZE):
            collection.insert_many(documents[first : first + BATCH_SIZE], ordered=False)
        seconds += time.perf_counter() - started
        del documents
    db.drop_collection("residents_raw")
    gc.collect()
    print(f"raw baseline done in {time.perf_counter() - building:.0f} s ({seconds:.0f} s timed)")
    return seconds


class RssSampler:
    """The service's resident set size every RSS_SAMPLE_S, from /proc (Linux)."""

    def __init__(self, pid: int):
        self.pid = pid
        self.samples: list[tuple[float, int]] = []  # (seconds since start, bytes)
        self._started = time.perf_counter()
        self._running = True
        self._thread = eventlet.spawn(self._run)

    def rss(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS")

    def _run(self) -> None:
        while self._running:
            self.samples.append((time.perf_counter() - self._started, self.rss()))
            eventlet.sleep(RSS_SAMPLE_S)

    def stop(self) -> None:
        self._running = False
        self._thread.wait()
        self.samples.append((time.perf_counter() - self._started, self.rss()))

    def report(self) -> None:
        values = [rss for _, rss in self.samples]
        mib = 1024 * 1024
        peak_at, peak = max(self.samples, key=lambda sample: sample[1])
        print(
            f"service RSS: start {values[0] / mib:.0f} MiB, peak {peak / mib:.0f} MiB "
            f"(at {peak_at:.0f} s), end {values[-1] / mib:.0f} MiB ({len(values)} samples)"
        )
        tenths = [values[min(len(values) - 1, len(values) * step // 10)] for step in range(11)]
        print(
            "service RSS by tenth of the import (MiB): "
            + " ".join(f"{v / mib:.0f}" for v in tenths)
        )


def import_over_rpc(rpc: "Rpc", db, files: list[bytes], pid: int) -> float:
    """Seconds from the first upload until every job is finished (the service's timer
    runs them), with the service's RSS sampled meanwhile."""
    sampler = RssSampler(pid)
    started = time.perf_counter()
    job_ids = []
    for number, content in enumerate(files):
        encoded = base64.b64encode(content).decode()
        job = rpc.call(IMPORTER, "start_import", "residents", f"part-{number}.csv", encoded)
        job_ids.append(job["id"])
        del encoded
    jobs = db[store.IMPORT_JOBS]
    while jobs.count_documents(
        {"_id": {"$in": job_ids}, "status": {"$in": ["finished", "failed"]}}
    ) < len(job_ids):
        eventlet.sleep(0.2)
    seconds = time.perf_counter() - started
    sampler.stop()
    sampler.report()
    for job in jobs.find({"_id": {"$in": job_ids}}):
        assert job["status"] == "finished", job.get("failure")
    return seconds


def check_stored(db, rows: int) -> None:
    """What mongod holds, counted there (not the jobs' counters)."""
    residents = db[store.RESIDENTS].count_documents({})
    history = db[store.RESIDENT_HISTORY].count_documents({"action": "imported"})
    errors = db[store.IMPORT_ERRORS].count_documents({})
    print(
        f"stored: {residents} residents, {history} 'imported' history entries, {errors} row errors"
    )
    assert residents == rows and history == rows and errors == 0, (residents, history, errors)


def bench_import(rpc: "Rpc", db, cipher, files: list[bytes], rows: int, pid: int) -> float:
    setup_county(db)
    population = Population(db, cipher, None, SYSTEM, COUNTY)
    raw_s = raw_insert(db, population, files)
    imported_s = import_over_rpc(rpc, db, files, pid)
    check_stored(db, rows)
    imported = rate_line("import jobs", rows, imported_s, f"; {len(files)} files, over RPC")
    raw = rate_line("raw insert_many", rows, raw_s)
    record("import", "resident import jobs", imported, "raw insert_many", raw, "rows/s")
    return imported / raw


def profile_import(client, cipher, content: bytes, rows: int) -> None:
    """cProfile of one job run in this process (first `rows` rows, fresh database), to
    stderr."""
    lines = content.split(b"\r\n")
    sample = b"\r\n".join(lines[: rows + 1]) + b"\r\n"
    db = client["bench_population_profile"]
    setup_county(db)
    population = Population(db, cipher, None, SYSTEM, COUNTY)
    jobs = ImportJobs(population)
    jobs.start("residents", "profiled.csv", base64.b64encode(sample).decode())
    profiler = cProfile.Profile()
    profiler.enable()
    jobs.run_queued()
    profiler.disable()
    print(f"\nprofile of an import job of {rows} rows:", file=sys.stderr)
    stats = pstats.Stats(profiler, stream=sys.stderr).strip_dirs()
    stats.sort_stats("cumulative").print_stats(45)
    stats.sort_stats("tottime").print_stats(25)


# ---------------------------------------------------------------------------- reads
class Rpc:
    """A standalone RPC proxy to the population service; each call carries the context
    of whoever acts (set per call, as the gateway does)."""

    def __init__(self, config: dict):
        self.standalone = ClusterRpcProxy(config, timeout=120)
        self.cluster = self.standalone.start()

    def call(self, who: CallerContext, method: str, *args, **kwargs):
        self.standalone._worker_ctx.data = who.to_context_data()
        return getattr(self.cluster["population"], method)(*args, **kwargs)

    def raw(self, method: str, *args):
        """The bare service's raw query (bench/raw_population.py)."""
        return getattr(self.cluster[RAW_SERVICE], method)(*args)

    def stop(self) -> None:
        self.standalone.stop()


def grid_worker(grid: str) -> CallerContext:
    return CallerContext(user_id=f"worker-{grid}", roles=("grid_worker",), scope=grid)


def bench_reads(rpc: Rpc, db, cipher, sample: list[dict], calls: int, warmup: int) -> float:
    """p50/p99 of each read over RPC against the raw indexed query, both through pymongo
    here and served over RPC by the bare service; returns the lowest ratio of the RPC
    ones (raw p99 over RPC / service p99)."""
    residents = db[store.RESIDENTS]
    rng = random.Random(5)
    grids = sorted({row["grid_code"] for row in sample})
    phoned = [row for row in sample if row["phone"]]
    latencies: dict[str, list[float]] = defaultdict(list)

    def timed(name: str, number: int, call, *args):
        started = time.perf_counter()
        result = call(*args)
        if number >= warmup:
            latencies[name].append(time.perf_counter() - started)
        return result

    def raw_page(grid: str, cursor: str) -> list[dict]:
        query = {"path": grid, "status": "active", "_id": {"$gt": cursor}}
        return list(residents.find(query).sort("_id", 1).limit(PAGE))

    def raw_find(field: str, index: str) -> list[dict]:
        return list(residents.find({field: index}))

    for number in range(warmup + calls):
        grid = rng.choice(grids)
        cursor = f"{rng.getrandbits(128):032x}"  # a keyset position anywhere in the grid
        worker = grid_worker(grid)
        timed("health", number, rpc.call, worker, "health")
        raw_page(grid, cursor)  # untimed: whichever ran first would read the pages in
        raw = timed("list raw", number, raw_page, grid, cursor)
        raw_rpc = timed("list raw RPC", number, rpc.raw, "page", grid, cursor, PAGE)
        page = timed("list", number, rpc.call, worker, "list_residents", grid, cursor, PAGE)
        expected = [doc["_id"] for doc in raw]
        assert [item["id"] for item in page["items"]] == expected
        assert [doc["_id"] for doc in raw_rpc] == expected

        for kind, field in (("id", "id_number"), ("phone", "phone")):
            row = rng.choice(sample if kind == "id" else phoned)
            worker = grid_worker(row["grid_code"])
            index = cipher.blind_index(row[field], field)  # what a raw look-up is given
            raw_find(f"{kind}_index", index)  # untimed, as for the page
            raw = timed(f"{kind} raw", number, raw_find, f"{kind}_index", index)
            raw_rpc = timed(f"{kind} raw RPC", number, rpc.raw, "find", f"{kind}_index", index)
            by = (row[field], None) if kind == "id" else (None, row[field])
            found = timed(kind, number, rpc.call, worker, "find_resident", *by)
            assert len(raw) == 1 and [item["id"] for item in found] == [raw[0]["_id"]]
            assert [doc["_id"] for doc in raw_rpc] == [raw[0]["_id"]]

    latency_line("health RPC (floor)", latencies["health"])
    ratios = []
    for name, figure in (
        ("list", "list a grid's page of 50"),
        ("id", "find by ID number"),
        ("phone", "find by phone"),
    ):
        p50, p99 = latency_line(f"{name} over RPC", latencies[name])
        rpc_p50, rpc_p99 = latency_line(f"{name} raw query over RPC", latencies[f"{name} raw RPC"])
        raw_p50, raw_p99 = latency_line(f"{name} raw query (pymongo)", latencies[f"{name} raw"])
        print(
            f"{name} ratio (raw p99 / service p99): over RPC {rpc_p99 / p99:.3f} "
            f"(p50 {rpc_p50 / p50:.3f}); pymongo here {raw_p99 / p99:.3f} (p50 {raw_p50 / p50:.3f})"
        )
        record(
            "import",
            f"{figure} p99 over RPC",
            p99,
            "raw indexed query over RPC p99",
            rpc_p99,
            "ms",
            ratio=rpc_p99 / p99,
        )
        record(
            "import",
            f"{figure} p99 over RPC",
            p99,
            "raw indexed query in-process p99",
            raw_p99,
            "ms",
            ratio=raw_p99 / p99,
        )
        ratios.append(rpc_p99 / p99)
    query = {"path": grids[0], "status": "active", "_id": {"$gt": "8"}}
    explain = residents.find(query).sort("_id", 1).limit(PAGE).explain()
    print(f"list plan: {_plan(explain['queryPlanner']['winningPlan'])}")
    return min(ratios)


def _plan(stage: dict) -> str:
    name = stage.get("stage", "?")
    if "indexName" in stage:
        name += f"({stage['indexName']})"
    inner = stage.get("inputStage")
    return f"{name} <- {_plan(inner)}" if inner else name


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
    located_p50, _ = latency_line("locate", locate_latencies)
    raw_p50, _ = latency_line("raw geo find_one", raw_latencies)
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
def service_process(module: str, env: dict, servers) -> ManagedProcess:
    return ManagedProcess(
        name=module.rsplit(".", 1)[-1],
        argv=[sys.executable, "-m", module],
        env={**env, "METRICS_PORT": str(free_port())},
        run_dir=servers.run_dir,
        log_dir=servers.log_dir,
        marker=module,
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000, help="residents to import")
    parser.add_argument("--file-rows", type=int, default=250_000, help="rows per import file")
    parser.add_argument("--calls", type=int, default=1000, help="read calls (each kind, side)")
    parser.add_argument("--grids", type=int, default=80_000, help="grid polygons for locate")
    parser.add_argument("--locate-calls", type=int, default=2000, help="locate calls (each side)")
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument(
        "--profile", action="store_true", help="also cProfile an import job (to stderr)"
    )
    parser.add_argument("--amqp-uri", default="amqp://guest:guest@127.0.0.1:5672/")
    parser.add_argument("--management-uri", default="http://guest:guest@127.0.0.1:15672")
    args = parser.parse_args()
    # A SIGTERM (a `timeout`, a CI limit) still stops the service processes and mongod
    # and removes the data directory: the `finally` blocks run.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    started = time.perf_counter()
    files, sample = import_files(args.rows, args.file_rows)
    print(
        f"generated {args.rows} residents: {sum(map(len, files)) / 1e6:.1f} MB of CSV in "
        f"{len(files)} files in {time.perf_counter() - started:.1f} s (not timed)"
    )
    with (
        private_vhost(args.amqp_uri, args.management_uri) as amqp_uri,
        private_servers(prefix="gridwork-bench-import-") as servers,
    ):
        env = {
            "AMQP_URI": amqp_uri,
            "MONGO_URI": servers.mongo_uri,
            "MONGO_DB_PREFIX": "bench",
            "COUNTY_CODE": COUNTY,
            "LOG_LEVEL": "WARNING",
            "GRIDWORK_DEV_MODE": "true",  # a private, throwaway stack
        }
        settings = Settings.from_env(env)
        cipher = PersonalDataCipher.from_settings(settings)
        client = new_client(settings, app_name="gridwork-bench")
        db = client[settings.database_name("population")]
        service = service_process("services.population", env, servers)
        raw_service = service_process("bench.raw_population", env, servers)
        print(f"private mongod :{servers.mongo_port}, vhost {urlsplit(amqp_uri).path[1:]}")
        print(f"{load_line()}; import batches of {BATCH_SIZE} rows")
        rpc = None
        try:
            service.start()
            raw_service.start()
            rpc = Rpc(settings.nameko_config())
            try:
                wait_until(lambda: _answers(rpc), 60, "the population service", 0.5)
            except TimeoutError:
                print(f"--- population\n{tail(service.logfile)}", file=sys.stderr)
                raise
            pid = service.running_pid()
            import_ratio = bench_import(rpc, db, cipher, files, args.rows, pid)
            print(f"import ratio {import_ratio:.3f}")
            del files
            gc.collect()
            reads_ratio = bench_reads(rpc, db, cipher, sample, args.calls, args.warmup)
            print(f"reads ratio (lowest) {reads_ratio:.3f}")
            if args.profile:
                content = b"".join(import_files(min(args.rows, 50_000), 50_000)[0])
                profile_import(client, cipher, content, min(args.rows, 50_000))
            if args.grids:
                locate_ratio = bench_locate(
                    client, cipher, args.grids, args.locate_calls, args.warmup
                )
                print(f"locate ratio {locate_ratio:.3f}")
        finally:
            if rpc is not None:
                rpc.stop()
            service.stop()
            raw_service.stop()
            client.close()
    print(f"ratio {import_ratio:.3f}")


def _answers(rpc: Rpc) -> bool:
    try:
        rpc.call(SYSTEM, "health")
        rpc.raw("find", "id_index", "none")
    except Exception:  # not consuming yet: the call times out or the queue is missing
        return False
    return True


if __name__ == "__main__":
    main()
