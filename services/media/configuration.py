"""The media rules a county configures (`MEDIA_SIZE_LIMITS`, `MEDIA_RETENTION_DAYS`), read
once when the service starts."""

from __future__ import annotations

from dataclasses import dataclass

from nameko.extensions import DependencyProvider

from gridwork_common.config import ConfigError, Settings
from gridwork_common.errors import InvalidInput
from services.media.domain.kinds import parse_pairs, retention_days, size_limits

SIZE_LIMITS_SETTING = "MEDIA_SIZE_LIMITS"
RETENTION_SETTING = "MEDIA_RETENTION_DAYS"


@dataclass(frozen=True)
class MediaRules:
    size_limits: dict[str, int]  # content type -> most bytes
    retention_days: dict[str, int]  # purpose -> days stored media are kept


def configured_size_limits(text: str) -> dict[str, int]:
    """Each content type's limit in bytes: the defaults, overridden by `MEDIA_SIZE_LIMITS`
    ("photo=20971520,video/mp4=209715200", by kind or content type). A value the service
    cannot use is a ConfigError naming the setting."""
    try:
        return size_limits(parse_pairs(text, SIZE_LIMITS_SETTING))
    except InvalidInput as exc:
        raise ConfigError(SIZE_LIMITS_SETTING, exc.problem) from None


def configured_retention_days(text: str) -> dict[str, int]:
    """Days kept per purpose: the defaults, overridden by `MEDIA_RETENTION_DAYS`
    ("visit=1095,record=3650"); a ConfigError naming the setting when wrong."""
    try:
        return retention_days(parse_pairs(text, RETENTION_SETTING))
    except InvalidInput as exc:
        raise ConfigError(RETENTION_SETTING, exc.problem) from None


def media_rules(settings: Settings) -> MediaRules:
    return MediaRules(
        size_limits=configured_size_limits(settings.media_size_limits),
        retention_days=configured_retention_days(settings.media_retention_days),
    )


class MediaConfiguration(DependencyProvider):
    """Gives each worker the configured rules. They are parsed at setup, so a wrong value
    stops the service from starting instead of failing every upload (or, for retention,
    the timer hours later)."""

    def setup(self):
        self.rules = media_rules(Settings.from_nameko_config(self.container.config))

    def get_dependency(self, worker_ctx) -> MediaRules:
        return self.rules
