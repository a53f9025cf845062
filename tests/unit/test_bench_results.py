"""`make bench`'s RESULTS.md: written from the figures the scripts record, each beside
its baseline, with the machine's cores and the commit (tiny stand-in scripts here; the
real benchmarks take minutes)."""

import os
import re
import textwrap

from bench import run_all
from bench.results import markdown

RESULT = {
    "bench": "rpc",
    "figure": "nameko RPC round trips",
    "value": 1234.5,
    "baseline": "raw kombu round trips",
    "baseline_value": 2469.0,
    "unit": "/s",
    "ratio": 0.5,
}


def test_each_figure_sits_beside_its_baseline_and_ratio():
    text = markdown([RESULT], cores=2, commit="abc123", ran_at="2026-11-18 02:00 UTC")
    assert "at commit `abc123`, on a machine with 2 CPU cores" in text
    row = "| rpc | nameko RPC round trips | 1,234 | raw kombu round trips | 2,469 | /s | 0.500 |"
    assert row in text.splitlines()


def test_a_run_records_what_the_scripts_measured_and_names_what_failed(tmp_path):
    measuring = tmp_path / "fast.py"
    measuring.write_text(
        textwrap.dedent(
            """
            from bench.results import record
            print("fast: 300 things/s against 600")
            record("fast", "things", 300.0, "raw things", 600.0, "/s")
            record("fast", "p50", 4.0, "raw p50", 2.0, "ms", ratio=0.5)
            """
        )
    )
    broken = tmp_path / "broken.py"
    broken.write_text("raise SystemExit(3)\n")
    results_md = tmp_path / "RESULTS.md"

    failed = run_all.run([measuring, broken], tmp_path / "out", results_md, not_run=("media.py",))

    assert failed == 1
    text = results_md.read_text()
    assert "| fast | things | 300 | raw things | 600 | /s | 0.500 |" in text
    assert "| fast | p50 | 4.00 | raw p50 | 2.00 | ms | 0.500 |" in text
    assert "`broken.py`: exit status 3" in text
    assert "Not run this time (`--only`): `media.py`" in text
    assert f"with {os.cpu_count()} CPU cores" in text
    assert re.search(r"at commit `[0-9a-f]{12}`", text)
    # The script's own output is kept beside.
    assert "300 things/s" in (tmp_path / "out" / "fast.txt").read_text()


def test_a_script_run_smaller_gets_its_arguments_and_results_say_so(tmp_path):
    sized = tmp_path / "sized.py"
    sized.write_text(
        textwrap.dedent(
            """
            import sys
            from bench.results import record
            rows = int(sys.argv[sys.argv.index("--rows") + 1])
            record("sized", "rows", float(rows), "raw rows", float(rows), "")
            """
        )
    )
    results_md = tmp_path / "RESULTS.md"

    failed = run_all.run([sized], tmp_path / "out", results_md, arguments={"sized": "--rows 1234"})

    assert failed == 0
    text = results_md.read_text()
    assert "| sized | rows | 1,234 | raw rows | 1,234 |" in text
    assert "- `sized.py --rows 1234`" in text
