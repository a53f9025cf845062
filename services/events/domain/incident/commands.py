"""The commands on a case, one per action. Every command but Report names the version it
was decided on (optimistic concurrency)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar


@dataclass(frozen=True, kw_only=True)
class Report:
    action: ClassVar[str] = "report"
    incident_id: str
    category: str
    urgency: str
    grid_code: str
    description: str
    media_ids: Sequence[str] = ()
    location: tuple[float, float] | None = None
    reporter_id: str | None = None  # defaults to the actor; others report for citizens
    resolved_on_spot: bool = False


@dataclass(frozen=True, kw_only=True)
class Accept:
    action: ClassVar[str] = "accept"
    expected_version: int
    comment: str = ""


@dataclass(frozen=True, kw_only=True)
class Reject:
    action: ClassVar[str] = "reject"
    expected_version: int
    reason: str
    duplicate_of: str | None = None
    comment: str = ""


@dataclass(frozen=True, kw_only=True)
class Register:
    action: ClassVar[str] = "register"
    expected_version: int
    comment: str = ""


@dataclass(frozen=True, kw_only=True)
class Dispatch:
    """To a department at the owning centre's level, or down to a lower centre."""

    action: ClassVar[str] = "dispatch"
    expected_version: int
    department_code: str | None = None
    to_centre: str | None = None
    comment: str = ""


@dataclass(frozen=True, kw_only=True)
class Sign:
    action: ClassVar[str] = "sign"
    expected_version: int
    comment: str = ""


@dataclass(frozen=True, kw_only=True)
class Return:
    action: ClassVar[str] = "return"
    expected_version: int
    reason: str


@dataclass(frozen=True, kw_only=True)
class Feedback:
    action: ClassVar[str] = "feedback"
    expected_version: int
    result: str
    media_ids: Sequence[str] = ()


@dataclass(frozen=True, kw_only=True)
class Verify:
    action: ClassVar[str] = "verify"
    expected_version: int
    passed: bool
    comment: str = ""
    media_ids: Sequence[str] = ()


@dataclass(frozen=True, kw_only=True)
class Close:
    action: ClassVar[str] = "close"
    expected_version: int
    comment: str = ""


@dataclass(frozen=True, kw_only=True)
class Evaluate:
    action: ClassVar[str] = "evaluate"
    expected_version: int
    satisfaction: int
    comment: str = ""


@dataclass(frozen=True, kw_only=True)
class Escalate:
    action: ClassVar[str] = "escalate"
    expected_version: int
    reason: str = ""


@dataclass(frozen=True, kw_only=True)
class RequestExtension:
    action: ClassVar[str] = "request_extension"
    expected_version: int
    hours: float
    reason: str


@dataclass(frozen=True, kw_only=True)
class DecideExtension:
    action: ClassVar[str] = "decide_extension"
    expected_version: int
    approve: bool
    comment: str = ""


@dataclass(frozen=True, kw_only=True)
class Suspend:
    action: ClassVar[str] = "suspend"
    expected_version: int
    reason: str


@dataclass(frozen=True, kw_only=True)
class Resume:
    action: ClassVar[str] = "resume"
    expected_version: int
    comment: str = ""


@dataclass(frozen=True, kw_only=True)
class Supervise:
    action: ClassVar[str] = "supervise"
    expected_version: int
    note: str
    new_due: datetime | None = None  # replaces the current stage's deadline


Command = (
    Accept
    | Reject
    | Register
    | Dispatch
    | Sign
    | Return
    | Feedback
    | Verify
    | Close
    | Evaluate
    | Escalate
    | RequestExtension
    | DecideExtension
    | Suspend
    | Resume
    | Supervise
)
