"""The reconciliation after a fault, in the manner of Jepsen's queue checker: the clients'
history (what they asked, what they were answered) against what the databases hold and
what happened downstream. Pure: the scenarios gather the observations, this judges them.

- lost: an operation answered 2xx whose record is not stored;
- doubled: an operation stored more than once, or an event whose effect happened twice;
- stuck: an operation never answered 2xx although its client retried until the end, or
  answered but its record not in the state its command implies;
- mismatched: a retried operation whose 2xx answer names another record than the stored one;
- hangs: attempts the client gave up waiting for (its timeout); 5xx counted by code, and
  503s without Retry-After counted apart.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

from tests.faults.history import Operation

# What a client may see on the way to its 2xx: 409 while another attempt with its key is
# in progress, 503 with Retry-After while something it depends on is down.
TRANSIENT = frozenset({409, 503})


@dataclass(frozen=True)
class Effect:
    """One downstream effect: the ids (CloudEvent or record ids) that must each have
    happened exactly once, and how often each id was seen."""

    name: str
    expected: frozenset[str]
    seen: Mapping[str, int]


@dataclass
class Figures:
    operations: int = 0
    requests: int = 0
    acknowledged: int = 0
    lost: list[str] = field(default_factory=list)
    doubled: list[str] = field(default_factory=list)
    stuck: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    hangs: int = 0
    unanswered: int = 0  # connection refused or reset, not a timeout
    by_status: Counter = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)  # 4xx a correct client never gets
    without_retry_after: int = 0
    effects: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def server_errors(self) -> dict[int, int]:
        return {code: n for code, n in sorted(self.by_status.items()) if code >= 500}

    def violations(self) -> list[str]:
        """Everything that breaks the promise; empty when nothing was lost, doubled or
        stuck, no answer was a 500 or a hang, and every 503 said when to come back."""
        found = []
        for name in ("lost", "doubled", "stuck", "mismatched", "unexpected"):
            items = getattr(self, name)
            if items:
                found.append(f"{name}: {len(items)} ({', '.join(sorted(items)[:5])})")
        if self.hangs:
            found.append(f"hangs past the client's timeout: {self.hangs}")
        bad = {code: n for code, n in self.server_errors.items() if code != 503}
        if bad:
            found.append(f"5xx other than 503: {bad}")
        if self.without_retry_after:
            found.append(f"503 without Retry-After or problem+json: {self.without_retry_after}")
        for name, counts in self.effects.items():
            if counts["lost"] or counts["doubled"]:
                found.append(f"{name}: {counts['lost']} lost, {counts['doubled']} doubled")
        return found

    def table(self, title: str) -> str:
        lines = [
            f"fault scenario: {title}",
            f"  operations {self.operations}  requests {self.requests}"
            f"  acknowledged {self.acknowledged}",
            f"  lost {len(self.lost)}  doubled {len(self.doubled)}  stuck {len(self.stuck)}"
            f"  mismatched {len(self.mismatched)}",
            f"  hangs {self.hangs}  unanswered {self.unanswered}"
            f"  5xx by code {self.server_errors or '{}'}"
            f"  503 without Retry-After {self.without_retry_after}",
            f"  statuses {dict(sorted(self.by_status.items()))}",
        ]
        lines += [f"  VIOLATION {violation}" for violation in self.violations()]
        for name, counts in self.effects.items():
            lines.append(
                f"  {name}: expected {counts['expected']}  lost {counts['lost']}"
                f"  doubled {counts['doubled']}"
            )
        return "\n".join(lines)


def reconcile(
    operations: Iterable[Operation],
    stored: Mapping[str, list[str]],
    states: Mapping[str, str] | None = None,
    effects: Iterable[Effect] = (),
    pending_keys: Collection[str] = (),
) -> Figures:
    """`stored`: an operation's key -> the ids of the records stored for it (absent or
    empty: none); `states`: an operation's key -> the state its record is in now;
    `pending_keys`: the Idempotency-Keys whose record the gateway still holds as pending
    (an attempt nobody will finish: its retries would wait for the lease)."""
    states = states or {}
    figures = Figures()
    for operation in operations:
        figures.operations += 1
        figures.requests += len(operation.attempts)
        records = stored.get(operation.key, [])
        name = f"{operation.kind}:{operation.key}"
        if len(records) > 1:
            figures.doubled.append(name)
        for attempt in operation.attempts:
            if attempt.status is None:
                if attempt.timed_out:
                    figures.hangs += 1
                else:
                    figures.unanswered += 1
                continue
            figures.by_status[attempt.status] += 1
            if attempt.status == 503 and not (attempt.retry_after and attempt.problem_json):
                figures.without_retry_after += 1
            if 400 <= attempt.status < 500 and attempt.status not in TRANSIENT:
                figures.unexpected.append(f"{name}:{attempt.status}")
        if not operation.acknowledged:
            figures.stuck.append(name)
            continue
        figures.acknowledged += 1
        if not records:
            figures.lost.append(name)
            continue
        if operation.answer_id is not None and operation.answer_id not in records:
            figures.mismatched.append(name)
        expected = operation.expected_state
        if (expected is not None and states.get(operation.key) != expected) or (
            operation.key in pending_keys
        ):
            figures.stuck.append(name)
    for effect in effects:
        figures.effects[effect.name] = {
            "expected": len(effect.expected),
            "lost": sum(1 for i in effect.expected if effect.seen.get(i, 0) == 0),
            "doubled": sum(1 for i in effect.expected if effect.seen.get(i, 0) > 1),
        }
    return figures
