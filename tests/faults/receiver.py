"""A webhook subscriber on this machine: it answers 204 and remembers every delivery
(its `webhook-id` and the CloudEvent it carried), so the checker can count them."""

from __future__ import annotations

import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class WebhookReceiver:
    def __init__(self):
        self._lock = threading.Lock()
        self.deliveries: list[tuple[str, dict]] = []  # (webhook-id, CloudEvent)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    receiver.deliveries.append((self.headers["webhook-id"], json.loads(body)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hook"

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def by_subject(self, event_type: str) -> Counter:
        """Distinct deliveries (by webhook-id: a resend of one delivery counts once) of
        events of `event_type`, counted by the case they are about."""
        with self._lock:
            seen = {
                wid: event
                for wid, event in self.deliveries
                if event["type"] == f"gridwork.{event_type}"
            }
        return Counter(event["data"].get("incident_id") for event in seen.values())
