"""Change records on a real mongod: a batch's changes to the summaries wait in a few
records until merged; boards read them on top of the summaries (exact before, during and
after a merge), a merge is idempotent (run again, or cut short before its commit, it
neither loses nor doubles a change), and a fact delivered again after its batch was
merged counts once."""

import threading

import pytest

from gridwork_common.mongo import new_client
from services.assessment import facts, store, summaries, summary_changes
from services.assessment.domain.change_records import periods_of_record
from tests.integration.assessment.test_summaries import assert_as_defined, generated_events

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def merged_only_when_asked(monkeypatch):
    """No merge after so many facts: each test says when records are merged."""
    monkeypatch.setattr(summary_changes, "MERGE_AFTER_FACTS", 10**9)
    monkeypatch.setattr(summary_changes, "MERGE_AFTER_RECORDS", 10**9)


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


def test_two_replicas_merging_at_once_apply_each_record_once(db, settings):
    """Two clients (two replicas) merge the same pending records at the same time: one
    wins each record, the other finds it gone."""
    _record_in_batches(db, generated_events(seed=26, cases=150), size=20)
    pending = summary_changes.pending_records(db)
    clients = [new_client(settings, app_name=f"replica-{n}") for n in range(2)]
    merged, failures = [], []

    def merge(client):
        try:
            merged.append(summaries.merge(client[db.name]))
        except Exception as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=merge, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for client in clients:
        client.close()
    assert not failures
    assert sum(merged) == pending
    assert summary_changes.pending_records(db) == 0
    assert_as_defined(db, list(db[store.FACTS].find()))


def _wait_until_merged(db, rounds=600):
    """The background merger has merged everything (polled: it runs in its own thread)."""
    for _ in range(rounds):
        if summary_changes.pending_records(db) == 0:
            return
        threading.Event().wait(0.05)
    raise AssertionError(f"{summary_changes.pending_records(db)} records still pending")


def test_periods_due_are_merged_in_the_background_while_the_boards_stay_exact(db, monkeypatch):
    """Every record makes its periods due: each fold hands them to the background merger
    and returns; the boards are exact whichever batches it merged so far."""
    monkeypatch.setattr(summary_changes, "MERGE_AFTER_RECORDS", 1)
    _record_in_batches(db, generated_events(seed=27, cases=150), size=40)
    assert_as_defined(db, list(db[store.FACTS].find()))  # some merged, some maybe not
    _wait_until_merged(db)
    assert db[store.SUMMARIES].count_documents({}) > 0
    assert_as_defined(db, list(db[store.FACTS].find()))


def test_a_failed_background_merge_leaves_its_records_for_the_next(db, monkeypatch):
    """The merger's merge fails (mongod away, say): its records stay pending, counted by
    the boards, and a later merge applies them once."""
    monkeypatch.setattr(summary_changes, "MERGE_AFTER_RECORDS", 1)
    real_merge, failed = summary_changes.merge, threading.Event()

    def failing_merge(db_, periods=None):
        failed.set()
        raise summary_changes.OperationFailure("mongod away")

    monkeypatch.setattr(summary_changes, "merge", failing_merge)
    events = generated_events(seed=28, cases=150)
    _record_in_batches(db, events[: len(events) // 2], size=40)
    assert failed.wait(30)
    for _ in range(600):  # the merger has given up on everything it was handed
        if id(db.client) not in summary_changes._MERGER:
            break
        threading.Event().wait(0.05)
    monkeypatch.setattr(summary_changes, "merge", real_merge)
    assert summary_changes.pending_records(db) > 0
    assert_as_defined(db, list(db[store.FACTS].find()), every_kind=False)  # half the kinds
    _record_in_batches(db, events[len(events) // 2 :], size=40)  # the merger again
    summaries.merge(db)  # and the timer's merge: everything still pending
    assert summary_changes.pending_records(db) == 0
    assert_as_defined(db, list(db[store.FACTS].find()))
