"""Reading the `Prefer` header (RFC 7240 section 2: comma-separated preferences, each a
token with an optional value and parameters)."""

import pytest

from services.gateway.preferences import preferences, prefers_minimal


def test_preferences_with_values_parameters_and_spaces():
    header = 'respond-async, wait=10, return = "minimal"; foo=bar, Handling=lenient'
    assert preferences(header) == {
        "respond-async": "",
        "wait": "10",
        "return": "minimal",
        "handling": "lenient",
    }


def test_the_first_of_a_repeated_preference_counts():
    assert preferences("return=minimal, return=representation") == {"return": "minimal"}


@pytest.mark.parametrize(
    ("header", "minimal"),
    [
        ("return=minimal", True),
        ("RETURN=Minimal", True),
        ('return="minimal"', True),
        ("wait=5, return=minimal", True),
        ("return=representation", False),
        ("minimal", False),
        ("", False),
        (None, False),
    ],
)
def test_return_minimal(header, minimal):
    assert prefers_minimal(header) is minimal
