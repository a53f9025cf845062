"""Which periods' change records a process should compact or merge, from what it folded
(pure: `summary_upkeep.py` runs the work in the background).

- **Compact** a period once this process wrote `compact_after` records of it since it
  last handed it on: what a board adds up on top of the summaries stays bounded, and a
  long period still filling (a month, quarter, year: a record from every batch) is not
  written to the summaries again and again.
- **Merge** a period once it is quiet: no record of it while this process folded
  `quiet_after` more facts (a day or a week the facts have moved past). It is merged
  once, as it will stay, beside the next folds rather than all at once at the end.

The service's timer merges everything pending whatever this says.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Due:
    compact: list[str]
    merge: list[str]


@dataclass
class Upkeep:
    facts: int = 0  # folded by this process
    records: dict[str, int] = field(default_factory=dict)  # period -> since handed on
    last_written: dict[str, int] = field(default_factory=dict)  # period -> `facts` then

    def folded(
        self, facts: int, written: dict[str, int], compact_after: int, quiet_after: int
    ) -> Due:
        """A batch of `facts` folded, writing so many records of each period: what is due."""
        self.facts += facts
        compact = []
        for period, records in written.items():
            self.last_written[period] = self.facts
            counted = self.records.get(period, 0) + records
            if counted >= compact_after:
                compact.append(period)
                counted = 0
            self.records[period] = counted
        quiet = [
            period for period, at in self.last_written.items() if self.facts - at >= quiet_after
        ]
        for period in quiet:
            del self.last_written[period]
            self.records.pop(period, None)
        return Due(compact=compact, merge=quiet)
