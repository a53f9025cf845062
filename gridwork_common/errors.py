"""Errors services raise to their callers. nameko sends the class name and message over
RPC (`RemoteError.exc_type`), which is how the gateway maps them to HTTP statuses."""


class GridworkError(Exception):
    """Base of the errors a caller is expected to handle (not a bug in the service)."""


class InvalidInput(GridworkError, ValueError):
    """The request breaks a rule; the message starts with the offending field."""

    def __init__(self, field: str, problem: str):
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class OutsideTerritory(InvalidInput):
    """A location no grid of the county contains."""


class NotFound(GridworkError):
    """No such thing, or the caller may not see it: the two are indistinguishable."""


class Forbidden(GridworkError):
    """The caller's role does not allow this action."""


class Conflict(GridworkError):
    """The thing changed meanwhile or already exists differently."""


class Unavailable(GridworkError):
    """A store the service depends on cannot be reached; retrying later may work."""
