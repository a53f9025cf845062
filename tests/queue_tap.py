"""Reading what a test's own queue received, as a department's system would."""

from __future__ import annotations

import json


def drained(simple, timeout: float) -> list[tuple[str, dict]]:
    """Every message on a kombu `SimpleQueue` until none comes within `timeout`
    seconds, acked: (routing key, body as JSON) pairs, in the order received."""
    seen = []
    while True:
        try:
            message = simple.get(timeout=timeout)
        except simple.Empty:
            return seen
        message.ack()
        seen.append((message.delivery_info["routing_key"], json.loads(message.body)))
