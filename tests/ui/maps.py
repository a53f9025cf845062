"""Reading and clicking the map page in a browser. The polygons are drawn on a canvas
(no element per grid), so a test reads what is drawn from the grid picker, which lists
the drawn features with their state, and clicks a grid at its pixel, computed from the
map's view (`data-view`, west,south,east,north) in Web Mercator."""

from __future__ import annotations

import math

READY = ".grid-map--ready"


def open_map(page, stack: dict, query: str = "") -> None:
    page.goto(f"{stack['gateway']}/map{query}")
    page.wait_for_selector(READY, timeout=20_000)


def drawn(page) -> dict[str, str]:
    """Code -> state ("overdue", "open", "none") of every feature drawn now."""
    return page.eval_on_selector_all(
        "#grid-picker option[data-status]",
        "options => Object.fromEntries(options.map(o => [o.value, o.dataset.status]))",
    )


def grid_status(page, code: str) -> str:
    return drawn(page)[code]


def _mercator_y(lat: float) -> float:
    return math.log(math.tan(math.pi / 4 + math.radians(lat) / 2))


def pixel_of(page, lon: float, lat: float) -> tuple[float, float]:
    """Where (lon, lat) is on the page, from the map's current view and its box."""
    west, south, east, north = (
        float(v) for v in page.get_attribute("#grid-map", "data-view").split(",")
    )
    box = page.locator("#grid-map").bounding_box()
    x = (lon - west) / (east - west)
    y = (_mercator_y(north) - _mercator_y(lat)) / (_mercator_y(north) - _mercator_y(south))
    return box["x"] + x * box["width"], box["y"] + y * box["height"]


def click_at(page, lon: float, lat: float) -> str:
    """Click the map at (lon, lat); the tag of the element clicked (CANVAS for a polygon)."""
    x, y = pixel_of(page, lon, lat)
    target = page.evaluate("([x, y]) => document.elementFromPoint(x, y).tagName", [x, y])
    page.mouse.click(x, y)
    return target
