"""Small SVG charts drawn on the server as text (no script, no chart library): the
assessment bulletin's ranking bars and trend line, and the command centre's indicator
charts. Callers escape nothing: labels are escaped here."""

from __future__ import annotations

import html
from collections.abc import Sequence

Point = tuple[str, float | None]  # (label, value or None for "no data")


def _open(width: int, height: int, label: str | None) -> str:
    named = f' aria-label="{html.escape(label)}"' if label else ""
    return (
        f'<svg width="{width}" height="{height}" role="img"{named} '
        'xmlns="http://www.w3.org/2000/svg">'
    )


def bar_chart(
    rows: Sequence[Point],
    maximum: float,
    unit: str,
    *,
    label: str | None = None,
    missing: str = "n/a",
) -> str:
    """One horizontal bar per row, its value written after it (`missing` for None)."""
    height = 22 * len(rows) + 10
    parts = [_open(640, height, label)]
    for index, (name, value) in enumerate(rows):
        y = 10 + 22 * index
        width = 0 if value is None else 440 * value / maximum
        shown = html.escape(missing) if value is None else f"{value:.1f}{unit}"
        parts.append(
            f'<text x="0" y="{y + 14}" font-size="12">{html.escape(name)}</text>'
            f'<rect x="150" y="{y}" width="{width:.1f}" height="16" fill="#3b7dd8"/>'
            f'<text x="{155 + width:.1f}" y="{y + 13}" font-size="11">{shown}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def line_chart(
    points: Sequence[Point],
    *,
    maximum: float = 1.0,
    step: int = 100,
    width: int = 640,
    label: str | None = None,
    markers: bool = False,
    shown=None,
) -> str:
    """A line through the known values, left to right, 0..`maximum` over 150 px; each
    point labelled underneath. With `markers`, a dot per known value titled with
    `shown(value)` (a screen reader and a hover read it)."""
    known = [(i, v) for i, (_, v) in enumerate(points) if v is not None]
    scale = 150 / maximum if maximum else 0

    def y(value: float) -> str:
        return f"{170 - scale * value:.1f}"

    coordinates = " ".join(f"{40 + step * i},{y(v)}" for i, v in known)
    labels = "".join(
        f'<text x="{40 + step * i}" y="190" font-size="11" text-anchor="middle">'
        f"{html.escape(name)}</text>"
        for i, (name, _) in enumerate(points)
    )
    dots = ""
    if markers:
        dots = "".join(
            f'<circle class="point" cx="{40 + step * i}" cy="{y(v)}" r="4" fill="#d83b3b">'
            f"<title>{html.escape(points[i][0])}: "
            f"{html.escape(shown(v) if shown else str(v))}</title></circle>"
            for i, v in known
        )
    return (
        f"{_open(width, 200, label)}"
        f'<line x1="30" y1="170" x2="{width - 40}" y2="170" stroke="#999"/>'
        f'<polyline points="{coordinates}" fill="none" stroke="#d83b3b" stroke-width="2"/>'
        f"{dots}{labels}</svg>"
    )
