"""Scoring of grid workers, grids, communities, townships and departments from their work
traces: indicators for one subject and period, versioned rule sets, scorecards, stars.

Arithmetic is exact (fractions; rule-set numbers are read through their decimal text, so
0.7 is exactly 7/10) and every published figure is rounded half-up to two decimals, so the
same indicators and rule set always give the identical scorecard.

Rates are capped at 1 (closures may include cases due in earlier periods). A rate whose
denominator is zero is None, "not applicable": its part then earns FULL MARKS and is listed
in `Scorecard.not_applicable`. A subject is not punished for having had nothing to do,
and the composite stays on the same 0-100 scale as everyone else's.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from fractions import Fraction
from itertools import pairwise
from types import MappingProxyType
from typing import Any

from gridwork_common.errors import InvalidInput
from services.assessment.domain.indicators import RISK_LEVELS, Indicators, exact_number

__all__ = [
    "DEFAULT_RULES",
    "Indicators",
    "RuleSet",
    "Scorecard",
    "bottom",
    "ranks",
    "score",
    "stars",
]
STARS_BY = ("threshold", "percentile")
PART_NAMES = ("on_time", "closure", "urgent", "visits", "patrols", "activity")

_PERIOD = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])$")
_HUNDRED = Fraction(100)
_NUMERIC = frozenset(
    {
        "on_time_points",
        "on_time_target",
        "on_time_per_point",
        "closure_points",
        "closure_target",
        "urgent_points",
        "urgent_closure_target",
        "urgent_on_time_target",
        "urgent_per_point",
        "visit_points",
        "activity_points",
        "patrol_points",
        "rework_per_case",
    }
)


def _hundredths(value: Fraction) -> Fraction:
    """Rounded half-up (away from zero) to two decimals; monotone, so scores stay ordered."""
    sign = -1 if value < 0 else 1
    return sign * Fraction(math.floor(abs(value) * 100 + Fraction(1, 2)), 100)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check_period(value: Any, name: str) -> str:
    if not isinstance(value, str) or not _PERIOD.match(value):
        raise InvalidInput(name, "must be a period YYYY-MM")
    return value


# --------------------------------------------------------------------------- rule sets


def _number(config: Mapping, name: str, low: float, high: float | None = None) -> int | float:
    if name not in config:
        raise InvalidInput(name, "is required")
    value = config[name]
    if not _is_number(value) or value < low or (high is not None and value > high):
        span = f"between {low} and {high}" if high is not None else f">= {low}"
        raise InvalidInput(name, f"must be a number {span}")
    return value


@dataclass(frozen=True)
class RuleSet:
    """One version of a county's scoring rules; `from_config` builds and validates one.

    Parts (points earned): on-time closure at or above `on_time_target` earns
    `on_time_points`, less `on_time_per_point` per percentage point below; closure earns
    `closure_points` at or above `closure_target`, proportionally less below; urgent cases
    earn `urgent_points` less `urgent_per_point` per percentage point short of each of
    `urgent_closure_target` and `urgent_on_time_target`; risk-weighted visit coverage
    earns up to `visit_points`; the share of grids patrolled up to `patrol_points` (0 in
    rule sets written before patrols, which may leave it out); account activity up to
    `activity_points`. Each part is
    floored at 0. Deduction: `rework_per_case` per reworked case. Rates are fractions
    (0.7 is 70 %). Stars: by `star_thresholds` or, if `stars_by` is "percentile", by
    `star_shares` of the level (see `stars`).
    """

    version: int
    name: str
    valid_from: str
    on_time_points: int | float
    on_time_target: int | float
    on_time_per_point: int | float
    closure_points: int | float
    closure_target: int | float
    urgent_points: int | float
    urgent_closure_target: int | float
    urgent_on_time_target: int | float
    urgent_per_point: int | float
    visit_points: int | float
    visit_weights: Mapping[str, int | float]
    activity_points: int | float
    rework_per_case: int | float
    patrol_points: int | float = 0
    stars_by: str = "threshold"
    # Lowest score for five, four, three and two stars; below the last, one star.
    star_thresholds: tuple[int | float, ...] = (90, 80, 70, 60)
    # Shares of the level given five, four, three, two and one star, best first.
    star_shares: tuple[int | float, ...] = (0.1, 0.2, 0.4, 0.2, 0.1)

    def __post_init__(self) -> None:
        # Validate however the rule set was built; from_config only adds the
        # unknown/missing-key checks a plain dict needs.
        self._validate()

    def _validate(self) -> None:
        config = {f.name: getattr(self, f.name) for f in fields(self)}
        version = self.version
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise InvalidInput("version", "must be a whole number >= 1")
        if not isinstance(self.name, str) or not self.name.strip():
            raise InvalidInput("name", "must be a non-empty string")
        _check_period(self.valid_from, "valid_from")
        for name in sorted(_NUMERIC):
            _number(config, name, 0, 1 if name.endswith("_target") else None)
        if self.closure_target == 0:
            raise InvalidInput("closure_target", "must be above 0")
        weights = self.visit_weights
        if not isinstance(weights, Mapping):
            raise InvalidInput("visit_weights", "must map high, medium and low to weights")
        for level in weights:
            if level not in RISK_LEVELS:
                raise InvalidInput(f"visit_weights.{level}", "unknown risk level")
        for level in RISK_LEVELS:
            if level not in weights or not _is_number(weights[level]) or weights[level] < 0:
                raise InvalidInput(f"visit_weights.{level}", "must be a number >= 0")
        object.__setattr__(
            self, "visit_weights", MappingProxyType({k: weights[k] for k in RISK_LEVELS})
        )
        if self.stars_by not in STARS_BY:
            raise InvalidInput("stars_by", "must be 'threshold' or 'percentile'")
        thresholds = self.star_thresholds
        if (
            not isinstance(thresholds, list | tuple)
            or len(thresholds) != 4
            or not all(_is_number(t) and 0 <= t <= 100 for t in thresholds)
            or any(a <= b for a, b in pairwise(thresholds))
        ):
            raise InvalidInput(
                "star_thresholds", "must be four scores from 0 to 100, strictly decreasing"
            )
        shares = self.star_shares
        if (
            not isinstance(shares, list | tuple)
            or len(shares) != 5
            or not all(_is_number(s) and s >= 0 for s in shares)
            or sum(exact_number(s) for s in shares) != 1
        ):
            raise InvalidInput("star_shares", "must be five shares >= 0 adding up to 1")
        object.__setattr__(self, "star_thresholds", tuple(thresholds))
        object.__setattr__(self, "star_shares", tuple(shares))

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> RuleSet:
        """A rule set from a plain dict with exactly the field names of this class
        (`stars_by`, `star_thresholds` and `star_shares` may be left out). Raises
        InvalidInput naming the first unknown, missing or bad field."""
        if not isinstance(config, Mapping):
            raise InvalidInput("rules", "must be a mapping")
        known = {f.name for f in fields(cls)}
        for key in config:
            if key not in known:
                raise InvalidInput(str(key), "unknown rule-set field")
        optional = {"stars_by", "star_thresholds", "star_shares", "patrol_points"}
        for name in sorted(known - optional - set(config)):
            raise InvalidInput(name, "is required")
        return cls(**config)

    def to_config(self) -> dict[str, Any]:
        """The plain dict `from_config` reads back into an equal rule set."""
        config = {f.name: getattr(self, f.name) for f in fields(self)}
        config["visit_weights"] = dict(self.visit_weights)
        config["star_thresholds"] = list(self.star_thresholds)
        config["star_shares"] = list(self.star_shares)
        return config


DEFAULT_RULES = RuleSet.from_config(
    {
        "version": 1,
        "name": "County grid work assessment (standard)",
        "valid_from": "2024-01",
        "on_time_points": 50,
        "on_time_target": 0.70,
        "on_time_per_point": 1,
        "closure_points": 20,
        "closure_target": 0.90,
        "urgent_points": 10,
        "urgent_closure_target": 1.0,
        "urgent_on_time_target": 0.95,
        "urgent_per_point": 0.5,
        "visit_points": 10,
        "visit_weights": {"high": 3, "medium": 2, "low": 1},
        "patrol_points": 5,
        "activity_points": 5,
        "rework_per_case": 0.2,
    }
)


# --------------------------------------------------------------------------- scoring


@dataclass(frozen=True)
class Scorecard:
    """total = clamp(sum(parts) - sum(deductions), 0, 100); all figures two decimals,
    deductions as positive points. `not_applicable` lists parts given full marks because
    their rate had a zero denominator."""

    total: float
    parts: Mapping[str, float]
    deductions: Mapping[str, float]
    rules_version: int
    not_applicable: tuple[str, ...] = ()


def _shortfall_points(rate: Fraction | None, target: Fraction, per_point: Fraction) -> Fraction:
    """per_point for each percentage point the rate is short of the target (0 if None)."""
    if rate is None or rate >= target:
        return Fraction(0)
    return (target - rate) * _HUNDRED * per_point


def score(indicators: Indicators, rules: RuleSet) -> Scorecard:
    """The scorecard of one subject's indicators under one rule set (deterministic)."""
    if not isinstance(indicators, Indicators):
        raise InvalidInput("indicators", "must be Indicators")
    if not isinstance(rules, RuleSet):
        raise InvalidInput("rules", "must be a RuleSet")
    n = {f.name: exact_number(getattr(rules, f.name)) for f in fields(rules) if f.name in _NUMERIC}
    exact: dict[str, Fraction] = {}
    not_applicable = []

    on_time = indicators._on_time()
    exact["on_time"] = n["on_time_points"] - _shortfall_points(
        on_time, n["on_time_target"], n["on_time_per_point"]
    )

    closure = indicators._closure()
    exact["closure"] = n["closure_points"] * (
        1 if closure is None else min(Fraction(1), closure / n["closure_target"])
    )

    urgent_closure, urgent_on_time = indicators._urgent_closure(), indicators._urgent_on_time()
    exact["urgent"] = (
        n["urgent_points"]
        - _shortfall_points(urgent_closure, n["urgent_closure_target"], n["urgent_per_point"])
        - _shortfall_points(urgent_on_time, n["urgent_on_time_target"], n["urgent_per_point"])
    )

    coverage = indicators._coverage(rules.visit_weights)
    exact["visits"] = n["visit_points"] * (1 if coverage is None else coverage)

    patrolled = indicators._patrol_coverage()
    exact["patrols"] = n["patrol_points"] * (1 if patrolled is None else patrolled)

    activity = indicators._activity()
    exact["activity"] = n["activity_points"] * (1 if activity is None else activity)

    for name, rate in (
        ("on_time", on_time),
        ("closure", closure),
        ("urgent", urgent_closure),
        ("visits", coverage),
        ("patrols", patrolled),
        ("activity", activity),
    ):
        if rate is None:
            not_applicable.append(name)

    parts = {name: _hundredths(max(Fraction(0), exact[name])) for name in PART_NAMES}
    deductions = {"rework": _hundredths(indicators.reworked * n["rework_per_case"])}
    total = sum(parts.values()) - sum(deductions.values())
    total = min(_HUNDRED, max(Fraction(0), total))
    return Scorecard(
        total=float(total),
        parts={name: float(points) for name, points in parts.items()},
        deductions={name: float(points) for name, points in deductions.items()},
        rules_version=rules.version,
        not_applicable=tuple(not_applicable),
    )


# --------------------------------------------------------------------------- ranking


def _checked_scores(scores: Mapping[str, float]) -> Mapping[str, float]:
    if not isinstance(scores, Mapping):
        raise InvalidInput("scores", "must map subjects to scores")
    for subject, value in scores.items():
        if not isinstance(subject, str):
            raise InvalidInput("scores", "subjects must be string ids")
        if not _is_number(value):
            raise InvalidInput(f"scores.{subject}", "must be a finite number")
    return scores


def stars(scores: Mapping[str, float], rules: RuleSet) -> dict[str, int]:
    """1-5 stars per subject, all subjects being of one level.

    By threshold: five at or above star_thresholds[0], four at or above [1], and so on.
    By percentile: a subject's position is the share of subjects scoring strictly higher;
    with the default shares, five if that is under 10 %, four under 30 %, three under 70 %,
    two under 90 %, else one. Tied scores share one position, hence the same stars, and a
    higher score never gets fewer stars.
    """
    scores = _checked_scores(scores)
    if rules.stars_by == "threshold":
        thresholds = [exact_number(t) for t in rules.star_thresholds]
        result = {}
        for subject, value in scores.items():
            passed = sum(1 for t in thresholds if exact_number(value) >= t)
            result[subject] = 1 + passed
        return result
    count = len(scores)
    higher = _strictly_better(scores.values(), reverse=True)
    bounds, running = [], Fraction(0)
    for share in rules.star_shares[:-1]:
        running += exact_number(share)
        bounds.append(running)
    result = {}
    for subject, value in scores.items():
        above = Fraction(higher[value], count)
        result[subject] = 5 - sum(1 for bound in bounds if above >= bound)
    return result


def ranks(scores: Mapping[str, float]) -> dict[str, int]:
    """Standard competition ranking ("1224"): a subject's rank is one more than the number
    of subjects scoring strictly higher, so equal scores share a rank and the next rank
    after a tie is skipped. Subject ids play no part."""
    scores = _checked_scores(scores)
    higher = _strictly_better(scores.values(), reverse=True)
    return {subject: 1 + higher[value] for subject, value in scores.items()}


def bottom(scores: Mapping[str, float], n: int) -> list[str]:
    """The bottom n of the ranking (末位), lowest first (equal scores in subject-id order,
    for a stable list only: ids decide nothing).

    A subject is in the bottom n when fewer than n subjects scored strictly lower, so
    everyone tied at the cut is in, and there may be more than n. Subjects sharing the
    best score never are: nobody did better than them (so when all score the same,
    nobody is at the bottom)."""
    scores = _checked_scores(scores)
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise InvalidInput("n", "must be a whole number >= 0")
    if not scores:
        return []
    lower = _strictly_better(scores.values(), reverse=False)
    best = max(scores.values())
    chosen = [s for s, value in scores.items() if lower[value] < n and value != best]
    return sorted(chosen, key=lambda subject: (scores[subject], subject))


def _strictly_better(values: Iterable[float], reverse: bool) -> dict[float, int]:
    """For each value, how many of `values` are strictly higher (reverse) or lower."""
    ordered = sorted(values, reverse=reverse)
    before: dict[float, int] = {}
    for position, value in enumerate(ordered):
        before.setdefault(value, position)  # first position of a value = count strictly beyond
    return before


def select_rules(rule_sets: Iterable[RuleSet], period: str) -> RuleSet:
    """The highest-version rule set with valid_from <= period ("YYYY-MM")."""
    _check_period(period, "period")
    rule_sets = list(rule_sets)
    versions: set[int] = set()
    for rules in rule_sets:
        if not isinstance(rules, RuleSet):
            raise InvalidInput("rule_sets", "must hold RuleSet objects")
        if rules.version in versions:
            raise InvalidInput("rule_sets", f"version {rules.version} appears twice")
        versions.add(rules.version)
    in_force = [rules for rules in rule_sets if rules.valid_from <= period]
    if not in_force:
        raise InvalidInput("period", f"no rule set is in force in {period}")
    return max(in_force, key=lambda rules: rules.version)
