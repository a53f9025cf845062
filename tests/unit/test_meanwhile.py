"""`meanwhile` and `InBackground` (the report's duplicates search beside its insert): the
work runs beside the body, is always waited for, and its failure
reaches the caller (after the body's own)."""

import threading

import pytest

from gridwork_common.meanwhile import InBackground, meanwhile


def test_the_work_runs_beside_the_body_and_is_waited_for():
    started, release, done = threading.Event(), threading.Event(), []

    def work():
        started.set()
        release.wait(5)
        done.append("work")

    with meanwhile(work):
        assert started.wait(5)  # running while the body runs
        assert done == []
        release.set()
    assert done == ["work"]  # finished before the block is left


def test_the_work_s_failure_is_raised_after_the_body():
    body = []

    def work():
        raise ValueError("duplicate key")

    with pytest.raises(ValueError, match="duplicate key"), meanwhile(work):
        body.append("ran")
    assert body == ["ran"]


def test_the_body_s_failure_comes_first_and_the_work_is_still_waited_for():
    finished = []
    release = threading.Event()

    def work():
        release.wait(5)
        finished.append(True)
        raise ValueError("second")

    with pytest.raises(KeyError), meanwhile(work):
        release.set()
        raise KeyError("first")
    assert finished == [True]


def test_in_background_hands_back_its_value_or_its_error():
    assert InBackground(lambda a, b: a + b, 2, 3).result() == 5

    def failing():
        raise LookupError("no grid here")

    failed = InBackground(failing)
    failed.done()  # waiting alone raises nothing
    with pytest.raises(LookupError, match="no grid here"):
        failed.result()
