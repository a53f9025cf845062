"""Account activity for the assessment service: a CloudEvent per login and per action
(an authenticated request that changes something), on the `gateway.events` exchange.

Each event goes through the gateway's outbox (gridwork_common.outbox): a login's event is
written in the transaction that issues its tokens, an action's event by itself (one insert,
no transaction), and both are sent from memory after the write by kombu's pooled producers
(safe to share between gunicorn threads). What a broker outage leaves behind, the
deliveries process resends (`services.gateway.deliveries`)."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from nameko.standalone.events import event_dispatcher

from gridwork_common import event_format
from gridwork_common.clock import Clock, utc_now
from gridwork_common.config import Settings
from gridwork_common.context import CallerContext
from gridwork_common.events import EventPublisher
from gridwork_common.outbox import Outbox, Staged
from services.gateway.store import gateway_db

ACCOUNT_LOGIN = "account.login"
ACCOUNT_ACTION = "account.action"
TOPICS = (ACCOUNT_LOGIN, ACCOUNT_ACTION)
SERVICE_NAME = "gateway"
# A request sends its own events within milliseconds of its commit; older ones were left.
RESEND_AFTER_S = 5

log = logging.getLogger("gridwork.gateway")


class AccountActivity:
    def __init__(self, settings: Settings, clock: Clock = utc_now):
        # Structured-mode CloudEvents, like the services' events (no context headers:
        # nameko's standalone dispatcher sends none).
        dispatch = event_dispatcher(settings.nameko_config(), serializer=event_format.SERIALIZER)
        self.settings = settings
        self.clock = clock
        self.publisher = EventPublisher(
            lambda key, payload: dispatch(SERVICE_NAME, key, payload),
            settings.event_source(SERVICE_NAME),
            clock,
        )

    def outbox(self) -> Outbox:
        return Outbox(gateway_db(self.settings), self.publisher, self.clock)

    def announce_login(self, staged: Staged, user: Mapping) -> None:
        """In the transaction that issues a user's tokens (Identity.login's `on_login`)."""
        caller = CallerContext(
            user_id=user["_id"],
            roles=tuple(user["roles"]),
            scope=user.get("scope"),
            department=user.get("department"),
        )
        staged.announce(ACCOUNT_LOGIN, caller.scope or "none", _data(caller, {}))

    def action(self, caller: CallerContext, method: str, route: str, status: int) -> None:
        data = _data(caller, {"method": method, "route": route, "status": status})
        try:
            self.outbox().announce(ACCOUNT_ACTION, caller.scope or "none", data)
        except Exception:  # activity is a statistic: never fail the user's request for it
            log.warning("account activity not recorded", exc_info=True)

    def resend(self) -> int:
        return self.outbox().resend(RESEND_AFTER_S)


def _data(caller: CallerContext, extra: dict) -> dict:
    return {
        "user_id": caller.user_id,
        "roles": list(caller.roles),
        "scope": caller.scope,
        "department": caller.department,
        **extra,
    }
