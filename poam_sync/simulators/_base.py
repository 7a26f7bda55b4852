"""What both simulators share: faults on demand, the ``/_sim/`` control API, call counters,
and a uvicorn server that runs in a background thread (for tests, the demo and benchmarks).

Control API (no authentication; the simulators bind to 127.0.0.1 only):

==========================  ============================================================
``POST /_sim/latency``      ``{"ms": N}``: every later call waits N ms first
``POST /_sim/faults``       ``{"status": 429|5xx, "count": N, "retry_after": S}`` or
                            ``{"status": ..., "rate": 0.2}`` (a share of calls), or
                            ``{"kind": "drop", "count": N}`` (connection cut mid-response), or
                            ``{"mode": "late", "delay_ms": N, "count": N}`` (the call is
                            carried out, its answer sent only after N ms); any fault may
                            name ``"methods": ["POST", ...]`` to hit only those calls
``GET /_sim/calls``         ``{"total": N, "by_endpoint": {"GET /rest/api/2/issue/{id}": N},
                            "abandoned": N}`` (requests whose body never arrived whole)
``POST /_sim/reset``        clear faults, latency and counters (the data stays)
==========================  ============================================================

``late`` is the lost answer: the server did the work, but a client whose read timeout is below
the delay gives up first and cannot tell whether it happened (what a create must survive
without making a second record). A request whose client went away before its body arrived
whole is not handed to the simulator at all: a server acts on a request only once it has read
all of it (HTTP/1.1 frames a request body by its ``Content-Length``, RFC 9112 section 6.2, and a
shorter body is an incomplete message; the ASGI spec delivers ``http.disconnect`` to the
application in that case).
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import uvicorn

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: builds (body, extra headers) for an injected error status; each simulator speaks its own
FaultResponder = Callable[[int, int | None], tuple[bytes, dict[str, str]]]

_ID_SEGMENT = re.compile(r"(?<!/api)/(?:[A-Z][A-Z0-9]+-\d+|\d+|[0-9a-f]{32})(?=/|$)")


def endpoint_name(method: str, path: str) -> str:
    """``GET /rest/api/2/issue/POAM-12/comment`` -> ``GET /rest/api/2/issue/{id}/comment``."""
    return f"{method} {_ID_SEGMENT.sub('/{id}', path)}"


FAULT_KINDS = ("status", "drop", "late")


@dataclass
class Fault:
    status: int | None = None  # None with kind "drop" or "late"
    kind: str = "status"  # one of FAULT_KINDS
    remaining: int | None = None  # for the next N calls ...
    rate: float | None = None  # ... or for this share of calls
    retry_after: int | None = None
    delay_ms: int = 0  # kind "late": how long the answer is held back
    methods: frozenset[str] | None = None  # only calls of these HTTP methods (None: all)


class ClientGone(Exception):
    """The client went away before its request body arrived whole: nothing may be done."""


@dataclass
class SimControl:
    """Faults, latency and counters of one simulator; also usable directly from Python."""

    latency_ms: int = 0
    faults: list[Fault] = field(default_factory=list)
    calls: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: called with (endpoint, call number) after each call was handled (crash tests use it)
    after_call: Callable[[str, int], None] | None = None
    #: requests left unhandled because their client went away before the body arrived whole
    abandoned: int = 0

    def add_fault(
        self,
        status: int | None = None,
        *,
        count: int | None = None,
        rate: float | None = None,
        retry_after: int | None = None,
        kind: str = "status",
        delay_ms: int = 0,
        methods: Iterable[str] | None = None,
    ) -> None:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; one of {', '.join(FAULT_KINDS)}")
        if count is None and rate is None:
            count = 1
        only = None if methods is None else frozenset(m.upper() for m in methods)
        fault = Fault(status, kind, count, rate, retry_after, max(0, int(delay_ms)), only)
        with self.lock:
            self.faults.append(fault)

    def set_latency(self, ms: int) -> None:
        self.latency_ms = max(0, int(ms))

    def reset(self) -> None:
        with self.lock:
            self.faults.clear()
            self.calls.clear()
            self.latency_ms = 0
            self.abandoned = 0

    def total_calls(self) -> int:
        with self.lock:
            return sum(self.calls.values())

    def count(self, endpoint: str) -> int:
        with self.lock:
            self.calls[endpoint] += 1
            return sum(self.calls.values())

    def take_fault(self, method: str | None = None) -> Fault | None:
        with self.lock:
            for fault in list(self.faults):
                if fault.methods is not None and method not in fault.methods:
                    continue
                if fault.remaining is not None:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self.faults.remove(fault)
                    return fault
                if fault.rate is not None and random.random() < fault.rate:
                    return fault
        return None


async def _read_body(receive: Receive) -> bytes:
    """The whole request body; :class:`ClientGone` when the client left before sending it."""
    chunks = []
    while True:
        message = await receive()
        if message.get("type") == "http.disconnect":
            raise ClientGone("the client went away before its request body arrived whole")
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _send_json(send: Send, status: int, payload: Any, headers: dict[str, str]) -> None:
    body = json.dumps(payload).encode()
    await _send_raw(send, status, body, {"content-type": "application/json", **headers})


async def _send_raw(send: Send, status: int, body: bytes, headers: dict[str, str]) -> None:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class SimMiddleware:
    """Wraps a simulator app: control routes, counters, latency and injected faults."""

    def __init__(self, app: ASGIApp, control: SimControl, responder: FaultResponder) -> None:
        self.app = app
        self.control = control
        self.responder = responder

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith("/_sim/"):
            await self._control(scope, receive, send)
            return
        endpoint = endpoint_name(scope["method"], path)
        number = self.control.count(endpoint)
        if self.control.latency_ms:
            await asyncio.sleep(self.control.latency_ms / 1000)
        fault = self.control.take_fault(scope["method"])
        if fault is None or fault.kind == "late":
            held: list[Message] = []

            async def hold(message: Message) -> None:
                held.append(message)

            try:
                await self.app(scope, receive, send if fault is None else hold)
            except ClientGone:  # nothing was done, and nobody is listening for an answer
                with self.control.lock:
                    self.control.abandoned += 1
                return
            hook = self.control.after_call
            if hook is not None:
                hook(endpoint, number)
            if fault is not None:  # done on the server; the answer comes late (or to nobody)
                await asyncio.sleep(fault.delay_ms / 1000)
                for message in held:
                    await send(message)
        elif fault.kind == "drop":
            # Promise a body, send half of it, and stop: the client sees the connection cut.
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"64")],
                }
            )
            await send({"type": "http.response.body", "body": b'{"partial":', "more_body": False})
        else:
            status = fault.status or 500
            body, headers = self.responder(status, fault.retry_after)
            await _send_raw(send, status, body, {"content-type": "application/json", **headers})

    async def _control(self, scope: Scope, receive: Receive, send: Send) -> None:
        method, path = scope["method"], scope["path"]
        try:
            body = await _read_body(receive)
        except ClientGone:
            return
        try:
            data = json.loads(body) if body else {}
        except json.JSONDecodeError:
            await _send_json(send, 400, {"error": "body is not JSON"}, {})
            return
        c = self.control
        if (method, path) == ("POST", "/_sim/latency"):
            c.set_latency(int(data.get("ms", 0)))
            await _send_json(send, 200, {"ms": c.latency_ms}, {})
        elif (method, path) == ("POST", "/_sim/faults"):
            try:
                c.add_fault(
                    data.get("status"),
                    count=data.get("count"),
                    rate=data.get("rate"),
                    retry_after=data.get("retry_after"),
                    kind=data.get("mode", data.get("kind", "status")),
                    delay_ms=int(data.get("delay_ms", 0)),
                    methods=data.get("methods"),
                )
            except (TypeError, ValueError) as exc:
                await _send_json(send, 400, {"error": str(exc)}, {})
                return
            await _send_json(send, 200, {"faults": len(c.faults)}, {})
        elif (method, path) == ("GET", "/_sim/calls"):
            with c.lock:
                by = dict(c.calls)
            payload = {"total": sum(by.values()), "by_endpoint": by, "abandoned": c.abandoned}
            await _send_json(send, 200, payload, {})
        elif (method, path) == ("POST", "/_sim/reset"):
            c.reset()
            await _send_json(send, 200, {"reset": True}, {})
        else:
            await _send_json(send, 404, {"error": f"no control endpoint {method} {path}"}, {})


class ServerThread:
    """Run an ASGI app under uvicorn in a daemon thread; ``start()`` returns the base URL."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_certfile: str | None = None,
        ssl_keyfile: str | None = None,
    ) -> None:
        self.scheme = "https" if ssl_certfile else "http"
        self.config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            ssl_certfile=ssl_certfile,
            ssl_keyfile=ssl_keyfile,
            timeout_keep_alive=30,
        )
        self.server = uvicorn.Server(self.config)
        self.thread = threading.Thread(target=self.server.run, daemon=True, name="simulator")
        self.url = ""

    def start(self, timeout: float = 15.0) -> str:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"simulator did not start on {self.config.host}")
            time.sleep(0.01)
        sock = self.server.servers[0].sockets[0]
        host, port = sock.getsockname()[:2]
        self.url = f"{self.scheme}://{host}:{port}"
        return self.url

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def __enter__(self) -> ServerThread:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
