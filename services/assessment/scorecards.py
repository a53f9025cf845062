"""Scorecards: indicators from the facts, scored by the rule set in force for the period,
with stars and the bottom of each level. Published scorecards are kept as they were
scored: a new rule set makes new versions, it never rewrites them."""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from dataclasses import fields, is_dataclass
from datetime import UTC, datetime
from fractions import Fraction

from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from gridwork_common.errors import InvalidInput
from services.assessment import facts, store
from services.assessment.domain.scoring import (
    DEFAULT_RULES,
    Indicators,
    RuleSet,
    Scorecard,
    bottom,
    score,
    select_rules,
    stars,
)

LEVELS = {"county": 6, "township": 9, "village": 12, "grid": 15}
KINDS_OF_LEVEL = {
    **dict.fromkeys(LEVELS, "territory"),
    "department": "department",
    "worker": "worker",
}
BOTTOM_N = 3


def rule_sets(db: Database) -> list[RuleSet]:
    stored = [RuleSet.from_config(doc["config"]) for doc in db[store.RULE_SETS].find()]
    return [DEFAULT_RULES, *stored]


def publish_rules(db: Database, config: Mapping) -> dict:
    """A new version of the rules, in force from its `valid_from` period."""
    existing = max(r.version for r in rule_sets(db))
    config = {**config, "version": existing + 1}
    rules = RuleSet.from_config(config)
    try:
        db[store.RULE_SETS].insert_one({"_id": rules.version, "config": rules.to_config()})
    except DuplicateKeyError:
        raise InvalidInput("version", "another rule set was published meanwhile") from None
    return rules.to_config()


def _working_days(period: str) -> int:
    # Weekdays of the month: the assessment service does not own the county's holiday
    # calendar (the events service does), so activity is measured against weekdays.
    year, month = (int(part) for part in period.split("-"))
    days = calendar.monthrange(year, month)[1]
    return sum(1 for day in range(1, days + 1) if calendar.weekday(year, month, day) < 5)


def indicators_of(db: Database, kind: str, subject: str, period: str) -> Indicators:
    cases = facts.incident_indicators(db, subject, period, kind)
    visits = facts.visit_indicators(db, subject, period, kind)
    activity = facts.activity_indicators(db, subject, period, kind)
    done = visits["visits_done_by_risk"]
    missed = visits["visits_missed_by_risk"]
    required = {risk: done.get(risk, 0) + missed.get(risk, 0) for risk in set(done) | set(missed)}
    records = db[store.FACTS].count_documents(
        {
            **facts.subject_match(kind, subject),
            "period": period,
            "type": {"$in": ["resident.registered", "resident.updated", "resident.moved"]},
        }
    )
    working = _working_days(period) if kind == "worker" else 0
    active = min(activity["active_user_days"], working) if kind == "worker" else 0
    known = {k: v for k, v in done.items() if k in ("high", "medium", "low")}
    return Indicators(
        cases_reported=cases["cases_reported"],
        cases_due=cases["cases_due"],
        cases_closed=cases["cases_closed"],
        closed_on_time=cases["closed_on_time"],
        approved_deferrals=min(cases["approved_deferrals"], cases["cases_due"]),
        urgent_due=cases["urgent_due"],
        urgent_closed=cases["urgent_closed"],
        urgent_closed_on_time=cases["urgent_closed_on_time"],
        reworked=cases["reworked"],
        visits_done_by_risk=known,
        visits_required_by_risk={
            k: v for k, v in required.items() if k in known or k in ("high", "medium", "low")
        },
        records_collected=records,
        active_days=active,
        working_days=working,
    )


def scorecards(db: Database, level: str, period: str, scope: str | None, everywhere: bool) -> dict:
    if level not in KINDS_OF_LEVEL:
        raise InvalidInput("level", f"must be one of {', '.join(KINDS_OF_LEVEL)}")
    kind = KINDS_OF_LEVEL[level]
    rules = select_rules(rule_sets(db), period)
    found = facts.subjects(db, kind, LEVELS.get(level), period)
    if not everywhere:
        # Departments and people are ranked county-wide: only for county-level users.
        in_scope = kind == "territory"
        found = [s for s in found if in_scope and scope and s.startswith(scope)]
    cards: dict[str, Scorecard] = {}
    details: dict[str, Indicators] = {}
    for subject in found:
        details[subject] = indicators_of(db, kind, subject, period)
        cards[subject] = score(details[subject], rules)
    totals = {subject: float(card.total) for subject, card in cards.items()}
    awarded = stars(totals, rules) if totals else {}
    return {
        "level": level,
        "period": period,
        "rules_version": rules.version,
        "items": [
            {
                "subject": subject,
                "total": totals[subject],
                "stars": awarded[subject],
                "scorecard": _plain(cards[subject]),
                "indicators": _plain(details[subject]),
            }
            for subject in sorted(totals, key=lambda s: (-totals[s], s))
        ],
        "bottom": bottom(totals, BOTTOM_N) if totals else [],
    }


def publish(db: Database, level: str, period: str) -> dict:
    """Keep the period's scorecards as scored now; publishing again with the same rule
    set stores nothing new (the rule version is part of the key)."""
    board = scorecards(db, level, period, None, everywhere=True)
    key = f"{level}:{period}:v{board['rules_version']}"
    try:
        db[store.PUBLISHED].insert_one({"_id": key, **board, "published_at": datetime.now(UTC)})
    except DuplicateKeyError:
        stored = db[store.PUBLISHED].find_one({"_id": key})
        stored.pop("published_at")
        stored.pop("_id")
        return {**stored, "republished": True}
    return {**board, "republished": False}


def _plain(value):
    """Plain JSON values (the domain keeps exact fractions and read-only mappings)."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Fraction):
        return float(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
