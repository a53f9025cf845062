"""MEDIA_SIZE_LIMITS and MEDIA_RETENTION_DAYS read as the media service reads them at start."""

import pytest

from gridwork_common.config import ConfigError
from services.media.configuration import configured_retention_days, configured_size_limits
from services.media.domain.kinds import CONTENT_TYPES_BY_KIND, retention_days, size_limits


def test_unset_means_the_defaults():
    assert configured_size_limits("") == size_limits()
    assert configured_retention_days("") == retention_days()


def test_limits_by_kind_and_by_content_type():
    limits = configured_size_limits(" photo=20000 , video/mp4=500000 ")
    assert {limits[ct] for ct in CONTENT_TYPES_BY_KIND["photo"]} == {20000}
    assert limits["video/mp4"] == 500000


def test_retention_by_purpose():
    assert configured_retention_days("visit=365")["visit"] == 365


@pytest.mark.parametrize(
    "value",
    [
        "photo",
        "photo=big",
        "photo=20000;video=1",
        "pdf=1000",
        "image/tiff=1000",
        "photo=0",
        "photo=-5",
    ],
)
def test_a_size_limit_the_service_cannot_use_is_a_config_error_naming_it(value):
    with pytest.raises(ConfigError) as raised:
        configured_size_limits(value)
    assert raised.value.variable == "MEDIA_SIZE_LIMITS"
    assert str(raised.value).startswith("MEDIA_SIZE_LIMITS: ")


@pytest.mark.parametrize("value", ["visit", "visit=long", "holiday=30", "visit=0"])
def test_a_retention_the_service_cannot_use_is_a_config_error_naming_it(value):
    with pytest.raises(ConfigError) as raised:
        configured_retention_days(value)
    assert raised.value.variable == "MEDIA_RETENTION_DAYS"
