"""Identity: users with argon2 password hashes (rehashed on login when the parameters
have grown), short-lived signed access tokens (HS256 JWT), rotating refresh tokens,
revocation, and login rate limits per user and address, counted before the password is
checked."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from gridwork_common import roles
from gridwork_common.clock import Clock, utc_now
from gridwork_common.config import Settings, key_id
from gridwork_common.context import CallerContext
from gridwork_common.outbox import Outbox, Staged
from services.gateway import store
from services.gateway.problems import ApiProblem
from services.gateway.ratelimits import Rate, RateLimits

ISSUER = "gridwork-gateway"
ASSIGNABLE_ROLES = tuple(role for role in roles.ALL if role != roles.SYSTEM)
_hasher = PasswordHasher()
# Verifying against this when the user does not exist keeps the timing the same.
_DUMMY_HASH = _hasher.hash("not a real password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password_rules(password: object, field: str = "password") -> str:
    if not isinstance(password, str) or not 10 <= len(password) <= 200:
        raise ApiProblem(
            422, "Invalid input", f"{field}: must be 10 to 200 characters", field=field
        )
    return password


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Identity:
    def __init__(self, db: Database, settings: Settings, clock: Clock = utc_now):
        self.db = db
        self.settings = settings
        self.clock = clock

    # ------------------------------------------------------------------ users
    def create_user(
        self,
        username: str,
        password: str,
        user_roles: list[str],
        scope: str | None,
        department: str | None,
        name: str | None = None,
    ) -> dict:
        document = {
            "_id": username,
            "name": name or username,
            "password_hash": hash_password(check_password_rules(password)),
            "roles": _checked_roles(user_roles),
            "scope": scope,
            "department": department,
            "disabled": False,
            "created_at": self.clock(),
        }
        try:
            self.db[store.USERS].insert_one(document)
        except DuplicateKeyError:
            raise ApiProblem(409, "Conflict", "username: already taken", field="username") from None
        return render_user(document)

    def user(self, username: str) -> dict:
        document = self.db[store.USERS].find_one({"_id": username})
        if document is None:
            raise ApiProblem(404, "Not Found", f"no user {username}")
        return document

    def update_user(self, username: str, changes: Mapping) -> dict:
        self.user(username)
        update = {}
        if "roles" in changes and changes["roles"] is not None:
            update["roles"] = _checked_roles(changes["roles"])
        for name in ("scope", "department", "name"):
            if name in changes:
                update[name] = changes[name]
        if "disabled" in changes and changes["disabled"] is not None:
            update["disabled"] = bool(changes["disabled"])
        if update:
            self.db[store.USERS].update_one({"_id": username}, {"$set": update})
        if update.get("disabled") or "roles" in update or "scope" in update:
            self.revoke_all(username)  # a changed account's sessions end now
        return render_user(self.user(username))

    def reset_password(self, username: str, password: str) -> None:
        self.user(username)
        self.db[store.USERS].update_one(
            {"_id": username},
            {"$set": {"password_hash": hash_password(check_password_rules(password))}},
        )
        self.revoke_all(username)

    def list_users(self) -> list[dict]:
        return [render_user(doc) for doc in self.db[store.USERS].find().sort("_id", 1)]

    # ------------------------------------------------------------------ tokens
    def login(
        self,
        username: str,
        password: str,
        address: str,
        outbox: Outbox | None = None,
        on_login: Callable[[Staged, Mapping], None] | None = None,
    ) -> dict:
        """Tokens for a verified user. `on_login(staged, user)` announces the login
        through `outbox` in the transaction that issues the tokens."""
        return self._issue(self.verify(username, password, address), outbox, on_login)

    def verify(self, username: str, password: str, address: str) -> dict:
        """The user document of a correct, enabled login, under the login rate limits
        (the API's token login and the command centre's login form both use this)."""
        # Every attempt takes its slots before the password is checked, so guesses sent
        # together are refused past the limit instead of all being verified.
        limits = RateLimits(self.db, self.clock)
        by_user, by_address = self._login_rates()
        limits.take(by_address, address, "too many failed logins from this address")
        try:
            limits.take(by_user, username, "too many failed logins for this user")
        except ApiProblem:
            limits.give_back(by_address, address)  # not verified: not a failure
            raise
        document = self.db[store.USERS].find_one({"_id": username})
        stored_hash = document["password_hash"] if document else _DUMMY_HASH
        try:
            _hasher.verify(stored_hash, password)
            valid = document is not None and not document.get("disabled")
        except (VerificationError, InvalidHashError):
            valid = False
        if not valid:
            raise ApiProblem(401, "Unauthorized", "wrong username or password")
        limits.clear(by_user, username)
        limits.give_back(by_address, address)  # only failures count against an address
        self._upgrade_hash(username, stored_hash, password)
        return document

    def _login_rates(self) -> tuple[Rate, Rate]:
        window_s = self.settings.login_limit_window_s
        return (
            Rate("login-user", self.settings.login_limit_per_user, window_s),
            Rate("login-address", self.settings.login_limit_per_address, window_s),
        )

    def _upgrade_hash(self, username: str, stored_hash: str, password: str) -> None:
        """A hash made with weaker parameters than today's is replaced (only if it is
        still the one verified: a password reset meanwhile wins)."""
        if _hasher.check_needs_rehash(stored_hash):
            self.db[store.USERS].update_one(
                {"_id": username, "password_hash": stored_hash},
                {"$set": {"password_hash": hash_password(password)}},
            )

    def _issue(
        self,
        user: Mapping,
        outbox: Outbox | None = None,
        on_login: Callable[[Staged, Mapping], None] | None = None,
    ) -> dict:
        now = self.clock()
        ttl = self.settings.access_token_ttl_s
        claims = {
            "iss": ISSUER,
            "sub": user["_id"],
            "jti": uuid.uuid4().hex,
            "iat": int(now.timestamp()),
            "exp": int((now + timedelta(seconds=ttl)).timestamp()),
            "roles": list(user["roles"]),
            "scope": user.get("scope"),
            "department": user.get("department"),
        }
        access = jwt.encode(
            claims,
            self.settings.token_secret,
            algorithm="HS256",
            headers={"kid": key_id(self.settings.token_secret)},
        )
        refresh = secrets.token_urlsafe(32)

        def keep_refresh_token(staged: Staged) -> None:
            self.db[store.REFRESH_TOKENS].insert_one(
                {
                    "_id": _token_digest(refresh),
                    "user": user["_id"],
                    "created_at": now,
                    "expires_at": now + timedelta(seconds=self.settings.refresh_token_ttl_s),
                },
                session=staged.session,
            )
            if on_login is not None:
                on_login(staged, user)

        (outbox or Outbox(self.db, None, self.clock)).run(keep_refresh_token)
        return {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": ttl,
            "refresh_token": refresh,
        }

    def refresh(self, refresh_token: str) -> dict:
        # Rotation: a refresh token works once; using it again finds nothing.
        stored = self.db[store.REFRESH_TOKENS].find_one_and_delete(
            {"_id": _token_digest(refresh_token or ""), "expires_at": {"$gt": self.clock()}}
        )
        if stored is None:
            raise ApiProblem(
                401,
                "Unauthorized",
                "refresh_token: unknown, used or expired",
                field="refresh_token",
            )
        user = self.db[store.USERS].find_one({"_id": stored["user"]})
        if user is None or user.get("disabled"):
            raise ApiProblem(401, "Unauthorized", "the account is disabled")
        return self._issue(user)

    def logout(self, claims: Mapping, refresh_token: str | None) -> None:
        self.db[store.REVOKED_TOKENS].update_one(
            {"_id": claims["jti"]},
            {"$set": {"expires_at": datetime.fromtimestamp(claims["exp"], UTC)}},
            upsert=True,
        )
        if refresh_token:
            self.db[store.REFRESH_TOKENS].delete_one({"_id": _token_digest(refresh_token)})

    def revoke_all(self, username: str) -> None:
        """End every session of a user: refresh tokens deleted, and access tokens issued
        before now refused (`tokens_valid_after`)."""
        self.db[store.REFRESH_TOKENS].delete_many({"user": username})
        self.db[store.USERS].update_one(
            {"_id": username}, {"$set": {"tokens_valid_after": int(self.clock().timestamp())}}
        )

    def authenticate(
        self, authorization: str | None, request_id: str
    ) -> tuple[CallerContext, dict]:
        if not authorization or not authorization.startswith("Bearer "):
            raise ApiProblem(401, "Unauthorized", "a Bearer access token is required")
        try:
            token = authorization.removeprefix("Bearer ").strip()
            claims = jwt.decode(
                token,
                self._verification_key(jwt.get_unverified_header(token).get("kid")),
                algorithms=["HS256"],
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "jti"]},
            )
        except jwt.ExpiredSignatureError:
            raise ApiProblem(401, "Unauthorized", "the access token has expired") from None
        except jwt.InvalidTokenError:
            raise ApiProblem(401, "Unauthorized", "the access token is not valid") from None
        # find_one by _id, not count_documents: a count is an aggregation on both sides.
        if self.db[store.REVOKED_TOKENS].find_one({"_id": claims["jti"]}, {"_id": 1}):
            raise ApiProblem(401, "Unauthorized", "the access token was revoked")
        user = self.db[store.USERS].find_one(
            {"_id": claims["sub"]}, {"disabled": 1, "tokens_valid_after": 1}
        )
        if user is None or user.get("disabled"):
            raise ApiProblem(401, "Unauthorized", "the account is disabled")
        if claims["iat"] < user.get("tokens_valid_after", 0):
            raise ApiProblem(401, "Unauthorized", "the access token was revoked")
        caller = CallerContext(
            user_id=claims["sub"],
            roles=tuple(claims.get("roles") or ()),
            scope=claims.get("scope"),
            department=claims.get("department"),
            request_id=request_id,
        )
        return caller, claims

    def _verification_key(self, kid: object) -> bytes:
        """The key a token names: the current one or one being rotated out
        (TOKEN_SECRETS_PREVIOUS). A token without a kid predates key ids: current key."""
        if kid is None:
            return self.settings.token_secret
        for key in (self.settings.token_secret, *self.settings.token_secrets_previous):
            if key_id(key) == kid:
                return key
        raise jwt.InvalidTokenError("signed with a key no longer accepted")


def _checked_roles(values) -> list[str]:
    if not isinstance(values, list) or not values:
        raise ApiProblem(422, "Invalid input", "roles: give at least one role", field="roles")
    unknown = [role for role in values if role not in ASSIGNABLE_ROLES]
    if unknown:
        raise ApiProblem(
            422,
            "Invalid input",
            f"roles: {unknown[0]!r} is not one of {', '.join(ASSIGNABLE_ROLES)}",
            field="roles",
        )
    return sorted(set(values))


def render_user(document: Mapping) -> dict:
    return {
        "username": document["_id"],
        "name": document.get("name"),
        "roles": document["roles"],
        "scope": document.get("scope"),
        "department": document.get("department"),
        "disabled": document.get("disabled", False),
    }
