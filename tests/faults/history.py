"""What a client did and was answered: one `Operation` per Idempotency-Key, with every
attempt (a timeout or a refused connection is an attempt with no status)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Attempt:
    status: int | None  # None: no answer (connection refused or reset, or timed out)
    retry_after: str | None = None
    timed_out: bool = False  # the client gave up waiting (its timeout)
    problem_json: bool = False  # the body was application/problem+json


@dataclass
class Operation:
    kind: str  # report, accept, upload, import, visit
    key: str  # its Idempotency-Key, unique in a run
    attempts: list[Attempt] = field(default_factory=list)
    answer_id: str | None = None  # the id of what the 2xx answer names
    expected_state: str | None = None  # the state its command implies (accept: accepted)
    target: str | None = None  # the case an accept or an upload acts on

    @property
    def acknowledged(self) -> bool:
        return any(a.status is not None and 200 <= a.status < 300 for a in self.attempts)

    @property
    def retried(self) -> bool:
        return len(self.attempts) > 1
