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

from gridwork_common.charts import bar_chart, line_chart
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


def _html(county, period, boards, trend, townships) -> str:
    sections = []
    for level, board in boards.items():
        rows = "".join(
            f"<tr><td>{rank}</td><td>{html.escape(item['subject'])}</td>"
            f"<td>{item['total']:.2f}</td><td>{'★' * item['stars']}</td></tr>"
            for rank, item in enumerate(board["items"], start=1)
        )
        bottom = ", ".join(html.escape(s) for s in board["bottom"]) or "—"
        chart = bar_chart(
            [(i["subject"], i["total"]) for i in board["items"][:15]],
            100,
            "",
            label=f"{level} ranking",
        )
        sections.append(
            f"<h2>{level} ranking</h2>{chart}<table><tr><th>rank</th><th>subject</th>"
            f"<th>score</th><th>stars</th></tr>{rows}</table><p>末位 (bottom): {bottom}</p>"
        )
    by_township = bar_chart(
        [(code, None if rate is None else 100 * rate) for code, rate in townships],
        100,
        "%",
        label="On-time closure by township",
    )
    trend_chart = line_chart(trend, label="On-time closure by month")
    return (
        "<!doctype html><html lang='zh'><head><meta charset='utf-8'>"
        f"<title>{county} 每月通报 {period}</title>"
        "<style>body{font:14px sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:3px 8px}</style></head><body>"
        f"<h1>{html.escape(county)} 网格化服务管理每月通报 {period}</h1>"
        f"<h2>On-time closure, last {TREND_MONTHS} months</h2>{trend_chart}"
        f"<h2>On-time closure by township</h2>{by_township}" + "".join(sections) + "</body></html>"
    )
