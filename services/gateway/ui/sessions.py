"""Browser sessions of the command centre, kept server-side in the gateway's MongoDB.

The cookie holds only a random session key (HttpOnly, SameSite=Strict, Secure when the
request came over TLS, directly or through the trusted proxies): no token a script could
read. The record, stored under the key's SHA-256, holds the signed-in user and the CSRF
secret; logging out deletes it, so the old cookie is worth nothing afterwards. Sessions
expire when idle (`IDLE_TTL_S`) and at the latest `MAX_AGE_S` after sign-in; the TTL
index removes expired records. Only requests to the command centre's pages open a
session, and JSON API requests that carry the session's CSRF header (the phone app, see
api_session.py): the rest of the API, Open311, the probes and static files never read
or write one.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from flask import Flask, Request, Response, request
from flask.sessions import SessionInterface, SessionMixin
from pymongo.errors import PyMongoError
from werkzeug.datastructures import CallbackDict

from gridwork_common.clock import Clock, utc_now
from services.gateway import store

COOKIE_NAME = "gridwork_session"
ANONYMOUS_TTL_S = 3600  # a login form's CSRF secret
IDLE_TTL_S = 8 * 3600  # a working day without a request ends the session
MAX_AGE_S = 12 * 3600  # and no session outlives a long shift
# Addresses that are not the command centre's pages: no session is read or written.
MACHINE_PREFIXES = ("/api/", "/open311/", "/healthz", "/readyz", "/metrics")
SESSIONLESS_PREFIXES = (*MACHINE_PREFIXES, "/ui/static/", "/ui/vendor/")
API_PREFIX = "/api/v1/"
API_SESSION_HEADER = "X-CSRFToken"  # api_session.py


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ServerSession(CallbackDict, SessionMixin):
    def __init__(self, data: dict | None = None, key: str | None = None, unavailable: bool = False):
        def on_update(session: ServerSession) -> None:
            session.modified = True

        super().__init__(data or {}, on_update)
        self.key = key
        self.new = key is None
        self.modified = False
        self.ended = False
        self.previous_key: str | None = None
        # The store did not answer: the request gets the 503 page (ui/security.py) and
        # nothing is saved, rather than a visitor taken for signed out.
        self.unavailable = unavailable

    def renew(self) -> None:
        """A fresh key for this session (at sign-in: a key known before is worth nothing)."""
        if self.key is not None:
            self.previous_key = self.key
        self.key = None
        self.new = True
        self.modified = True

    def end(self) -> None:
        """Delete the record and the cookie (logout, or an account that was disabled)."""
        self.clear()
        self.ended = True


class ServerSessions(SessionInterface):
    def __init__(self, settings, clock: Clock = utc_now):
        self.settings = settings
        self.clock = clock  # the machine's time, like the TTL monitor that deletes records

    def _records(self):
        return store.gateway_db(self.settings)[store.UI_SESSIONS]

    @staticmethod
    def applies_to(request: Request) -> bool:
        # Flask opens the session before it matches the route: decided by the path.
        if request.path.startswith(API_PREFIX) and request.headers.get(API_SESSION_HEADER):
            return not request.headers.get("Authorization")  # the phone app's sync
        return not request.path.startswith(SESSIONLESS_PREFIXES)

    def open_session(self, app: Flask, request: Request) -> ServerSession | None:
        if not self.applies_to(request):
            return self.make_null_session(app)
        key = request.cookies.get(COOKIE_NAME)
        if not key:
            return ServerSession()
        try:
            record = self._records().find_one(
                {"_id": _digest(key), "expires_at": {"$gt": self.clock()}}
            )
        except PyMongoError:
            return ServerSession(unavailable=True)
        if record is None:
            return ServerSession()
        return ServerSession(record.get("data"), key)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        if not isinstance(session, ServerSession) or session.unavailable:
            return
        secure = request.is_secure
        if session.previous_key:
            self._records().delete_one({"_id": _digest(session.previous_key)})
        if session.ended:
            if session.key:
                self._records().delete_one({"_id": _digest(session.key)})
            response.delete_cookie(COOKIE_NAME, path="/", secure=secure, samesite="Strict")
            return
        if not session and session.new:
            return  # nothing to remember: no record, no cookie
        if session.new:
            session.key = secrets.token_urlsafe(32)
        now = self.clock()
        signed_in = session.get("user") is not None
        expires_at = now + timedelta(seconds=IDLE_TTL_S if signed_in else ANONYMOUS_TTL_S)
        if signed_in:
            latest = session.get("signed_in_at", int(now.timestamp())) + MAX_AGE_S
            expires_at = min(expires_at, now + timedelta(seconds=latest - now.timestamp()))
        self._records().update_one(
            {"_id": _digest(session.key)},
            {
                "$set": {
                    "data": dict(session),
                    "user": session.get("user"),
                    "expires_at": expires_at,
                }
            },
            upsert=True,
        )
        if session.new:
            response.set_cookie(
                COOKIE_NAME,
                session.key,
                httponly=True,
                secure=secure,
                samesite="Strict",
                path="/",
            )
        response.vary.add("Cookie")
