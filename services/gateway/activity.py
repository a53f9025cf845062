"""Account activity for the assessment service: a CloudEvent per login and per action
(an authenticated request that changes something), on the `gateway.events` exchange.
Published by kombu's pooled producers, which are safe to share between gunicorn threads."""

from __future__ import annotations

import logging

from nameko.standalone.events import event_dispatcher

from gridwork_common.clock import Clock, utc_now
from gridwork_common.config import Settings
from gridwork_common.context import CallerContext
from gridwork_common.events import EventPublisher

ACCOUNT_LOGIN = "account.login"
ACCOUNT_ACTION = "account.action"
TOPICS = (ACCOUNT_LOGIN, ACCOUNT_ACTION)
SERVICE_NAME = "gateway"

log = logging.getLogger("gridwork.gateway")


class AccountActivity:
    def __init__(self, settings: Settings, clock: Clock = utc_now):
        dispatch = event_dispatcher(settings.nameko_config())
        self.publisher = EventPublisher(
            lambda key, payload: dispatch(SERVICE_NAME, key, payload),
            settings.event_source(SERVICE_NAME),
            clock,
        )

    def _publish(self, topic: str, caller: CallerContext, data: dict) -> None:
        try:
            self.publisher.publish(
                topic,
                caller.scope or "none",
                {
                    "user_id": caller.user_id,
                    "roles": list(caller.roles),
                    "scope": caller.scope,
                    "department": caller.department,
                    **data,
                },
            )
        except Exception:  # activity is a statistic: never fail the user's request for it
            log.warning("account activity not published", exc_info=True)

    def login(self, caller: CallerContext) -> None:
        self._publish(ACCOUNT_LOGIN, caller, {})

    def action(self, caller: CallerContext, method: str, route: str, status: int) -> None:
        self._publish(ACCOUNT_ACTION, caller, {"method": method, "route": route, "status": status})
