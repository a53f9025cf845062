"""Why a command on a case is refused: a field breaks a rule, the state does not allow the
action, the actor may not take it, or the caller decided on an older version."""

from __future__ import annotations

from collections.abc import Sequence

from gridwork_common.errors import Conflict, Forbidden, InvalidInput


class InvalidCommand(InvalidInput):
    """A command field breaks a rule; the message is "field: problem"."""


class IllegalTransition(Conflict):
    """The case's state does not allow the action (someone else may have moved it on)."""

    def __init__(self, message: str, state: str, allowed: Sequence[str]):
        super().__init__(message)
        self.state = state
        self.allowed = tuple(allowed)


class NotPermitted(Forbidden):
    """The state allows the action, but not for this actor's role, territory or department."""


class StaleVersion(Conflict):
    """The caller decided on an older version of the case: reload and decide again."""

    def __init__(self, expected: object, current: int):
        super().__init__(
            f"expected_version: the incident is at version {current}, not {expected}: "
            "reload it and try again"
        )
        self.expected_version = expected
        self.current_version = current
