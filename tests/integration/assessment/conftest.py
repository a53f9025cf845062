"""The assessment's database, with its indexes, for the tests that fold facts into it."""

import pytest

from gridwork_common.mongo import new_client
from services.assessment import store


@pytest.fixture
def db(settings):
    client = new_client(settings, app_name="gridwork-tests")
    database = client[settings.database_name("assessment")]
    for collection, models in store.INDEXES.items():
        database[collection].create_indexes(models)
    yield database
    client.close()
