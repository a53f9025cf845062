"""Seed a running stack with the demo county (services/population/demo.py), over RPC.

    python -m devstack.demo seed      # once: skipped when the county already has residents
    python -m devstack.demo reseed    # again, whatever is there (the imports are idempotent)

Everything goes through the services' own entrypoints, as a county's IT staff would:
import the territory, register the default departments at every centre (events), set
every grid's roster, upload the resident file as an import job and wait for it, then
flag about 1% of the residents into special and vulnerable groups. Nothing touches the
database directly, so there is no "seeded" marker: the county counts as seeded once its
territory exists and it has residents.
"""

from __future__ import annotations

import gridwork_common  # noqa: F401  (first: silences eventlet's notice before nameko loads)

# isort: split

import argparse
import base64
import os
import sys
import time
from collections.abc import Callable, Mapping

from nameko.exceptions import MethodNotFound, RemoteError
from nameko.standalone.rpc import ClusterRpcProxy

from gridwork_common.config import DEV_MODE_VARIABLE, Settings
from gridwork_common.context import CallerContext
from services.gateway.auth import Identity
from services.gateway.problems import ApiProblem
from services.gateway.store import gateway_db
from services.population.demo import (
    demo_group_members,
    demo_residents_csv,
    demo_staff,
    demo_territory,
    grid_codes,
)

DEMO_RESIDENTS = 20_000
DEMO_PASSWORD = "gridwork-demo-2026"  # noqa: S105 (a public demo password, documented)
IMPORT_FILENAME = "demo-residents.csv"
IMPORT_TIMEOUT_S = 600.0
POLL_INTERVAL_S = 1.0
PAGE = 200  # the population service's largest page
MIN_RPC_TIMEOUT_S = 60.0  # the resident file is a few MB


def seed_caller(county_code: str) -> CallerContext:
    # The system role imports territory, rosters and files on the county's behalf;
    # flagging a person into a group is a human decision the service refuses to the
    # system role, so the same seeding identity also holds the admin role for that.
    return CallerContext(user_id="demo-seed", roles=("system", "admin"), scope=county_code)


def seed(
    config: Mapping | None = None,
    *,
    force: bool = False,
    residents: int = DEMO_RESIDENTS,
    import_timeout_s: float = IMPORT_TIMEOUT_S,
    say: Callable[[str], None] = print,
) -> dict:
    """Seed the demo county through the population service; returns what was done.

    `config` is a nameko config (`Settings.nameko_config()`); the county code comes from
    its settings. Without `force`, nothing happens when the county's territory exists
    and it already has residents.
    """
    config = dict(config or Settings.from_env().nameko_config())
    settings = Settings.from_nameko_config(config)
    county = settings.county_code
    caller = seed_caller(county)
    timeout = max(settings.rpc_timeout, MIN_RPC_TIMEOUT_S)
    with ClusterRpcProxy(config, context_data=caller.to_context_data(), timeout=timeout) as rpc:
        population = rpc.population
        territory = demo_territory(county)
        # Departments are cheap and idempotent to ensure: every run does it, so a stack
        # seeded before the events service existed gets them too.
        centres = [
            feature["properties"]["code"]
            for feature in territory["features"]
            if len(feature["properties"]["code"]) in (6, 9, 12)  # county, townships, villages
        ]
        departments = rpc.events.ensure_default_departments(centres)
        if departments:
            say(f"demo: default departments registered at {len(centres)} centres ({departments})")
        created_users = seed_users(settings, territory)
        if created_users:
            say(f"demo: demo users created: {', '.join(created_users)} (password {DEMO_PASSWORD})")
        if not force:
            existing = _existing_residents(population, county)
            if existing:
                say(f"demo: county {county} already has {existing} residents; not seeding")
                return {"seeded": False, "county": county, "residents": existing}

        counts = population.import_territory(territory)
        say(f"demo: territory of {county} imported {_counts(counts)}")

        staff = demo_staff(territory)
        for grid, roster in staff.items():
            population.set_grid_staff(grid, roster)
        people = len({m["person_id"] for roster in staff.values() for m in roster})
        say(f"demo: rosters of {len(staff)} grids set ({people} grid staff)")

        content = demo_residents_csv(territory, count=residents)
        job = population.start_import(
            "residents", IMPORT_FILENAME, base64.b64encode(content).decode()
        )
        say(f"demo: resident import {job['id']} queued ({residents} rows)")
        job = _wait_for_import(population, job["id"], import_timeout_s)
        if job["status"] != "finished":
            raise RuntimeError(f"demo resident import {job['id']} {job['status']}: {job}")
        say(f"demo: residents imported {_counts(job['counts'])}")

        ids_by_grid = {grid: _resident_ids(population, grid) for grid in grid_codes(territory)}
        members = demo_group_members(ids_by_grid, staff)
        for member in members:
            population.flag_group(**member)
        say(f"demo: {len(members)} residents flagged into special and vulnerable groups")
        return {
            "seeded": True,
            "county": county,
            "territory": counts,
            "grids": len(staff),
            "residents": job["counts"],
            "group_members": len(members),
        }


def demo_users(territory: Mapping) -> dict[str, tuple[list[str], str, str | None]]:
    """username -> (roles, scope, department): one user of every role, in the first
    township, village and grid of the demo county."""
    codes = sorted(feature["properties"]["code"] for feature in territory["features"])
    county = next(code for code in codes if len(code) == 6)
    township = next(code for code in codes if len(code) == 9)
    village = next(code for code in codes if len(code) == 12 and code.startswith(township))
    grid = next(code for code in codes if len(code) == 15 and code.startswith(village))
    return {
        "admin": (["admin"], county, None),
        "leader": (["leader"], county, None),
        "county-centre": (["centre_operator"], county, None),
        "township-centre": (["centre_operator"], township, None),
        "village-centre": (["centre_operator"], village, None),
        "grid-leader": (["grid_leader"], grid, None),
        "grid-worker": (["grid_worker"], grid, None),
        "police-station": (["department_handler"], township, f"{township}-police-station"),
        "village-committee": (["department_handler"], village, f"{village}-committee"),
    }


def seed_users(settings: Settings, territory: Mapping) -> list[str]:
    """Create the demo users that do not exist yet, in the gateway's own user store."""
    identity = Identity(gateway_db(settings), settings)
    created = []
    for username, (user_roles, scope, department) in demo_users(territory).items():
        try:
            identity.create_user(username, DEMO_PASSWORD, user_roles, scope, department)
        except ApiProblem:  # exists already
            continue
        created.append(username)
    return created


def _existing_residents(population, county: str) -> int:
    try:
        population.get_territory(county)
    except RemoteError as exc:
        if exc.exc_type == "NotFound":
            return 0
        raise
    return population.statistics(county)["residents"]


def _wait_for_import(population, job_id: str, timeout_s: float) -> dict:
    """The job once the service's import timer has run it, or TimeoutError."""
    deadline = time.monotonic() + timeout_s
    while True:
        job = population.import_job(job_id)
        if job["status"] in ("finished", "failed"):
            return job
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"demo resident import {job_id} still {job['status']} after {timeout_s:g}s "
                f"({_counts(job['counts'])}); is the population service running?"
            )
        time.sleep(POLL_INTERVAL_S)


def _resident_ids(population, grid: str) -> list[str]:
    ids, cursor = [], None
    while True:
        page = population.list_residents(grid, cursor=cursor, limit=PAGE)
        ids.extend(resident["id"] for resident in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return ids


def _counts(counts: Mapping) -> str:
    return "(" + ", ".join(f"{name} {value}" for name, value in counts.items()) + ")"


def main() -> None:
    os.environ.setdefault(DEV_MODE_VARIABLE, "true")  # the demo county of `make up`
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("seed", "reseed"))
    parser.add_argument("--residents", type=int, default=DEMO_RESIDENTS)
    parser.add_argument("--import-timeout", type=float, default=IMPORT_TIMEOUT_S)
    args = parser.parse_args()
    started = time.monotonic()
    try:
        result = seed(
            force=args.command == "reseed",
            residents=args.residents,
            import_timeout_s=args.import_timeout,
        )
    except MethodNotFound as exc:
        sys.exit(
            f"demo: a running service has no {exc} entrypoint: it predates "
            "the population capability; restart the stack (make down && make up)"
        )
    if result["seeded"]:
        print(f"demo: done in {time.monotonic() - started:.0f}s")


if __name__ == "__main__":
    main()
