"""Fixtures of the media tests."""

import pytest

from gridwork_common.mongo import new_client


@pytest.fixture
def media_db(settings):
    client = new_client(settings, app_name="media-tests")  # tz-aware, as the service's
    yield client[settings.database_name("media")]
    client.close()
