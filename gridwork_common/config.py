"""Configuration from environment variables, in one place.

Every variable has a default that works on a developer's machine with `make up`;
containers and CI override them. See README.md, "Configuration".
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace

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


# Development-only keys so `make up` works out of the box; a county sets its own.
_DEV_ENCRYPTION_KEY = base64.b64encode(b"gridwork-dev-only-encryption-key").decode()
_DEV_INDEX_KEY = base64.b64encode(b"gridwork-dev-only-blind-indexkey").decode()
_DEV_TOKEN_SECRET = base64.b64encode(b"gridwork-dev-only-gateway-tokens").decode()


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
    county_code: str
    metrics_port: int
    rpc_timeout: float
    log_level: str
    pii_encryption_key: bytes = field(repr=False)
    pii_index_key: bytes = field(repr=False)
    token_secret: bytes = field(repr=False)
    access_token_ttl_s: int
    refresh_token_ttl_s: int
    media_size_limits: str  # "photo=20971520,video/mp4=209715200" (parsed by media)
    media_retention_days: str  # "visit=1095,record=3650" (parsed by media)

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
        log_level = _text(env, "LOG_LEVEL", "INFO").upper()
        if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ConfigError(
                "LOG_LEVEL", f"must be DEBUG, INFO, WARNING or ERROR, got {log_level!r}"
            )
        return cls(
            amqp_uri=_text(env, "AMQP_URI", "amqp://guest:guest@127.0.0.1:5672/"),
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
            county_code=county_code,
            metrics_port=_integer(env, "METRICS_PORT", 9100),
            rpc_timeout=_number(env, "RPC_TIMEOUT", 10.0),
            log_level=log_level,
            pii_encryption_key=_key(env, "PII_ENCRYPTION_KEY", _DEV_ENCRYPTION_KEY),
            pii_index_key=_key(env, "PII_INDEX_KEY", _DEV_INDEX_KEY),
            token_secret=_key(env, "TOKEN_SECRET", _DEV_TOKEN_SECRET),
            access_token_ttl_s=_integer(env, "ACCESS_TOKEN_TTL_S", 900, minimum=30),
            refresh_token_ttl_s=_integer(env, "REFRESH_TOKEN_TTL_S", 30 * 24 * 3600, minimum=60),
            media_size_limits=env.get("MEDIA_SIZE_LIMITS", "").strip(),
            media_retention_days=env.get("MEDIA_RETENTION_DAYS", "").strip(),
        )

    def database_name(self, service_name: str) -> str:
        """Each service owns one database: `<prefix>_<service>`."""
        return f"{self.mongo_db_prefix}_{service_name}"

    def event_source(self, service_name: str) -> str:
        """The CloudEvents `source` of everything a service publishes."""
        return f"/counties/{self.county_code}/{service_name}"

    def nameko_config(self) -> dict:
        """The config dict nameko containers and standalone proxies take."""
        return {
            "AMQP_URI": self.amqp_uri,
            "serializer": "json",
            NAMEKO_SETTINGS_KEY: self,
        }

    def with_changes(self, **changes) -> Settings:
        return replace(self, **changes)

    @classmethod
    def from_nameko_config(cls, config: Mapping) -> Settings:
        settings = config.get(NAMEKO_SETTINGS_KEY)
        if isinstance(settings, cls):
            return settings
        return cls.from_env()


ENVIRONMENT_VARIABLES = tuple(f.name.upper() for f in fields(Settings))
