"""The Prometheus alert rules: loaded by both scrape configurations and the compose stack,
and watching metrics the services really export."""

import re
from pathlib import Path

import yaml
from prometheus_client import REGISTRY

# Importing these registers every metric family the processes export.
import gridwork_common.metrics  # noqa: F401
import services.events.metrics
import services.gateway.metrics
import services.media.metrics
import services.population.metrics  # noqa: F401
from services.events import calendar_watch  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"


def exported_names() -> set[str]:
    """Every metric family the imports above registered in this process."""
    names = set()
    for metric in REGISTRY.collect():
        names.add(metric.name)
        if metric.type == "counter":
            names.add(f"{metric.name}_total")
        if metric.type == "histogram":
            names.update(f"{metric.name}_{suffix}" for suffix in ("bucket", "count", "sum"))
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
    assert {
        "ServiceDown",
        "QueueBacklogGrowing",
        "OverdueSpike",
        "OutboxNotDraining",
        "WebhookDeadLetters",
        "StorageErrors",
    } <= set(alerts)
    for name, rule in alerts.items():
        watched = set(re.findall(r"gridwork_[a-z_]+", rule["expr"]))
        # The others watch what Prometheus and RabbitMQ export themselves.
        assert watched <= names, (name, watched - names)
        assert watched or re.search(r"\b(up|rabbitmq_detailed_queue_messages)\{", rule["expr"])
        documents = re.findall(r"docs/[a-z0-9-]+\.md", rule["annotations"]["description"])
        assert documents, name
        for document in documents:
            assert (ROOT / document).is_file(), (name, document)
