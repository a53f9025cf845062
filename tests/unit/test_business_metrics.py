"""The business metrics' bookkeeping, without infrastructure."""

from prometheus_client import REGISTRY

from services.population.metrics import count_import_rows, publish_visit_backlog


def sample(name, **labels):
    return REGISTRY.get_sample_value(name, labels) or 0


def test_import_rows_are_counted_once_across_checkpoints():
    before = {
        o: sample("gridwork_import_rows_total", kind="houses", outcome=o)
        for o in ("created", "failed")
    }
    counted = count_import_rows("houses", {"rows": 500, "created": 480, "failed": 20}, {})
    counted = count_import_rows("houses", {"rows": 700, "created": 650, "failed": 50}, counted)
    count_import_rows("houses", {"rows": 700, "created": 650, "failed": 50}, counted)
    assert (
        sample("gridwork_import_rows_total", kind="houses", outcome="created")
        == before["created"] + 650
    )
    assert (
        sample("gridwork_import_rows_total", kind="houses", outcome="failed")
        == before["failed"] + 50
    )


def test_the_visit_backlog_keeps_only_townships_still_owing():
    publish_visit_backlog({"530402001": 4, "530402002": 1})
    publish_visit_backlog({"530402001": 3})
    assert sample("gridwork_visit_backlog", township="530402001") == 3
    assert REGISTRY.get_sample_value("gridwork_visit_backlog", {"township": "530402002"}) is None
