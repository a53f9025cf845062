"""Change records: what a batch of facts adds to the summaries (`summaries.Changes`),
kept as a few documents per batch (one per period the batch touched) rather than as
thousands of summary updates, and later merged into the summaries many batches at once,
so a long period's summary (a week, month, quarter, year: touched by every batch) is
written once for many batches.

A record's body: `subjects`, one entry per (level, subject) of the period, each with its
non-zero parts (`c` counts, `m` handling-minute histogram as [minutes, cases] pairs, `r`
visits required and `d` done per risk, `p` people, `g` grid workers); `active`, the days
each person was active ([person, [days]] pairs). Records of a period add up (sums and set
unions), in any order: merged into the summaries, or read on top of them (`Overlay`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from services.assessment.domain.summaries import Changes, Key

# At most this many (level, subject) entries a record: a period of a large batch (a
# replay, say) spreads over several records, far below MongoDB's 16 MB a document.
ENTRIES_PER_RECORD = 2000
# handling-time histogram as the summaries keep it: minutes.<value // 100>.<value> = cases,
# minute_counts.<bucket> = the bucket's cases, minute_sum = the minutes of them all
MINUTES_BUCKET = 100


def records_of(changes: Changes) -> list[dict]:
    """The record bodies of a batch's changes: {"period", "subjects", "active"}, one per
    period (or a few, for a period with very many subjects)."""
    subjects: dict[str, list[dict]] = defaultdict(list)
    for key in changes.touched:
        period, level, subject = key
        subjects[period].append(_entry(changes, key, level, subject))
    active: dict[str, list] = defaultdict(list)
    for (period, person), days in changes.active.items():
        active[period].append([person, sorted(days)])
    records = []
    for period in sorted(subjects.keys() | active.keys()):
        entries = subjects.get(period, [])
        for start in range(0, max(len(entries), 1), ENTRIES_PER_RECORD):
            chunk = entries[start : start + ENTRIES_PER_RECORD]
            records.append(
                {"period": period, "subjects": chunk, "active": active[period] if not start else []}
            )
    return records


def _entry(changes: Changes, key: Key, level: str, subject: Any) -> dict:
    entry: dict = {"l": level, "s": subject}
    for field, source in (("c", changes.counts), ("r", changes.required), ("d", changes.done)):
        parts = {name: value for name, value in source.get(key, {}).items() if value}
        if parts:
            entry[field] = parts
    minutes = [[value, cases] for value, cases in changes.minutes.get(key, {}).items() if cases]
    if minutes:
        entry["m"] = minutes
    for field, source in (("p", changes.people), ("g", changes.grid_workers)):
        found = source.get(key)
        if found:
            entry[field] = list(found)
    return entry


def absorb(records: Iterable[Mapping], into: Changes | None = None) -> Changes:
    """The changes the records add up to (added to `into` if given)."""
    changes = into if into is not None else Changes()
    for record in records:
        period = record["period"]
        for entry in record.get("subjects", ()):
            key = (period, entry["l"], entry["s"])
            changes.touched.add(key)
            for field, target in (
                ("c", changes.counts),
                ("r", changes.required),
                ("d", changes.done),
            ):
                parts = entry.get(field)
                if parts:
                    mine = target[key]
                    for name, value in parts.items():
                        mine[name] += value
            minutes = entry.get("m")
            if minutes:
                mine = changes.minutes[key]
                for value, cases in minutes:
                    mine[value] += cases
            for field, target in (("p", changes.people), ("g", changes.grid_workers)):
                found = entry.get(field)
                if found:
                    target[key].update(found)
        for person, days in record.get("active", ()):
            changes.active[(period, person)].update(days)
    return changes


def increments(changes: Changes, key: Key) -> dict[str, int]:
    """A subject's `$inc` on its summary: counts, visits, and the handling histogram in
    buckets (an update finds its field among a few dozen, not thousands), each bucket's
    total and the sum beside it (a read takes these and one bucket, not the histogram)."""
    found: dict[str, int] = {}
    for prefix, source in (
        ("counts", changes.counts),
        ("required", changes.required),
        ("done", changes.done),
    ):
        for name, value in source.get(key, {}).items():
            if value:
                found[f"{prefix}.{name}"] = value
    minute_sum = 0
    for minutes, cases in changes.minutes.get(key, {}).items():
        if cases:
            bucket = minutes // MINUTES_BUCKET
            found[f"minutes.{bucket}.{minutes}"] = cases
            counted = f"minute_counts.{bucket}"
            found[counted] = found.get(counted, 0) + cases
            minute_sum += minutes * cases
    if minute_sum:
        found["minute_sum"] = minute_sum
    return found


class Overlay:
    """Pending changes of one period read on top of its summaries (as stored, without
    their histograms): what the summaries will hold once the changes are merged."""

    def __init__(self, changes: Changes, period: str) -> None:
        self.changes = changes
        self.period = period

    def subjects(self, levels: Collection[str], subject=None) -> list[tuple[str, Any]]:
        """The (level, subject) pairs the pending changes touch, among those asked for."""
        return [
            (level, who)
            for period, level, who in self.changes.touched
            if period == self.period and level in levels and (subject is None or who == subject)
        ]

    def apply(self, summary: dict) -> dict:
        """A summary (as read: counts, required, done, people, minute_counts, minute_sum)
        with the pending changes of its subject added."""
        key = (self.period, summary["level"], summary["subject"])
        if key not in self.changes.touched:
            return summary
        changes = self.changes
        summary = dict(summary)
        for field, source in (
            ("counts", changes.counts),
            ("required", changes.required),
            ("done", changes.done),
        ):
            pending = source.get(key)
            if pending:
                summary[field] = _added(summary.get(field, {}), pending)
        people = changes.people.get(key)
        if people:
            summary["people"] = list(set(summary.get("people", ())) | people)
        minutes = changes.minutes.get(key)
        if minutes:
            buckets = dict(summary.get("minute_counts", {}))
            minute_sum = summary.get("minute_sum", 0)
            for value, cases in minutes.items():
                bucket = str(value // MINUTES_BUCKET)
                buckets[bucket] = buckets.get(bucket, 0) + cases
                minute_sum += value * cases
            summary["minute_counts"] = buckets
            summary["minute_sum"] = minute_sum
        return summary

    def bucket(self, level: str, subject: Any, bucket: int) -> dict[int, int]:
        """The pending handling minutes of a subject within one histogram bucket."""
        minutes = self.changes.minutes.get((self.period, level, subject), {})
        return {
            value: cases for value, cases in minutes.items() if value // MINUTES_BUCKET == bucket
        }

    def grid_workers(self) -> dict[Any, set]:
        """Each grid's pending grid workers (grid -> people)."""
        return {
            who: people
            for (period, level, who), people in self.changes.grid_workers.items()
            if period == self.period and level == "grid" and people
        }

    def active_days(self) -> dict[Any, set[str]]:
        return {
            person: days
            for (period, person), days in self.changes.active.items()
            if period == self.period
        }


def _added(stored: Mapping[str, int], pending: Mapping[str, int]) -> dict[str, int]:
    total = dict(stored)
    for name, value in pending.items():
        total[name] = total.get(name, 0) + value
    return total
