"""Page limits every list shares, in the API and in the services behind it: a caller asks
for `limit` items (1 to MAX_PAGE, DEFAULT_PAGE when it names none) and follows the
previous page's cursor. One place, so the gateway's documented bounds and the bounds the
services enforce cannot drift apart."""

from __future__ import annotations

from gridwork_common.errors import InvalidInput

MAX_PAGE = 200
DEFAULT_PAGE = 50


def page_limit(limit) -> int:
    """`limit` itself when it is a page size a service accepts; otherwise a problem naming
    the field (a service is called over RPC, so the gateway's checks are not the only
    caller's)."""
    if not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise InvalidInput("limit", f"must be an integer from 1 to {MAX_PAGE}")
    return limit
