"""Real HTTP servers on 127.0.0.1 that respond like Slack, HubSpot and Salesforce, with scripted failures."""

from __future__ import annotations

import contextlib
import itertools
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

SLACK_TOKEN = "xoxb-stand-in-token"
SLACK_CHANNEL = "C0STANDIN"
WEBHOOK_PATH = "/services/T000/B000/stand-in-webhook-secret"
CRM_TOKEN = "crm-stand-in-token"


@dataclass
class Answer:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class StandIn:
    """A threaded HTTP server whose subclasses build each response in `answer`.

    Failures are scripted on the request count across every path: with `rate_limit_every = 3` each
    third request gets a 429 with Retry-After, with `fail_every = 7` each seventh (not rate limited)
    a 500, and the receiver acts on neither.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[tuple[float, str, str]] = []
        self.rate_limit_every: int | None = None
        self.fail_every: int | None = None
        self.retry_after = "0.01"
        # Request numbers (from 1) that get a 429, besides every rate_limit_every-th.
        self.rate_limit_requests: set[int] = set()
        self._counter = itertools.count(1)
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # Headers and body go out in two writes; without this, Nagle's algorithm and the
                # client's delayed ACK hold every answer back by about 40 ms.
                self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def do_GET(self) -> None:
                stand_in._serve(self, "GET")

            def do_POST(self) -> None:
                stand_in._serve(self, "POST")

            def do_PATCH(self) -> None:
                stand_in._serve(self, "PATCH")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def answer(self, method: str, path: str, query: dict[str, str], headers: Any, body: Any) -> Answer:
        raise NotImplementedError

    def _serve(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        split = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        query = {key: values[-1] for key, values in parse_qs(split.query).items()}
        with self.lock:
            number = next(self._counter)
            self.requests.append((time.monotonic(), method, split.path))
        limited = bool(self.rate_limit_every) and number % (self.rate_limit_every or 1) == 0
        if limited or number in self.rate_limit_requests:
            answer = Answer(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": self.retry_after})
        elif self.fail_every and number % self.fail_every == 0:
            answer = Answer(500, "internal server error")
        else:
            answer = self.answer(method, split.path, query, handler.headers, body)
        # The client may be gone (timed out, or killed) by the time a held answer is written.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            _write(handler, answer)


def _write(handler: BaseHTTPRequestHandler, answer: Answer) -> None:
    if isinstance(answer.body, str):
        data, kind = answer.body.encode(), "text/plain"
    else:
        data, kind = json.dumps(answer.body).encode(), "application/json"
    handler.send_response(answer.status)
    handler.send_header("Content-Type", kind)
    handler.send_header("Content-Length", str(len(data)))
    for name, value in answer.headers.items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(data)


class SlackStandIn(StandIn):
    """chat.postMessage, conversations.history (with message metadata) and an incoming webhook.

    Blocks outside Block Kit's limits, or containing `reject_text`, are answered with invalid_blocks.
    The posts numbered in `delay_after_accept` (from 1) are stored, and their responses wait
    `delay_seconds`, past the client's time-out. Post number `hold_after_accept` is stored and
    signalled through `accepted`, and its response waits until `release` is set.
    """

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[dict[str, Any]] = []
        self.reject_text: str | None = None
        self.delay_after_accept: set[int] = set()
        self.delay_seconds = 1.0
        self.hold_after_accept: int | None = None
        self.accepted = threading.Event()
        self.release = threading.Event()
        self._clock = time.time()

    def keys(self) -> list[str]:
        return [message["metadata"]["event_payload"]["dedupe_key"] for message in self.messages]

    def answer(self, method: str, path: str, query: dict[str, str], headers: Any, body: Any) -> Answer:
        if path == WEBHOOK_PATH and method == "POST":
            return self._webhook(body)
        if headers.get("Authorization") != f"Bearer {SLACK_TOKEN}":
            return Answer(200, {"ok": False, "error": "invalid_auth"})
        if path == "/api/chat.postMessage" and method == "POST":
            return self._post(body)
        if path == "/api/conversations.history" and method == "GET":
            return self._history(query)
        return Answer(404, {"ok": False, "error": "unknown_method"})

    def _post(self, body: dict[str, Any]) -> Answer:
        if body.get("channel") != SLACK_CHANNEL:
            return Answer(200, {"ok": False, "error": "channel_not_found"})
        if "blocks" in body and self._invalid(body["blocks"]):
            return Answer(200, {"ok": False, "error": "invalid_blocks"})
        number, ts = self._store(body)
        self._pause(number)
        return Answer(200, {"ok": True, "channel": SLACK_CHANNEL, "ts": ts})

    def _webhook(self, body: dict[str, Any]) -> Answer:
        if "blocks" in body and self._invalid(body["blocks"]):
            return Answer(400, "invalid_blocks")
        number, _ts = self._store(body)
        self._pause(number)
        return Answer(200, "ok")

    def _store(self, body: dict[str, Any]) -> tuple[int, str]:
        with self.lock:
            self._clock = max(self._clock + 0.000001, time.time())
            ts = f"{self._clock:.6f}"
            self.messages.append({**body, "ts": ts})
            return len(self.messages), ts

    def _pause(self, number: int) -> None:
        if number == self.hold_after_accept:
            self.accepted.set()
            self.release.wait(30)
        elif number in self.delay_after_accept:
            time.sleep(self.delay_seconds)

    def _history(self, query: dict[str, str]) -> Answer:
        if query.get("channel") != SLACK_CHANNEL:
            return Answer(200, {"ok": False, "error": "channel_not_found"})
        oldest = float(query.get("oldest", "0"))
        limit = int(query.get("limit", "100"))
        start = int(query.get("cursor") or 0)
        with self.lock:
            newest_first = [message for message in reversed(self.messages) if float(message["ts"]) > oldest]
        page = newest_first[start : start + limit]
        include = query.get("include_all_metadata") in ("true", "1")
        messages = [
            {"type": "message", "ts": message["ts"], "text": message.get("text", "")}
            | ({"metadata": message["metadata"]} if include and "metadata" in message else {})
            for message in page
        ]
        more = start + limit < len(newest_first)
        return Answer(
            200,
            {
                "ok": True,
                "messages": messages,
                "has_more": more,
                "response_metadata": {"next_cursor": str(start + limit) if more else ""},
            },
        )

    def _invalid(self, blocks: list[dict[str, Any]]) -> bool:
        if len(blocks) > 50:
            return True
        for block in blocks:
            text = (block.get("text") or {}).get("text", "")
            fields = block.get("fields") or []
            if len(text) > 3000 or len(fields) > 10 or any(len(item["text"]) > 2000 for item in fields):
                return True
            if self.reject_text and (
                self.reject_text in text or any(self.reject_text in item["text"] for item in fields)
            ):
                return True
        return False


class HubSpotStandIn(StandIn):
    """POST /crm/v3/objects/companies/batch/update: 200 when every company updates, 207 with errors otherwise."""

    def __init__(self, known: set[str]) -> None:
        super().__init__()
        self.known = known
        self.companies: dict[str, dict[str, str]] = {}
        self.batch_sizes: list[int] = []
        self.updates: list[str] = []
        self.id_properties: list[str | None] = []

    def answer(self, method: str, path: str, query: dict[str, str], headers: Any, body: Any) -> Answer:
        if headers.get("Authorization") != f"Bearer {CRM_TOKEN}":
            return Answer(
                401, {"status": "error", "category": "INVALID_AUTHENTICATION", "message": "invalid token"}
            )
        if path != "/crm/v3/objects/companies/batch/update" or method != "POST":
            return Answer(404, {"status": "error", "message": "not found"})
        inputs = body["inputs"]
        if len(inputs) > 100:
            return Answer(
                400, {"status": "error", "category": "VALIDATION_ERROR", "message": "too many inputs"}
            )
        with self.lock:
            self.batch_sizes.append(len(inputs))
            results, missing = [], []
            for entry in inputs:
                self.id_properties.append(entry.get("idProperty"))
                if entry["id"] in self.known:
                    self.companies.setdefault(entry["id"], {}).update(entry["properties"])
                    self.updates.append(entry["id"])
                    results.append({"id": entry["id"], "properties": entry["properties"]})
                else:
                    missing.append(entry["id"])
        answer = {"status": "COMPLETE", "results": results}
        if not missing:
            return Answer(200, answer)
        error = {
            "status": "error",
            "category": "OBJECT_NOT_FOUND",
            "message": "Could not get some COMPANY objects, they may be deleted or not exist.",
            "context": {"ids": missing},
        }
        return Answer(207, answer | {"numErrors": 1, "errors": [error]})


class SalesforceStandIn(StandIn):
    """PATCH /services/data/v62.0/composite/sobjects with allOrNone false: one result per record, in order."""

    def __init__(self, known: set[str], invalid_value: str | None = None) -> None:
        super().__init__()
        self.known = known
        self.invalid_value = invalid_value
        self.accounts: dict[str, dict[str, Any]] = {}
        self.batch_sizes: list[int] = []

    def answer(self, method: str, path: str, query: dict[str, str], headers: Any, body: Any) -> Answer:
        if headers.get("Authorization") != f"Bearer {CRM_TOKEN}":
            return Answer(401, [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}])
        if path != "/services/data/v62.0/composite/sobjects" or method != "PATCH":
            return Answer(
                404, [{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}]
            )
        records = body["records"]
        if len(records) > 200 or body.get("allOrNone") is not False:
            return Answer(
                400, [{"message": "more than 200 records or allOrNone", "errorCode": "INVALID_FIELD"}]
            )
        results = []
        with self.lock:
            self.batch_sizes.append(len(records))
            for record in records:
                results.append(self._update(record))
        return Answer(200, results)

    def _update(self, record: dict[str, Any]) -> dict[str, Any]:
        record_id = record["id"]
        if record_id not in self.known:
            problem = {"statusCode": "ENTITY_IS_DELETED", "message": "entity is deleted", "fields": []}
            return {"id": record_id, "success": False, "errors": [problem]}
        fields = {name: value for name, value in record.items() if name not in ("id", "attributes")}
        if self.invalid_value is not None and self.invalid_value in fields.values():
            problem = {
                "statusCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                "message": "value not allowed",
                "fields": [],
            }
            return {"id": record_id, "success": False, "errors": [problem]}
        self.accounts.setdefault(record_id, {}).update(fields)
        return {"id": record_id, "success": True, "errors": []}


def wait_for(condition: Callable[[], bool], seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False
