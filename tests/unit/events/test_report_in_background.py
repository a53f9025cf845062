"""The duplicates search a report runs beside its insert: its value, or its error, reach
whoever asks for the result."""

import pytest

from services.events.usecases.incidents import _InBackground


def test_the_result_is_the_functions_value():
    assert _InBackground(lambda a, b: a + b, 2, 3).result() == 5


def test_the_functions_error_is_raised_by_the_result():
    def fails():
        raise LookupError("mongod went away")

    background = _InBackground(fails)
    with pytest.raises(LookupError, match="mongod went away"):
        background.result()
