"""TOKEN_SECRET rotation without refused requests: tokens name their key (`kid`); a key
listed in TOKEN_SECRETS_PREVIOUS still verifies, and stops verifying once removed."""

import dataclasses
import os

import jwt
import pymongo
import pytest

from gridwork_common.config import key_id
from services.gateway.auth import Identity
from services.gateway.problems import ApiProblem

KEY_A, KEY_B = os.urandom(32), os.urandom(32)


@pytest.fixture
def gateway_db(settings):
    client = pymongo.MongoClient(settings.mongo_uri, tz_aware=True)
    yield client[settings.database_name("gateway")]
    client.close()


def identity(db, settings, current: bytes, previous: tuple[bytes, ...] = ()) -> Identity:
    keyed = dataclasses.replace(settings, token_secret=current, token_secrets_previous=previous)
    return Identity(db, keyed)


def test_a_token_of_the_previous_key_verifies_until_the_key_is_removed(gateway_db, settings):
    before = identity(gateway_db, settings, KEY_A)
    before.create_user("wang", "Correct-horse-9", ["grid_worker"], "530402001001001", None)
    tokens = before.login("wang", "Correct-horse-9", "10.0.0.1")
    old_token = tokens["access_token"]
    assert jwt.get_unverified_header(old_token)["kid"] == key_id(KEY_A)

    during = identity(gateway_db, settings, KEY_B, previous=(KEY_A,))
    caller, _ = during.authenticate(f"Bearer {old_token}", "r1")
    assert caller.user_id == "wang"
    renewed = during.refresh(tokens["refresh_token"])  # refresh tokens are not signed
    assert jwt.get_unverified_header(renewed["access_token"])["kid"] == key_id(KEY_B)
    during.authenticate(f"Bearer {renewed['access_token']}", "r2")

    after = identity(gateway_db, settings, KEY_B)
    with pytest.raises(ApiProblem) as refused:
        after.authenticate(f"Bearer {old_token}", "r3")
    assert refused.value.status == 401
    after.authenticate(f"Bearer {renewed['access_token']}", "r4")


def test_a_forged_kid_does_not_pick_another_key(gateway_db, settings):
    during = identity(gateway_db, settings, KEY_B, previous=(KEY_A,))
    during.create_user("li", "Correct-horse-9", ["grid_worker"], "530402001001001", None)
    token = during.login("li", "Correct-horse-9", "10.0.0.1")["access_token"]
    claims = jwt.decode(token, options={"verify_signature": False})
    forged = jwt.encode(claims, os.urandom(32), algorithm="HS256", headers={"kid": key_id(KEY_A)})
    with pytest.raises(ApiProblem) as refused:
        during.authenticate(f"Bearer {forged}", "r1")
    assert refused.value.status == 401
