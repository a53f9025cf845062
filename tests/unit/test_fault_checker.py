"""The fault suite's checker catches what it is there to catch: a history with an item
lost, doubled, stuck, answered with another record, a 500, a hang or a bare 503."""

from tests.faults.checker import Effect, reconcile
from tests.faults.history import Attempt, Operation

CREATED = Attempt(201)
UNAVAILABLE = Attempt(503, retry_after="2", problem_json=True)


def op(key, *attempts, answer_id=None, kind="report", expected_state=None) -> Operation:
    return Operation(kind, key, list(attempts), answer_id, expected_state)


def test_a_clean_history_has_no_violations():
    history = [
        op("a", CREATED, answer_id="A"),
        op("b", UNAVAILABLE, Attempt(409), CREATED, answer_id="B"),
        op("c", CREATED, answer_id="C", kind="accept", expected_state="accepted"),
    ]
    figures = reconcile(
        history,
        {"a": ["A"], "b": ["B"], "c": ["C"]},
        {"c": "accepted"},
        [Effect("facts", frozenset({"A", "B"}), {"A": 1, "B": 1, "other": 2})],
    )
    assert figures.violations() == []
    assert (figures.operations, figures.requests, figures.acknowledged) == (3, 5, 3)
    assert figures.server_errors == {503: 1}
    assert "lost 0  doubled 0  stuck 0" in figures.table("clean")


def test_an_acknowledged_item_not_stored_is_lost():
    figures = reconcile([op("a", CREATED, answer_id="A")], {})
    assert figures.lost == ["report:a"]
    assert figures.violations() == ["lost: 1 (report:a)"]


def test_an_item_stored_twice_is_doubled_even_if_never_acknowledged():
    figures = reconcile(
        [op("a", CREATED, answer_id="A"), op("b", Attempt(None, timed_out=True))],
        {"a": ["A", "A2"], "b": ["B", "B2"]},
    )
    assert figures.doubled == ["report:a", "report:b"]
    assert figures.stuck == ["report:b"] and figures.hangs == 1


def test_an_item_never_acknowledged_or_in_the_wrong_state_is_stuck():
    figures = reconcile(
        [
            op("a", UNAVAILABLE, UNAVAILABLE),
            op("b", CREATED, answer_id="B", kind="accept", expected_state="accepted"),
        ],
        {"a": [], "b": ["B"]},
        {"b": "reported"},
    )
    assert figures.stuck == ["report:a", "accept:b"]


def test_an_answered_item_whose_idempotency_record_is_still_pending_is_stuck():
    figures = reconcile([op("a", CREATED, answer_id="A")], {"a": ["A"]}, pending_keys={"a"})
    assert figures.stuck == ["report:a"]


def test_a_retry_answered_with_another_record_is_mismatched():
    figures = reconcile([op("a", Attempt(None), CREATED, answer_id="X")], {"a": ["A"]})
    assert figures.mismatched == ["report:a"] and figures.unanswered == 1


def test_a_500_a_bare_503_and_an_unexpected_4xx_are_violations():
    figures = reconcile(
        [op("a", Attempt(500), Attempt(503), Attempt(422), CREATED, answer_id="A")],
        {"a": ["A"]},
    )
    assert figures.server_errors == {500: 1, 503: 1}
    assert figures.violations() == [
        "unexpected: 1 (report:a:422)",
        "5xx other than 503: {500: 1}",
        "503 without Retry-After or problem+json: 1",
    ]


def test_an_effect_that_did_not_happen_or_happened_twice_is_caught():
    figures = reconcile(
        [], {}, effects=[Effect("webhooks", frozenset({"e1", "e2", "e3"}), {"e1": 1, "e2": 2})]
    )
    assert figures.effects["webhooks"] == {"expected": 3, "lost": 1, "doubled": 1}
    assert figures.violations() == ["webhooks: 1 lost, 1 doubled"]
