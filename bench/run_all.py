"""`make bench`: run every benchmark script, then write bench/RESULTS.md.

Each script runs as its own process with its usual output (shown, and kept in
var/bench/<script>.txt), and appends its figures to the JSON-lines file named by
GRIDWORK_BENCH_RESULTS (bench/results.py). A script that fails is named in RESULTS.md;
the others still count.

    PYTHONPATH=. .venv/bin/python bench/run_all.py [--only rpc import ...]
"""

from __future__ import annotations

import argparse
import os
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
    scripts: list[Path], output_dir: Path, results_md: Path, not_run: tuple[str, ...] = ()
) -> int:
    """Run `scripts`, write `results_md`; the number of scripts that failed."""
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
                    [sys.executable, str(script)],
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
        )
    )
    print(f"wrote {results_md}")
    return len(failures)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=SCRIPTS, help="these scripts alone")
    args = parser.parse_args()
    names = args.only or SCRIPTS
    failed = run(
        [BENCH / f"{name}.py" for name in names],
        BENCH.parent / "var" / "bench",
        BENCH / "RESULTS.md",
        not_run=tuple(f"{name}.py" for name in SCRIPTS if name not in names),
    )
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
