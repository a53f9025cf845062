"""The Prometheus alert rules: loaded by both scrape configurations and the compose stack,
and watching metrics the services really export."""

import re
from pathlib import Path

import yaml
from prometheus_client import REGISTRY

from services.events import calendar_watch  # noqa: F401 (registers the calendar metrics)

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"


def exported_names() -> set[str]:
    """Every metric family in this process (importing calendar_watch registered its own)."""
    names = set()
    for metric in REGISTRY.collect():
        names.add(metric.name)
        if metric.type == "counter":
            names.add(f"{metric.name}_total")
    return names


def test_both_configurations_and_the_compose_stack_load_the_rules():
    for config in ("prometheus.yml", "prometheus.local.yml"):
        loaded = yaml.safe_load((PROMETHEUS / config).read_text())
        assert loaded["rule_files"] == ["alerts.yml"], config
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    volumes = compose["services"]["prometheus"]["volumes"]
    assert "./deploy/prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro" in volumes


def test_every_alert_watches_an_exported_metric_and_says_what_to_do():
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    alerts = {rule["alert"]: rule for group in rules["groups"] for rule in group["rules"]}
    assert {"HolidayNoticeMissing", "DeadlinesCountedWithoutHolidayNotice"} <= set(alerts)
    names = exported_names()
    for name, rule in alerts.items():
        watched = set(re.findall(r"gridwork_[a-z_]+", rule["expr"]))
        assert watched and watched <= names, (name, watched - names)
        assert "docs/calendar.md" in rule["annotations"]["description"], name
