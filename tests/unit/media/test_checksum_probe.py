"""Whether the S3 server checks `x-amz-checksum-sha256` decides whether a confirm may call
unread bytes verified (storage.py): only a refusal of the probe's wrong checksum says yes,
never another error (a busy server's 503)."""

import pytest
from minio.error import S3Error
from urllib3 import HTTPResponse

from services.media.storage import MediaStore


class ProbeAnswers:
    """The client's put_object raising what a server answered, in turn (None: stored)."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.removed = []

    def put_object(self, bucket, key, data, length, metadata=None):
        answer = self.answers.pop(0)
        if answer is not None:
            raise S3Error(HTTPResponse(status=answer[0]), answer[1], "", key, "", "")

    def remove_object(self, bucket, key):
        self.removed.append(key)


@pytest.mark.parametrize("code", ["XAmzContentChecksumMismatch", "BadDigest"])
def test_a_refused_checksum_means_the_server_checks(code):
    assert MediaStore(ProbeAnswers((400, code)), "media").checks_sha256() is True


def test_another_error_is_no_answer_and_is_asked_again():
    client = ProbeAnswers((503, "SlowDown"), (500, "InternalError"), None)
    storage = MediaStore(client, "media")
    assert storage.checks_sha256() is False
    assert storage.checks_sha256() is False
    assert storage.checks_sha256() is False  # stored: the server does not check
    assert client.answers == [] and client.removed == ["uploads/.checksum-probe"]
    assert storage.checks_sha256() is False  # known now: not asked again
