"""The monthly bulletin (每月通报) of a county: an HTML report with tables and charts
(ranking bars, the on-time trend, on-time rate by township) and a CSV of every scorecard.
Made by a timer after each month ends, and on demand; kept once made."""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Mapping

from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from gridwork_common.clock import Clock, utc_now
from gridwork_common.outbox import Outbox
from services.assessment import facts, store, topics
from services.assessment.domain.indicators import Indicators
from services.assessment.domain.periods import Period

LEVELS = ("township", "village", "grid", "department")
TREND_MONTHS = 6
RATE_COLUMNS = (
    "on_time_rate",
    "closure_rate",
    "rework_rate",
    "escalation_rate",
    "handling_hours_average",
    "handling_hours_p90",
    "satisfaction",
    "visit_coverage",
    "account_activity_rate",
)


def previous_months(period: str, count: int) -> list[str]:
    year, month = (int(part) for part in period.split("-"))
    months = []
    for _ in range(count):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return list(reversed(months))


def make(
    db: Database, county: str, period: str, published: Mapping[str, dict], clock: Clock = utc_now
) -> dict:
    """The bulletin of a month from its published scorecards (so the two never differ)."""
    boards = {level: published[level] for level in LEVELS}
    trend = []
    for earlier in map(Period.parse, previous_months(period, TREND_MONTHS)):
        counted = facts.indicators_by_subject(db, "county", earlier, (), within=county)
        trend.append((earlier.text, counted.get(county, Indicators()).on_time_rate))
    townships = [
        (item["subject"], item["rates"]["on_time_rate"]) for item in boards["township"]["items"]
    ]
    return {
        "_id": period,
        "county": county,
        "period": period,
        "html": _html(county, period, boards, trend, townships),
        "csv": _csv(boards),
        "generated_at": clock(),
    }


def bulletin(
    db: Database,
    county: str,
    period: str,
    published: Mapping[str, dict],
    clock: Clock = utc_now,
    outbox: Outbox | None = None,
) -> tuple[dict, bool]:
    """The period's bulletin, made now if it does not exist; True when it was made now.
    A bulletin made now and its `bulletin.published` event are written in one
    transaction through the `outbox` (none: nothing is announced)."""
    existing = db[store.BULLETINS].find_one({"_id": period})
    if existing is not None:
        return existing, False
    document = make(db, county, period, published, clock)
    try:

        def keep(staged) -> None:
            db[store.BULLETINS].insert_one(document, session=staged.session)
            staged.announce(topics.BULLETIN_PUBLISHED, county, {"county": county, "period": period})

        (outbox or Outbox(db, None, clock)).run(keep)
    except DuplicateKeyError:  # another replica made it meanwhile
        return db[store.BULLETINS].find_one({"_id": period}), False
    return document, True


def _csv(boards: dict) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "level",
            "rank",
            "subject",
            "total",
            "stars",
            "on_time",
            "closure",
            "urgent",
            "visits",
            "activity",
            "rework_deduction",
            *RATE_COLUMNS,
            "rules_version",
        ]
    )
    for level, board in boards.items():
        for rank, item in enumerate(board["items"], start=1):
            parts = item["scorecard"]["parts"]
            writer.writerow(
                [
                    level,
                    rank,
                    item["subject"],
                    item["total"],
                    item["stars"],
                    parts.get("on_time"),
                    parts.get("closure"),
                    parts.get("urgent"),
                    parts.get("visits"),
                    parts.get("activity"),
                    item["scorecard"]["deductions"].get("rework", 0),
                    *(item["rates"][name] for name in RATE_COLUMNS),
                    board["rules_version"],
                ]
            )
    return "\ufeff" + out.getvalue()  # BOM: Excel opens the Chinese text correctly


def _bars(rows: list[tuple[str, float | None]], maximum: float, unit: str) -> str:
    height = 22 * len(rows) + 10
    parts = [f'<svg width="640" height="{height}" role="img" xmlns="http://www.w3.org/2000/svg">']
    for index, (label, value) in enumerate(rows):
        y = 10 + 22 * index
        width = 0 if value is None else 440 * value / maximum
        shown = "n/a" if value is None else f"{value:.1f}{unit}"
        parts.append(
            f'<text x="0" y="{y + 14}" font-size="12">{html.escape(label)}</text>'
            f'<rect x="150" y="{y}" width="{width:.1f}" height="16" fill="#3b7dd8"/>'
            f'<text x="{155 + width:.1f}" y="{y + 13}" font-size="11">{shown}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _trend(points: list[tuple[str, float | None]]) -> str:
    known = [(i, v) for i, (_, v) in enumerate(points) if v is not None]
    coordinates = " ".join(f"{40 + 100 * i},{170 - 150 * v:.1f}" for i, v in known)
    labels = "".join(
        f'<text x="{40 + 100 * i}" y="190" font-size="11" text-anchor="middle">{month}</text>'
        for i, (month, _) in enumerate(points)
    )
    return (
        '<svg width="640" height="200" role="img" xmlns="http://www.w3.org/2000/svg">'
        '<line x1="30" y1="170" x2="600" y2="170" stroke="#999"/>'
        f'<polyline points="{coordinates}" fill="none" stroke="#d83b3b" stroke-width="2"/>'
        f"{labels}</svg>"
    )


def _html(county, period, boards, trend, townships) -> str:
    sections = []
    for level, board in boards.items():
        rows = "".join(
            f"<tr><td>{rank}</td><td>{html.escape(item['subject'])}</td>"
            f"<td>{item['total']:.2f}</td><td>{'★' * item['stars']}</td></tr>"
            for rank, item in enumerate(board["items"], start=1)
        )
        bottom = ", ".join(html.escape(s) for s in board["bottom"]) or "—"
        chart = _bars([(i["subject"], i["total"]) for i in board["items"][:15]], 100, "")
        sections.append(
            f"<h2>{level} ranking</h2>{chart}<table><tr><th>rank</th><th>subject</th>"
            f"<th>score</th><th>stars</th></tr>{rows}</table><p>末位 (bottom): {bottom}</p>"
        )
    by_township = _bars(
        [(code, None if rate is None else 100 * rate) for code, rate in townships], 100, "%"
    )
    return (
        "<!doctype html><html lang='zh'><head><meta charset='utf-8'>"
        f"<title>{county} 每月通报 {period}</title>"
        "<style>body{font:14px sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:3px 8px}</style></head><body>"
        f"<h1>{html.escape(county)} 网格化服务管理每月通报 {period}</h1>"
        f"<h2>On-time closure, last {TREND_MONTHS} months</h2>{_trend(trend)}"
        f"<h2>On-time closure by township</h2>{by_township}" + "".join(sections) + "</body></html>"
    )
