"""Scorecards: indicators from the facts, scored by the rule set in force for the period,
with stars and the bottom of each level. Published scorecards are kept as they were
scored: a new rule set makes new versions, it never rewrites them."""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Collection, Mapping
from dataclasses import fields, is_dataclass
from fractions import Fraction
from functools import partial

from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from gridwork_common.clock import Clock, utc_now
from gridwork_common.errors import InvalidInput
from gridwork_common.outbox import Outbox
from services.assessment import store, summaries, topics
from services.assessment.domain.indicators import LEVELS, TERRITORY_LEVELS
from services.assessment.domain.periods import Period
from services.assessment.domain.scoring import (
    DEFAULT_RULES,
    Indicators,
    RuleSet,
    bottom,
    ranks,
    score,
    select_rules,
    stars,
)

BOTTOM_N = 3
LEVEL_OF_CODE = dict(zip((6, 9, 12, 15), TERRITORY_LEVELS, strict=True))


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


def scorecards(
    db: Database,
    level: str,
    period: Period,
    working_days: Collection[str],
    scope: str | None = None,
    rules_version: int | None = None,
) -> dict:
    """Every subject of a level with facts in the period, scored by the rule set in force
    (or the given version), ranked county-wide, with stars and the bottom ranks. With a
    `scope`, the territory nodes under it (their county-wide ranks and stars)."""
    return boards(db, [level], period, working_days, scope, rules_version)[level]


def boards(
    db: Database,
    levels: Collection[str],
    period: Period,
    working_days: Collection[str],
    scope: str | None = None,
    rules_version: int | None = None,
) -> dict[str, dict]:
    """`scorecards` of several levels, read from the live summaries."""
    for level in levels:
        if level not in LEVELS:
            raise InvalidInput("level", f"must be one of {', '.join(LEVELS)}")
    rules = _rules(db, period, rules_version)
    # Ranks and stars are county-wide; a scoped caller sees the part of them in scope.
    counted = [level for level in levels if scope is None or level in TERRITORY_LEVELS]
    found = summaries.indicators_by_level(db, counted, period, working_days)
    return {
        level: _within(level, board(level, period.text, rules, found.get(level, {})), scope)
        for level in levels
    }


def _within(level: str, scored: dict, scope: str | None) -> dict:
    """The items of a board under the caller's scope (departments and people are ranked
    county-wide, for county-level users only)."""
    if scope is None:
        return scored
    inside = level in TERRITORY_LEVELS
    return {
        **scored,
        "items": [i for i in scored["items"] if inside and i["subject"].startswith(scope)],
        "bottom": [s for s in scored["bottom"] if inside and s.startswith(scope)],
    }


def level_of_code(territory) -> str:
    """The territory level of a county (6 digits), township (9), village (12) or grid (15)
    code."""
    level = LEVEL_OF_CODE.get(len(territory) if isinstance(territory, str) else 0)
    if level is None or not territory.isdigit():
        raise InvalidInput("territory", "must be a county, township, village or grid code")
    return level


def node_indicators(
    db: Database, level: str, territory: str, period: Period, working_days: Collection[str]
) -> dict:
    """One territory node's indicators and rates (coverage weighted as its scoring is):
    its row of the level's board."""
    counted = summaries.indicators_of(db, level, territory, period, working_days)
    rules = _rules(db, period, None)
    return {
        "territory": territory,
        "period": period.text,
        **_plain(counted),
        "rates": counted.rates(rules.visit_weights),
    }


def board(level: str, period: str, rules: RuleSet, found: Mapping[str, Indicators]) -> dict:
    rules_key = _rules_key(rules)
    scored = {subject: _scored(rules_key, rules, ind) for subject, ind in found.items()}
    totals = {subject: card["total"] for subject, (card, _, _) in scored.items()}
    awarded = stars(totals, rules) if totals else {}
    # Equal scores share a rank (1, 2, 2, 4); within a tie the list is in id order.
    ranked = sorted(totals, key=lambda subject: (-totals[subject], subject))
    rank_of = ranks(totals)
    return {
        "level": level,
        "period": period,
        "rules_version": rules.version,
        "items": [
            {
                "rank": rank_of[subject],
                "subject": subject,
                "total": totals[subject],
                "stars": awarded[subject],
                "scorecard": scored[subject][0],
                "indicators": scored[subject][1],
                "rates": scored[subject][2],
            }
            for subject in ranked
        ],
        "bottom": bottom(totals, BOTTOM_N) if totals else [],
    }


# A subject's scorecard, indicators and rates as plain values are a pure function of its
# indicators and the rule set, and exact scoring is the dear part of reading a board of a
# thousand subjects; most subjects' indicators are unchanged from one read to the next, so
# the plain results are kept (never mutated) for the latest combinations.
_SCORED: OrderedDict[tuple, tuple[dict, dict, dict]] = OrderedDict()
SCORED_KEPT = 100_000


def _rules_key(rules: RuleSet) -> str:
    return json.dumps(rules.to_config(), sort_keys=True)


def _scored(rules_key: str, rules: RuleSet, indicators: Indicators) -> tuple[dict, dict, dict]:
    key = (rules_key, _indicators_key(indicators))
    kept = _SCORED.get(key)
    if kept is not None:
        _SCORED.move_to_end(key)
        return kept
    kept = (
        _plain(score(indicators, rules)),
        _plain(indicators),
        indicators.rates(rules.visit_weights),
    )
    _SCORED[key] = kept
    if len(_SCORED) > SCORED_KEPT:
        _SCORED.popitem(last=False)
    return kept


def _indicators_key(indicators: Indicators) -> tuple:
    return tuple(
        tuple(value.items()) if isinstance(value, Mapping) else value
        for value in (getattr(indicators, name) for name in _INDICATOR_FIELDS)
    )


_INDICATOR_FIELDS = tuple(f.name for f in fields(Indicators))


def _rules(db: Database, period: Period, version: int | None) -> RuleSet:
    known = rule_sets(db)
    if version is None:
        return select_rules(known, period.rules_month)
    for rules in known:
        if rules.version == version:
            return rules
    raise InvalidInput("rules_version", f"no rule set has version {version}")


def publish(
    db: Database,
    levels: Collection[str],
    period: Period,
    working_days: Collection[str],
    clock: Clock = utc_now,
    outbox: Outbox | None = None,
) -> dict[str, dict]:
    """Keep the period's scorecards of each level as scored now (those not yet kept under
    the rule set in force, scored in one pass); publishing again with the same rule set
    stores nothing new. Each board says whether it was `republished` (kept before). A
    board kept now and the `scorecard.published` event announcing it are written in one
    transaction through the `outbox` (none: nothing is announced)."""
    outbox = outbox or Outbox(db, None, clock)
    version = _rules(db, period, None).version
    kept: dict[str, dict] = {}
    for level in levels:
        stored = db[store.PUBLISHED].find_one(
            {"_id": _publication_key(level, period, version)}, {"_id": 0, "published_at": 0}
        )
        if stored is not None:
            kept[level] = {**stored, "republished": True}
    missing = [level for level in levels if level not in kept]
    scored = boards(db, missing, period, working_days) if missing else {}
    for level, board in scored.items():
        key = _publication_key(level, period, board["rules_version"])
        try:
            outbox.run(partial(_keep_board, db, key, level, period, board, clock))
        except DuplicateKeyError:  # another replica kept it meanwhile: theirs stands
            stored = db[store.PUBLISHED].find_one({"_id": key}, {"_id": 0, "published_at": 0})
            kept[level] = {**stored, "republished": True}
        else:
            kept[level] = {**board, "republished": False}
    return {level: kept[level] for level in levels}


def _keep_board(db, key: str, level: str, period: Period, board: dict, clock, staged) -> None:
    """A board kept and the `scorecard.published` event announcing it (one transaction)."""
    db[store.PUBLISHED].insert_one(
        {"_id": key, **board, "published_at": clock()}, session=staged.session
    )
    staged.announce(
        topics.SCORECARD_PUBLISHED,
        level,
        {
            "level": level,
            "period": period.text,
            "rules_version": board["rules_version"],
            "subjects": len(board["items"]),
            "bottom": board["bottom"],
        },
    )


def _publication_key(level: str, period: Period, rules_version: int) -> str:
    return f"{level}:{period.text}:v{rules_version}"


def published(db: Database, level: str, period: Period, scope: str | None = None) -> list[dict]:
    """A level's scorecards as published for a period, one board per rule version, oldest
    first; with a `scope`, only the territory nodes under it."""
    kept = db[store.PUBLISHED].find({"level": level, "period": period.text}, {"_id": 0})
    return [_within(level, board, scope) for board in kept.sort("rules_version", 1)]


def published_now(db: Database, level: str, period: Period, scope: str | None) -> dict | None:
    """The board published for a period under the rule set in force for it, if any: what
    the county announced, read instead of recomputed."""
    if level not in LEVELS:
        raise InvalidInput("level", f"must be one of {', '.join(LEVELS)}")
    version = _rules(db, period, None).version
    kept = db[store.PUBLISHED].find_one(
        {"_id": _publication_key(level, period, version)}, {"_id": 0, "published_at": 0}
    )
    return None if kept is None else _within(level, kept, scope)


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
