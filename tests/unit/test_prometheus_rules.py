"""promtool (Debian's `prometheus` package; `make test` installs it) checks the alert
rules, runs their unit tests (deploy/prometheus/tests/) and parses every PromQL
expression of the Grafana dashboard."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.unit.test_alert_rules import exported_names

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
DASHBOARD = ROOT / "deploy" / "grafana" / "gridwork-county.json"
# Grafana's own interval macro, in what Prometheus itself would parse.
GRAFANA_MACROS = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}


def promtool(*args: str) -> subprocess.CompletedProcess:
    binary = shutil.which("promtool")
    assert binary, "promtool is missing: `make test` installs it (apt-get install prometheus)"
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=120)


def test_the_alert_rules_pass_promtool_check():
    checked = promtool("check", "rules", str(PROMETHEUS / "alerts.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_alert_rules_pass_their_unit_tests():
    tests = sorted((PROMETHEUS / "tests").glob("*.yml"))
    assert tests
    run = promtool("test", "rules", *map(str, tests))
    assert run.returncode == 0, run.stdout + run.stderr
    assert "SUCCESS" in run.stdout


def test_both_scrape_configurations_pass_promtool_check():
    for config in ("prometheus.yml", "prometheus.local.yml"):
        checked = promtool("check", "config", "--syntax-only", str(PROMETHEUS / config))
        assert checked.returncode == 0, checked.stdout + checked.stderr


def dashboard_expressions() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    found = []
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            expr = target["expr"]
            for macro, value in GRAFANA_MACROS.items():
                expr = expr.replace(macro, value)
            # A dashboard variable stands for its "All" value, a regular expression.
            for name in re.findall(r"\$(\w+)", expr):
                assert name in variables, (panel["title"], name)
                expr = expr.replace(f"${name}", variables[name].get("allValue", ".*"))
            found.append((panel["title"], expr))
    return found


def parse_errors(expressions: list[str], directory: Path) -> str:
    """promtool's PromQL parser on each expression, as recording rules; "" if all parse."""
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:expression_{n}", "expr": expr}
                    for n, expr in enumerate(expressions)
                ],
            }
        ]
    }
    path = directory / "dashboard-rules.yml"
    path.write_text(yaml.safe_dump(rules))
    checked = promtool("check", "rules", str(path))
    return "" if checked.returncode == 0 else checked.stdout + checked.stderr


def test_every_dashboard_expression_parses(tmp_path):
    expressions = dashboard_expressions()
    assert len(expressions) >= 15
    assert parse_errors([expr for _, expr in expressions], tmp_path) == ""


def test_the_parser_would_reject_a_broken_expression(tmp_path):
    """The check above can fail: a missing bracket is reported."""
    assert "parse error" in parse_errors(["sum(rate(gridwork_http_requests_total[5m])"], tmp_path)


@pytest.mark.parametrize("title, expr", dashboard_expressions())
def test_every_gridwork_metric_on_the_dashboard_is_exported(title, expr):
    watched = set(re.findall(r"gridwork_[a-z_]+", expr))
    assert watched <= exported_names(), (title, watched - exported_names())
