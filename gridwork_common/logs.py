"""Structured JSON logs: one object per line, with the caller's context bound to it."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from datetime import UTC, datetime

# Each eventlet green thread (and each OS thread) has its own context, so a worker's
# bound fields never leak into another worker's lines.
_bound: contextvars.ContextVar[dict | None] = contextvars.ContextVar("gridwork_log", default=None)

_STANDARD_ATTRS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def bind(**fields) -> None:
    _bound.set({key: value for key, value in fields.items() if value is not None})


def clear() -> None:
    _bound.set(None)


def bound() -> dict:
    return dict(_bound.get() or {})


class JsonFormatter(logging.Formatter):
    def __init__(self, process_name: str):
        super().__init__()
        self.process_name = process_name

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "process": self.process_name,
            "message": record.getMessage(),
        }
        line.update(bound())
        line.update(
            {k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS and k not in line}
        )
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


def configure_logging(process_name: str, level: str = "INFO", stream=None) -> None:
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(JsonFormatter(process_name))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # amqp and kombu chatter at INFO on every reconnect; keep what matters.
    for noisy in ("amqp", "kombu", "pymongo", "urllib3"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
