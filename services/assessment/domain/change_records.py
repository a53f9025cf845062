"""Change records: what a batch of facts adds to the summaries (`summaries.Changes`),
kept as a few documents per batch (one per period the batch touched, one for periods
alike) rather than as thousands of summary updates, and later merged into the summaries
many batches at once, so a long period's summary (a week, month, quarter, year: touched
by every batch) is written once for many batches.

A record: `period`, or a list of periods to which the batch added exactly the same (its
month, quarter and year, say); `subjects`, one entry per (level, subject), `l` and `s`,
with `i` its increments exactly as the summary takes them (`Changes.increments`: `$inc`
field -> value), `p` its people and `g` its grid workers; `active`, [person, [days]]
pairs. Records of a period add up (sums and set unions) in any order (`Totals`): merged
into the summaries, or read on top of them (`Totals.apply`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from services.assessment.domain.summaries import Changes, Key, each_period

# At most this many (level, subject) entries a record: a period of a large batch (a
# replay, say) spreads over several records, far below MongoDB's 16 MB a document.
ENTRIES_PER_RECORD = 2000


def records_of(changes: Changes) -> list[dict]:
    """A batch's changes as records: {"period", "subjects", "active"}, one per period or
    periods alike (or a few, for a period with very many subjects)."""
    subjects: dict[Any, list[dict]] = defaultdict(list)  # by period, or periods shared
    people, grid_workers = changes.people, changes.grid_workers
    for key, added in changes.increments.items():
        period, level, subject = key
        entry: dict = {"l": level, "s": subject}
        added = {field: value for field, value in added.items() if value}
        if added:
            entry["i"] = added
        if key in people:
            entry["p"] = list(people[key])
        if key in grid_workers:
            entry["g"] = list(grid_workers[key])
        subjects[period].append(entry)
    active: dict[Any, list] = defaultdict(list)
    for (period, person), days in changes.active.items():
        active[period].append([person, sorted(days)])
    # The periods every fact of the batch counts in are one key already (`fold`); other
    # periods alike (a day and its week, say) share one record too: written, read and
    # merged once.
    alike: list[tuple[list[str], list[dict], list]] = []  # (periods, entries, active)
    for period in sorted(subjects.keys() | active.keys(), key=each_period):
        entries, days = subjects.get(period, []), active.get(period, [])
        for periods, same, same_days in alike:
            if len(same) == len(entries) and same == entries and same_days == days:
                periods.extend(each_period(period))
                break
        else:
            alike.append((list(each_period(period)), entries, days))
    return [
        record
        for periods, entries, days in alike
        for record in _as_records(periods[0] if len(periods) == 1 else periods, entries, days)
    ]


def _as_records(named: str | list[str], entries: list[dict], days: list) -> list[dict]:
    """One record of these periods, or a few if there are very many entries."""
    return [
        {
            "period": named,
            "subjects": entries[start : start + ENTRIES_PER_RECORD],
            "active": days if not start else [],
        }
        for start in range(0, max(len(entries), 1), ENTRIES_PER_RECORD)
    ]


def compacted(records: Iterable[Mapping]) -> list[dict]:
    """Records added up into one record per `period` (a period, or periods alike), or a
    few for very many subjects: merged, or read on top of the summaries, they add exactly
    what the records they replace would have (a field summed to 0 is kept, as `$inc`
    would create it)."""
    totals = Totals()
    for record in records:
        named = record["period"]
        totals._add(named if isinstance(named, str) else tuple(named), record)
    entries: dict[Any, list[dict]] = defaultdict(list)
    for key, added in totals.increments.items():
        periods, level, subject = key
        entry: dict = {"l": level, "s": subject}
        if added:
            entry["i"] = added
        if key in totals.people:
            entry["p"] = sorted(totals.people[key], key=str)
        if key in totals.grid_workers:
            entry["g"] = sorted(totals.grid_workers[key], key=str)
        entries[periods].append(entry)
    active: dict[Any, list] = defaultdict(list)
    for (periods, person), days in totals.active.items():
        active[periods].append([person, sorted(days)])
    return [
        record
        for periods in entries.keys() | active.keys()
        for record in _as_records(
            periods if isinstance(periods, str) else list(periods),
            entries.get(periods, []),
            active.get(periods, []),
        )
    ]


def periods_of_record(record: Mapping) -> list[str]:
    """The periods a record adds to: one (`period` a string) or several alike (a list)."""
    period = record["period"]
    return [period] if isinstance(period, str) else period


class Totals:
    """Records added up: per (period, level, subject) the summed increments and the
    people and grid workers; per (period, person) the active days."""

    def __init__(self, records: Iterable[Mapping] = ()) -> None:
        self.increments: dict[Key, dict[str, int]] = {}
        self.people: dict[Key, set] = {}
        self.grid_workers: dict[Key, set] = {}
        self.active: dict[tuple[str, Any], set[str]] = defaultdict(set)
        self.add(records)

    def add(self, records: Iterable[Mapping]) -> None:
        for record in records:
            for period in periods_of_record(record):
                self._add(period, record)

    def _add(self, period: str, record: Mapping) -> None:
        summed, people, grid_workers = self.increments, self.people, self.grid_workers
        for entry in record.get("subjects", ()):
            key = (period, entry["l"], entry["s"])
            mine = summed.get(key)
            if mine is None:
                mine = summed[key] = {}
            added = entry.get("i")
            if added:
                for field, value in added.items():
                    mine[field] = mine.get(field, 0) + value
            for field, target in (("p", people), ("g", grid_workers)):
                found = entry.get(field)
                if found:
                    kept = target.get(key)
                    if kept is None:
                        target[key] = set(found)
                    else:
                        kept.update(found)
        for person, days in record.get("active", ()):
            self.active[(period, person)].update(days)

    # ------------------------------------------------------- read on top of summaries
    def subjects(self, period: str, levels: Collection[str], subject=None) -> list[tuple[str, Any]]:
        """The (level, subject) pairs of a period with pending changes, among those asked
        for."""
        return [
            (level, who)
            for of_period, level, who in self.increments
            if of_period == period and level in levels and (subject is None or who == subject)
        ]

    def apply(self, period: str, summary: dict) -> dict:
        """A summary as read (counts, required, done, people, minute_counts, minute_sum;
        not its histogram) with its subject's pending changes added."""
        key = (period, summary["level"], summary["subject"])
        if key not in self.increments:
            return summary
        summary = dict(summary)
        copied: set[str] = set()
        for field, value in self.increments[key].items():
            part, _, name = field.partition(".")
            if part == "minutes":
                continue  # the histogram is read a bucket at a time (`bucket`)
            if part == "minute_sum":
                summary[part] = summary.get(part, 0) + value
                continue
            if part not in copied:
                summary[part] = dict(summary.get(part, {}))
                copied.add(part)
            summary[part][name] = summary[part].get(name, 0) + value
        people = self.people.get(key)
        if people:
            summary["people"] = list(set(summary.get("people", ())) | people)
        return summary

    def bucket(self, period: str, level: str, subject: Any, bucket: int) -> dict[int, int]:
        """The pending handling minutes of a subject within one histogram bucket."""
        prefix = f"minutes.{bucket}."
        return {
            int(field[len(prefix) :]): cases
            for field, cases in self.increments.get((period, level, subject), {}).items()
            if field.startswith(prefix)
        }

    def grid_workers_of(self, period: str) -> dict[Any, set]:
        """Each grid's pending grid workers (grid -> people) in a period."""
        return {
            who: people
            for (of_period, level, who), people in self.grid_workers.items()
            if of_period == period and level == "grid"
        }

    def active_days(self, period: str) -> dict[Any, set[str]]:
        return {person: days for (of, person), days in self.active.items() if of == period}
