"""Containment: secrets redacted everywhere written, file tools in the workspace, public URLs
only, code in a limited subprocess without keys. No test sends traffic beyond 127.0.0.1."""

from __future__ import annotations

import asyncio
import http.server
import ipaddress
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from parlswarm import security
from parlswarm.containment import (
    FetchPolicy,
    PythonLimits,
    Workspace,
    address_class,
    address_refusal,
    checked_target,
    fetch,
    file_tools,
    run_python_code,
)
from parlswarm.security import RedactingFilter, install_log_redaction, redact, redact_event
from parlswarm.testing.stub_server import StubServer
from parlswarm.tools import ToolError, Toolset, tool
from parlswarm.toolsets import load_toolsets
from parlswarm.trace.events import ToolFinished

FAKE_KEY = "sk-fake-7Qm2xZ9pLk4Rt8Wv1Yb6"


@pytest.fixture
def fake_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("MOONSHOT_API_KEY", FAKE_KEY)
    security.refresh_secrets()
    yield FAKE_KEY
    monkeypatch.delenv("MOONSHOT_API_KEY")
    security.refresh_secrets()


# -- redaction -------------------------------------------------------------------------------------


def test_redaction_of_keys_headers_and_url_passwords(fake_key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEATHER_SERVICE_TOKEN", "tok-41d8cd98f00b")
    security.refresh_secrets()
    assert redact(f"key={fake_key}.") == "key=***."
    assert redact("Authorization: Bearer abc.DEF-123456") == "Authorization: Bearer ***"
    assert redact('{"authorization": "Bearer zzzzzzzzzzzz"}') == '{"authorization": "Bearer ***"}'
    assert redact("x-api-key: k-0123456789") == "x-api-key: ***"
    assert redact("https://ana:s3cr3t-pw@example.org/x") == "https://ana:***@example.org/x"
    assert redact("token tok-41d8cd98f00b leaked") == "token *** leaked"
    assert redact("sk-abcdefghijklmnopqrstuvwx") == "***"  # key-shaped, from nowhere known
    ordinary = "http://127.0.0.1:8080/v1 returned 3 values; bearer of news"
    assert redact(ordinary) == ordinary


def test_registered_secrets_are_redacted() -> None:
    security.register_secret("a-key-given-in-code-42")
    assert redact("using a-key-given-in-code-42 now") == "using *** now"
    security.register_secret("short")  # too short to be a key: left alone
    assert redact("a short word") == "a short word"


def test_events_are_redacted_in_place(fake_key: str) -> None:
    event = ToolFinished(agent_id="a", step=0, call_id="c", tool="t", ok=True, seconds=0.1, result=f"got {fake_key}")
    redact_event(event)
    assert event.result == "got ***"
    assert fake_key not in event.model_dump_json()


def test_listeners_of_a_run_see_scrubbed_events(tmp_path: Path, fake_key: str) -> None:
    from parlswarm.journal import Journal, RunConfig

    journal = Journal.create(RunConfig(task="t", model="m"), tmp_path)
    trace, _ = journal.start()
    seen: list[str] = []
    trace.subscribe(lambda e: seen.append(e.model_dump_json()))  # e.g. the live view or an exporter
    trace.emit(ToolFinished(agent_id="a", step=0, call_id="c", tool="t", ok=True, seconds=0.1, result=f"{fake_key}!"))
    journal.close("finished")
    assert len(seen) == 1 and fake_key not in seen[0] and "***!" in seen[0]
    assert fake_key.encode() not in journal.path.read_bytes()


def test_log_records_are_redacted(fake_key: str) -> None:
    logger = logging.getLogger("parlswarm.test.redaction")
    records: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    handler = Collect()
    logger.addHandler(handler)
    logger.propagate = False
    install_log_redaction(logger)
    assert any(isinstance(f, RedactingFilter) for f in handler.filters)
    try:
        logger.warning("calling with %s", f"Authorization: Bearer {fake_key}")
        try:
            raise RuntimeError(f"endpoint rejected {fake_key}")
        except RuntimeError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    assert records and all(fake_key not in r for r in records)
    assert "Bearer ***" in records[0] and "endpoint rejected ***" in records[1]


# -- the acceptance test: a run made with a fake key leaves no trace of it in any output file -------


@tool
def read_settings() -> str:
    """Read the service settings (a careless tool that returns the key and a header)."""
    key = os.environ["MOONSHOT_API_KEY"]
    return f"api key {key}; header Authorization: Bearer {key}"


def leaky_toolset() -> Toolset:
    return Toolset([read_settings])


def _leaky_responder(key: str) -> Any:
    failed = []

    def respond(body: dict[str, Any]) -> Any:
        if not failed:  # one 500 whose error text carries the key, as careless servers do
            failed.append(1)
            raise RuntimeError(f"upstream rejected Authorization: Bearer {key}")
        tools = {t["function"]["name"] for t in body.get("tools", [])}
        turn = sum(1 for m in body["messages"] if m["role"] == "assistant")
        if "assign_task" in tools:
            if turn == 0:
                return {"tool_calls": [
                    {"name": "read_settings", "arguments": {}},
                    {"name": "spawn_swarm", "arguments": {"agents": [{"role": "reader", "task": "read the settings"}]}},
                ]}
            results = [m["content"] for m in body["messages"] if m["role"] == "tool"]
            return f"the settings say: {' | '.join(map(str, results))} (key {key})"
        if turn == 0:
            return {"tool_calls": [{"name": "read_settings", "arguments": {}}]}
        return "settings: " + str(body["messages"][-1]["content"])

    return respond


def test_no_output_file_of_a_run_holds_the_key(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    with StubServer(_leaky_responder(FAKE_KEY), api_key=FAKE_KEY) as server:
        env = {
            **os.environ,
            "MOONSHOT_API_KEY": FAKE_KEY,
            "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]),
            "COLUMNS": "200",
        }
        with (out / "stdout.txt").open("w") as stdout, (out / "stderr.txt").open("w") as stderr:
            proc = subprocess.run(
                [sys.executable, "-m", "parlswarm", "run", "read the settings",
                 "--model", "moonshot:kimi-test", "--base-url", server.base_url,
                 "--tools", "test_containment:leaky_toolset",
                 "--trace", str(out / "trace.jsonl"), "--report", str(out / "report.html"),
                 "--runs-dir", str(out / "runs")],
                stdout=stdout, stderr=stderr, env=env, timeout=120,
            )
    assert proc.returncode == 0, (out / "stderr.txt").read_text()
    files = [p for p in out.rglob("*") if p.is_file()]
    names = {p.name for p in files}
    assert {"stdout.txt", "stderr.txt", "trace.jsonl", "report.html", "journal.db"} <= names
    for path in files:
        data = path.read_bytes()
        assert FAKE_KEY.encode() not in data, f"{path} holds the key"
        assert FAKE_KEY[8:].encode() not in data, f"{path} holds part of the key"
    # The key did pass through the run (so the test can fail): it arrived redacted.
    assert "***" in (out / "stdout.txt").read_text()
    trace = (out / "trace.jsonl").read_text()
    assert "Bearer ***" in trace and "model_retry" in trace


# -- files --------------------------------------------------------------------------------------


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "notes.txt").write_text("hello")
    (tmp_path / "secret.txt").write_text("outside")
    (root / "out-link").symlink_to(tmp_path / "secret.txt")
    (root / "dir-link").symlink_to(tmp_path)
    (root / "in-link").symlink_to(root / "notes.txt")
    return Workspace(root)


@pytest.mark.parametrize(
    "path",
    ["/etc/passwd", "../secret.txt", "sub/../../secret.txt", "out-link", "dir-link/secret.txt", "~/x", "", "C:\\x"],
)
def test_paths_out_of_the_workspace_are_refused(workspace: Workspace, path: str) -> None:
    with pytest.raises(ToolError):
        workspace.read(path)
    with pytest.raises(ToolError):
        workspace.write(path, "overwrite")
    assert (workspace.root.parent / "secret.txt").read_text() == "outside"


async def test_file_tools_read_write_list_inside(workspace: Workspace) -> None:
    tools = Toolset(file_tools(workspace))
    read_file, write_file, list_dir = (tools.get(n) for n in ("read_file", "write_file", "list_dir"))
    assert (await read_file.invoke({"path": "notes.txt"})).content == "hello"  # type: ignore[union-attr]
    assert (await read_file.invoke({"path": "in-link"})).content == "hello"  # a link that stays inside
    wrote = await write_file.invoke({"path": "reports/a.md", "content": "# A"})  # type: ignore[union-attr]
    assert wrote.ok and (workspace.root / "reports" / "a.md").read_text() == "# A"
    listing = (await list_dir.invoke({})).content  # type: ignore[union-attr]
    assert "reports/" in listing and "notes.txt  5 bytes" in listing
    refused = await read_file.invoke({"path": "../secret.txt"})  # type: ignore[union-attr]
    assert not refused.ok and refused.error == "refused" and "outside" not in str(refused.content)
    assert not [p for p in (workspace.root / "reports").iterdir() if p.name.endswith(".tmp")]


def test_files_toolset_is_registered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARLSWARM_WORKSPACE", str(tmp_path / "ws"))
    menu = load_toolsets("files")
    assert menu.names() == ["read_file", "write_file", "list_dir"]
    assert (tmp_path / "ws").is_dir()
    assert load_toolsets("fetch").names() == ["fetch_url"] and load_toolsets("python").names() == ["run_python"]


# -- URLs ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"), ("::1", "loopback"), ("::ffff:127.0.0.1", "loopback"),
        ("10.1.2.3", "private"), ("172.16.0.9", "private"), ("192.168.1.1", "private"), ("fd00::1", "private"),
        ("100.64.0.1", "private"), ("169.254.169.254", "link-local"), ("fe80::1", "link-local"),
        ("0.0.0.0", "reserved"), ("224.0.0.1", "reserved"), ("240.0.0.1", "reserved"),
        ("93.184.216.34", None), ("2606:4700::1111", None),
    ],
)
def test_address_classes(address: str, kind: str | None) -> None:
    assert address_class(ipaddress.ip_address(address)) == kind


def test_allowing_classes_is_explicit() -> None:
    loopback = ipaddress.ip_address("127.0.0.1")
    assert address_refusal(loopback, FetchPolicy()) is not None
    assert address_refusal(loopback, FetchPolicy(allow=frozenset({"loopback"}))) is None
    assert address_refusal(ipaddress.ip_address("10.0.0.1"), FetchPolicy(allow=frozenset({"loopback"}))) is not None
    assert address_refusal(ipaddress.ip_address("0.0.0.0"), FetchPolicy(allow=frozenset(("loopback", "private")))) is not None
    with pytest.raises(ValueError, match="unknown address classes"):
        FetchPolicy(allow=frozenset({"everything"}))


@pytest.mark.parametrize(
    "url",
    ["http://localhost/", "http://127.0.0.1:9/x", "http://[::1]/", "http://2130706433/", "http://10.0.0.1/",
     "http://169.254.169.254/latest/meta-data", "http://[fe80::1]/", "file:///etc/passwd", "ftp://example.org/",
     "http:///nohost"],
)
async def test_non_public_urls_are_refused_before_connecting(url: str) -> None:
    with pytest.raises(ToolError):
        await checked_target(url, FetchPolicy())


class _Handler(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:  # noqa: N802
        _Handler.hits.append(self.path)
        if self.path == "/hop":
            self.send_response(302)
            self.send_header("Location", "/page")
            self.end_headers()
        elif self.path == "/to-private":
            self.send_response(302)
            self.send_header("Location", "http://10.255.255.1/inside")
            self.end_headers()
        else:
            body = b"<p>local page</p>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def local_site() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Handler.hits = []
    yield f"http://localhost:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


async def test_loopback_fetch_is_refused_by_default_and_works_when_allowed(local_site: str) -> None:
    with pytest.raises(ToolError, match="loopback"):
        await fetch(local_site + "/page", FetchPolicy())
    assert _Handler.hits == []  # refused before any connection
    allowed = FetchPolicy(allow=frozenset({"loopback"}))
    text = await fetch(local_site + "/hop", allowed)
    assert text.startswith("HTTP 200 text/html") and "local page" in text
    assert _Handler.hits == ["/hop", "/page"]


async def test_a_redirect_to_a_private_address_is_refused(local_site: str) -> None:
    allowed = FetchPolicy(allow=frozenset({"loopback"}))
    with pytest.raises(ToolError, match="10.255.255.1 is private"):
        await fetch(local_site + "/to-private", allowed)
    assert _Handler.hits == ["/to-private"]


# -- code ---------------------------------------------------------------------------------------


async def test_run_python_has_no_secrets_in_its_environment(fake_key: str) -> None:
    out = await run_python_code(
        "import os\nprint(sorted(os.environ))\nprint(any('sk-' in v for v in os.environ.values()))", PythonLimits()
    )
    assert out.startswith("exit status 0")
    assert "MOONSHOT_API_KEY" not in out and fake_key not in out and out.rstrip().endswith("False")


async def test_run_python_time_limit() -> None:
    t0 = time.perf_counter()
    with pytest.raises(ToolError, match="past its 1s limit"):
        await run_python_code("print('started', flush=True)\nwhile True:\n    pass", PythonLimits(seconds=1))
    assert time.perf_counter() - t0 < 15  # 1 s, plus interpreter start-up on a busy machine


async def test_run_python_memory_limit() -> None:
    out = await run_python_code("x = bytearray(600 * 2**20)\nprint('allocated')", PythonLimits(memory_mb=256))
    assert "MemoryError" in out and "allocated" not in out


async def test_run_python_output_cap_and_exit_status() -> None:
    out = await run_python_code("print('x' * 100000)", PythonLimits(output_chars=100))
    assert "output" in out and len(out) < 400
    failed = await run_python_code("import sys\nprint('bye')\nsys.exit(3)", PythonLimits())
    assert failed.startswith("exit status 3") and "bye" in failed


async def test_run_python_is_cancelled_with_its_process_group(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    code = (
        "import os, subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)'])\n"
        f"open({str(pids)!r}, 'w').write(f'{{os.getpid()}} {{child.pid}}')\n"
        "time.sleep(30)\n"
    )
    task = asyncio.create_task(run_python_code(code, PythonLimits(seconds=60)))
    for _ in range(100):
        await asyncio.sleep(0.05)
        if pids.exists() and pids.read_text():
            break
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    parent, child = map(int, pids.read_text().split())
    time.sleep(0.3)
    for pid in (parent, child):  # both gone (the child may linger as a zombie of init, never running)
        try:
            state = Path(f"/proc/{pid}/stat").read_text().split()[2]
        except FileNotFoundError:
            continue
        assert state == "Z", f"process {pid} still running"
