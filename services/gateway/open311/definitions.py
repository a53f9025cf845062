"""Service definitions: the extra questions some services ask a citizen (GeoReport v2
attributes), and the check of the answers a `POST requests` brings as
`attribute[<code>]=<value>` (a multi-value list: `attribute[<code>][]=<value>`, repeated).
A service with questions is listed with `metadata: true`. Pure: no I/O.

The questions are the county's Open311 form, kept here by catalogue code; a catalogue
item without an entry asks nothing beyond the description."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from services.gateway.open311.requests import InvalidQuery

DATATYPES = ("string", "number", "datetime", "text", "singlevaluelist", "multivaluelist")
LISTS = ("singlevaluelist", "multivaluelist")
MAX_ANSWER_LENGTH = 500
_ATTRIBUTE_KEY = re.compile(r"attribute\[([^\[\]]+)\](\[\])?")


@dataclass(frozen=True)
class Question:
    code: str
    description: str
    datatype: str
    required: bool
    values: tuple[tuple[str, str], ...] = ()  # (key, name) for the list datatypes
    datatype_description: str | None = None

    def answer_text(self, answer: list[str]) -> str:
        names = dict(self.values)
        return "、".join(names.get(value, value) for value in answer)


@dataclass(frozen=True)
class Definition:
    service_code: str
    questions: tuple[Question, ...] = field(default_factory=tuple)


_YES_NO = (("yes", "是"), ("no", "否"))
QUESTIONS: dict[str, tuple[Question, ...]] = {
    "03.02": (
        Question(
            "place",
            "充电地点",
            "singlevaluelist",
            True,
            (
                ("corridor", "楼道或楼梯间"),
                ("indoors", "室内"),
                ("exit", "安全出口"),
                ("other", "其他"),
            ),
        ),
    ),
    "05.02": (
        Question("injury", "是否已造成人员受伤或车辆损坏", "singlevaluelist", True, _YES_NO),
        Question(
            "hazards",
            "现场情况（可多选）",
            "multivaluelist",
            False,
            (("no-cover", "井盖缺失"), ("pothole", "路面坑洞"), ("no-lights", "夜间无照明")),
        ),
    ),
    "07.02": (
        Question("residents", "房屋内仍居住的人数", "number", True, datatype_description="人数"),
    ),
}


def definition_of(service_code: str) -> Definition:
    return Definition(service_code, QUESTIONS.get(service_code, ()))


def render(definition: Definition) -> dict:
    """The GeoReport v2 service definition document."""
    return {
        "service_code": definition.service_code,
        "attributes": [
            {
                "variable": True,
                "code": question.code,
                "datatype": question.datatype,
                "required": question.required,
                "datatype_description": question.datatype_description,
                "order": order,
                "description": question.description,
                "values": [{"key": key, "name": name} for key, name in question.values],
            }
            for order, question in enumerate(definition.questions, start=1)
        ],
    }


def answers_from_form(items: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """`attribute[code]` and `attribute[code][]` fields, by code."""
    answers: dict[str, list[str]] = {}
    for key, value in items:
        match = _ATTRIBUTE_KEY.fullmatch(key)
        if match:
            answers.setdefault(match.group(1), []).append(value)
    return answers


def answers_from_json(raw: object) -> dict[str, list[str]]:
    """A JSON body's `attribute` object: code -> value or list of values."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise InvalidQuery("attribute", "must map attribute codes to answers")
    return {
        str(code): [str(v) for v in value] if isinstance(value, list) else [str(value)]
        for code, value in raw.items()
    }


def check_answers(definition: Definition, answers: Mapping[str, list[str]]) -> dict:
    """The answers by code, each checked against its question; refuses unknown codes,
    missing required answers and values outside a list."""
    questions = {question.code: question for question in definition.questions}
    for code in answers:
        if code not in questions:
            raise InvalidQuery(
                f"attribute[{code}]", f"service {definition.service_code} asks no such question"
            )
    checked: dict[str, list[str]] = {}
    for question in definition.questions:
        answer = [value.strip() for value in answers.get(question.code, []) if value.strip()]
        where = f"attribute[{question.code}]"
        if not answer:
            if question.required:
                raise InvalidQuery(where, f"is required ({question.description})")
            continue
        _check_answer(question, answer, where)
        checked[question.code] = answer
    return checked


def _check_answer(question: Question, answer: list[str], where: str) -> None:
    if len(answer) > 1 and question.datatype != "multivaluelist":
        raise InvalidQuery(where, "takes one answer")
    if any(len(value) > MAX_ANSWER_LENGTH for value in answer):
        raise InvalidQuery(where, f"at most {MAX_ANSWER_LENGTH} characters")
    if question.datatype in LISTS:
        keys = [key for key, _ in question.values]
        for value in answer:
            if value not in keys:
                raise InvalidQuery(where, f"{value!r} is not one of {', '.join(keys)}")
    elif question.datatype == "number":
        try:
            float(answer[0])
        except ValueError:
            raise InvalidQuery(where, "must be a number") from None
    elif question.datatype == "datetime":
        try:
            datetime.fromisoformat(answer[0])
        except ValueError:
            raise InvalidQuery(where, "must be a W3C date-time") from None


def summary(definition: Definition, answers: Mapping[str, list[str]]) -> str:
    """The answers as lines a centre reads with the case's description."""
    return "\n".join(
        f"{question.description}：{question.answer_text(answers[question.code])}"
        for question in definition.questions
        if question.code in answers
    )
