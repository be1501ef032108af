"""A small OpenAI-compatible chat-completions server on 127.0.0.1, for tests and benchmarks.

Replies come from a *responder*: a function of the request body that returns a scripted
reply (see :mod:`parlswarm.models.scripted`). The server adds a fixed latency per call to
emulate a remote model. It speaks HTTP/1.1 with keep-alive and sets ``TCP_NODELAY`` (without
it every small response waits ~40 ms for delayed ACKs).

Run it in a thread (:class:`StubServer`) to give it any Python callable, or in its own
process (``python -m parlswarm.testing.stub_server --responder module:function``) so that
its CPU does not compete with the client being measured.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
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
    ) -> None:
        self.responder = responder
        self.latency = latency
        self.api_key = api_key
        self.record = record
        self.stats = ServerStats()
        self.writers: set[asyncio.StreamWriter] = set()

    async def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> bytes:
        self.stats.requests += 1
        if self.api_key is not None and headers.get("authorization") != f"Bearer {self.api_key}":
            return _error(401, "invalid api key")
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
        return _response(200, json.dumps(completion_json(reply, request.get("model", "stub"), turn)).encode())

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
                writer.write(await self.handle(method, path, headers, body))
                await writer.drain()
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

    def __init__(self, responder: Responder, latency: float = 0.0, api_key: str | None = None, record: bool = False):
        self.app = StubApp(responder, latency, api_key, record)
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
    app = StubApp(load_responder(args.responder), args.latency, args.api_key)
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
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main_async(args))


if __name__ == "__main__":
    main()
