"""The incident catalogue (事项清单): what can be reported, who owns it at each level, and
how long each stage may take. Versioned as a whole; this module validates a catalogue and
ships a default modelled on county practice. Pure: no I/O."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from gridwork_common.errors import InvalidInput

LEVELS = ("village", "township", "county")
LEVEL_BY_CODE_LENGTH = {12: "village", 9: "township", 6: "county"}
URGENCIES = ("normal", "urgent")
STAGES = ("accept", "register", "dispatch", "sign", "handle", "verify", "close")
_CODE = re.compile(r"\d{2}\.\d{2}")
_SLUG = re.compile(r"[a-z][a-z0-9-]{1,40}")


@dataclass(frozen=True)
class Entry:
    code: str  # "01.02": category 01, item 02
    name: str
    category: str  # the first-level category's code, "01"
    owners: Mapping[str, str]  # level -> department slug; the department is "<centre>-<slug>"
    on_site_allowed: bool
    public: bool  # citizens may report it (Open311)
    time_limits: Mapping[str, Mapping[str, float]]  # urgency -> stage -> working hours

    def stage_hours(self, urgency: str, stage: str) -> float:
        return self.time_limits[urgency][stage]


@dataclass(frozen=True)
class Catalogue:
    version: int
    categories: Mapping[str, str]  # "01" -> "矛盾纠纷"
    entries: Mapping[str, Entry]

    def entry(self, code: str) -> Entry:
        if code not in self.entries:
            raise InvalidInput(
                "category", f"{code!r} is not in the catalogue (version {self.version})"
            )
        return self.entries[code]

    def owner_department(self, code: str, centre_code: str) -> str | None:
        """The department that owns an item at a centre's level, e.g. 530402001-police-station."""
        slug = self.entry(code).owners.get(LEVEL_BY_CODE_LENGTH[len(centre_code)])
        return f"{centre_code}-{slug}" if slug else None

    def to_document(self) -> dict:
        return {
            "version": self.version,
            "categories": dict(self.categories),
            "entries": [
                {
                    "code": e.code,
                    "name": e.name,
                    "owners": dict(e.owners),
                    "on_site_allowed": e.on_site_allowed,
                    "public": e.public,
                    "time_limits": {u: dict(limits) for u, limits in e.time_limits.items()},
                }
                for e in self.entries.values()
            ],
        }


def parse_catalogue(document: Mapping, version: int) -> Catalogue:
    """Validate a catalogue document (as published by a county), naming the bad field."""
    if not isinstance(document, Mapping):
        raise InvalidInput("catalogue", "must be an object")
    categories = document.get("categories")
    if not isinstance(categories, Mapping) or not categories:
        raise InvalidInput("categories", "must map two-digit codes to names")
    for code, name in categories.items():
        if not re.fullmatch(r"\d{2}", str(code)) or not isinstance(name, str) or not name:
            raise InvalidInput(f"categories.{code}", "needs a two-digit code and a name")
    raw_entries = document.get("entries")
    if not isinstance(raw_entries, list) or not raw_entries:
        raise InvalidInput("entries", "must be a non-empty list")
    entries: dict[str, Entry] = {}
    for index, raw in enumerate(raw_entries):
        entry = _entry(raw, f"entries[{index}]", categories)
        if entry.code in entries:
            raise InvalidInput(f"entries[{index}].code", f"{entry.code} appears twice")
        entries[entry.code] = entry
    return Catalogue(version=version, categories=dict(categories), entries=entries)


def _entry(raw: Mapping, where: str, categories: Mapping) -> Entry:
    if not isinstance(raw, Mapping):
        raise InvalidInput(where, "must be an object")
    code = str(raw.get("code", ""))
    if not _CODE.fullmatch(code) or code[:2] not in categories:
        raise InvalidInput(f"{where}.code", "must be <category>.<item> like 01.02, in a category")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput(f"{where}.name", "is required")
    owners = raw.get("owners")
    if not isinstance(owners, Mapping) or not owners:
        raise InvalidInput(
            f"{where}.owners", f"must map levels ({', '.join(LEVELS)}) to departments"
        )
    for level, slug in owners.items():
        if level not in LEVELS or not isinstance(slug, str) or not _SLUG.fullmatch(slug):
            raise InvalidInput(f"{where}.owners.{level}", "needs a level and a department slug")
    limits = raw.get("time_limits")
    if not isinstance(limits, Mapping) or set(limits) != set(URGENCIES):
        raise InvalidInput(f"{where}.time_limits", "needs limits for normal and urgent")
    for urgency in URGENCIES:
        stages = limits[urgency]
        if not isinstance(stages, Mapping) or set(stages) != set(STAGES):
            raise InvalidInput(
                f"{where}.time_limits.{urgency}", f"needs hours for {', '.join(STAGES)}"
            )
        for stage, hours in stages.items():
            if (
                isinstance(hours, bool)
                or not isinstance(hours, int | float)
                or not 0 < hours <= 2000
            ):
                raise InvalidInput(
                    f"{where}.time_limits.{urgency}.{stage}", "must be working hours, 0 < h <= 2000"
                )
        for stage in STAGES:
            if limits["urgent"][stage] > limits["normal"][stage]:
                raise InvalidInput(
                    f"{where}.time_limits.urgent.{stage}", "must not be longer than normal"
                )
    return Entry(
        code=code,
        name=name.strip(),
        category=code[:2],
        owners=dict(owners),
        on_site_allowed=bool(raw.get("on_site_allowed", False)),
        public=bool(raw.get("public", True)),
        time_limits={u: {s: float(h) for s, h in limits[u].items()} for u in URGENCIES},
    )


# ----------------------------------------------------------------------------- default
# Working-hour limits per stage, modelled on county rules: acceptance and registration
# within hours, handling within days (a working day has 7 working hours), verification
# within a day. Urgent cases run at about a quarter of the time.
_ROUTINE = {
    "accept": 2,
    "register": 2,
    "dispatch": 4,
    "sign": 4,
    "handle": 35,
    "verify": 7,
    "close": 4,
}
_QUICK = {
    "accept": 1,
    "register": 1,
    "dispatch": 2,
    "sign": 2,
    "handle": 14,
    "verify": 7,
    "close": 2,
}
_LONG = {
    "accept": 2,
    "register": 4,
    "dispatch": 7,
    "sign": 7,
    "handle": 105,
    "verify": 14,
    "close": 7,
}
_URGENT = {
    "accept": 0.5,
    "register": 0.5,
    "dispatch": 1,
    "sign": 1,
    "handle": 7,
    "verify": 2,
    "close": 1,
}


def _limits(normal: Mapping[str, float]) -> dict:
    return {
        "normal": dict(normal),
        "urgent": {stage: min(hours, _URGENT[stage]) for stage, hours in normal.items()},
    }


DEFAULT_CATEGORIES = {
    "01": "矛盾纠纷",
    "02": "治安隐患",
    "03": "消防安全",
    "04": "环境卫生",
    "05": "市政设施",
    "06": "特殊人群异常",
    "07": "安全生产",
    "08": "民生服务",
}

# (code, name, owners by level, on-site allowed, public to citizens, stage limits)
# fmt: off
_DEFAULT_ENTRIES = [
    ("01.01", "邻里纠纷", {"village": "mediation", "township": "justice-office", "county": "justice"}, True, True, _ROUTINE),  # noqa: E501
    ("01.02", "婚姻家庭纠纷", {"village": "mediation", "township": "justice-office", "county": "justice"}, True, True, _ROUTINE),  # noqa: E501
    ("01.03", "土地山林权属纠纷", {"township": "land-office", "county": "natural-resources"}, False, True, _LONG),  # noqa: E501
    ("01.04", "劳资纠纷（欠薪）", {"township": "labour-office", "county": "human-resources"}, False, True, _ROUTINE),  # noqa: E501
    ("02.01", "可疑人员或物品", {"township": "police-station", "county": "police"}, False, True, _QUICK),  # noqa: E501
    ("02.02", "赌博、涉黄线索", {"township": "police-station", "county": "police"}, False, False, _QUICK),  # noqa: E501
    ("02.03", "出租房屋未登记", {"village": "committee", "township": "police-station", "county": "police"}, True, False, _ROUTINE),  # noqa: E501
    ("03.01", "消防通道堵塞", {"village": "committee", "township": "fire-station", "county": "fire-rescue"}, True, True, _QUICK),  # noqa: E501
    ("03.02", "电动车违规充电", {"village": "committee", "township": "fire-station", "county": "fire-rescue"}, True, True, _QUICK),  # noqa: E501
    ("03.03", "消防设施损坏", {"township": "fire-station", "county": "fire-rescue"}, False, True, _ROUTINE),  # noqa: E501
    ("04.01", "垃圾乱堆乱放", {"village": "committee", "township": "sanitation", "county": "urban-management"}, True, True, _QUICK),  # noqa: E501
    ("04.02", "污水外溢", {"township": "sanitation", "county": "ecology-environment"}, False, True, _ROUTINE),  # noqa: E501
    ("04.03", "噪声扰民", {"township": "enforcement", "county": "ecology-environment"}, False, True, _ROUTINE),  # noqa: E501
    ("05.01", "路灯损坏", {"township": "enforcement", "county": "urban-management"}, False, True, _ROUTINE),  # noqa: E501
    ("05.02", "道路破损、井盖缺失", {"township": "enforcement", "county": "housing-construction"}, False, True, _QUICK),  # noqa: E501
    ("05.03", "违章搭建", {"township": "enforcement", "county": "urban-management"}, False, True, _LONG),  # noqa: E501
    ("06.01", "严重精神障碍患者异常", {"village": "committee", "township": "health-centre", "county": "health"}, False, False, _QUICK),  # noqa: E501
    ("06.02", "社区矫正对象脱管", {"township": "justice-office", "county": "justice"}, False, False, _QUICK),  # noqa: E501
    ("06.03", "吸毒人员异常", {"township": "police-station", "county": "police"}, False, False, _QUICK),  # noqa: E501
    ("07.01", "非法生产经营", {"township": "safety-office", "county": "emergency-management"}, False, True, _ROUTINE),  # noqa: E501
    ("07.02", "危房险情", {"township": "construction-office", "county": "housing-construction"}, False, True, _QUICK),  # noqa: E501
    ("08.01", "低保、救助申请协助", {"village": "committee", "township": "civil-affairs-office", "county": "civil-affairs"}, True, True, _ROUTINE),  # noqa: E501
    ("08.02", "独居老人需要帮扶", {"village": "committee", "township": "civil-affairs-office", "county": "civil-affairs"}, True, True, _ROUTINE),  # noqa: E501
]
# fmt: on


def default_catalogue_document() -> dict:
    return {
        "categories": dict(DEFAULT_CATEGORIES),
        "entries": [
            {"code": code, "name": name, "owners": owners, "on_site_allowed": on_site,
             "public": public, "time_limits": _limits(limits)}
            for code, name, owners, on_site, public, limits in _DEFAULT_ENTRIES
        ],
    }  # fmt: skip


# Departments behind the default catalogue's slugs, by level: a county ships these at its
# own level and in each township; villages handle their items in the committee itself.
DEFAULT_DEPARTMENTS = {
    "county": {
        "police": "公安局",
        "justice": "司法局",
        "natural-resources": "自然资源局",
        "human-resources": "人力资源和社会保障局",
        "fire-rescue": "消防救援大队",
        "urban-management": "城市管理综合执法局",
        "ecology-environment": "生态环境分局",
        "housing-construction": "住房和城乡建设局",
        "health": "卫生健康局",
        "emergency-management": "应急管理局",
        "civil-affairs": "民政局",
    },
    "township": {
        "justice-office": "司法所",
        "land-office": "国土所",
        "labour-office": "劳动保障所",
        "police-station": "派出所",
        "fire-station": "消防工作站",
        "sanitation": "环卫站",
        "enforcement": "综合行政执法队",
        "health-centre": "卫生院",
        "safety-office": "安全生产监管站",
        "construction-office": "村镇建设办公室",
        "civil-affairs-office": "民政办",
    },
    "village": {"mediation": "人民调解委员会", "committee": "村（居）民委员会"},
}
