"""The monthly bulletin's document: a county document in Chinese (every heading, column
and label), with the ranking's shared ranks and its 末位 as the scorecards give them."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from services.assessment import bulletins
from services.assessment.bulletin_labels import LABELS
from services.assessment.domain.scoring import DEFAULT_RULES, Indicators
from services.assessment.scorecards import board

TOWNSHIPS = ("530402001", "530402002", "530402003", "530402004")
LATIN_WORD = re.compile(r"[A-Za-z]{2,}")


class Texts(HTMLParser):
    """The text of each element of interest, and the charts' accessible names."""

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.found: dict[str, list[str]] = {}

    def handle_starttag(self, tag, attrs):
        self.open.append(tag)
        self.found.setdefault(tag, [])
        if tag == "svg":
            self.found.setdefault("chart", []).append(dict(attrs).get("aria-label", ""))
        if tag in ("h1", "h2", "th", "p", "title", "td", "text"):
            self.found[tag].append("")

    def handle_endtag(self, tag):
        if tag in self.open:
            del self.open[len(self.open) - 1 - self.open[::-1].index(tag) :]

    def handle_data(self, data):
        if self.open and self.open[-1] in self.found and self.found[self.open[-1]]:
            self.found[self.open[-1]][-1] += data


def _texts(document: str) -> dict[str, list[str]]:
    parser = Texts()
    parser.feed(document)
    return parser.found


def _boards() -> dict[str, dict]:
    """Townships 001 and 002 equally good, 003 and 004 equally worse (each pair tied);
    the other levels with nothing counted."""
    good = Indicators(cases_reported=4, cases_due=4, cases_closed=4, closed_on_time=4)
    worse = Indicators(cases_reported=4, cases_due=4, cases_closed=2, closed_on_time=1)
    found = dict(zip(TOWNSHIPS, (good, good, worse, worse), strict=True))
    boards = {"township": board("township", "2026-05", DEFAULT_RULES, found)}
    for level in ("village", "grid", "department"):
        boards[level] = board(level, "2026-05", DEFAULT_RULES, {})
    return boards


def _document() -> str:
    boards = _boards()
    trend = [("2026-04", None), ("2026-05", 0.625)]
    townships = [(i["subject"], i["rates"]["on_time_rate"]) for i in boards["township"]["items"]]
    return bulletins._html("530402", "2026-05", boards, trend, townships)


def test_every_heading_and_label_of_the_bulletin_is_chinese():
    found = _texts(_document())
    assert found["h1"] == ["530402 网格化服务管理每月通报（2026-05）"]
    assert found["h2"] == [
        "近 6 个月按期办结率",
        "各乡镇（街道）按期办结率",
        "乡镇（街道）考核排名",
        "村（社区）考核排名",
        "网格考核排名",
        "职能部门考核排名",
    ]
    assert found["th"] == ["名次", "考核对象", "得分", "星级"] * 4
    assert found["chart"] == [
        "按月按期办结率",
        "各乡镇（街道）按期办结率",
        "乡镇（街道）得分",
        "村（社区）得分",
        "网格得分",
        "职能部门得分",
    ]
    # No English word anywhere a reader sees (codes and numbers aside).
    for kind in ("title", "h1", "h2", "th", "p", "td", "text", "chart"):
        for text in found.get(kind, []):
            assert not LATIN_WORD.search(text), (kind, text)
    for value in LABELS.values():  # placeholders aside
        assert not LATIN_WORD.search(re.sub(r"\{\w+\}", "", value)), value


def test_the_bulletin_shows_shared_ranks_and_everyone_tied_at_the_bottom():
    found = _texts(_document())
    ranks = found["td"][0::4][: len(TOWNSHIPS)]
    assert ranks == ["1（并列）", "1（并列）", "3（并列）", "3（并列）"]
    # Bottom 3 positions are 2-4: the tied pair below is in, the best pair never is.
    assert found["p"][0] == "末位：530402003、530402004"
    assert found["p"][1:] == ["末位：无"] * 3  # nobody counted, nobody at the bottom
    csv_rows = bulletins._csv(_boards()).lstrip("\ufeff").splitlines()
    assert [row.split(",")[1] for row in csv_rows[1:5]] == ["1", "1", "3", "3"]
