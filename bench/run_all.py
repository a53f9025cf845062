"""`make bench`: run every benchmark script, then write bench/RESULTS.md.

Each script runs as its own process with its usual output (shown, and kept in
var/bench/<script>.txt), and appends its figures to the JSON-lines file named by
GRIDWORK_BENCH_RESULTS (bench/results.py). A script that fails is named in RESULTS.md;
the others still count.

    PYTHONPATH=. .venv/bin/python bench/run_all.py [--only rpc import ...] \
        [--args "import=--rows 200000" ...]

At their defaults (the issue's sizes: 2,000,000 residents, 1,000,000 facts) the scripts
take well over an hour on two cores; `--args` runs one smaller, and RESULTS.md says so.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from bench.results import RESULTS_ENV, markdown, read

BENCH = Path(__file__).resolve().parent

# In the order `make bench` always ran them: rpc first, the baseline the others cite.
SCRIPTS = ("rpc", "import", "territory", "incidents", "gateway", "media", "assessment")


def commit_of(directory: Path) -> str:
    try:
        return subprocess.run(
            ["git", "-C", str(directory), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def run(
    scripts: list[Path],
    output_dir: Path,
    results_md: Path,
    not_run: tuple[str, ...] = (),
    arguments: dict[str, str] | None = None,
) -> int:
    """Run `scripts` (each with its `arguments`, by name), write `results_md`; the number
    of scripts that failed."""
    arguments = arguments or {}
    output_dir.mkdir(parents=True, exist_ok=True)
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    failures: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as scratch:
        results_file = str(Path(scratch) / "results.jsonl")
        env = {**os.environ, RESULTS_ENV: results_file}
        env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(BENCH.parent), os.environ.get("PYTHONPATH")])
        )
        for script in scripts:
            print(f"=== {script.name}", flush=True)
            log = output_dir / f"{script.stem}.txt"
            with open(log, "w", encoding="utf-8") as out:
                process = subprocess.Popen(
                    [sys.executable, str(script), *shlex.split(arguments.get(script.stem, ""))],
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
                for line in process.stdout:
                    sys.stdout.write(line)
                    out.write(line)
                if process.wait() != 0:
                    failures[script.name] = f"exit status {process.returncode}, see {log.name}"
        results = read(results_file)
    results_md.write_text(
        markdown(
            results,
            cores=os.cpu_count() or 1,
            commit=commit_of(BENCH),
            ran_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            failures=failures,
            not_run=not_run,
            load=load,
            arguments={f"{name}.py": given for name, given in arguments.items() if given},
        )
    )
    print(f"wrote {results_md}")
    return len(failures)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=SCRIPTS, help="these scripts alone")
    parser.add_argument(
        "--args",
        action="append",
        default=[],
        metavar="NAME=ARGUMENTS",
        help='a script\'s own arguments, e.g. "import=--rows 200000"',
    )
    args = parser.parse_args()
    names = args.only or SCRIPTS
    arguments = {}
    for given in args.args:
        name, separator, rest = given.partition("=")
        if not separator or name not in SCRIPTS:
            parser.error(f"--args {given!r}: expected NAME=ARGUMENTS with NAME one of {SCRIPTS}")
        arguments[name] = rest
    failed = run(
        [BENCH / f"{name}.py" for name in names],
        BENCH.parent / "var" / "bench",
        BENCH / "RESULTS.md",
        not_run=tuple(f"{name}.py" for name in SCRIPTS if name not in names),
        arguments=arguments,
    )
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
