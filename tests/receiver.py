"""A department's webhook receiver for tests: an HTTP server on loopback that verifies
each request with the `standardwebhooks` library, as docs/integration.md tells
departments to."""

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


class Receiver:
    """A department's HTTP endpoint on loopback; records requests and answers `status`.
    Given a `secret`, it verifies each request as the docs tell departments to (the
    `standardwebhooks` library, on the receiver's own clock), records the verdict
    ("ok" or the library's reason) and answers 401 to a message that fails."""

    def __init__(self):
        self.requests = []
        self.verdicts = []
        self.status = 200
        self.secret = None
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                headers = dict(self.headers)
                receiver.requests.append((headers, body))
                status = receiver.status
                if receiver.secret is not None:
                    try:
                        Webhook(receiver.secret).verify(body, headers)
                        receiver.verdicts.append("ok")
                    except WebhookVerificationError as exc:
                        receiver.verdicts.append(str(exc))
                        status = 401
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
