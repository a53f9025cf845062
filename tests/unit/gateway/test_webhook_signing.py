"""Webhook signatures (Standard Webhooks, checked with its reference library) and the
jittered retry backoff, without infrastructure."""

import base64
import hashlib
import hmac
import random
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from gridwork_common.clock import CHINA_TIME
from services.gateway import webhooks
from services.gateway.webhooks import (
    SIGNATURE_HEADER,
    new_secret,
    retry_delay,
    signed_headers,
    standard_secret,
)

BODY = '{"id":"e1","type":"gridwork.incident.reported","data":{"说明":"垃圾"}}'.encode()
# Any instant: the receiver's check is made at the same pinned time below.
SENT_AT = datetime(2027, 1, 1, 0, 0, 30, tzinfo=UTC)


def verify_at(instant: datetime, secret: str, body: bytes, headers: dict) -> None:
    """Webhook.verify as a receiver would run it, at `instant` on the receiver's clock."""
    with time_machine.travel(instant, tick=False):
        Webhook(secret).verify(body, headers)


def test_new_secrets_are_whsec_keys_of_32_random_bytes():
    secret = new_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert new_secret() != secret


def test_a_signed_message_verifies_with_the_standard_webhooks_library():
    secret = new_secret()
    headers = signed_headers(secret, "sub1:e1", SENT_AT, BODY)
    assert headers["webhook-id"] == "sub1:e1"
    assert headers["webhook-timestamp"] == str(int(SENT_AT.timestamp()))
    assert headers["webhook-signature"].startswith("v1,")
    verify_at(SENT_AT + timedelta(seconds=3), secret, BODY, headers)


def test_the_signature_covers_id_timestamp_and_body():
    secret = new_secret()
    headers = signed_headers(secret, "sub1:e1", SENT_AT, BODY)
    later = SENT_AT + timedelta(seconds=3)
    for changed in (
        {"webhook-id": "sub1:e2"},
        {"webhook-timestamp": str(int(SENT_AT.timestamp()) + 1)},
    ):
        with pytest.raises(WebhookVerificationError):
            verify_at(later, secret, BODY, {**headers, **changed})
    with pytest.raises(WebhookVerificationError):
        verify_at(later, secret, BODY.replace(b"e1", b"e2"), headers)
    with pytest.raises(WebhookVerificationError):
        verify_at(later, new_secret(), BODY, headers)


def test_a_stale_message_is_refused_however_well_signed():
    secret = new_secret()
    headers = signed_headers(secret, "sub1:e1", SENT_AT, BODY)
    with pytest.raises(WebhookVerificationError, match="too old"):
        verify_at(SENT_AT + timedelta(minutes=6), secret, BODY, headers)


def test_the_timestamp_is_unix_seconds_whatever_the_clocks_zone():
    china = SENT_AT.astimezone(CHINA_TIME)
    assert signed_headers(new_secret(), "m", china, BODY)["webhook-timestamp"] == str(
        int(SENT_AT.timestamp())
    )


def test_a_secret_from_before_standard_webhooks_keeps_working():
    legacy = "ab" * 32  # 64 hex characters, as subscriptions were issued before
    headers = signed_headers(legacy, "sub1:e1", SENT_AT, BODY)
    # The old header is byte for byte what it was: HMAC of the body, keyed by the text.
    assert headers[SIGNATURE_HEADER] == (
        "sha256=" + hmac.new(legacy.encode(), BODY, hashlib.sha256).hexdigest()
    )
    # The new headers verify with the secret's whsec_ form (same key bytes).
    assert standard_secret(legacy) == "whsec_" + base64.b64encode(legacy.encode()).decode()
    verify_at(SENT_AT, standard_secret(legacy), BODY, headers)


def test_new_secrets_also_sign_the_old_header_for_one_release():
    secret = new_secret()
    key = base64.b64decode(secret.removeprefix("whsec_"))
    headers = signed_headers(secret, "m", SENT_AT, BODY)
    assert headers[SIGNATURE_HEADER] == "sha256=" + hmac.new(key, BODY, hashlib.sha256).hexdigest()
    assert standard_secret(secret) == secret


@pytest.mark.parametrize("attempts", range(1, 16))
def test_the_backoff_is_half_the_exponential_ceiling_and_a_jittered_share(attempts, monkeypatch):
    monkeypatch.setattr(webhooks, "BACKOFF_BASE_S", 2.0)
    ceiling = min(2.0 * 2 ** (attempts - 1), webhooks.BACKOFF_CAP_S)
    assert retry_delay(attempts, lambda: 0.0) == pytest.approx(ceiling / 2)
    assert retry_delay(attempts, lambda: 0.5) == pytest.approx(ceiling * 3 / 4)
    assert retry_delay(attempts, lambda: 0.999999) <= ceiling
    draws = random.Random(attempts)
    delays = [retry_delay(attempts, draws.random) for _ in range(200)]
    assert all(ceiling / 2 <= d <= ceiling for d in delays)
    assert len(set(delays)) > 150  # spread out, not one instant for every delivery


def test_the_backoff_stays_bounded_whatever_the_draw():
    assert retry_delay(40, lambda: 1.7) == webhooks.BACKOFF_CAP_S
    assert retry_delay(3, lambda: -0.2) == webhooks.BACKOFF_BASE_S * 2
