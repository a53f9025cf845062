"""Which failures the gateway answers with 503 + Retry-After (a retry later may work) and
which are bugs (500): raised in the gateway, or sent back by a service as a RemoteError."""

import amqp.exceptions
import kombu.exceptions
import pymongo.errors
import pytest
from nameko.exceptions import RemoteError, RpcTimeout, UnknownService

from gridwork_common.errors import Unavailable
from services.gateway.problems import is_infrastructure_failure

OUTAGES = [
    RpcTimeout(2),
    UnknownService("events"),
    kombu.exceptions.OperationalError("[Errno 111] Connection refused"),
    amqp.exceptions.ConnectionForced("broker shutting down"),
    ConnectionRefusedError(111, "Connection refused"),
    pymongo.errors.ServerSelectionTimeoutError("127.0.0.1:27017: connection refused"),
    pymongo.errors.AutoReconnect("connection closed"),
    pymongo.errors.NotPrimaryError("not primary"),
    Unavailable("population: no answer to locate within 2 s"),
]


@pytest.mark.parametrize("error", OUTAGES, ids=lambda error: type(error).__name__)
def test_an_outage_met_by_the_gateway_or_a_service_is_a_503(error):
    assert is_infrastructure_failure(error)
    remote = RemoteError(type(error).__name__, str(error))
    assert is_infrastructure_failure(remote)


@pytest.mark.parametrize(
    "error",
    [
        KeyError("version"),
        ValueError("bad"),
        pymongo.errors.DuplicateKeyError("E11000"),
        pymongo.errors.OperationFailure("BadValue", code=2),
    ],
    ids=lambda error: type(error).__name__,
)
def test_a_bug_is_not_an_outage(error):
    assert not is_infrastructure_failure(error)
    assert not is_infrastructure_failure(RemoteError(type(error).__name__, str(error)))


def test_a_services_own_errors_are_not_taken_for_broker_errors_of_the_same_name():
    # amqp has an InvalidCommand too; the events domain's InvalidCommand is a 422.
    assert not is_infrastructure_failure(RemoteError("InvalidCommand", "action: unknown"))


def test_a_transaction_aborted_by_a_failover_is_an_outage():
    error = pymongo.errors.OperationFailure(
        "WriteConflict", code=112, details={"errorLabels": ["TransientTransactionError"]}
    )
    assert is_infrastructure_failure(error)
