"""Media upload: presigned upload + confirm through the media service vs raw S3 puts, same run.

    PYTHONPATH=. .venv/bin/python bench/media.py [--photos 1000] [--concurrency 4] [--profile]

Starts its own mongod (a single-node replica set) and its own S3 server
(`devstack.infra.s3_process`: a genuine `minio` if one is on PATH, else `rclone serve s3`),
each on a free port in one temporary directory, and uses the RabbitMQ on 127.0.0.1:5672 in
a fresh vhost (created and deleted through the management API), so it touches no data of
`make up`. The population and events services run in this process, with the callers. The
media service runs as it is deployed (deploy/k8s: the `media` and `media-describer`
Deployments), as two child processes: its API role (`python -m services.media api`:
slots, confirms) at the normal priority, and its describing role
(`python -m services.media describer`: the `media.received` handler) at the lowest CPU
priority (`os.nice(19)` in that child), so that on this machine's shared cores the
decoding yields to the confirm path, as in production, where it runs on pods of its own
with a CPU budget of its own.
Setup (not timed): the test county's territory, its departments, and one incident
reported by a grid worker, which owns every photo.

The photos: ONE JPEG of random noise (12 MP, 4000 x 3000, with EXIF capture time and GPS,
its quality chosen so that it weighs about `--photo-mb` MB) is made once; photo i is those
bytes with 24 bytes after the JPEG's end marker (16 random bytes drawn once per run, then
i in 8 digits), so every photo still sniffs and decodes as the same JPEG but has its own
SHA-256 and is stored as its own object. Made per upload, not kept (one 2 MB copy, on both
sides alike).

C concurrent callers (green threads, each with its own ClusterRpcProxy in the grid worker's
name and its own HTTP session), each taking the next photo, then run:

- service: the caller hashes the photo (SHA-256, as a declaring client does) -> RPC
  `media.request_upload` declaring it (the owner check, answered from a recent yes after
  the first photo; the slot claims `objects/<sha256>` and its PUT goes there, signed over
  `x-amz-checksum-sha256`) -> HTTP PUT of the bytes with that header -> RPC
  `media.confirm_upload` (the object's size and first bytes in one ranged GET: size and
  type checked; stored in MongoDB with its SHA-256 checked at once on a server that checks
  checksums, else pending; `media.received` published). The describer process then
  reads the photo, checks its SHA-256 (the content is then stored), reads its EXIF, makes
  and stores its thumbnail and sends `media.stored` and `media.described`, while the timed
  run goes on; after the run the script waits until every timed photo is described and
  prints that time too, and the CPU the describer process spent
  (`--undeclared` asks for slots without a SHA-256: upload, read back, copy);
- raw: `put_object` of the same bytes to `raw/<i>` with the MinIO SDK (a client built as
  the service builds its own), half before the service run and half after, so that noise
  on a shared machine (and the S3 server's growing directory) hits both sides alike;
- held back (after both, untimed for the ratio): as many photos again through the service
  path with the describer process stopped (the events wait in their queue), then the
  describer started again until all are described: what the upload and confirm cost with
  no describing on this machine's cores at all, printed as
  `ratio with the describing held back`.

Each side is warmed up first (2 photos per caller, not timed), and about 1 GB of raw puts
(`fill/`, untimed) goes to the S3 server before anything is timed: on this VM its CPU per
PUT grows over the first gigabyte a run writes, which would favour the side timed first.
The time each step of the service's slot and confirm takes is measured inside the API
process by wrapping MediaDesk / MediaStore methods (media_steps.py; wall time, which
includes waiting on the process's one eventlet hub), during the timed run and during an
untimed pass of 20 photos one at a time (one caller; the raw side too), which shows what
each step costs by itself. The CPU
seconds of this process (the callers), the API process, the describer process, the S3
server, mongod and the RabbitMQ node (the whole node, other vhosts included) are read from
/proc, and printed per photo. `--profile` also
cProfiles 20 confirms run one at a time through MediaDesk directly (to stderr). MB are
10^6 bytes. The last line is `ratio <service MB/s / raw put MB/s>`.
"""

import gridwork_common.green  # noqa: F401  (first: patches eventlet before other imports)

# isort: split

import argparse
import cProfile
import hashlib
import io
import math
import os
import pstats
import secrets
import shutil
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from urllib.parse import urlsplit

import eventlet
import requests
from nameko.runners import ServiceRunner
from nameko.standalone.rpc import ClusterRpcProxy
from nameko.testing.rabbit import Client
from PIL import Image

from bench.media_steps import API_PROCESS, STEP_TIMES_SETTING, collect, steps_report
from bench.results import record
from bench.support import (
    CpuMeter,
    beams,
    cpu_line,
    load_line,
    percentiles,
    private_servers,
    private_vhost,
)
from devstack.processes import ManagedProcess, wait_until
from gridwork_common.config import Settings
from gridwork_common.context import CallerContext
from gridwork_common.mongo import new_client as mongo_client
from services.events.service import EventsService
from services.media.domain.kinds import size_limits, sniff
from services.media.domain.photos import photo_metadata, thumbnail
from services.media.storage import media_store, new_client
from services.media.usecases import MediaDesk
from services.population.service import PopulationService
from tests.population_data import COUNTY, GRID_A1, TOWNSHIP_A, VILLAGE_A, county_features

WORKER = CallerContext(user_id="bench-worker-a1", roles=("grid_worker",), scope=GRID_A1)
SETUP = CallerContext(user_id="bench-setup", roles=("admin", "system"), scope=COUNTY)
CONTENT_TYPE = "image/jpeg"
PHOTO_SIDES = (4000, 3000)  # 12 MP, as a phone camera takes them
SUFFIX_BYTES = 24  # after the JPEG end marker: 16 random bytes of the run, 8 digits
MB = 1_000_000
PUT_ATTEMPTS = 3
WARMUP_PER_CALLER = 2
# Written to the S3 server before anything is timed: on this VM its CPU per PUT grows over
# the first gigabyte a run writes (the kernel's copy into freshly allocated page cache;
# docs/benchmarks.md), which would favour whichever side is timed first.
FILLER_MB = 1000
PROFILED_CONFIRMS = 20
ALONE_PHOTOS = 20  # after the timed run: one caller, one photo at a time, each side


# ---------------------------------------------------------------------------- photos
class Photos:
    """One noise JPEG of about `megabytes` MB made once; `photo(i)` is it with a suffix of
    its own after the end marker, which decoders ignore and the SHA-256 does not."""

    def __init__(self, megabytes: float):
        started = time.perf_counter()
        width, height = PHOTO_SIDES
        image = Image.frombytes("RGB", PHOTO_SIDES, os.urandom(width * height * 3))
        exif = Image.Exif()
        exif[0x0132] = "2026:11:20 09:30:00"  # DateTime
        exif[0x8825] = {1: "N", 2: (24.0, 18.0, 18.0), 3: "E", 4: (102.0, 30.0, 18.0)}
        target = megabytes * MB
        low, high, best = 1, 95, b""
        while low <= high:  # the size grows with the quality: bisect for the target
            quality = (low + high) // 2
            buffer = io.BytesIO()
            image.save(buffer, "JPEG", quality=quality, exif=exif)
            encoded = buffer.getvalue()
            if not best or abs(len(encoded) - target) < abs(len(best) - target):
                best, self.quality = encoded, quality
            if len(encoded) < target:
                low = quality + 1
            else:
                high = quality - 1
        assert best.endswith(b"\xff\xd9") and sniff(best[:64]) == CONTENT_TYPE
        self.base = best + os.urandom(SUFFIX_BYTES - 8)
        self.size = len(best) + SUFFIX_BYTES
        self.seconds = time.perf_counter() - started

    def photo(self, number: int) -> bytes:
        return self.base + f"{number:08d}".encode()


# ---------------------------------------------------------------------------- report
def rate_line(label: str, latencies: list[float], nbytes: int, seconds: float) -> float:
    rate = nbytes / MB / seconds
    p50, p99 = percentiles(latencies)
    print(
        f"{label:<9} {rate:7.1f} MB/s {len(latencies) / seconds:7.1f} photos/s   "
        f"p50 {p50:7.1f} ms   p99 {p99:7.1f} ms   "
        f"({len(latencies)} photos, {nbytes / MB:.0f} MB in {seconds:.1f} s)"
    )
    return rate


def latency_line(label: str, latencies: list[float]) -> None:
    p50, p99 = percentiles(latencies)
    mean = statistics.fmean(latencies) * 1000
    print(f"  {label:<24} p50 {p50:7.1f} ms   p99 {p99:7.1f} ms   mean {mean:7.1f} ms")


# ---------------------------------------------------------------------------- services
# The describer process: `python -m services.media describer` at the lowest CPU priority.
# It leads a session of its own (ManagedProcess), and with Linux's scheduler autogroups a
# session is a group of its own, in which alone a process's nice applies: the group's nice
# is set too (/proc/self/autogroup; raising it needs no privilege).
NICE_DESCRIBER = """
import contextlib, os, runpy, sys
os.nice(19)
with contextlib.suppress(OSError), open("/proc/self/autogroup", "w") as group:
    group.write("19")
sys.argv = ["services.media", "describer"]
runpy.run_module("services.media", run_name="__main__", alter_sys=True)
"""
RECEIVED_QUEUE = "evt-media-media.received--media.check_and_describe"
RPC_QUEUE = "rpc-media"


def api_process(env: dict, root: Path) -> ManagedProcess:
    """`python -m services.media api` (slots, confirms), as its Deployment runs it: its
    own process at the normal priority, its steps timed (media_steps.py)."""
    return ManagedProcess(
        name="media-api",
        argv=[sys.executable, "-c", API_PROCESS],
        env={**env, "PYTHONPATH": os.getcwd(), STEP_TIMES_SETTING: str(step_times_file(root))},
        run_dir=root / "run",
        log_dir=root / "log",
        marker="serve_step_times",
    )


def step_times_file(root: Path) -> Path:
    return root / "run" / "media-api-steps.json"


def describer_process(env: dict, root, workers: int) -> ManagedProcess:
    return ManagedProcess(
        name="media-describer",
        argv=[sys.executable, "-c", NICE_DESCRIBER],
        env={**env, "PYTHONPATH": os.getcwd(), "NAMEKO_MAX_WORKERS": str(workers)},
        run_dir=root / "run",
        log_dir=root / "log",
        marker="os.nice(19)",
    )


def autogroup(pid: int | None) -> str:
    try:
        return Path(f"/proc/{pid}/autogroup").read_text().strip()
    except OSError:
        return "no scheduler autogroup"


def wait_consuming(management_uri: str, vhost: str, queue: str) -> None:
    """Until `queue` has a consumer (the management API's counts lag a few seconds)."""
    rabbit = Client(management_uri)

    def consumed() -> bool:
        try:
            return (rabbit.get_queue(vhost, queue).get("consumers") or 0) > 0
        except Exception:  # not declared yet
            return False

    wait_until(consumed, 120, f"a consumer on {queue}", 0.5)


def started_runner(config: dict, *services) -> ServiceRunner:
    runner = ServiceRunner(config)
    for service in services:
        runner.add_service(service)
    runner.start()
    return runner


# ---------------------------------------------------------------------------- callers
class Uploader:
    """One green thread's RPC proxy (in the grid worker's name) and HTTP session."""

    def __init__(self, config: dict, declare: bool = True):
        self.declare = declare
        self.standalone = ClusterRpcProxy(config, context_data=WORKER.to_context_data(), timeout=60)
        self.media = self.standalone.start().media
        self.http = requests.Session()
        self.retries: list[int] = []  # the status of each PUT that was answered 5xx

    def upload(self, data: bytes, incident_id: str, phases: dict[str, list[float]]) -> dict:
        owner = {"kind": "incident", "id": incident_id}
        t0 = time.perf_counter()
        sha256 = hashlib.sha256(data).hexdigest() if self.declare else None
        ts = time.perf_counter()
        slot = self.media.request_upload(
            CONTENT_TYPE, len(data), "incident_report", owner, sha256=sha256
        )
        t1 = time.perf_counter()
        for attempt in range(PUT_ATTEMPTS):
            put = self.http.put(slot["upload_url"], data=data, headers=slot["headers"], timeout=60)
            if put.status_code < 500 or attempt == PUT_ATTEMPTS - 1:
                break
            self.retries.append(put.status_code)  # as a phone would, PUT the bytes again
        assert put.status_code in (200, 204), (put.status_code, put.text[:300])
        t2 = time.perf_counter()
        stored = self.media.confirm_upload(slot["media_id"])
        t3 = time.perf_counter()
        phases["client SHA-256"].append(ts - t0)
        phases["request_upload RPC"].append(t1 - ts)
        phases["PUT to presigned URL"].append(t2 - t1)
        phases["confirm_upload RPC"].append(t3 - t2)
        return stored

    def stop(self) -> None:
        self.http.close()
        self.standalone.stop()


def run_service(
    uploaders: list[Uploader], photos: Photos, numbers: range, incident_id: str
) -> tuple[list[float], dict[str, list[float]], dict[int, dict], float]:
    """Upload and confirm photos `numbers` with all callers at once: (latency per photo,
    latencies per phase, what confirm returned by number, seconds)."""
    latencies: list[float] = []
    phases: dict[str, list[float]] = defaultdict(list)
    stored: dict[int, dict] = {}
    queue = iter(numbers)

    def work(uploader: Uploader) -> None:
        for number in queue:  # a shared iterator: each photo is taken once
            data = photos.photo(number)
            started = time.perf_counter()
            stored[number] = uploader.upload(data, incident_id, phases)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    join([eventlet.spawn(work, uploader) for uploader in uploaders])
    return latencies, phases, stored, time.perf_counter() - started


def run_raw(client, bucket: str, photos: Photos, numbers, concurrency: int, prefix="raw/"):
    """put_object of photos `numbers` to `<prefix><i>`: (latency per photo, seconds)."""
    latencies: list[float] = []
    queue = iter(numbers)

    def work() -> None:
        for number in queue:
            data = photos.photo(number)
            started = time.perf_counter()
            client.put_object(
                bucket, f"{prefix}{number}", io.BytesIO(data), len(data), content_type=CONTENT_TYPE
            )
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    join([eventlet.spawn(work) for _ in range(concurrency)])
    return latencies, time.perf_counter() - started


def join(threads: list) -> None:
    """Wait for all; if one fails, stop the others before raising (their proxies and
    sockets are closed next)."""
    try:
        for thread in threads:
            thread.wait()
    except BaseException:
        for thread in threads:
            thread.kill()
        raise


# ---------------------------------------------------------------------------- checks
def wait_described(settings: Settings, media_ids: list[str], started: float) -> float:
    """Seconds from `started` until every one of `media_ids` has its thumbnail and
    metadata (polled in MongoDB)."""
    client = mongo_client(settings, app_name="gridwork-bench")
    try:
        media = client[settings.database_name("media")].media
        query = {"_id": {"$in": media_ids}, "thumbnail.status": "pending"}
        wait_until(lambda: not media.count_documents(query), 900, "thumbnails", 0.05)
    finally:
        client.close()
    return time.perf_counter() - started


def check_stored(settings: Settings, photos: Photos, stored: dict[int, dict], incident_id: str):
    """Every timed photo stored once, under the SHA-256 of its own bytes, with metadata,
    a thumbnail and no upload left behind (checked after the timed run, once described)."""
    for number, media in stored.items():
        assert media["state"] == "stored", media
        assert media["sha256"] == hashlib.sha256(photos.photo(number)).hexdigest(), media
    assert len({media["sha256"] for media in stored.values()}) == len(stored)
    client = mongo_client(settings, app_name="gridwork-bench")
    try:
        db = client[settings.database_name("media")]
        owned = {"owner.id": incident_id, "state": "stored"}
        total = db.media.count_documents(owned)
        objects = db.objects.count_documents({"state": "stored"})
        for record in db.media.find({"_id": {"$in": [m["id"] for m in stored.values()]}}):
            assert record["thumbnail"] == {"status": "ready"}, record
            metadata = record["metadata"]
            assert metadata["gps"] and metadata["width"] == PHOTO_SIDES[0], record
    finally:
        client.close()
    store = media_store(settings)
    leftovers = [
        item
        for item in store.client.list_objects(store.bucket, prefix="uploads/", recursive=True)
        if item.object_name != "uploads/.keep"  # the placeholder ensure_bucket keeps there
    ]
    thumbs = sum(1 for _ in store.client.list_objects(store.bucket, prefix="thumbnails/"))
    assert not leftovers, [item.object_name for item in leftovers[:5]]
    assert total == objects == thumbs >= len(stored), (total, objects, thumbs, len(stored))
    return total


# ---------------------------------------------------------------------------- profile
def profile_confirms(settings: Settings, photos: Photos, first: int, count: int) -> None:
    """cProfile of `count` confirms, one at a time, through MediaDesk directly (no RPC; the
    uploads made beforehand, untimed), to stderr."""
    client = mongo_client(settings, app_name="gridwork-bench")
    try:
        desk = MediaDesk(
            client[settings.database_name("media")],
            media_store(settings),
            None,
            lambda kind, owner_id: {},
            WORKER,
            size_limits(None),
        )
        owner = {"kind": "incident", "id": "bench-profile"}
        slots = []
        for number in range(first, first + count):
            data = photos.photo(number)
            sha256 = hashlib.sha256(data).hexdigest()
            slot = desk.request_upload(
                CONTENT_TYPE, len(data), "incident_report", owner, sha256=sha256
            )
            requests.put(slot["upload_url"], data=data, headers=slot["headers"], timeout=60)
            slots.append(slot["media_id"])
        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.enable()
        for media_id in slots:
            desk.confirm(media_id)
        profiler.disable()
        elapsed = time.perf_counter() - started
    finally:
        client.close()
    print(
        f"\nprofile of {count} confirms one at a time ({elapsed / count * 1000:.1f} ms each):",
        file=sys.stderr,
    )
    stats = pstats.Stats(profiler, stream=sys.stderr).strip_dirs()
    stats.sort_stats("cumulative").print_stats(30)
    stats.sort_stats("tottime").print_stats(20)


def describing_cpu(data: bytes, rounds: int = 5) -> str:
    """CPU ms of the describing's own work on one photo (this thread, before the run)."""

    def cpu_ms(work) -> float:
        started = time.process_time()
        for _ in range(rounds):
            work()
        return (time.process_time() - started) / rounds * 1000

    return (
        f"describing one photo by itself: thumbnail {cpu_ms(lambda: thumbnail(data)):.1f} ms "
        f"CPU, EXIF {cpu_ms(lambda: photo_metadata(data)):.1f} ms, "
        f"SHA-256 {cpu_ms(lambda: hashlib.sha256(data).digest()):.1f} ms"
    )


# ---------------------------------------------------------------------------- main
def bench(settings: Settings, args, servers, env: dict, vhost: str) -> float:
    photos = Photos(args.photo_mb)
    print(
        f"photo: {PHOTO_SIDES[0]} x {PHOTO_SIDES[1]} noise JPEG, quality {photos.quality}, "
        f"{photos.size} bytes (made in {photos.seconds:.1f} s, not timed)"
    )
    print(f"  {describing_cpu(photos.photo(0))}")
    store = media_store(settings)
    store.ensure_bucket()
    checks = store.checks_sha256()
    print(
        f"the S3 server {'checks' if checks else 'does not check'} x-amz-checksum-sha256: "
        "confirms read only the first bytes"
        + ("" if checks else "; the bytes are checked by the step after the confirm")
    )
    raw_client = new_client(settings)
    config = settings.nameko_config()
    runner = started_runner(config, PopulationService, EventsService)
    api = api_process(env, servers.root)
    describer = describer_process(env, servers.root, args.describer_workers)
    pids = servers.pids

    def meter() -> CpuMeter:  # the describer's pid changes when it is started again
        return CpuMeter(
            {
                "this process": [os.getpid()],
                "media API": [api.running_pid()],
                "describer": [describer.running_pid()],
                "S3 server": [pids["s3"]],
                "mongod": [pids["mongod"]],
                "RabbitMQ": beams(),
            }
        )

    def start_describer() -> None:
        describer.start()
        wait_consuming(args.management_uri, vhost, RECEIVED_QUEUE)

    uploaders: list[Uploader] = []
    try:
        api.start()
        wait_consuming(args.management_uri, vhost, RPC_QUEUE)
        print(f"media API process pid {api.running_pid()} (python -m services.media api)")
        start_describer()
        print(
            f"describer process pid {describer.running_pid()}, nice 19, "
            f"{args.describer_workers} workers, {autogroup(describer.running_pid())}"
        )
        with ClusterRpcProxy(config, context_data=SETUP.to_context_data(), timeout=60) as rpc:
            rpc.population.import_territory(county_features())
            rpc.events.ensure_default_departments([COUNTY, TOWNSHIP_A, VILLAGE_A])
        with ClusterRpcProxy(config, context_data=WORKER.to_context_data(), timeout=60) as rpc:
            report = {"category": "04.01", "description": "基准照片", "location": [102.505, 24.305]}
            incident_id = rpc.events.report_incident(report, "bench-media")["incident"]["id"]
        print(f"incident {incident_id} reported by {WORKER.user_id} (setup)")

        uploaders = [Uploader(config, not args.undeclared) for _ in range(args.concurrency)]
        # Photos past the timed ones: warm-up (both sides; raw to warm/<i>), then profiling.
        warmup = range(args.photos, args.photos + args.concurrency * WARMUP_PER_CALLER)
        warmed = run_service(uploaders, photos, warmup, incident_id)[2]
        wait_described(settings, [m["id"] for m in warmed.values()], time.perf_counter())
        run_raw(raw_client, settings.s3_bucket, photos, warmup, args.concurrency, "warm/")
        filler = range(math.ceil(FILLER_MB * MB / photos.size))
        _, filler_s = run_raw(
            raw_client, settings.s3_bucket, photos, filler, args.concurrency, "fill/"
        )
        print(f"{len(filler)} photos put to fill/ first, untimed ({filler_s:.1f} s)")

        cpu = meter()
        half = args.photos // 2
        before = cpu.snapshot()
        raw_latencies, raw_s = run_raw(
            raw_client, settings.s3_bucket, photos, range(half), args.concurrency
        )
        raw_cpu = cpu.since(before)

        for uploader in uploaders:
            uploader.retries.clear()
        steps_file = step_times_file(servers.root)
        collect(api, steps_file)  # the warm-up's: dropped
        before = cpu.snapshot()
        started = time.perf_counter()
        latencies, phases, stored, service_s = run_service(
            uploaders, photos, range(args.photos), incident_id
        )
        service_cpu = cpu.since(before)
        together = collect(api, steps_file)
        ids = [media["id"] for media in stored.values()]
        described_s = wait_described(settings, ids, started)
        described_cpu = cpu.since(before)

        before = cpu.snapshot()
        more, more_s = run_raw(
            raw_client, settings.s3_bucket, photos, range(half, args.photos), args.concurrency
        )
        raw_cpu = {name: seconds + raw_cpu[name] for name, seconds in cpu.since(before).items()}
        raw_latencies += more
        raw_s += more_s
        retries = [status for uploader in uploaders for status in uploader.retries]

        # The same path again with the describer stopped until it is done.
        held_from = warmup.stop + ALONE_PHOTOS + PROFILED_CONFIRMS  # after the untimed ones
        held = range(held_from, held_from + args.photos)
        describer.stop()
        cpu = meter()
        before = cpu.snapshot()
        held_latencies, _, held_stored, held_s = run_service(uploaders, photos, held, incident_id)
        held_cpu = cpu.since(before)
        started = time.perf_counter()
        start_describer()
        cpu = meter()
        before = cpu.snapshot()
        caught_up_s = wait_described(settings, [m["id"] for m in held_stored.values()], started)
        caught_up_cpu = cpu.since(before)

        # Untimed: what each step costs with no other caller waiting on the same hub.
        extra = range(warmup.stop, warmup.stop + ALONE_PHOTOS)
        collect(api, steps_file)  # the held-back run's: dropped
        alone_latencies, _, alone_stored, _ = run_service(uploaders[:1], photos, extra, incident_id)
        alone = collect(api, steps_file)
        wait_described(settings, [m["id"] for m in alone_stored.values()], 0)
        raw_alone, _ = run_raw(raw_client, settings.s3_bucket, photos, extra, 1, "alone/")

        total = check_stored(settings, photos, stored, incident_id)
        print(
            f"checked: {len(stored)} timed photos stored under distinct SHA-256s "
            f"({total} with warm-up), a thumbnail each, no upload left"
        )
        nbytes = photos.size * args.photos
        print(f"{args.photos} photos of {photos.size / MB:.2f} MB, {args.concurrency} callers")
        service_rate = rate_line("service", latencies, nbytes, service_s)
        print(f"  presigned PUTs answered 5xx and sent again: {len(retries)} {retries[:10]}")
        for label, values in phases.items():
            latency_line(label, values)
        steps_report(together, args.photos, alone, ALONE_PHOTOS)
        print(f"  {cpu_line(service_cpu, service_s)}")
        print(f"  {per_photo_line(service_cpu, args.photos)}")
        print(
            f"every timed photo described (thumbnail + EXIF) {described_s:.1f} s after the "
            f"run began ({described_s - service_s:.1f} s after its last confirm): "
            f"{nbytes / MB / described_s:.1f} MB/s with thumbnails"
        )
        print(f"  {cpu_line(described_cpu, described_s)}")
        print(f"  {per_photo_line(described_cpu, args.photos)}")
        raw_rate = rate_line("raw put", raw_latencies, nbytes, raw_s)
        print(f"  {cpu_line(raw_cpu, raw_s)}")
        print(f"  {per_photo_line(raw_cpu, args.photos)}")
        print(
            f"{len(held)} more photos with the describer process stopped "
            f"(all described {caught_up_s:.1f} s after it was started again):"
        )
        held_rate = rate_line("held", held_latencies, nbytes, held_s)
        print(f"  {cpu_line(held_cpu, held_s)}")
        print(f"  {per_photo_line(held_cpu, args.photos)}")
        print(f"  catching up: {per_photo_line(caught_up_cpu, args.photos)}")
        print(f"  ratio with the describing held back {held_rate / raw_rate:.3f}")
        for label, values in (("service", alone_latencies), ("raw put", raw_alone)):
            p50, p99 = percentiles(values)
            print(
                f"one at a time, {label:<8} p50 {p50:7.1f} ms   p99 {p99:7.1f} ms   "
                f"({len(values)} photos, untimed)"
            )
        if args.profile:
            profile_confirms(settings, photos, extra.stop, PROFILED_CONFIRMS)
        record("media", "upload + confirm", service_rate, "raw S3 put", raw_rate, "MB/s")
        return service_rate / raw_rate
    finally:
        for uploader in uploaders:
            uploader.stop()
        runner.stop()
        describer.stop()
        api.stop()


def per_photo_line(used: dict[str, float], photos: int) -> str:
    parts = ", ".join(f"{name} {seconds / photos * 1000:.1f}" for name, seconds in used.items())
    return f"CPU ms per photo: {parts}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=1000, help="photos on each side")
    parser.add_argument("--concurrency", type=int, default=4, help="concurrent callers")
    parser.add_argument("--photo-mb", type=float, default=2.0, help="size of a photo, in MB")
    parser.add_argument(
        "--profile", action="store_true", help="also cProfile 20 confirms (to stderr)"
    )
    parser.add_argument(
        "--describer-workers",
        type=int,
        default=2,
        help="the describer's NAMEKO_MAX_WORKERS (2, as its Deployment: decoding is CPU-bound)",
    )
    parser.add_argument(
        "--undeclared", action="store_true", help="slots without a SHA-256 (upload, copy)"
    )
    parser.add_argument("--amqp-uri", default="amqp://guest:guest@127.0.0.1:5672/")
    parser.add_argument("--management-uri", default="http://guest:guest@127.0.0.1:15672")
    args = parser.parse_args()

    access_key, secret_key = "gridwork-bench", secrets.token_hex(16)
    started = time.perf_counter()
    with (
        private_vhost(args.amqp_uri, args.management_uri) as amqp_uri,
        private_servers((access_key, secret_key)) as servers,
    ):
        env = {
            "AMQP_URI": amqp_uri,
            "MONGO_URI": servers.mongo_uri,
            "MONGO_DB_PREFIX": "bench",
            "S3_ENDPOINT": f"127.0.0.1:{servers.s3_port}",
            "S3_ACCESS_KEY": access_key,
            "S3_SECRET_KEY": secret_key,
            "S3_BUCKET": "gridwork-bench-media",
            "COUNTY_CODE": COUNTY,
            "METRICS_PORT": "0",
            "GRIDWORK_DEV_MODE": "true",  # private, throwaway servers
        }
        settings = Settings.from_env(env)
        server = "minio" if shutil.which("minio") else "rclone serve s3"
        print(
            f"private mongod on port {servers.mongo_port}, {server} on port {servers.s3_port}; "
            f"RabbitMQ vhost {urlsplit(amqp_uri).path[1:]}"
        )
        print(load_line())
        ratio = bench(settings, args, servers, env, urlsplit(amqp_uri).path[1:])
    print(f"whole run (setup and clean-up included): {time.perf_counter() - started:.0f} s")
    print(load_line().replace("before the run", "at the end"))
    print(f"ratio {ratio:.3f}")


if __name__ == "__main__":
    main()
