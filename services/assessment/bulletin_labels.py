"""Every heading and label of the monthly bulletin (每月通报), in one table.

The bulletin is a county document written in Chinese and kept as made (the assessment
service has no message catalogue: a bulletin is not rendered per reader). A label with
placeholders is a `str.format` pattern."""

from __future__ import annotations

LEVEL_NAMES = {
    "township": "乡镇（街道）",
    "village": "村（社区）",
    "grid": "网格",
    "department": "职能部门",
}

LABELS = {
    "title": "{county} 网格化服务管理每月通报（{period}）",
    "trend": "近 {months} 个月按期办结率",
    "trend_chart": "按月按期办结率",
    "by_township": "各乡镇（街道）按期办结率",
    "ranking": "{level}考核排名",
    "ranking_chart": "{level}得分",
    "rank": "名次",
    "subject": "考核对象",
    "score": "得分",
    "stars": "星级",
    "tied": "（并列）",
    "bottom": "末位：{subjects}",
    "nobody": "无",
    "no_data": "无数据",
    "list_separator": "、",
}


def label(name: str, **values) -> str:
    return LABELS[name].format(**values)


def level_name(level: str) -> str:
    return LEVEL_NAMES.get(level, level)
