"""Machine-readable benchmark results, beside each script's own printed output.

A script calls `record(...)` once per figure it measures against a raw baseline in the
same run; when `make bench` runs it (bench/run_all.py), GRIDWORK_BENCH_RESULTS names a
JSON-lines file the figures are appended to, from which bench/RESULTS.md is written.
Run by hand, a script records nothing and prints as before. Standard library only, so a
script may import it in any order (some must import eventlet's patching first).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping

RESULTS_ENV = "GRIDWORK_BENCH_RESULTS"


def record(
    bench: str,
    figure: str,
    value: float,
    baseline: str,
    baseline_value: float,
    unit: str,
    *,
    ratio: float | None = None,
) -> dict:
    """One figure and its raw baseline. `ratio` defaults to value / baseline_value (a
    rate against a rate); a script whose figures are durations passes its own."""
    result = {
        "bench": bench,
        "figure": figure,
        "value": value,
        "baseline": baseline,
        "baseline_value": baseline_value,
        "unit": unit,
        "ratio": ratio if ratio is not None else value / baseline_value,
    }
    path = os.environ.get(RESULTS_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps(result) + "\n")
    return result


def read(path: str) -> list[dict]:
    try:
        with open(path, encoding="utf-8") as lines:
            return [json.loads(line) for line in lines if line.strip()]
    except FileNotFoundError:
        return []


def _number(value: float) -> str:
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.2f}" if abs(value) >= 1 else f"{value:.3f}"


def markdown(
    results: Iterable[Mapping],
    *,
    cores: int,
    commit: str,
    ran_at: str,
    failures: Mapping[str, str] | None = None,
    not_run: Iterable[str] = (),
    load: str = "",
    arguments: Mapping[str, str] | None = None,
) -> str:
    """bench/RESULTS.md: every figure beside its baseline from the same run."""
    lines = [
        "# Benchmark results",
        "",
        f"Written by `make bench` on {ran_at} at commit `{commit}`, on a machine with "
        f"{cores} CPU cores{f' (load average {load} when it began)' if load else ''}. "
        "Each figure is measured beside its raw baseline in the same "
        "run, so the ratio holds across machines better than either figure alone; what "
        "each script measures is in its docstring and in [docs/benchmarks.md]"
        "(../docs/benchmarks.md).",
        "",
        "| benchmark | figure | value | raw baseline | baseline value | unit | ratio |",
        "|---|---|---:|---|---:|---|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['bench']} | {r['figure']} | {_number(r['value'])} | {r['baseline']} | "
            f"{_number(r['baseline_value'])} | {r['unit']} | {r['ratio']:.3f} |"
        )
    if failures:
        lines += ["", "Scripts that did not finish (their figures are missing above):", ""]
        lines += [f"- `{script}`: {why}" for script, why in failures.items()]
    if arguments:
        lines += ["", "Run with sizes other than the scripts' defaults (the issue's sizes):", ""]
        lines += [f"- `{script} {given}`" for script, given in arguments.items()]
    not_run = list(not_run)
    if not_run:
        lines += ["", "Not run this time (`--only`): " + ", ".join(f"`{s}`" for s in not_run)]
    return "\n".join(lines) + "\n"
