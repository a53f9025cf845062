"""The upload slot's owner check: a recent yes is kept per caller and owner, a no never."""

from datetime import UTC, datetime, timedelta

import pytest

from gridwork_common.context import CallerContext
from gridwork_common.errors import NotFound
from services.media.owners import REMEMBERED_FOR, RecentOwnerChecks

WORKER = CallerContext(user_id="w1", roles=("grid_worker",), scope="530402001001")
OTHER_SCOPE = CallerContext(user_id="w1", roles=("grid_worker",), scope="530402001002")


class Clock:
    def __init__(self):
        self.now = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)

    def __call__(self):
        return self.now


def counting(visible: set[str]):
    asked: list[tuple[str, str]] = []

    def lookup(kind, owner_id):
        asked.append((kind, owner_id))
        if owner_id not in visible:
            raise NotFound(f"no {kind} {owner_id}")
        return {"id": owner_id}

    return lookup, asked


def test_a_yes_is_kept_for_the_same_caller_and_owner_until_it_expires():
    clock = Clock()
    checks = RecentOwnerChecks(clock)
    lookup, asked = counting({"case-1", "case-2"})
    check = checks.remembering(lookup, WORKER)
    check("incident", "case-1")
    check("incident", "case-1")
    check("incident", "case-2")
    assert asked == [("incident", "case-1"), ("incident", "case-2")]
    checks.remembering(lookup, OTHER_SCOPE)("incident", "case-1")  # another scope: asked
    assert len(asked) == 3
    clock.now += REMEMBERED_FOR + timedelta(seconds=1)
    check("incident", "case-1")
    assert len(asked) == 4


def test_a_no_is_never_kept():
    checks = RecentOwnerChecks(Clock())
    lookup, asked = counting(set())
    check = checks.remembering(lookup, WORKER)
    for _ in range(2):
        with pytest.raises(NotFound):
            check("incident", "case-1")
    assert len(asked) == 2
