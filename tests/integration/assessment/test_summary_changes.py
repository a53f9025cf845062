"""Change records on a real mongod: a batch's changes to the summaries wait in a few
records until merged; boards read them on top of the summaries (exact before, during and
after a merge), a merge is idempotent (run again, or cut short before its commit, it
neither loses nor doubles a change), and a fact delivered again after its batch was
merged counts once."""

import threading

import pytest

from gridwork_common.mongo import new_client
from services.assessment import facts, store, summaries, summary_changes, summary_upkeep
from services.assessment.domain.change_records import periods_of_record
from tests.integration.assessment.test_summaries import assert_as_defined, generated_events

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True, params=["in turn", "overlapped"])
def facts_stored(request, monkeypatch):
    """Every test both ways: a batch's facts stored, then folded (the handlers' small
    batches), and folded while mongod stores them (a load's large ones)."""
    if request.param == "overlapped":
        monkeypatch.setattr(summaries, "OVERLAP_FROM_FACTS", 1)


@pytest.fixture(autouse=True)
def merged_only_when_asked(monkeypatch):
    """No compaction or merge in the background: each test says when records change."""
    monkeypatch.setattr(summary_upkeep, "COMPACT_AFTER_RECORDS", 10**9)
    monkeypatch.setattr(summary_upkeep, "QUIET_AFTER_FACTS", 10**9)


def _record_in_batches(db, payloads, size=60) -> int:
    made = [facts.fact_from_event(payload) for payload in payloads]
    return sum(summaries.record(db, made[at : at + size]) for at in range(0, len(made), size))


def _summaries_as_stored(db) -> list[dict]:
    return [
        doc
        for collection in (store.SUMMARIES, store.ACTIVITY)
        for doc in db[collection].find({}, sort=[("_id", 1)])
    ]


def test_pending_records_are_counted_by_the_boards_before_they_are_merged(db):
    _record_in_batches(db, generated_events(seed=21, cases=150))
    assert summary_changes.pending_records(db) > 0
    assert db[store.SUMMARIES].count_documents({}) == 0  # nothing merged yet
    assert_as_defined(db, list(db[store.FACTS].find()))  # read from the records alone

    assert summaries.merge(db) > 0
    assert summary_changes.pending_records(db) == 0
    assert db[store.SUMMARIES].count_documents({}) > 0
    assert_as_defined(db, list(db[store.FACTS].find()))  # read from the summaries alone


def test_boards_read_summaries_and_pending_records_together(db):
    """Half the facts merged, half pending: a board adds the two."""
    events = generated_events(seed=22, cases=150)
    half = len(events) // 2
    _record_in_batches(db, events[:half])
    summaries.merge(db)
    _record_in_batches(db, events[half:])
    assert summary_changes.pending_records(db) > 0
    assert_as_defined(db, list(db[store.FACTS].find()))


def test_a_merge_run_again_changes_nothing(db):
    _record_in_batches(db, generated_events(seed=23, cases=120))
    merged = summaries.merge(db)
    assert merged > 0
    after_first = _summaries_as_stored(db)
    assert summaries.merge(db) == 0
    assert _summaries_as_stored(db) == after_first
    assert_as_defined(db, list(db[store.FACTS].find()))


def test_a_merge_cut_short_before_its_commit_loses_and_doubles_nothing(db):
    """A merge applied to the summaries but never committed (a crash): the records stay
    pending and the summaries as they were; the next merge applies them once."""
    events = generated_events(seed=24, cases=120)
    _record_in_batches(db, events[: len(events) // 2])
    summaries.merge(db)
    _record_in_batches(db, events[len(events) // 2 :])
    before, pending = _summaries_as_stored(db), summary_changes.pending_records(db)
    period = periods_of_record(db[store.CHANGES].find_one({}))[0]
    with db.client.start_session() as session:
        session.start_transaction()
        assert summary_changes._merge_some(db, period, session) > 0
        session.abort_transaction()
    assert _summaries_as_stored(db) == before
    assert summary_changes.pending_records(db) == pending
    assert_as_defined(db, list(db[store.FACTS].find()))
    summaries.merge(db)
    assert summary_changes.pending_records(db) == 0
    assert_as_defined(db, list(db[store.FACTS].find()))


def test_a_fact_delivered_again_after_its_batch_was_merged_counts_once(db):
    events = generated_events(seed=25, cases=120)
    first, rest = events[: len(events) // 2], events[len(events) // 2 :]
    assert _record_in_batches(db, first) == len(first)
    summaries.merge(db)
    # the merged half again, mixed into batches with the other half
    again = [payload for pair in zip(first, rest, strict=False) for payload in pair]
    again += rest[len(first) :]
    assert _record_in_batches(db, again) == len(rest)
    assert db[store.FACTS].count_documents({}) == len(events)
    assert_as_defined(db, list(db[store.FACTS].find()))
    summaries.merge(db)
    assert _record_in_batches(db, events) == 0  # all of it again, after the merge
    assert summary_changes.pending_records(db) == 0
    assert_as_defined(db, list(db[store.FACTS].find()))


def _as_two_replicas(db, settings, *work) -> list:
    """Each `work(replica_db)` at the same time, each on a client of its own (a replica);
    their results, in order. A failure fails the test."""
    clients = [new_client(settings, app_name=f"replica-{n}") for n in range(len(work))]
    results, failures = [None] * len(work), []

    def run(n):
        try:
            results[n] = work[n](clients[n][db.name])
        except Exception as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(work))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for client in clients:
        client.close()
    assert not failures
    return results


def test_two_replicas_merging_at_once_apply_each_record_once(db, settings):
    """Two clients (two replicas) merge the same pending records at the same time: one
    wins each record, the other finds it gone."""
    _record_in_batches(db, generated_events(seed=26, cases=150), size=20)
    pending = summary_changes.pending_records(db)
    merged = _as_two_replicas(db, settings, summaries.merge, summaries.merge)
    assert sum(merged) == pending
    assert summary_changes.pending_records(db) == 0
    assert_as_defined(db, list(db[store.FACTS].find()))


def test_a_replica_compacting_while_another_merges_loses_and_doubles_nothing(db, settings):
    """One replica compacts every period while another merges everything: each record is
    either compacted then merged, or merged; none is lost or counted twice."""
    _record_in_batches(db, generated_events(seed=31, cases=150), size=20)
    periods = db[store.CHANGES].distinct("period")
    _as_two_replicas(
        db, settings, lambda replica: summary_changes.compact(replica, periods), summaries.merge
    )
    assert_as_defined(db, list(db[store.FACTS].find()))  # whatever is left pending
    summaries.merge(db)
    assert summary_changes.pending_records(db) == 0
    assert_as_defined(db, list(db[store.FACTS].find()))


def _upkeep_done(db, rounds=600) -> None:
    """The background worker has done everything it was handed (polled: it runs in its
    own thread, and leaves when nothing is due)."""
    for _ in range(rounds):
        if not summary_upkeep.working(db):
            return
        threading.Event().wait(0.05)
    raise AssertionError("the background worker is still at work")


def _counting_writes(monkeypatch) -> list[int]:
    """How many change records the folds wrote (a running total, in a list)."""
    written, real_write = [0], summary_changes.write

    def counting_write(db, changes, session):
        periods = real_write(db, changes, session)
        written[0] += len(summary_changes.records_of(changes))
        return periods

    monkeypatch.setattr(summary_changes, "write", counting_write)
    return written


def test_periods_due_are_compacted_in_the_background_while_the_boards_stay_exact(db, monkeypatch):
    """Every second record of a period makes it due: each fold hands its periods to the
    background worker and returns; the boards are exact whichever records it replaced
    so far, there are fewer records than were written, and none is in the summaries
    until merged."""
    monkeypatch.setattr(summary_upkeep, "COMPACT_AFTER_RECORDS", 2)
    written = _counting_writes(monkeypatch)
    _record_in_batches(db, generated_events(seed=27, cases=150), size=40)
    assert_as_defined(db, list(db[store.FACTS].find()))  # some compacted, some maybe not
    _upkeep_done(db)
    assert 0 < summary_changes.pending_records(db) < written[0]
    assert db[store.SUMMARIES].count_documents({}) == 0
    assert_as_defined(db, list(db[store.FACTS].find()))
    summaries.merge(db)
    assert summary_changes.pending_records(db) == 0
    assert_as_defined(db, list(db[store.FACTS].find()))


def test_periods_the_facts_moved_past_are_merged_in_the_background(db, monkeypatch):
    """Facts in the order they happen, and a period merged once the folds went 100 facts
    past its last record: the summaries fill while the folds go on, and the boards are
    exact before and after the last merge."""
    monkeypatch.setattr(summary_upkeep, "QUIET_AFTER_FACTS", 100)
    made = [facts.fact_from_event(payload) for payload in generated_events(seed=30, cases=150)]
    made.sort(key=lambda fact: (fact["day"], fact["_id"]))
    for at in range(0, len(made), 40):
        summaries.record(db, made[at : at + 40])
    _upkeep_done(db)
    merged_days = {doc["period"] for doc in db[store.SUMMARIES].find({}, {"period": 1})}
    assert any(len(period) == len("2026-11-02") for period in merged_days)
    assert summary_changes.pending_records(db) > 0  # the periods still filling
    assert_as_defined(db, list(db[store.FACTS].find()))
    summaries.merge(db)
    assert summary_changes.pending_records(db) == 0
    assert_as_defined(db, list(db[store.FACTS].find()))


def test_a_compaction_replaces_a_period_s_records_by_their_sums(db):
    """Worked on a real mongod: a month's records from many batches become one record
    of the periods they share; once merged, the summaries are those of the records."""
    events = generated_events(seed=29, cases=150)
    _record_in_batches(db, events, size=40)
    months = [p for p in db[store.CHANGES].distinct("period") if len(p) == len("2026-11")]
    month = max(months, key=lambda p: db[store.CHANGES].count_documents({"period": p}))
    before = summary_changes.pending_records(db)
    of_month = db[store.CHANGES].count_documents({"period": month})
    assert of_month > 1
    replaced = summary_changes.compact(db, [month])
    assert replaced == of_month
    groups = {str(r["period"]) for r in db[store.CHANGES].find({"period": month})}
    assert db[store.CHANGES].count_documents({"period": month}) == len(groups)
    assert summary_changes.pending_records(db) == before - of_month + len(groups)
    assert summary_changes.compact(db, [month]) == 0  # nothing more to gain
    assert_as_defined(db, list(db[store.FACTS].find()))
    summaries.merge(db)
    assert_as_defined(db, list(db[store.FACTS].find()))


def test_a_failed_background_compaction_leaves_its_records_for_the_merge(db, monkeypatch):
    """The background compaction fails (mongod away, say): its records stay pending,
    counted by the boards, and the timer's merge applies them once."""
    monkeypatch.setattr(summary_upkeep, "COMPACT_AFTER_RECORDS", 2)
    written = _counting_writes(monkeypatch)
    failed = threading.Event()

    def failing_compaction(db_, period, session):
        failed.set()
        raise summary_changes.OperationFailure("mongod away")

    monkeypatch.setattr(summary_changes, "_compact_some", failing_compaction)
    _record_in_batches(db, generated_events(seed=28, cases=150), size=40)
    assert failed.wait(30)
    _upkeep_done(db)
    assert summary_changes.pending_records(db) == written[0]  # every record as written
    assert_as_defined(db, list(db[store.FACTS].find()))
    summaries.merge(db)  # the timer's merge: everything still pending
    assert summary_changes.pending_records(db) == 0
    assert_as_defined(db, list(db[store.FACTS].find()))
