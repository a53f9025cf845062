"""The population pages' visit status of a group member this month, from the responsible
workers' worklists (tests/ui/test_population.py shows done and due in the browser; an
overdue member needs a month gone by, which the live stack's clock cannot give)."""

from services.gateway.ui.population import DONE, DUE, OVERDUE, visit_statuses


def worklist(due=(), overdue=()):
    return {
        "worker_id": "w",
        "period": "2026-12",
        "due": [{"id": m, "done": done, "required": required} for m, done, required in due],
        "overdue": [{"id": m, "period": "2026-11", "missing": 1} for m in overdue],
    }


def test_a_member_not_on_the_worklist_is_done_this_month():
    assert visit_statuses([{"id": "a"}], [worklist()]) == {"a": {"status": DONE}}


def test_a_member_still_due_shows_the_visits_done_and_required():
    statuses = visit_statuses([{"id": "a"}], [worklist(due=[("a", 1, 2)])])
    assert statuses == {"a": {"status": DUE, "done": 1, "required": 2}}


def test_missed_last_month_and_not_done_this_month_is_overdue():
    statuses = visit_statuses(
        [{"id": "a"}, {"id": "b"}],
        [worklist(due=[("a", 0, 4)], overdue=["a"]), worklist(overdue=["b"])],
    )
    assert statuses["a"] == {"status": OVERDUE, "done": 0, "required": 4}
    # Last month missed, but this month's visits are done: done.
    assert statuses["b"] == {"status": DONE}
