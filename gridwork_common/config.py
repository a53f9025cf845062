"""Configuration from environment variables, in one place.

Every variable has a default that works on a developer's machine with `make up`, except
the keys: outside development mode (`GRIDWORK_DEV_MODE=true`, which `make up`, the tests
and the benchmarks set) TOKEN_SECRET, PII_ENCRYPTION_KEY and PII_INDEX_KEY must be set, or
the process refuses to start naming the missing one. See docs/configuration.md.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from urllib.parse import unquote, urlparse

from gridwork_common import event_format
from gridwork_common.clock import (
    CLOCK_CONFIG_KEY,
    TEST_CLOCK_SINCE_VARIABLE,
    TEST_CLOCK_VARIABLE,
    Clock,
    process_pinned_clock,
    utc_now,
)

NAMEKO_SETTINGS_KEY = "GRIDWORK_SETTINGS"


class ConfigError(ValueError):
    """A configuration variable holds a value Gridwork cannot use."""

    def __init__(self, variable: str, problem: str):
        super().__init__(f"{variable}: {problem}")
        self.variable = variable


def _text(environ: Mapping[str, str], name: str, default: str) -> str:
    value = environ.get(name, default).strip()
    if not value:
        raise ConfigError(name, "must not be empty")
    return value


def _integer(environ: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = environ.get(name, str(default)).strip()
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(name, f"must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(name, f"must be at least {minimum}, got {value}")
    return value


def _number(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = environ.get(name, str(default)).strip()
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(name, f"must be a number, got {raw!r}") from None
    if value <= 0:
        raise ConfigError(name, f"must be positive, got {value}")
    return value


def _key(environ: Mapping[str, str], name: str, default: str) -> bytes:
    raw = _text(environ, name, default)
    try:
        key = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(name, "must be base64") from None
    if len(key) != 32:
        raise ConfigError(name, f"must decode to 32 bytes, got {len(key)}")
    return key


# Development-only keys so `make up` works out of the box; they are public (they are in
# this file), so outside development mode they are refused, set or not.
DEV_MODE_VARIABLE = "GRIDWORK_DEV_MODE"
_DEV_ENCRYPTION_KEY = base64.b64encode(b"gridwork-dev-only-encryption-key").decode()
_DEV_INDEX_KEY = base64.b64encode(b"gridwork-dev-only-blind-indexkey").decode()
_DEV_TOKEN_SECRET = base64.b64encode(b"gridwork-dev-only-gateway-tokens").decode()


def _secret_key(environ: Mapping[str, str], name: str, dev_key: str, dev_mode: bool) -> bytes:
    if dev_mode:
        return _key(environ, name, dev_key)
    if not environ.get(name, "").strip():
        raise ConfigError(
            name,
            "is not set; generate one with `openssl rand -base64 32` (see docs/configuration.md),"
            f" or set {DEV_MODE_VARIABLE}=true on a developer's machine",
        )
    key = _key(environ, name, dev_key)
    if key == base64.b64decode(dev_key):
        raise ConfigError(name, "is the public development key; generate a real one")
    return key


def _previous_keys(environ: Mapping[str, str], name: str, current: bytes) -> tuple[bytes, ...]:
    """Keys being rotated out: still accepted to verify or decrypt, never used to write.
    Comma-separated base64 keys; empty (the default) when no rotation is under way."""
    keys = []
    for position, raw in enumerate(environ.get(name, "").split(",")):
        if not raw.strip():
            continue
        key = _key({name: raw.strip()}, name, "")
        if key == current:
            raise ConfigError(name, f"key {position + 1} is the current key; list only old ones")
        keys.append(key)
    return tuple(keys)


def _instant(environ: Mapping[str, str], name: str) -> datetime | None:
    """An ISO 8601 instant with its UTC offset, or None when the variable is unset."""
    raw = environ.get(name, "").strip()
    if not raw:
        return None
    try:
        instant = datetime.fromisoformat(raw)
    except ValueError:
        instant = None
    if instant is None or instant.tzinfo is None:
        raise ConfigError(
            name, f"must be an ISO 8601 instant with its offset (2026-11-30T23:00:00Z), got {raw!r}"
        )
    return instant


def _clock_since(environ: Mapping[str, str], start: datetime | None) -> datetime | None:
    since = _instant(environ, TEST_CLOCK_SINCE_VARIABLE)
    if since is not None and start is None:
        raise ConfigError(
            TEST_CLOCK_SINCE_VARIABLE, f"is only read with {TEST_CLOCK_VARIABLE}, which is unset"
        )
    return since


def _flag(environ: Mapping[str, str], name: str, default: bool) -> bool:
    raw = environ.get(name, "true" if default else "false").strip().lower()
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(name, f"must be true or false, got {raw!r}")


@dataclass(frozen=True)
class Settings:
    amqp_uri: str
    mongo_uri: str
    mongo_db_prefix: str
    mongo_timeout_ms: int
    s3_endpoint: str
    s3_public_endpoint: str
    s3_access_key: str
    s3_secret_key: str = field(repr=False)
    s3_bucket: str
    s3_region: str
    s3_secure: bool
    s3_public_secure: bool  # HTTPS in the presigned URLs (the public address is often TLS)
    county_code: str
    metrics_port: int
    rpc_timeout: float
    # nameko: concurrent workers per service process (also its AMQP prefetch, so a
    # replica holds at most this many unacknowledged messages; the queue-length
    # autoscaler's target per replica is at least this), and the AMQP heartbeat.
    max_workers: int
    amqp_heartbeat_s: int
    log_level: str
    pii_encryption_key: bytes = field(repr=False)
    pii_index_key: bytes = field(repr=False)
    token_secret: bytes = field(repr=False)
    # Keys being rotated out (docs/operations.md "Key rotation"): read, never written.
    pii_encryption_keys_previous: tuple[bytes, ...] = field(repr=False)
    pii_index_keys_previous: tuple[bytes, ...] = field(repr=False)
    token_secrets_previous: tuple[bytes, ...] = field(repr=False)
    access_token_ttl_s: int
    refresh_token_ttl_s: int
    media_size_limits: str  # "photo=20971520,video/mp4=209715200" (parsed by media)
    media_retention_days: str  # "visit=1095,record=3650" (parsed by media)
    dev_mode: bool  # GRIDWORK_DEV_MODE: the public development keys are allowed
    # Requests per window, counted before the work is done (services/gateway/ratelimits.py).
    login_limit_per_user: int
    login_limit_per_address: int
    login_limit_window_s: int
    open311_limit_per_minute: int  # per client address, every public Open311 route
    # Whether public Open311 reads show a request's exact address and point (else the
    # address is left out and the point rounded to about 100 m).
    open311_exact_address: bool
    upload_limit_per_minute: int  # upload slots and direct uploads, per user
    # How many reverse proxies in front of the gateway append to X-Forwarded-For; only
    # their entries are believed (0: the peer address is the client).
    trusted_proxy_hops: int
    # The RabbitMQ management HTTP API, where departments' own broker users are made
    # (services/gateway/department_accounts.py); its user needs the administrator tag.
    rabbitmq_management_url: str
    rabbitmq_management_user: str
    rabbitmq_management_password: str = field(repr=False)
    # Tests of the whole stack only (GRIDWORK_TEST_CLOCK_START): the instant this process's
    # clock starts at; None, the machine's clock, everywhere else. The pinned clock read it
    # at the machine's time test_clock_since (GRIDWORK_TEST_CLOCK_SINCE; None: at start).
    test_clock_start: datetime | None
    test_clock_since: datetime | None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        county_code = _text(env, "COUNTY_CODE", "530402")
        if not re.fullmatch(r"\d{6}", county_code):
            raise ConfigError("COUNTY_CODE", f"must be a 6-digit county code, got {county_code!r}")
        db_prefix = _text(env, "MONGO_DB_PREFIX", "gridwork")
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,40}", db_prefix):
            raise ConfigError(
                "MONGO_DB_PREFIX", "must be a letter then up to 40 letters, digits or _"
            )
        dev_mode = _flag(env, DEV_MODE_VARIABLE, False)
        log_level = _text(env, "LOG_LEVEL", "INFO").upper()
        if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ConfigError(
                "LOG_LEVEL", f"must be DEBUG, INFO, WARNING or ERROR, got {log_level!r}"
            )
        amqp_uri = _text(env, "AMQP_URI", "amqp://guest:guest@127.0.0.1:5672/")
        amqp = urlparse(amqp_uri)
        return cls(
            amqp_uri=amqp_uri,
            mongo_uri=_text(
                env, "MONGO_URI", "mongodb://127.0.0.1:27017/?replicaSet=rs0&directConnection=true"
            ),
            mongo_db_prefix=db_prefix,
            mongo_timeout_ms=_integer(env, "MONGO_TIMEOUT_MS", 5000, minimum=100),
            s3_endpoint=_text(env, "S3_ENDPOINT", "127.0.0.1:9000"),
            s3_public_endpoint=_text(
                env, "S3_PUBLIC_ENDPOINT", env.get("S3_ENDPOINT", "127.0.0.1:9000")
            ),
            s3_access_key=_text(env, "S3_ACCESS_KEY", "gridwork"),
            s3_secret_key=_text(env, "S3_SECRET_KEY", "gridwork-local-secret"),
            s3_bucket=_text(env, "S3_BUCKET", "gridwork-media"),
            s3_region=_text(env, "S3_REGION", "us-east-1"),
            s3_secure=_flag(env, "S3_SECURE", False),
            s3_public_secure=_flag(env, "S3_PUBLIC_SECURE", _flag(env, "S3_SECURE", False)),
            county_code=county_code,
            metrics_port=_integer(env, "METRICS_PORT", 9100),
            rpc_timeout=_number(env, "RPC_TIMEOUT", 10.0),
            max_workers=_integer(env, "NAMEKO_MAX_WORKERS", 10, minimum=1),
            amqp_heartbeat_s=_integer(env, "AMQP_HEARTBEAT_S", 60, minimum=0),
            log_level=log_level,
            pii_encryption_key=(
                pii_encryption_key := _secret_key(
                    env, "PII_ENCRYPTION_KEY", _DEV_ENCRYPTION_KEY, dev_mode
                )
            ),
            pii_index_key=(
                pii_index_key := _secret_key(env, "PII_INDEX_KEY", _DEV_INDEX_KEY, dev_mode)
            ),
            token_secret=(
                token_secret := _secret_key(env, "TOKEN_SECRET", _DEV_TOKEN_SECRET, dev_mode)
            ),
            pii_encryption_keys_previous=_previous_keys(
                env, "PII_ENCRYPTION_KEYS_PREVIOUS", pii_encryption_key
            ),
            pii_index_keys_previous=_previous_keys(env, "PII_INDEX_KEYS_PREVIOUS", pii_index_key),
            token_secrets_previous=_previous_keys(env, "TOKEN_SECRETS_PREVIOUS", token_secret),
            access_token_ttl_s=_integer(env, "ACCESS_TOKEN_TTL_S", 900, minimum=30),
            refresh_token_ttl_s=_integer(env, "REFRESH_TOKEN_TTL_S", 30 * 24 * 3600, minimum=60),
            media_size_limits=env.get("MEDIA_SIZE_LIMITS", "").strip(),
            media_retention_days=env.get("MEDIA_RETENTION_DAYS", "").strip(),
            dev_mode=dev_mode,
            login_limit_per_user=_integer(env, "LOGIN_LIMIT_PER_USER", 5, minimum=1),
            login_limit_per_address=_integer(env, "LOGIN_LIMIT_PER_ADDRESS", 20, minimum=1),
            login_limit_window_s=_integer(env, "LOGIN_LIMIT_WINDOW_S", 900, minimum=1),
            open311_limit_per_minute=_integer(env, "OPEN311_LIMIT_PER_MINUTE", 60, minimum=1),
            open311_exact_address=_flag(env, "OPEN311_EXACT_ADDRESS", False),
            upload_limit_per_minute=_integer(env, "UPLOAD_LIMIT_PER_MINUTE", 30, minimum=1),
            trusted_proxy_hops=_integer(env, "TRUSTED_PROXY_HOPS", 0),
            rabbitmq_management_url=_text(
                env, "RABBITMQ_MANAGEMENT_URL", "http://127.0.0.1:15672"
            ).rstrip("/"),
            rabbitmq_management_user=_text(
                env, "RABBITMQ_MANAGEMENT_USER", unquote(amqp.username or "guest")
            ),
            rabbitmq_management_password=_text(
                env, "RABBITMQ_MANAGEMENT_PASSWORD", unquote(amqp.password or "guest")
            ),
            test_clock_start=(test_clock_start := _instant(env, TEST_CLOCK_VARIABLE)),
            test_clock_since=_clock_since(env, test_clock_start),
        )

    def database_name(self, service_name: str) -> str:
        """Each service owns one database: `<prefix>_<service>`."""
        return f"{self.mongo_db_prefix}_{service_name}"

    @property
    def amqp_vhost(self) -> str:
        """The virtual host of AMQP_URI (`/` when the URI names none)."""
        path = urlparse(self.amqp_uri).path
        return unquote(path[1:]) if len(path) > 1 else "/"

    def event_source(self, service_name: str) -> str:
        """The CloudEvents `source` of everything a service publishes."""
        return f"/counties/{self.county_code}/{service_name}"

    def clock(self) -> Clock:
        """The clock that dates the county's work in this process: the machine's, or in a
        test of the whole stack the process's clock pinned at GRIDWORK_TEST_CLOCK_START.
        (What other programs judge by the machine's time keeps `utc_now`: see the gateway's
        `create_app`.)"""
        if self.test_clock_start is None:
            return utc_now
        return process_pinned_clock(self.test_clock_start, self.test_clock_since)

    def nameko_config(self) -> dict:
        """The config dict nameko containers and standalone proxies take."""
        pinned = {} if self.test_clock_start is None else {CLOCK_CONFIG_KEY: self.clock()}
        return {
            "AMQP_URI": self.amqp_uri,
            "serializer": "json",  # RPC; events are published as CloudEvents
            "SERIALIZERS": event_format.NAMEKO_SERIALIZERS,
            "ACCEPT": event_format.ACCEPT,
            "max_workers": self.max_workers,
            "HEARTBEAT": self.amqp_heartbeat_s,
            NAMEKO_SETTINGS_KEY: self,
            **pinned,
        }

    def with_changes(self, **changes) -> Settings:
        return replace(self, **changes)

    @classmethod
    def from_nameko_config(cls, config: Mapping) -> Settings:
        settings = config.get(NAMEKO_SETTINGS_KEY)
        if isinstance(settings, cls):
            return settings
        return cls.from_env()


def settings_or_exit(exit_status: int = 1) -> Settings:
    """The settings of a process that is starting: a setting Gridwork cannot use stops it
    with one line naming the setting, not a traceback."""
    try:
        return Settings.from_env()
    except ConfigError as exc:
        print(f"gridwork: refusing to start: {exc}", file=sys.stderr, flush=True)
        sys.exit(exit_status)


def warn_if_clock_pinned(settings: Settings) -> None:
    """A process whose clock a test pinned says so loudly at start: production never sets
    GRIDWORK_TEST_CLOCK_START, and dates from a pinned clock would be wrong there."""
    if settings.test_clock_start is not None:
        logging.getLogger("gridwork.config").warning(
            "%s is set: this process's clock is pinned at %s (tests only, never production)",
            TEST_CLOCK_VARIABLE,
            settings.test_clock_start.isoformat(),
        )


_VARIABLE_OF_FIELD = {
    "dev_mode": DEV_MODE_VARIABLE,
    "max_workers": "NAMEKO_MAX_WORKERS",
    "test_clock_start": TEST_CLOCK_VARIABLE,
    "test_clock_since": TEST_CLOCK_SINCE_VARIABLE,
}
ENVIRONMENT_VARIABLES = tuple(
    _VARIABLE_OF_FIELD.get(f.name, f.name.upper()) for f in fields(Settings)
)


def key_id(key: bytes) -> str:
    """A short public name of a key (written beside what it signed or encrypted, so the
    reader picks the right key during a rotation): a hash, so it reveals nothing."""
    return hashlib.sha256(b"gridwork-key-id\x00" + key).hexdigest()[:12]
