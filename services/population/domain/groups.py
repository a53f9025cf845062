"""Special and vulnerable groups, visit obligations and the periods they count in."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from gridwork_common.clock import CHINA_TIME  # periods are calendar months in China time
from services.population.domain.errors import InvalidField

SPECIAL_GROUPS = {
    "severe_mental_disorder": "严重精神障碍患者",
    "drug_user": "吸毒人员",
    "community_correction": "社区矫正对象",
    "released_prisoner": "刑满释放人员",
    "key_youth": "重点青少年",
}
VULNERABLE_GROUPS = {
    "low_income": "低保对象",
    "elderly_alone": "独居老人",
    "disabled": "残疾人",
    "left_behind_child": "留守儿童",
}
GROUPS = {**SPECIAL_GROUPS, **VULNERABLE_GROUPS}
RISK_LEVELS = ("high", "medium", "low")

# Visits a month by group kind and risk level, as counties commonly set them (the seeds:
# 2-4 visits a month for special groups). Configurable per group and level at run time.
DEFAULT_VISITS_PER_MONTH = {
    "special": {"high": 4, "medium": 2, "low": 1},
    "vulnerable": {"high": 2, "medium": 1, "low": 1},
}


def group_kind(group: str) -> str:
    if group in SPECIAL_GROUPS:
        return "special"
    if group in VULNERABLE_GROUPS:
        return "vulnerable"
    raise InvalidField("group", f"must be one of {', '.join(GROUPS)}")


def check_risk_level(level: str) -> str:
    if level not in RISK_LEVELS:
        raise InvalidField("risk_level", f"must be one of {', '.join(RISK_LEVELS)}")
    return level


def default_visit_rules() -> dict[str, int]:
    """{"<group>:<risk level>": visits per month} for every group and level."""
    return {
        rule_key(group, level): DEFAULT_VISITS_PER_MONTH[group_kind(group)][level]
        for group in GROUPS
        for level in RISK_LEVELS
    }


def rule_key(group: str, risk_level: str) -> str:
    return f"{group}:{risk_level}"


def required_visits(rules: Mapping[str, int], group: str, risk_level: str) -> int:
    return rules.get(
        rule_key(group, risk_level), default_visit_rules()[rule_key(group, risk_level)]
    )


def period_of(moment: datetime) -> str:
    """The month ("2026-11") a moment falls in, in China Standard Time."""
    return moment.astimezone(CHINA_TIME).strftime("%Y-%m")


def period_bounds(period: str) -> tuple[datetime, datetime]:
    """[start, end) of a month period, as UTC datetimes."""
    try:
        year, month = (int(part) for part in str(period).split("-"))
        if not 1900 <= year <= 2999:
            raise ValueError(year)
        start = datetime(year, month, 1, tzinfo=CHINA_TIME)
    except ValueError:
        raise InvalidField("period", "must look like 2026-11 (years 1900 to 2999)") from None
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=CHINA_TIME)
    return start.astimezone(UTC), end.astimezone(UTC)


def previous_periods(moment: datetime, count: int) -> list[str]:
    """The `count` complete months before the one `moment` falls in, newest first."""
    periods = []
    start, _ = period_bounds(period_of(moment))
    for _ in range(count):
        start, _ = period_bounds(period_of(start - timedelta(seconds=1)))
        periods.append(period_of(start))
    return periods


def obligation_applies(flagged_at: datetime, period: str) -> bool:
    """An obligation counts from the first whole month of membership: a person flagged on
    the 20th cannot have been visited four times that month."""
    start, _ = period_bounds(period)
    return flagged_at <= start


@dataclass(frozen=True)
class VisitObligation:
    membership_id: str
    period: str
    required: int
    done: int

    @property
    def remaining(self) -> int:
        return max(self.required - self.done, 0)

    @property
    def met(self) -> bool:
        return self.done >= self.required
