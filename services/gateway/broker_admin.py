"""The RabbitMQ management HTTP API, for the few things the gateway asks of it: make a
user with permissions in the county's virtual host, delete one, close its connections.

A broker that cannot be reached, answers 5xx or refuses the gateway's own management user
(a setup to fix: logged as an error) raises `Unavailable` (503 to the caller); any other
refusal is a programming error and raises `BrokerRefused`.
"""

from __future__ import annotations

import json
import logging
from urllib.parse import quote

import urllib3

from gridwork_common.config import Settings
from gridwork_common.errors import Unavailable

TIMEOUT_S = 5.0
log = logging.getLogger("gridwork.gateway")


class BrokerRefused(RuntimeError):
    pass


class BrokerAdmin:
    def __init__(self, base_url: str, user: str, password: str, http=None):
        self.base_url = base_url.rstrip("/")
        self.http = http or urllib3.PoolManager(
            maxsize=2, timeout=urllib3.Timeout(TIMEOUT_S), retries=False
        )
        self.headers = {
            **urllib3.make_headers(basic_auth=f"{user}:{password}"),
            "Content-Type": "application/json",
        }

    @classmethod
    def from_settings(cls, settings: Settings) -> BrokerAdmin:
        return cls(
            settings.rabbitmq_management_url,
            settings.rabbitmq_management_user,
            settings.rabbitmq_management_password,
        )

    def create_user(self, name: str, password: str) -> None:
        # No tags: the user cannot sign in to the management UI or API.
        self._call("PUT", f"users/{_part(name)}", {"password": password, "tags": ""})

    def set_permissions(self, vhost: str, user: str, permissions: dict[str, str]) -> None:
        self._call("PUT", f"permissions/{_part(vhost)}/{_part(user)}", permissions)

    def set_topic_permissions(self, vhost: str, user: str, permissions: dict[str, str]) -> None:
        self._call("PUT", f"topic-permissions/{_part(vhost)}/{_part(user)}", permissions)

    def delete_user(self, name: str) -> None:
        self._call("DELETE", f"users/{_part(name)}", missing_ok=True)

    def close_connections(self, user: str) -> None:
        """Close every open connection of the user (a deleted user's stay open otherwise)."""
        self._call("DELETE", f"connections/username/{_part(user)}", missing_ok=True)

    def connections_of(self, user: str) -> list[dict]:
        return self._call("GET", f"connections/username/{_part(user)}", missing_ok=True) or []

    def user_exists(self, name: str) -> bool:
        return self._call("GET", f"users/{_part(name)}", missing_ok=True) is not None

    def _call(self, method: str, path: str, body: dict | None = None, missing_ok=False):
        try:
            response = self.http.request(
                method,
                f"{self.base_url}/api/{path}",
                body=None if body is None else json.dumps(body).encode(),
                headers=self.headers,
            )
        except urllib3.exceptions.HTTPError as exc:
            raise Unavailable(f"the RabbitMQ management API cannot be reached: {exc}") from None
        if response.status == 404 and missing_ok:
            return None
        if response.status >= 500:
            raise Unavailable(f"the RabbitMQ management API answered {response.status}")
        if response.status in (401, 403):
            # The county's setup, not the request: a 503 that the log explains.
            log.error(
                "the RabbitMQ management API refused RABBITMQ_MANAGEMENT_USER "
                "(it needs the administrator tag)",
                extra={"status": response.status},
            )
            raise Unavailable("the RabbitMQ management API refused the gateway's user")
        if response.status >= 300:
            raise BrokerRefused(f"{method} /api/{path}: {response.status} {response.data[:200]!r}")
        return response.json() if response.data else {}


def _part(text: str) -> str:
    """One path segment: the default vhost `/` is `%2F`."""
    return quote(text, safe="")
