import io
import json
import logging

import eventlet

from gridwork_common import logs
from gridwork_common.context import CallerContext


def test_caller_context_round_trips_through_context_data():
    caller = CallerContext(
        user_id="u-17",
        roles=("department_handler",),
        scope="530402001",
        request_id="r1",
        department="530402-civil-affairs",
    )
    data = caller.to_context_data()
    assert data == {
        "user_id": "u-17",
        "roles": "department_handler",
        "scope": "530402001",
        "department": "530402-civil-affairs",
        "request_id": "r1",
    }
    assert all(isinstance(value, str) for value in data.values())  # AMQP header friendly
    assert CallerContext.from_context_data(data) == caller


def test_missing_values_are_not_sent_and_a_request_id_is_always_made():
    data = CallerContext().to_context_data()
    assert set(data) == {"request_id"}
    assert len(data["request_id"]) == 32
    assert CallerContext.from_context_data({}) == CallerContext()


def test_roles_also_arrive_as_a_list():
    caller = CallerContext.from_context_data({"roles": ["a", "b"]})
    assert caller.roles == ("a", "b")
    assert caller.has_role("b", "z")
    assert not caller.has_role("z")


def _capture(process_name="population"):
    stream = io.StringIO()
    logs.configure_logging(process_name, "INFO", stream=stream)
    return stream


def test_log_lines_are_json_with_the_bound_caller_context():
    stream = _capture()
    try:
        logs.bind(request_id="req-1", user_id="u-1", scope=None)
        logging.getLogger("t").info("visited", extra={"resident": "R1"})
        logs.clear()
        logging.getLogger("t").info("after")
    finally:
        logging.getLogger().handlers.clear()
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "visited"
    assert first["request_id"] == "req-1" and first["user_id"] == "u-1"
    assert "scope" not in first
    assert first["resident"] == "R1"
    assert first["process"] == "population" and first["level"] == "INFO"
    assert first["time"].endswith("+00:00")
    assert "request_id" not in second


def test_bound_fields_do_not_leak_between_green_threads():
    stream = _capture()

    def worker(request_id):
        logs.bind(request_id=request_id)
        eventlet.sleep(0.01)  # let the other worker bind its own id meanwhile
        logging.getLogger("t").info("work")

    try:
        pool = eventlet.GreenPool()
        for request_id in ("A", "B", "C"):
            pool.spawn(worker, request_id)
        pool.waitall()
    finally:
        logging.getLogger().handlers.clear()
    ids = sorted(json.loads(line)["request_id"] for line in stream.getvalue().splitlines())
    assert ids == ["A", "B", "C"]
