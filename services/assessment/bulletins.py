"""The monthly bulletin (每月通报) of a county: an HTML report with tables and charts
(ranking bars, the on-time trend, on-time rate by township) and a CSV of every scorecard.
Made by a timer after each month ends, and on demand; kept once made."""

from __future__ import annotations

import csv
import html
import io
from collections import Counter
from collections.abc import Mapping

from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from gridwork_common.charts import bar_chart, line_chart
from gridwork_common.clock import Clock, utc_now
from gridwork_common.outbox import Outbox
from services.assessment import store, summaries, topics
from services.assessment.bulletin_labels import label, level_name
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
    "patrol_coverage",
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
        counted = summaries.indicators_of(db, "county", county, earlier, ())
        trend.append((earlier.text, counted.on_time_rate))
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
            "patrols",
            "activity",
            "rework_deduction",
            *RATE_COLUMNS,
            "rules_version",
        ]
    )
    for level, board in boards.items():
        for item in board["items"]:
            parts = item["scorecard"]["parts"]
            writer.writerow(
                [
                    level,
                    item["rank"],
                    item["subject"],
                    item["total"],
                    item["stars"],
                    parts.get("on_time"),
                    parts.get("closure"),
                    parts.get("urgent"),
                    parts.get("visits"),
                    parts.get("patrols"),
                    parts.get("activity"),
                    item["scorecard"]["deductions"].get("rework", 0),
                    *(item["rates"].get(name) for name in RATE_COLUMNS),  # older boards lack some
                    board["rules_version"],
                ]
            )
    return "\ufeff" + out.getvalue()  # BOM: Excel opens the Chinese text correctly


def _html(county, period, boards, trend, townships) -> str:
    title = label("title", county=html.escape(county), period=period)
    sections = [
        f"<h2>{label('trend', months=TREND_MONTHS)}</h2>"
        + line_chart(trend, label=label("trend_chart"), markers=True, shown=_percent),
        f"<h2>{label('by_township')}</h2>"
        + bar_chart(
            [(code, None if rate is None else 100 * rate) for code, rate in townships],
            100,
            "%",
            label=label("by_township"),
            missing=label("no_data"),
        ),
    ]
    sections += [_ranking(level, board) for level, board in boards.items()]
    return (
        "<!doctype html><html lang='zh-CN'><head><meta charset='utf-8'>"
        f"<title>{title}</title>"
        "<style>body{font:14px sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:3px 8px}</style></head><body>"
        f"<h1>{title}</h1>" + "".join(sections) + "</body></html>"
    )


def _ranking(level: str, board: dict) -> str:
    """A level's ranking: bars of the first 15, the table with shared ranks, the 末位."""
    name = level_name(level)
    shared = Counter(item["rank"] for item in board["items"])
    rows = "".join(
        f"<tr><td>{item['rank']}{label('tied') if shared[item['rank']] > 1 else ''}</td>"
        f"<td>{html.escape(item['subject'])}</td>"
        f"<td>{item['total']:.2f}</td><td>{'★' * item['stars']}</td></tr>"
        for item in board["items"]
    )
    chart = bar_chart(
        [(i["subject"], i["total"]) for i in board["items"][:15]],
        100,
        "",
        label=label("ranking_chart", level=name),
        missing=label("no_data"),
    )
    separator = label("list_separator")
    bottom = separator.join(html.escape(s) for s in board["bottom"]) or label("nobody")
    head = "".join(f"<th>{label(column)}</th>" for column in ("rank", "subject", "score", "stars"))
    return (
        f"<h2>{label('ranking', level=name)}</h2>{chart}"
        f"<table><tr>{head}</tr>{rows}</table>"
        f"<p>{label('bottom', subjects=bottom)}</p>"
    )


def _percent(rate: float) -> str:
    return f"{100 * rate:.1f}%"
