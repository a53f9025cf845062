"""Assessment: a county month's scorecards from 1,000,000 facts, by the service's
aggregation pipelines vs a naive Python loop over the same facts, same run.

    PYTHONPATH=. .venv/bin/python bench/assessment.py [--facts 1000000] [--repeat 1]

Starts its own mongod (a single-node replica set in a temporary directory, on a free
port), so it touches no data of `make up`. Setup (not timed): a county of 10 townships x
8 villages x 6 grids, 480 grid workers, 60 department handlers in 30 departments, and a
month of facts shaped exactly as the service stores them: cases taken through the loop
(reported, accepted, registered, dispatched, signed, handled, verified, closed, evaluated;
some go overdue, are sent back, escalated, supervised or extended), visits, resident
records, logins and actions, and each grid's visit obligations, inserted with the
service's indexes.

Timed, each the scorecards of every level (county, township, village, grid, department,
worker) for the month, scored with the default rule set:

- pipelines: `services.assessment.scorecards.boards` for every level at once (MongoDB
  aggregation pipelines that read the month's facts once for all levels; Python merges
  their per-subject rows and scores);
- naive loop: the month's facts read once with a plain `find`, then
  `domain.indicators.indicators_by_subject` (a Python loop over every fact) per level,
  scored the same way.

Both must give identical scorecards (checked). The working days are the month's weekdays
(the service asks the events service for the county calendar; no events service runs
here). The last line is `ratio <naive seconds / pipeline seconds>`.
"""

import gridwork_common.green  # noqa: F401  (first: patches eventlet before other imports)

# isort: split

import argparse
import os
import random
import time
from datetime import UTC, date, datetime, timedelta

from pymongo import MongoClient

from bench.results import record
from bench.support import CpuMeter, load_line, private_servers
from services.assessment import scorecards, store
from services.assessment.domain import indicators as reference
from services.assessment.domain.periods import Period
from services.assessment.domain.scoring import DEFAULT_RULES

COUNTY = "530402"
MONTH = Period.parse("2026-11")
LEVELS = reference.LEVELS
LOOP = ["reported", "accepted", "registered", "dispatched", "signed", "handled", "verified"]
BATCH = 20_000


def county_grids() -> list[str]:
    return [
        f"{COUNTY}{township:03d}{village:03d}{grid:03d}"
        for township in range(1, 11)
        for village in range(1, 9)
        for grid in range(1, 7)
    ]


class FactMaker:
    """Facts of one month, shaped as `facts.fact_from_event` stores them."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.count = 0
        self.grids = county_grids()
        self.departments = [f"{COUNTY}-dept-{n:02d}" for n in range(30)]
        self.handlers = [f"handler-{n:02d}" for n in range(60)]
        self.start = datetime(2026, 10, 31, 16, 0, tzinfo=UTC)  # 1 November 00:00 in China

    def fact(self, type_, grid, actor, data, minute, department=None) -> dict:
        self.count += 1
        moment = self.start + timedelta(minutes=minute)
        local = moment + timedelta(hours=8)
        return {
            "_id": f"{self.count:032x}",
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

    def case(self, number: int) -> list[dict]:
        rng = self.rng
        grid = rng.choice(self.grids)
        worker = f"worker-{grid[-9:]}"
        handler = rng.choice(self.handlers)
        department = self.departments[self.handlers.index(handler) // 2]
        urgency = "urgent" if rng.random() < 0.05 else "normal"
        case_id = f"case-{number}"
        minute = rng.randrange(0, 29 * 24 * 60)
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
            if action == "evaluated":
                data["satisfaction"] = rng.randrange(1, 6)
            fact = self.fact(f"incident.{action}", grid, actor, data, minute, with_department)
            fact["incident_id"] = case_id
            made.append(fact)
        return made

    def other(self) -> dict:
        rng = self.rng
        grid = rng.choice(self.grids)
        worker = f"worker-{grid[-9:]}"
        minute = rng.randrange(0, 30 * 24 * 60 - 1)
        roll = rng.random()
        if roll < 0.7:
            data = {"grid_code": grid, "worker_id": worker, "risk_level": rng.choice("hml")}
            data["risk_level"] = {"h": "high", "m": "medium", "l": "low"}[data["risk_level"]]
            return self.fact("visit.recorded", grid, worker, data, minute)
        if roll < 0.85:
            kind = rng.choice(["resident.registered", "resident.updated", "resident.moved"])
            return self.fact(kind, grid, worker, {"grid_code": grid, "actor_id": worker}, minute)
        kind = rng.choice(["account.login", "account.action", "account.action"])
        return self.fact(kind, grid, worker, {"user_id": worker}, minute)

    def obligations(self, grid: str) -> dict:
        rows = []
        for risk in ("high", "medium", "low"):
            required = self.rng.randrange(0, 12)
            if required:
                done = self.rng.randrange(0, required + 1)
                rows.append(
                    {
                        "worker_id": f"worker-{grid[-9:]}",
                        "risk_level": risk,
                        "required": required,
                        "done": done,
                    }
                )
        fact = self.fact("visit.obligations", grid, None, {"grid_code": grid, "rows": rows}, 0)
        fact["day"], fact["period"] = "2026-12-01", MONTH.text
        return fact


def _stage(action: str) -> int:
    return LOOP.index(action) if action in LOOP else len(LOOP)


def load(db, total: int, seed: int) -> int:
    maker = FactMaker(seed)
    collection = db[store.FACTS]
    for name, models in store.INDEXES.items():
        db[name].create_indexes(models)
    batch: list[dict] = [maker.obligations(grid) for grid in maker.grids]
    number = 0
    while maker.count < total:
        if maker.rng.random() < 0.9:
            number += 1
            batch.extend(maker.case(number))
        else:
            batch.append(maker.other())
        if len(batch) >= BATCH:
            collection.insert_many(batch, ordered=False)
            batch = []
    if batch:
        collection.insert_many(batch, ordered=False)
    return number


def by_pipelines(db, working_days) -> dict:
    return scorecards.boards(db, LEVELS, MONTH, working_days)


def by_naive_loop(db, working_days) -> dict:
    first, last = MONTH.day_texts()
    month_facts = list(
        db[store.FACTS].find(
            {
                "$or": [
                    {"day": {"$gte": first, "$lte": last}},
                    {"type": reference.VISIT_OBLIGATIONS, "period": MONTH.text},
                ]
            }
        )
    )
    boards = {}
    for level in LEVELS:
        found = reference.indicators_by_subject(month_facts, level, MONTH, working_days)
        boards[level] = scorecards.board(level, MONTH.text, DEFAULT_RULES, found)
    return boards


def timed(function, *args) -> tuple[float, dict]:
    started = time.perf_counter()
    result = function(*args)
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--facts", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=1, help="timed runs of each; best kept")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    print(load_line())
    working_days = {
        day.isoformat()
        for day in (date(2026, 11, 1) + timedelta(days=n) for n in range(30))
        if day.weekday() < 5
    }
    with private_servers() as servers:
        client = MongoClient(servers.mongo_uri, tz_aware=True)
        db = client["gridwork_bench_assessment"]
        started = time.perf_counter()
        cases = load(db, args.facts, args.seed)
        stored = db[store.FACTS].estimated_document_count()
        print(
            f"setup: {stored:,} facts ({cases:,} cases, {len(county_grids())} grids) "
            f"inserted in {time.perf_counter() - started:.1f} s"
        )
        meter = CpuMeter({"mongod": [servers.pids["mongod"]], "bench": [os.getpid()]})
        pipeline_seconds, naive_seconds = [], []
        for _ in range(args.repeat):
            before = meter.snapshot()
            seconds, piped = timed(by_pipelines, db, working_days)
            pipeline_seconds.append(seconds)
            pipeline_cpu = meter.since(before)
            seconds, looped = timed(by_naive_loop, db, working_days)
            naive_seconds.append(seconds)
        assert piped == looped, "the pipelines and the naive loop disagree"
        subjects = {level: len(board["items"]) for level, board in piped.items()}
        print("scorecards per level: " + ", ".join(f"{k} {v}" for k, v in subjects.items()))
        print(f"mongod CPU seconds during the pipelines: {pipeline_cpu['mongod']:.1f}")
        pipeline, naive = min(pipeline_seconds), min(naive_seconds)
        print(f"pipelines (every level): {pipeline:.2f} s")
        print(f"naive Python loop (one read, every level): {naive:.2f} s")
        client.close()
    record(
        "assessment",
        "scorecards by pipelines",
        pipeline,
        "naive Python loop",
        naive,
        "s",
        ratio=naive / pipeline,
    )
    print(f"ratio {naive / pipeline:.2f}")


if __name__ == "__main__":
    main()
