"""Rebuilding the live summaries from the stored facts (`rebuild-summaries`), on a real
mongod: summaries in doubt or missing come back as the plain definition counts them,
published scorecards stay as published, and a rebuild cut short goes on when run again."""

import os
import subprocess
import sys

import pytest
from pymongo.errors import AutoReconnect

from services.assessment import rebuild, scorecards, store, summaries
from services.assessment.domain.periods import Period
from tests.conftest import settings_env
from tests.integration.assessment.test_summaries import (
    WORKING_DAYS,
    assert_as_defined,
    generated_events,
)
from tests.integration.assessment.test_summary_changes import _record_in_batches

pytestmark = pytest.mark.integration

LEVELS = ["grid", "township", "worker", "department"]


def _facts(db) -> list[dict]:
    return list(db[store.FACTS].find())


def _spoiled(db) -> None:
    """Summaries as an earlier version or a bug left them: some missing, one wrong."""
    db[store.SUMMARIES].delete_many({"level": "grid"})
    db[store.CASES].delete_many({})
    db[store.SUMMARIES].update_many({"level": "township"}, {"$inc": {"counts.cases_closed": 7}})


def test_summaries_in_doubt_are_rebuilt_as_defined_and_publications_kept(db):
    _record_in_batches(db, generated_events(seed=41, cases=150), size=60)
    summaries.merge(db)
    facts = _facts(db)
    october = Period.parse("2026-10")
    published = scorecards.publish(db, LEVELS, october, WORKING_DAYS)
    _spoiled(db)
    with pytest.raises(AssertionError):
        assert_as_defined(db, facts)

    done = rebuild.rebuild_summaries(db, batch=70)

    assert done == {"read": len(facts), "stored": len(facts)}
    assert db[store.FACTS].count_documents({}) == len(facts)
    assert rebuild.REPLAYING not in db.list_collection_names()
    assert_as_defined(db, _facts(db))
    for level, board in published.items():
        [kept] = scorecards.published(db, level, october)
        assert kept["items"] == board["items"]


def test_a_rebuild_cut_short_goes_on_when_run_again(db, monkeypatch):
    _record_in_batches(db, generated_events(seed=42, cases=150), size=60)
    summaries.merge(db)
    facts = _facts(db)
    real_record, batches = summaries.record, []

    def failing_after_two(db_, batch):
        if len(batches) == 2:
            raise AutoReconnect("mongod went away")
        batches.append(len(batch))
        return real_record(db_, batch)

    monkeypatch.setattr(summaries, "record", failing_after_two)
    with pytest.raises(AutoReconnect):
        rebuild.rebuild_summaries(db, batch=50)
    assert rebuild.REPLAYING in db.list_collection_names()
    assert db[store.FACTS].count_documents({}) == 100  # two batches folded again
    monkeypatch.setattr(summaries, "record", real_record)

    done = rebuild.rebuild_summaries(db, batch=50)

    assert done == {"read": len(facts), "stored": len(facts) - 100}
    assert db[store.FACTS].count_documents({}) == len(facts)
    assert rebuild.REPLAYING not in db.list_collection_names()
    assert_as_defined(db, _facts(db))


def test_the_command_rebuilds_the_service_s_database(db, settings, infra, rabbit_config):
    _record_in_batches(db, generated_events(seed=43, cases=100), size=60)
    summaries.merge(db)
    _spoiled(db)
    env = {
        **os.environ,
        **settings_env(infra, rabbit_config["AMQP_URI"], MONGO_DB_PREFIX=settings.mongo_db_prefix),
    }
    command = [sys.executable, "-m", "services.assessment", "rebuild-summaries", "--batch", "80"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    facts = _facts(db)
    assert f"{len(facts):,} facts read, {len(facts):,} stored again" in done.stdout
    assert_as_defined(db, facts)

    refused = subprocess.run(
        [*command[:4], "--batch", "0"], env=env, capture_output=True, text=True, timeout=60
    )
    assert refused.returncode == 2 and "--batch" in refused.stderr
