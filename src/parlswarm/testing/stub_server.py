"""A small OpenAI-compatible chat-completions server on 127.0.0.1, for tests and benchmarks.

Replies come from a *responder*: a function of the request body that returns a scripted
reply (see :mod:`parlswarm.models.scripted`). The server adds a fixed latency per call to
emulate a remote model. It speaks HTTP/1.1 with keep-alive and sets ``TCP_NODELAY`` (without
it every small response waits ~40 ms for delayed ACKs).

Run it in a thread (:class:`StubServer`) to give it any Python callable, or in its own
process (``python -m parlswarm.testing.stub_server --responder module:function``) so that
its CPU does not compete with the client being measured.

:class:`Faults` injects the failures of real endpoints at set rates, drawn from a seeded
RNG: HTTP 500, 429 with ``Retry-After``, hangs past the client's timeout, truncated or
malformed JSON bodies, malformed tool-call arguments and slowly trickled bodies
(``--fault-*`` flags in process mode). ``GET /stats`` reports the requests and faults served.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import random
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from parlswarm.models.scripted import Reply, reply_to_message

Responder = Callable[[dict[str, Any]], Reply]


@dataclass
class ServerStats:
    requests: int = 0
    bodies: list[dict[str, Any]] = field(default_factory=list)  # kept only when record=True
    faults: dict[str, int] = field(default_factory=dict)  # injected faults by kind


@dataclass
class Faults:
    """Rates (0 to 1) of injected faults per chat-completions request; one RNG, seeded.

    The request-level faults (500, 429, timeout, truncated, malformed) exclude each other;
    ``bad_tool_args`` applies to each tool call of a good reply, ``slow`` to each good reply.
    """

    error_500: float = 0.0
    rate_limit_429: float = 0.0
    retry_after: float = 1.0  # seconds, sent in the 429's Retry-After header
    timeout: float = 0.0  # the request hangs for ``hang`` seconds and the connection closes unanswered
    hang: float = 30.0
    truncated: float = 0.0  # the body stops half-way and the connection closes
    malformed_json: float = 0.0  # HTTP 200 whose body is not JSON
    bad_tool_args: float = 0.0  # a tool call's arguments cut in half (invalid JSON)
    slow: float = 0.0  # the body trickles out over ``slow_seconds``
    slow_seconds: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("error_500", "rate_limit_429", "timeout", "truncated", "malformed_json", "bad_tool_args", "slow"):
            rate = getattr(self, name)
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"fault rate {name}={rate} is not between 0 and 1")
        request_level = self.error_500 + self.rate_limit_429 + self.timeout + self.truncated + self.malformed_json
        if request_level > 1.0:
            raise ValueError(f"request-level fault rates add up to {request_level:g} > 1")

    def draw(self, rng: random.Random) -> str | None:
        """The request-level fault for one request, or None."""
        u = rng.random()
        for kind in ("error_500", "rate_limit_429", "timeout", "truncated", "malformed_json"):
            rate = getattr(self, kind)
            if u < rate:
                return kind
            u -= rate
        return None


def completion_json(reply: Reply, model: str, turn: int) -> dict[str, Any]:
    message = reply_to_message(reply, turn).model_dump(exclude_none=True)
    prompt_tokens = 10
    completion_tokens = max(1, len(json.dumps(message)) // 4)
    return {
        "id": f"chatcmpl-{time.monotonic_ns()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": "tool_calls" if message.get("tool_calls") else "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def _response(status: int, body: bytes, extra_headers: dict[str, str] | None = None) -> bytes:
    reason = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 500: "Internal Server Error"}
    head = [f"HTTP/1.1 {status} {reason.get(status, 'Error')}", "content-type: application/json",
            f"content-length: {len(body)}"]
    for k, v in (extra_headers or {}).items():
        head.append(f"{k}: {v}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def _error(status: int, message: str) -> bytes:
    return _response(status, json.dumps({"error": {"message": message, "type": "stub_error"}}).encode())


class StubApp:
    """The request handling, independent of how the server is hosted."""

    def __init__(
        self,
        responder: Responder,
        latency: float = 0.0,
        api_key: str | None = None,
        record: bool = False,
        faults: Faults | None = None,
    ) -> None:
        self.responder = responder
        self.latency = latency
        self.api_key = api_key
        self.record = record
        self.stats = ServerStats()
        self.faults = faults
        self.rng = random.Random(faults.seed if faults else 0)
        self.writers: set[asyncio.StreamWriter] = set()

    async def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> bytes:
        self.stats.requests += 1
        if self.api_key is not None and headers.get("authorization") != f"Bearer {self.api_key}":
            return _error(401, "invalid api key")
        if method == "GET" and path.rstrip("/").endswith("/stats"):
            stats = {"requests": self.stats.requests, "faults": self.stats.faults}
            return _response(200, json.dumps(stats).encode())
        if method == "GET" and path.rstrip("/").endswith("/models"):
            return _response(200, json.dumps({"object": "list", "data": [{"id": "stub", "object": "model"}]}).encode())
        if method != "POST" or not path.rstrip("/").endswith("/chat/completions"):
            return _error(404, f"no route {method} {path}")
        try:
            request = json.loads(body)
        except json.JSONDecodeError:
            return _error(400, "request body is not JSON")
        if self.record:
            self.stats.bodies.append(request)
        if self.latency:
            await asyncio.sleep(self.latency)
        try:
            reply = self.responder(request)
        except Exception as exc:  # a responder bug is the server's 500, as a real server would do
            return _error(500, f"responder failed: {type(exc).__name__}: {exc}")
        turn = sum(1 for m in request.get("messages", []) if m.get("role") == "assistant")
        completion = completion_json(reply, request.get("model", "stub"), turn)
        if self.faults is not None and self.faults.bad_tool_args:
            for call in completion["choices"][0]["message"].get("tool_calls") or []:
                if self.rng.random() < self.faults.bad_tool_args:
                    arguments = call["function"]["arguments"]
                    call["function"]["arguments"] = arguments[: max(1, len(arguments) // 2)]
                    self._count("bad_tool_args")
        return _response(200, json.dumps(completion).encode())

    def _count(self, kind: str) -> None:
        self.stats.faults[kind] = self.stats.faults.get(kind, 0) + 1

    async def respond(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        body: bytes,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> bool:
        """Answer one request, with a fault when one is drawn; True when the connection must close."""
        faults = self.faults
        kind = None
        if faults is not None and method == "POST" and path.rstrip("/").endswith("/chat/completions"):
            kind = faults.draw(self.rng)
        if kind is not None:
            self._count(kind)
        if kind == "timeout":
            self.stats.requests += 1
            # Hang until the client gives up (closes) or ``hang`` passes; close without an answer.
            with contextlib.suppress(TimeoutError, ConnectionError):
                await asyncio.wait_for(reader.read(1), faults.hang)  # type: ignore[union-attr]
            return True
        if kind == "error_500":
            self.stats.requests += 1
            writer.write(_error(500, "injected fault: internal server error"))
            await writer.drain()
            return False
        if kind == "rate_limit_429":
            self.stats.requests += 1
            retry_after = f"{faults.retry_after:g}"  # type: ignore[union-attr]
            payload = json.dumps({"error": {"message": "injected fault: rate limited", "type": "rate_limit"}}).encode()
            writer.write(_response(429, payload, {"retry-after": retry_after}))
            await writer.drain()
            return False
        response = await self.handle(method, path, headers, body)
        if kind == "truncated":
            head, _, payload = response.partition(b"\r\n\r\n")
            writer.write(head + b"\r\n\r\n" + payload[: len(payload) // 2])
            await writer.drain()
            return True
        if kind == "malformed_json":
            garbage = b'{"id": "chatcmpl-broken", "choices": [{"index": 0, "message": {"role": "assistant", "content": '
            writer.write(_response(200, garbage))
            await writer.drain()
            return False
        if faults is not None and faults.slow and self.rng.random() < faults.slow:
            self._count("slow")
            chunks = 10
            size = max(1, -(-len(response) // chunks))
            for i in range(0, len(response), size):
                writer.write(response[i : i + size])
                await writer.drain()
                await asyncio.sleep(faults.slow_seconds / chunks)
            return False
        writer.write(response)
        await writer.drain()
        return False

    async def connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.add(writer)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        k, v = line.split(":", 1)
                        headers[k.strip().lower()] = v.strip()
                length = int(headers.get("content-length", "0"))
                body = await reader.readexactly(length) if length else b""
                if await self.respond(method, path, headers, body, reader, writer):
                    return
                if headers.get("connection", "").lower() == "close":
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            self.writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()


class StubServer:
    """Serve a :class:`StubApp` from a background thread; use as a context manager."""

    def __init__(
        self,
        responder: Responder,
        latency: float = 0.0,
        api_key: str | None = None,
        record: bool = False,
        faults: Faults | None = None,
    ):
        self.app = StubApp(responder, latency, api_key, record, faults)
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._server: asyncio.Server | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._server = loop.run_until_complete(asyncio.start_server(self.app.connection, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        loop.run_forever()
        self._server.close()
        for writer in list(self.app.writers):  # open keep-alive connections end their handlers
            writer.close()
        pending = asyncio.all_tasks(loop)
        if pending:
            loop.run_until_complete(asyncio.wait(pending, timeout=5))
        loop.close()

    def __enter__(self) -> StubServer:
        self._thread = threading.Thread(target=self._serve, daemon=True, name="stub-server")
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)


def load_responder(path: str) -> Responder:
    """``module:function`` → the function."""
    module, _, name = path.partition(":")
    if not name:
        raise ValueError(f"responder must be 'module:function', got {path!r}")
    return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]


@contextlib.contextmanager
def stub_server_process(responder: str, latency: float = 0.0, extra_args: list[str] | None = None) -> Iterator[str]:
    """Run the stub server in its own process; yields its base URL."""
    cmd = [sys.executable, "-m", "parlswarm.testing.stub_server", "--responder", responder,
           "--latency", str(latency), *(extra_args or [])]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("port "):
            raise RuntimeError(f"stub server did not start (printed {line!r})")
        yield f"http://127.0.0.1:{int(line.split()[1])}/v1"
    finally:
        proc.terminate()
        proc.wait(10)


async def _main_async(args: argparse.Namespace) -> None:
    faults = Faults(
        error_500=args.fault_500,
        rate_limit_429=args.fault_429,
        retry_after=args.retry_after,
        timeout=args.fault_timeout,
        hang=args.hang,
        truncated=args.fault_truncated,
        malformed_json=args.fault_malformed,
        bad_tool_args=args.fault_bad_args,
        slow=args.fault_slow,
        slow_seconds=args.slow_seconds,
        seed=args.seed,
    )
    app = StubApp(load_responder(args.responder), args.latency, args.api_key, faults=faults)
    server = await asyncio.start_server(app.connection, "127.0.0.1", args.port, backlog=1024)
    print(f"port {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--responder", required=True, help="module:function returning a scripted reply")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every completion")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-key", default=None)
    faults = parser.add_argument_group("fault injection (rates from 0 to 1, per chat-completions request)")
    faults.add_argument("--fault-500", type=float, default=0.0, help="HTTP 500")
    faults.add_argument("--fault-429", type=float, default=0.0, help="HTTP 429 with Retry-After")
    faults.add_argument("--retry-after", type=float, default=1.0, help="seconds in the 429's Retry-After")
    faults.add_argument("--fault-timeout", type=float, default=0.0, help="hang, then close unanswered")
    faults.add_argument("--hang", type=float, default=30.0, help="seconds a hanging request hangs")
    faults.add_argument("--fault-truncated", type=float, default=0.0, help="body cut half-way")
    faults.add_argument("--fault-malformed", type=float, default=0.0, help="HTTP 200 with a body that is not JSON")
    faults.add_argument("--fault-bad-args", type=float, default=0.0, help="per tool call: arguments cut in half")
    faults.add_argument("--fault-slow", type=float, default=0.0, help="body trickled over --slow-seconds")
    faults.add_argument("--slow-seconds", type=float, default=1.0)
    faults.add_argument("--seed", type=int, default=0, help="seed of the fault RNG")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main_async(args))


if __name__ == "__main__":
    main()
