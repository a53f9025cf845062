"""Assessment: live boards read from the summaries over RPC vs the naive loop over the
same facts, and facts folded into the summaries vs a raw `insert_many`, same run.

    PYTHONPATH=. .venv/bin/python bench/assessment.py [--facts 1000000] [--reads 30]

Starts its own mongod (a single-node replica set in a temporary directory, on a free
port) and uses the RabbitMQ on 127.0.0.1:5672 in a fresh vhost, so it touches no data of
`make up`. The county: 10 townships x 8 villages x 6 grids, 480 grid workers, 60
department handlers in 30 departments. A month (November 2026) of `--facts` facts shaped
as the service stores them, day by day as they would arrive: cases taken through the
loop (reported, accepted, registered, dispatched, signed, handled, verified, closed,
evaluated; some go overdue, are sent back, escalated, supervised or extended), visits,
resident records, logins and actions, and each grid's visit obligations.

- Ingestion: each batch of `--batch` facts folded into the summaries through the
  service's own path (`summaries.record`: facts stored once, cases updated and the
  subjects' changes written as change records, one transaction; in the background
  beside the next batch's fold, a period's records compacted every
  `COMPACT_AFTER_RECORDS` records and merged into the summaries once the folds went
  `QUIET_AFTER_FACTS` facts past it: `summary_upkeep.py`), timed until the last
  pending record is merged; then, once every merge is done, the same batches inserted
  raw (`insert_many` into a collection with the facts' indexes); the batches are made
  before either is timed; CPU seconds of each side, and the month's indicators read
  with the last records pending and once merged.
  Also, on a sample of another month, the rate of one fact a transaction (the event
  handlers' path before they took deliveries in batches), and, at the end, the event
  handlers' path itself: the sample published as CloudEvents to RabbitMQ and folded
  by the running service's batched handlers (until stored, and until merged).
- Reads (the service in this process, asked over RPC, clock pinned to January 2027):
  the county board (every level, six `scorecards` calls, as a county leader) and a
  township board (the four territory levels, as that township's leader: county-wide
  ranks, its own nodes), `--reads` times each; against the naive loop: the month's
  facts read with a plain `find` and `domain.indicators.indicators_by_subject` per
  level, scored the same way, `--naive-reads` times. Boards must be identical (checked),
  and so must the summaries' indicators and the plain definition's, level by level.
- A year board: the other eleven months of 2026 at `--year-month-facts` facts each, and
  the year's county board read over RPC, with the arithmetic to a year of 12 x 1,000,000
  (what a board reads is bounded whatever the facts: `year_arithmetic`).

The last lines are `ratio read county ...`, `ratio read township ...` (naive p50 / live
p50) and `ratio ingest ...` (summary facts/s / raw facts/s).
"""

import gridwork_common.green  # noqa: F401  (first: patches eventlet before other imports)

# isort: split

import argparse
import json
import os
import random
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import bson
from kombu import Connection, Exchange, Producer
from nameko.runners import ServiceRunner
from nameko.standalone.rpc import ClusterRpcProxy
from pymongo import MongoClient

from bench.results import record
from bench.support import CpuMeter, load_line, percentiles, private_servers, private_vhost
from gridwork_common import roles
from gridwork_common.clock import CLOCK_CONFIG_KEY, PinnedClock
from gridwork_common.config import Settings
from gridwork_common.context import CallerContext
from gridwork_common.events import new_event
from services.assessment import scorecards, store, summaries, summary_changes, summary_upkeep
from services.assessment.domain import indicators as reference
from services.assessment.domain.periods import Period
from services.assessment.domain.scoring import DEFAULT_RULES
from services.assessment.domain.summaries import p90_bucket
from services.assessment.service import AssessmentService

COUNTY = "530402"
TOWNSHIP = "530402001"
MONTH = Period.parse("2026-11")
YEAR = Period.parse("2026")
LEVELS = reference.LEVELS
TERRITORY = tuple(reference.TERRITORY_LEVELS)
LOOP = ["reported", "accepted", "registered", "dispatched", "signed", "handled", "verified"]
PINNED_AT = datetime(2027, 1, 10, 2, 0, tzinfo=UTC)  # every month of 2026 has ended
FULL_MONTH, FULL_YEAR = 1_000_000, 12_000_000


def county_grids() -> list[str]:
    return [
        f"{COUNTY}{township:03d}{village:03d}{grid:03d}"
        for township in range(1, 11)
        for village in range(1, 9)
        for grid in range(1, 7)
    ]


class FactMaker:
    """Facts of one month, shaped as `facts.fact_from_event` stores them, day by day."""

    def __init__(self, seed: int, month: Period):
        self.rng = random.Random(seed)
        self.month = month
        self.count = 0
        self.grids = county_grids()
        self.departments = [f"{COUNTY}-dept-{n:02d}" for n in range(30)]
        self.handlers = [f"handler-{n:02d}" for n in range(60)]
        first = month.first
        # the month's first midnight in China
        self.start = datetime(first.year, first.month, first.day, tzinfo=UTC) - timedelta(hours=8)

    def fact(self, type_, grid, actor, data, minute, department=None) -> dict:
        self.count += 1
        moment = self.start + timedelta(minutes=minute)
        local = moment + timedelta(hours=8)
        return {
            "_id": f"{self.month.text}-{self.count:x}",
            "type": type_,
            "source": "/counties/530402/bench",
            "time": moment,
            "day": local.strftime("%Y-%m-%d"),
            "period": local.strftime("%Y-%m"),
            "territory": grid,
            "path": [grid[:6], grid[:9], grid[:12], grid],
            "department": department,
            "actor": actor,
            "data": data,
        }

    def case(self, number: int, day: int) -> list[dict]:
        rng = self.rng
        grid = rng.choice(self.grids)
        worker = f"worker-{grid[-9:]}"
        handler = rng.choice(self.handlers)
        department = self.departments[self.handlers.index(handler) // 2]
        urgency = "urgent" if rng.random() < 0.05 else "normal"
        case_id = f"case-{self.month.text}-{number}"
        minute = day * 24 * 60 + rng.randrange(0, 24 * 60)
        steps = list(LOOP[: rng.randrange(1, len(LOOP) + 1)])
        if steps[-1] == "verified":
            if rng.random() < 0.08:
                steps[-1:-1] = ["reworked", "handled"]
            steps += ["closed"] + (["evaluated"] if rng.random() < 0.6 else [])
        if rng.random() < 0.1:
            steps.insert(rng.randrange(1, len(steps) + 1), "overdue")
            if rng.random() < 0.3:
                steps += ["escalated", "supervised"]
        if rng.random() < 0.03:
            steps.insert(1, "extended")
        made = []
        for action in steps:
            minute += rng.randrange(1, 240)
            with_department = department if LOOP.index("dispatched") <= _stage(action) else None
            actor = worker if action in ("reported", "verified") else handler
            if action in ("overdue", "escalated"):
                actor = None
            data = {
                "incident_id": case_id,
                "grid_code": grid,
                "urgency": urgency,
                "department": with_department,
                "actor_id": actor,
            }
            if action == "closed":
                data["handling_working_minutes"] = rng.randrange(10, 6000)
                data["ever_overdue"] = "overdue" in steps
            if action == "evaluated":
                data["satisfaction"] = rng.randrange(1, 6)
            fact = self.fact(f"incident.{action}", grid, actor, data, minute, with_department)
            fact["incident_id"] = case_id
            made.append(fact)
        return made

    def other(self, day: int) -> dict:
        rng = self.rng
        grid = rng.choice(self.grids)
        worker = f"worker-{grid[-9:]}"
        minute = day * 24 * 60 + rng.randrange(0, 24 * 60)
        roll = rng.random()
        if roll < 0.7:
            risk = rng.choice(["high", "medium", "low"])
            data = {"grid_code": grid, "worker_id": worker, "risk_level": risk}
            return self.fact("visit.recorded", grid, worker, data, minute)
        if roll < 0.85:
            kind = rng.choice(["resident.registered", "resident.updated", "resident.moved"])
            return self.fact(kind, grid, worker, {"grid_code": grid, "actor_id": worker}, minute)
        kind = rng.choice(["account.login", "account.action", "account.action"])
        return self.fact(kind, grid, worker, {"user_id": worker}, minute)

    def obligations(self, grid: str) -> dict:
        """The grid's visit obligations for the month, sent when it has ended."""
        rows = []
        for risk in ("high", "medium", "low"):
            required = self.rng.randrange(0, 12)
            if required:
                done = self.rng.randrange(0, required + 1)
                worker = f"worker-{grid[-9:]}"
                rows.append(
                    {"worker_id": worker, "risk_level": risk, "required": required, "done": done}
                )
        data = {"grid_code": grid, "rows": rows}
        days = (self.month.last - self.month.first).days + 1
        fact = self.fact("visit.obligations", grid, None, data, days * 24 * 60 + 60)
        fact["_id"] = f"{reference.VISIT_OBLIGATIONS}:{grid}:{self.month.text}"
        fact["period"] = self.month.text
        return fact

    def batches(self, total: int, size: int):
        """The month's facts in batches of about `size`, in the order they happen (a case
        spills into the next day or two, as its steps do)."""
        days = (self.month.last - self.month.first).days + 1
        batch: list[dict] = []
        number = 0
        for day in range(days):
            while self.count < total * (day + 1) // days:
                if self.rng.random() < 0.9:
                    number += 1
                    batch.extend(self.case(number, day))
                else:
                    batch.append(self.other(day))
                if len(batch) >= size:
                    yield batch
                    batch = []
        batch.extend(self.obligations(grid) for grid in self.grids)
        yield batch


def _stage(action: str) -> int:
    return LOOP.index(action) if action in LOOP else len(LOOP)


# ---------------------------------------------------------------------------- loading
def ingest(db, maker: FactMaker, total: int, size: int, raw=None, cpu=None, read=None) -> dict:
    """Every batch folded into the summaries (timed: the facts and their change records
    written, and the compactions and merges that `summaries.record` starts in the
    background, then the last merge of whatever is still pending, which waits for
    those, so the time runs until every fact is in the summaries), then inserted raw
    (timed) when a raw collection is given; with a `cpu` meter, the CPU seconds of
    each side; with a `read` (untimed here), its seconds with the records still
    pending and once merged. Returns seconds and counts."""
    folded_s = raw_s = 0.0
    facts = 0
    folded_cpu: dict = {}
    raw_cpu: dict = {}

    def add(into: dict, before) -> None:
        if cpu is not None:
            for name, value in cpu.since(before).items():
                into[name] = into.get(name, 0.0) + value

    # made before the timing: a merge runs in the background beside the next batch's fold,
    # and must not run hidden in the making of a batch
    batches = list(maker.batches(total, size))
    for batch in batches:
        before = cpu.snapshot() if cpu is not None else None
        started = time.perf_counter()
        facts += summaries.record(db, batch)
        folded_s += time.perf_counter() - started
        add(folded_cpu, before)
    pending = summary_changes.pending_records(db)  # not timed: a count for the printout
    read_pending_s = timed(read, times=1)[0][0] if read is not None else None
    before = cpu.snapshot() if cpu is not None else None
    started = time.perf_counter()
    last_merged = summaries.merge(db)
    last_merge_s = time.perf_counter() - started
    folded_s += last_merge_s
    add(folded_cpu, before)
    assert summary_changes.pending_records(db) == 0, "records left unmerged"
    read_merged_s = timed(read, times=1)[0][0] if read is not None else None
    if raw is not None:
        # raw, once the fold and its merges are done: no merge runs beside the inserts
        for batch in batches:
            before = cpu.snapshot() if cpu is not None else None
            started = time.perf_counter()
            raw.insert_many(batch, ordered=False)
            raw_s += time.perf_counter() - started
            add(raw_cpu, before)
    return {
        "facts": facts,
        "folded_s": folded_s,
        "raw_s": raw_s,
        "pending": pending,
        "last_merged": last_merged,
        "last_merge_s": last_merge_s,
        "read_pending_s": read_pending_s,
        "read_merged_s": read_merged_s,
        "folded_cpu": folded_cpu,
        "raw_cpu": raw_cpu,
    }


def sample_facts(count: int) -> list[dict]:
    """Facts of another month (October), for the one-by-one and event paths."""
    maker = FactMaker(99, Period.parse("2026-10"))
    made = [fact for batch in maker.batches(count, count) for fact in batch]
    return [fact for fact in made if fact["type"] != reference.VISIT_OBLIGATIONS][:count]


def one_by_one(db, count: int) -> float:
    """Facts/s folded one per transaction (the event handlers' path before batching),
    until merged into the summaries."""
    facts = sample_facts(count)
    started = time.perf_counter()
    for fact in facts:
        summaries.record(db, [fact])
    summaries.merge(db)  # until they are in the summaries
    return len(facts) / (time.perf_counter() - started)


SOURCES = {"incident": "events", "visit": "population", "resident": "population"}
SOURCES["account"] = "gateway"


def as_event(fact: dict) -> tuple[str, str, dict]:
    """The CloudEvent a fact came from: (exchange, routing key, payload)."""
    service = SOURCES[fact["type"].split(".")[0]]
    payload = new_event(
        source=f"/counties/{COUNTY}/{service}",
        routing_key=fact["type"],
        subject=fact["territory"],
        data=fact["data"],
        now=fact["time"],
        extensions={"department": fact["department"] or "none"},
    ).to_json_dict()
    return f"{service}.events", fact["type"], payload


def through_the_broker(config, db, count: int) -> tuple[float, float]:
    """Facts/s folded by the service's event handlers (batched deliveries), from the
    first publish until the last fact is stored, and until every change record is
    merged into the summaries (the service merges on its timer; here the bench merges
    what is pending as soon as the facts are stored): events published to RabbitMQ as
    the other services publish them."""
    events = [as_event(fact) for fact in sample_facts(count)]
    stored_before = db[store.FACTS].count_documents({})
    exchanges = {name: Exchange(name, type="topic", durable=True) for name, _, _ in events}
    with Connection(config["AMQP_URI"]) as connection:
        producer = Producer(connection.default_channel, serializer="json")
        started = time.perf_counter()
        for exchange_name, routing_key, payload in events:
            exchange = exchanges[exchange_name]
            producer.publish(payload, exchange=exchange, routing_key=routing_key, declare=[])
        while db[store.FACTS].count_documents({}) < stored_before + len(events):
            time.sleep(0.05)
        stored_s = time.perf_counter() - started
        while summary_changes.pending_records(db):
            summaries.merge(db)
        merged_s = time.perf_counter() - started
        return len(events) / stored_s, len(events) / merged_s


# ---------------------------------------------------------------------------- reading
def naive_boards(db, levels, working_days, period: Period = MONTH) -> dict:
    """The month's facts read with a plain find, each level counted by the plain loop."""
    first, last = period.day_texts()
    month_facts = list(
        db[store.FACTS].find(
            {
                "$or": [
                    {"day": {"$gte": first, "$lte": last}},
                    {"type": reference.VISIT_OBLIGATIONS, "period": {"$in": period.whole_months()}},
                ]
            }
        )
    )
    boards = {}
    for level in levels:
        found = reference.indicators_by_subject(month_facts, level, period, working_days)
        boards[level] = scorecards.board(level, period.text, DEFAULT_RULES, found)
    return boards


def scoped(boards: dict, scope: str) -> dict:
    return {level: scorecards._within(level, board, scope) for level, board in boards.items()}


def plain(value) -> dict:
    """As an RPC reply carries it (JSON)."""
    return json.loads(json.dumps(value))


def rpc_boards(rpc, levels, period: Period) -> dict:
    return {level: rpc.assessment.scorecards(level, period.text) for level in levels}


def timed(function, *args, times: int) -> tuple[list[float], object]:
    seconds, result = [], None
    for _ in range(times):
        started = time.perf_counter()
        result = function(*args)
        seconds.append(time.perf_counter() - started)
    return seconds, result


def working_days_of(period: Period) -> list[str]:
    return [
        day.isoformat()
        for day in (
            period.first + timedelta(days=n) for n in range((period.last - period.first).days + 1)
        )
        if day.weekday() < 5
    ]


def line(label: str, seconds: list[float]) -> float:
    p50, p99 = percentiles(seconds)
    print(f"  {label:<58} p50 {p50:9.1f} ms   p99 {p99:9.1f} ms   ({len(seconds)} reads)")
    return p50


# ---------------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--facts", type=int, default=FULL_MONTH, help="facts of the month")
    parser.add_argument("--batch", type=int, default=5000, help="facts per transaction")
    parser.add_argument("--reads", type=int, default=30, help="live reads of each board")
    parser.add_argument("--naive-reads", type=int, default=3, help="naive reads of each board")
    parser.add_argument("--year-month-facts", type=int, default=None, help="default facts/20")
    parser.add_argument("--one-by-one", type=int, default=2000, help="facts, one per transaction")
    parser.add_argument("--events", type=int, default=20000, help="facts as events, via RabbitMQ")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--amqp-uri", default="amqp://guest:guest@127.0.0.1:5672/")
    parser.add_argument("--management-uri", default="http://guest:guest@127.0.0.1:15672")
    args = parser.parse_args()
    year_month_facts = args.year_month_facts or args.facts // 20
    print(load_line())
    with (
        private_vhost(args.amqp_uri, args.management_uri) as amqp_uri,
        private_servers() as servers,
    ):
        settings = Settings.from_env(
            {
                "AMQP_URI": amqp_uri,
                "MONGO_URI": servers.mongo_uri,
                "MONGO_DB_PREFIX": "bench",
                "COUNTY_CODE": COUNTY,
                "METRICS_PORT": "0",
                "GRIDWORK_DEV_MODE": "true",  # private, throwaway servers
            }
        )
        print(f"private mongod on port {servers.mongo_port}; vhost {urlsplit(amqp_uri).path[1:]}")
        client = MongoClient(servers.mongo_uri, tz_aware=True)
        try:
            run(args, settings, client, servers, year_month_facts)
        finally:
            client.close()


def run(args, settings: Settings, client, servers, year_month_facts: int) -> None:
    db = client[settings.database_name("assessment")]
    for name, models in store.INDEXES.items():
        db[name].create_indexes(models)
    raw = client["bench_raw"]["facts"]
    raw.create_indexes(store.INDEXES[store.FACTS])
    for month in YEAR.months():  # the calendar as the service keeps it for ended months
        db[store.WORKING_DAYS].insert_one({"_id": month.text, "days": working_days_of(month)})
    cpu = CpuMeter({"mongod": [servers.pids["mongod"]], "bench": [os.getpid()]})

    # ingestion: the month, batch by batch, through the summaries and raw
    working = set(working_days_of(MONTH))

    def read_month():  # the county board's indicators, read in this process
        return summaries.indicators_by_level(db, LEVELS, MONTH, working)

    loaded = ingest(db, FactMaker(args.seed, MONTH), args.facts, args.batch, raw, cpu, read_month)
    folded_rate = loaded["facts"] / loaded["folded_s"]
    raw_rate = loaded["facts"] / loaded["raw_s"]
    print(f"ingestion: {loaded['facts']:,} facts of {MONTH.text} in batches of {args.batch:,}")
    for side in ("folded", "raw"):
        used = loaded[f"{side}_cpu"]
        print(
            f"  CPU, {side}: mongod {used['mongod']:.1f} s, bench {used['bench']:.1f} s "
            f"({used['mongod'] * 1e6 / loaded['facts']:.0f} + "
            f"{used['bench'] * 1e6 / loaded['facts']:.0f} us a fact)"
        )
    print(f"  folded into the summaries (one transaction a batch) {folded_rate:9,.0f} facts/s")
    print(
        f"    (while folding, a period compacted every {summary_upkeep.COMPACT_AFTER_RECORDS} "
        f"records and merged once {summary_upkeep.QUIET_AFTER_FACTS:,} facts past it; then the "
        f"{loaded['pending']} records still pending merged in {loaded['last_merge_s']:.2f} s, "
        f"timed; pending after: 0)"
    )
    print(
        f"    (the month's indicators of every level read in this process with those "
        f"{loaded['pending']} records pending: {loaded['read_pending_s'] * 1000:.0f} ms; "
        f"once merged: {loaded['read_merged_s'] * 1000:.0f} ms)"
    )
    print(f"  raw insert_many of the same batches                 {raw_rate:9,.0f} facts/s")
    client.drop_database("bench_raw")
    single = one_by_one(client["bench_one_by_one"], args.one_by_one)
    client.drop_database("bench_one_by_one")
    print(f"  one fact per transaction (the handlers' path before) {single:9,.0f} facts/s")

    summarized = summaries.indicators_by_level(db, LEVELS, MONTH, working)
    naive_seconds, naive = timed(naive_boards, db, LEVELS, working, times=args.naive_reads)
    month_facts = list(db[store.FACTS].find({}))
    for level in LEVELS:  # the summaries are the plain definition's indicators, exactly
        assert summarized[level] == reference.indicators_by_subject(
            month_facts, level, MONTH, working
        ), level
    del month_facts
    print("summaries identical to the plain definition at every level: checked")
    township_seconds, _ = timed(naive_boards, db, TERRITORY, working, times=args.naive_reads)

    clock = PinnedClock(PINNED_AT)
    config = {**settings.nameko_config(), CLOCK_CONFIG_KEY: clock}
    runner = ServiceRunner(config)
    runner.add_service(AssessmentService)
    runner.start()
    county_leader = CallerContext(user_id="leader", roles=(roles.LEADER,), scope=COUNTY)
    township_leader = CallerContext(user_id="t-leader", roles=(roles.LEADER,), scope=TOWNSHIP)
    try:
        with (
            ClusterRpcProxy(config, context_data=county_leader.to_context_data(), timeout=60) as c,
            ClusterRpcProxy(
                config, context_data=township_leader.to_context_data(), timeout=60
            ) as t,
        ):
            cold_s, _ = timed(rpc_boards, c, LEVELS, MONTH, times=1)  # nothing scored yet
            county_s, county = timed(rpc_boards, c, LEVELS, MONTH, times=args.reads)
            township_s, township = timed(rpc_boards, t, TERRITORY, MONTH, times=args.reads)
            assert county == plain(naive), "the live county board differs from the naive loop"
            assert township == plain(scoped({k: naive[k] for k in TERRITORY}, TOWNSHIP))
            print("boards over RPC identical to the naive loop's: checked")
            subjects = ", ".join(
                f"{level} {len(board['items'])}" for level, board in county.items()
            )
            print(f"scorecards per level: {subjects}")
            print(f"reads of the {MONTH.text} boards ({args.facts:,} facts):")
            line("county board, live, first read (scoring no subject kept)", cold_s)
            live_county = line("county board, live over RPC (6 levels)", county_s)
            naive_county = line("county board, naive loop (find + loop)", naive_seconds)
            live_township = line("township board, live over RPC (4 levels)", township_s)
            naive_township = line("township board, naive loop", township_seconds)

            # the year: eleven more months at a scaled-down size
            for month in YEAR.months():
                if month != MONTH:
                    ingest(
                        db,
                        FactMaker(args.seed + month.first.month, month),
                        year_month_facts,
                        args.batch,
                    )
            year_s, _ = timed(rpc_boards, c, LEVELS, YEAR, times=max(3, args.reads // 3))
            year_facts = args.facts + 11 * year_month_facts
            others = f"11 months x {year_month_facts:,}"
            print(f"year board {YEAR.text} ({year_facts:,} facts: {MONTH.text} above, {others}):")
            line("county board of the year, first read", year_s[:1])
            live_year = line("county board of the year, live over RPC", year_s)
            year_arithmetic(db, year_facts, live_year, settings.rpc_timeout)

            # last (its October facts are in no board checked above): the event path
            events_before = cpu.snapshot()
            stored_rate, events_rate = through_the_broker(config, db, args.events)
            events_used = cpu.since(events_before)
            print(
                f"the event handlers' path: {args.events:,} facts published as events to "
                f"RabbitMQ, folded in batched deliveries: {stored_rate:,.0f} facts/s until "
                f"stored, {events_rate:,.0f} facts/s until merged into the summaries "
                f"(x{events_rate / single:.1f} one per transaction; CPU ms a fact: "
                f"mongod {events_used['mongod'] * 1000 / args.events:.2f}, "
                f"service and bench {events_used['bench'] * 1000 / args.events:.2f})"
            )
    finally:
        runner.stop()
    for figure, live, naive_ms in (
        ("county board read live over RPC, p50", live_county, naive_county),
        ("township board read live over RPC, p50", live_township, naive_township),
    ):
        record("assessment", figure, live, "naive loop, p50", naive_ms, "ms", ratio=naive_ms / live)
    record(
        "assessment", "facts folded into summaries", folded_rate, "raw insert_many", raw_rate, "/s"
    )
    print(f"ratio read county {naive_county / live_county:.1f}")
    print(f"ratio read township {naive_township / live_township:.1f}")
    print(f"ratio ingest {folded_rate / raw_rate:.2f}")


def year_arithmetic(db, facts: int, year_ms: float, timeout_s: float) -> None:
    """A board reads one summary per subject whatever the number of facts (subjects do not
    grow with facts), without its handling-time histogram: the histogram's bucket totals
    (at most 60 buckets of 100 minutes: 5,990 distinct values here) and the one bucket
    holding the p90 (at most 100 values). So what a year board reads at 12 M facts is
    bounded: the same documents, each with at most 60 bucket totals and 100 values read
    from its p90 bucket. Measured here: the bytes read now, and the bound; the read time
    is scaled by their ratio (its fixed costs do not grow, so this overestimates)."""
    bucket_total_bytes, value_bytes = 24, 22  # "minute_counts.NN": int32, "NNNN": int32
    docs = read_now = growth = values = 0
    for doc in db[store.SUMMARIES].find({"period": YEAR.text}):
        histogram = doc.pop("minutes", {})
        docs += 1
        buckets = {int(b): n for b, n in doc.get("minute_counts", {}).items()}
        place = p90_bucket(buckets)
        read = len(bson.encode(doc))
        in_bucket = len(histogram.get(str(place[0]), {})) if place else 0
        read_now += read + in_bucket * value_bytes
        values += sum(len(bucket) for bucket in histogram.values())
        growth += (60 - len(buckets)) * bucket_total_bytes + (100 - in_bucket) * value_bytes
    bound = read_now + growth
    estimate = year_ms * bound / read_now
    print(
        f"  {docs:,} summaries read ({values:,} histogram values stay on the server); "
        f"{read_now / 1e6:.2f} MB read now, at most {bound / 1e6:.2f} MB at any number of "
        f"facts (60 bucket totals and a full p90 bucket each)"
    )
    print(
        f"  at {FULL_YEAR:,} facts about {year_ms:.0f} ms x {bound / read_now:.2f} = "
        f"{estimate / 1000:.1f} s (the gateway's RPC timeout: {timeout_s:.0f} s)"
    )


if __name__ == "__main__":
    main()
