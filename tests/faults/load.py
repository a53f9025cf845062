"""A steady, bounded load on the gateway, as careful clients send it: each operation has
its own Idempotency-Key and a client timeout, and is retried with the same key (after
Retry-After, capped) until it is answered 2xx or the scenario's retry window closes.
Every attempt is kept in the history the checker judges.

Operations, in turn: a grid worker reports an incident; the village centre accepts a
reported case; the worker uploads a photo of a case (multipart); the village centre imports
a small residents file; the worker records a visit to a group member (with its own
visit_id, as the API asks of clients). Accepts and uploads act on cases whose report was
acknowledged."""

from __future__ import annotations

import csv
import io
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable

import requests

from tests.faults.history import Attempt, Operation
from tests.population_data import GRID_A1, random_resident_ids

CLIENT_TIMEOUT_S = 20.0  # a client's patience for one attempt; longer is a hang
RETRY_AFTER_CAP_S = 1.0  # the scenarios are short: come back sooner than told
PAUSE_S = 0.3  # between one client's operations: a steady, bounded rate
POINT_A1 = [102.505, 24.305]
KINDS = ("report", "accept", "upload", "report", "import", "visit")
VISITED_AT = "2026-11-18T09:00:00+08:00"  # before the tests' pinned instant: not future
# The smallest valid JPEG the media service accepts (its magic bytes are checked).
PHOTO = bytes.fromhex(
    "ffd8ffe000104a46494600010100000100010000ffdb004300080606070605080707070909080a0c140d0c0b0b0c"
    "1912130f141d1a1f1e1d1a1c1c20242e2720222c231c1c2837292c30313434341f27393d38323c2e333432ffc0000b"
    "080001000101011100ffc4001f0000010501010101010100000000000000000102030405060708090a0bffc400b510"
    "0002010303020403050504040000017d01020300041105122131410613516107227114328191a1082342b1c11552d1"
    "f02433627282090a161718191a25262728292a3435363738393a434445464748494a535455565758595a6364656667"
    "68696a737475767778797a838485868788898a92939495969798999aa2a3a4a5a6a7a8a9aab2b3b4b5b6b7b8b9bac2"
    "c3c4c5c6c7c8c9cad2d3d4d5d6d7d8d9dae1e2e3e4e5e6e7e8e9eaf1f2f3f4f5f6f7f8f9faffda0008010100003f00"
    "fbfcffd9"
)


def imported_name(id_number: str) -> str:
    """The name an imported test resident gets: it finds the resident again."""
    return f"故障测试{id_number}"


class Load:
    def __init__(
        self,
        gateway: str,
        headers: dict[str, dict],
        membership_id: str | None = None,
        clients: int = 3,
        seed: int = 0,
    ):
        self.gateway = gateway
        self.membership_id = membership_id
        self.headers = headers
        self.clients = clients
        self.history: list[Operation] = []
        self.reported: dict[str, str] = {}  # a report's key -> its case id
        self.imported: dict[str, list[str]] = {}  # an import's key -> its ID numbers
        self._to_accept: deque[tuple[str, int]] = deque()
        self._to_photograph: deque[str] = deque()
        self._ids = deque(random_resident_ids(4000, seed=seed + 1000))
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._retry_until = float("inf")
        self._threads: list[threading.Thread] = []
        self._turn = 0

    # ------------------------------------------------------------------ running
    def start(self) -> None:
        self._threads = [threading.Thread(target=self._client) for _ in range(self.clients)]
        for thread in self._threads:
            thread.start()

    def stop(self, retry_window_s: float) -> None:
        """No new operations; those under way retry for at most `retry_window_s` more."""
        self._retry_until = time.monotonic() + retry_window_s
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def _client(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                kind = KINDS[self._turn % len(KINDS)]
                self._turn += 1
            {
                "report": self._report,
                "accept": self._accept,
                "upload": self._upload,
                "import": self._import,
                "visit": self._visit,
            }[kind]()
            time.sleep(PAUSE_S)

    # ------------------------------------------------------------------ operations
    def _report(self) -> None:
        operation = Operation("report", uuid.uuid4().hex)
        answer = self._until_acknowledged(
            operation,
            lambda headers: requests.post(
                f"{self.gateway}/api/v1/incidents",
                json={
                    "category": "04.01",
                    "description": f"fault {operation.key}",
                    "location": POINT_A1,
                },
                headers={**self.headers["worker"], **headers},
                timeout=CLIENT_TIMEOUT_S,
            ),
        )
        if answer is not None:
            case = answer["incident"]
            operation.answer_id = case["id"]
            with self._lock:
                self.reported[operation.key] = case["id"]
                self._to_accept.append((case["id"], case["version"]))
                self._to_photograph.append(case["id"])

    def _accept(self) -> None:
        with self._lock:
            if not self._to_accept:
                return
            case_id, version = self._to_accept.popleft()
        operation = Operation("accept", uuid.uuid4().hex, expected_state="accepted")
        decided_on = {"version": version}

        def send(headers: dict) -> requests.Response:
            response = requests.post(
                f"{self.gateway}/api/v1/incidents/{case_id}/accept",
                json={"expected_version": decided_on["version"]},
                headers={**self.headers["centre"], **headers},
                timeout=CLIENT_TIMEOUT_S,
            )
            if response.status_code == 409 and "Retry-After" not in response.headers:
                # The case moved on since it was read (the deadline timer supervised or
                # escalated it): like the command centre's page, read it again and decide
                # on its new version. A 409 with Retry-After is a request still running.
                self._reload_version(case_id, decided_on)
            return response

        answer = self._until_acknowledged(operation, send, target=case_id)
        if answer is not None:
            operation.answer_id = answer["id"]

    def _reload_version(self, case_id: str, decided_on: dict) -> None:
        try:
            response = requests.get(
                f"{self.gateway}/api/v1/incidents/{case_id}",
                headers=self.headers["centre"],
                timeout=CLIENT_TIMEOUT_S,
            )
        except requests.RequestException:
            return  # an outage: the next attempt reads again
        if response.status_code == 200:
            decided_on["version"] = response.json()["version"]

    def _upload(self) -> None:
        with self._lock:
            if not self._to_photograph:
                return
            case_id = self._to_photograph.popleft()
        operation = Operation("upload", uuid.uuid4().hex)
        answer = self._until_acknowledged(
            operation,
            lambda headers: requests.post(
                f"{self.gateway}/api/v1/media",
                files={"file": ("photo.jpg", PHOTO, "image/jpeg")},
                data={
                    "content_type": "image/jpeg",
                    "purpose": "incident_report",
                    "owner_kind": "incident",
                    "owner_id": case_id,
                },
                headers={**self.headers["worker"], **headers},
                timeout=CLIENT_TIMEOUT_S,
            ),
            target=case_id,
        )
        if answer is not None:
            operation.answer_id = answer["id"]

    def _import(self) -> None:
        with self._lock:
            ids = [self._ids.popleft(), self._ids.popleft()]
        operation = Operation("import", uuid.uuid4().hex, expected_state="finished")
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\r\n")
        writer.writerow(["id_number", "name", "grid_code"])
        writer.writerows([[number, imported_name(number), GRID_A1] for number in ids])
        content = text.getvalue().encode("utf-8")
        with self._lock:
            self.imported[operation.key] = ids
        answer = self._until_acknowledged(
            operation,
            lambda headers: requests.post(
                f"{self.gateway}/api/v1/imports?kind=residents",
                files={"file": (f"{operation.key}.csv", content, "text/csv")},
                headers={**self.headers["centre"], **headers},
                timeout=CLIENT_TIMEOUT_S,
            ),
        )
        if answer is not None:
            operation.answer_id = answer["id"]

    def _visit(self) -> None:
        if self.membership_id is None:
            return
        operation = Operation("visit", uuid.uuid4().hex)
        visit_id = uuid.uuid4().hex  # the client's id for the visit, the same in every retry
        answer = self._until_acknowledged(
            operation,
            lambda headers: requests.post(
                f"{self.gateway}/api/v1/visits",
                json={
                    "membership_id": self.membership_id,
                    "at": VISITED_AT,
                    "location": {"type": "Point", "coordinates": POINT_A1},
                    "notes": f"fault {operation.key}",
                    "visit_id": visit_id,
                },
                headers={**self.headers["worker"], **headers},
                timeout=CLIENT_TIMEOUT_S,
            ),
        )
        if answer is not None:
            operation.answer_id = answer["id"]

    # ------------------------------------------------------------------ retrying
    def _until_acknowledged(
        self,
        operation: Operation,
        send: Callable[[dict], requests.Response],
        target: str | None = None,
    ) -> dict | None:
        """Send until 2xx (its JSON body) or the retry window closes (None)."""
        operation.target = target
        with self._lock:
            self.history.append(operation)
        headers = {"Idempotency-Key": operation.key}
        while True:
            try:
                response = send(headers)
            except requests.Timeout:
                operation.attempts.append(Attempt(None, timed_out=True))
                wait = RETRY_AFTER_CAP_S
            except requests.RequestException:
                operation.attempts.append(Attempt(None))
                wait = RETRY_AFTER_CAP_S
            else:
                status = response.status_code
                operation.attempts.append(
                    Attempt(
                        status,
                        retry_after=response.headers.get("Retry-After"),
                        problem_json=response.headers.get("Content-Type", "").startswith(
                            "application/problem+json"
                        ),
                    )
                )
                if 200 <= status < 300:
                    return response.json()
                if status not in (409, 503, 502, 504):
                    return None  # refused for good: the checker counts it
                wait = min(float(response.headers.get("Retry-After") or 0.2), RETRY_AFTER_CAP_S)
            if self._stop.is_set() and time.monotonic() > self._retry_until:
                return None
            time.sleep(wait)
