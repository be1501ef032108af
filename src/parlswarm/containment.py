"""Tools that reach outside the process, each kept inside its bounds.

- ``files`` (:func:`files_toolset`): ``read_file``, ``write_file``, ``list_dir`` inside one
  workspace folder (``$PARLSWARM_WORKSPACE``, else ``./workspace``). Absolute paths, ``..``
  and symbolic links that lead out are refused; writes are atomic.
- ``fetch`` (:func:`fetch_toolset`): ``fetch_url`` over httpx. The host is resolved first and
  every address it resolves to is checked: loopback, private, link-local and reserved
  addresses are refused unless allowed (``$PARLSWARM_FETCH_ALLOW=loopback,private``). The
  connection goes to the checked address (no second lookup to rebind), and each redirect
  is checked the same way.
- ``python`` (:func:`python_toolset`): ``run_python`` in a subprocess with a wall-clock and
  CPU time limit, an address-space limit, a file-size limit, output capped, and an
  environment without the parent's keys. It is not a filesystem sandbox: it runs as the
  same user, in a fresh temporary folder.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import signal
import socket
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from parlswarm.files import write_whole
from parlswarm.security import clean_environment
from parlswarm.tools import Tool, ToolError, Toolset, tool

WORKSPACE_ENV = "PARLSWARM_WORKSPACE"
DEFAULT_WORKSPACE = "workspace"
FETCH_ALLOW_ENV = "PARLSWARM_FETCH_ALLOW"

# -- files ----------------------------------------------------------------------------------------


class Workspace:
    """A folder that file tools cannot leave."""

    def __init__(self, root: str | Path, *, max_read: int = 200_000, max_write: int = 1_000_000) -> None:
        self.root = Path(os.path.realpath(root))
        self.max_read = max_read
        self.max_write = max_write

    @classmethod
    def from_env(cls) -> Workspace:
        return cls(os.environ.get(WORKSPACE_ENV) or DEFAULT_WORKSPACE)

    def resolve(self, path: str) -> Path:
        """The real path of ``path`` inside the workspace; ToolError when it would lead out."""
        if not path or "\x00" in path:
            raise ToolError("path must be a non-empty relative path", kind="refused")
        pure = PurePosixPath(path.replace("\\", "/"))
        if pure.is_absolute() or path.startswith("~") or (len(path) > 1 and path[1] == ":"):
            raise ToolError(f"path {path!r} is absolute; give a path relative to the workspace", kind="refused")
        if ".." in pure.parts:
            raise ToolError(f"path {path!r} uses '..'; paths must stay inside the workspace", kind="refused")
        real = Path(os.path.realpath(self.root / pure))
        if real != self.root and self.root not in real.parents:
            raise ToolError(f"path {path!r} leads outside the workspace (a symbolic link)", kind="refused")
        return real

    def read(self, path: str) -> str:
        real = self.resolve(path)
        try:
            fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            raise ToolError(f"no file {path!r} in the workspace") from None
        except IsADirectoryError:
            raise ToolError(f"{path!r} is a folder; use list_dir") from None
        except OSError as exc:
            raise ToolError(f"cannot read {path!r}: {exc.strerror}") from None
        with os.fdopen(fd, "rb") as f:
            data = f.read(self.max_read + 1)
        text = data[: self.max_read].decode("utf-8", errors="replace")
        if len(data) > self.max_read:
            text += f"\n[truncated at {self.max_read} bytes]"
        return text

    def write(self, path: str, content: str) -> str:
        data = content.encode("utf-8")
        if len(data) > self.max_write:
            raise ToolError(f"content is {len(data)} bytes; at most {self.max_write} can be written")
        real = self.resolve(path)
        if real == self.root or real.is_dir():
            raise ToolError(f"{path!r} is a folder, not a file")
        write_whole(real, data)  # a reader never sees half a file
        return f"wrote {len(data)} bytes to {path}"

    def list(self, path: str = ".", limit: int = 500) -> str:
        real = self.resolve(path)
        if not real.is_dir():
            raise ToolError(f"no folder {path!r} in the workspace")
        entries = sorted(real.iterdir(), key=lambda p: p.name)
        lines = []
        for entry in entries[:limit]:
            if entry.is_symlink():
                lines.append(f"{entry.name} -> (link)")
            elif entry.is_dir():
                lines.append(f"{entry.name}/")
            else:
                lines.append(f"{entry.name}  {entry.stat().st_size} bytes")
        if len(entries) > limit:
            lines.append(f"[{len(entries) - limit} more not shown]")
        return "\n".join(lines) or "(empty)"


def file_tools(workspace: Workspace) -> list[Tool]:
    @tool
    def read_file(path: str) -> str:
        """Read a text file of the workspace.

        Args:
            path: Path relative to the workspace folder.
        """
        return workspace.read(path)

    @tool
    def write_file(path: str, content: str) -> str:
        """Write a text file in the workspace (created or replaced whole).

        Args:
            path: Path relative to the workspace folder; missing folders are created.
            content: The complete text of the file.
        """
        return workspace.write(path, content)

    @tool
    def list_dir(path: str = ".") -> str:
        """List a folder of the workspace.

        Args:
            path: Folder relative to the workspace folder; the workspace itself by default.
        """
        return workspace.list(path)

    return [read_file, write_file, list_dir]


def files_toolset() -> Toolset:
    """``--tools files``: file tools confined to ``$PARLSWARM_WORKSPACE`` (default ./workspace)."""
    workspace = Workspace.from_env()
    workspace.root.mkdir(parents=True, exist_ok=True)
    return Toolset(file_tools(workspace))


# -- URLs -----------------------------------------------------------------------------------------

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
ALLOWABLE = ("loopback", "private", "link-local")


@dataclass(frozen=True)
class FetchPolicy:
    """Which addresses ``fetch_url`` may reach, and how much it reads."""

    allow: frozenset[str] = frozenset()  # of ALLOWABLE
    max_bytes: int = 1_000_000
    max_chars: int = 20_000
    timeout: float = 20.0
    max_redirects: int = 5

    def __post_init__(self) -> None:
        unknown = set(self.allow) - set(ALLOWABLE)
        if unknown:
            raise ValueError(f"unknown address classes to allow: {', '.join(sorted(unknown))}; known: {', '.join(ALLOWABLE)}")

    @classmethod
    def from_env(cls) -> FetchPolicy:
        raw = os.environ.get(FETCH_ALLOW_ENV, "")
        return cls(allow=frozenset(p.strip() for p in raw.split(",") if p.strip()))


def address_class(ip: IPAddress) -> str | None:
    """``loopback``, ``link-local``, ``private`` or ``reserved`` for non-public addresses; None if public."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast or ip.is_unspecified or ip.is_reserved:
        return "reserved"
    if ip.is_private or not ip.is_global:
        return "private"
    return None


def address_refusal(ip: IPAddress, policy: FetchPolicy) -> str | None:
    """Why ``ip`` may not be fetched under ``policy``, or None."""
    kind = address_class(ip)
    if kind is None or kind in policy.allow:
        return None
    if kind == "reserved":
        return f"address {ip} is reserved (multicast, unspecified or reserved range)"
    return f"address {ip} is {kind}; fetching {kind} addresses is not allowed"


async def _resolve(host: str, port: int) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ToolError(f"cannot resolve host {host!r}: {exc.strerror}") from None
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
        if ip not in addresses:
            addresses.append(ip)
    return addresses


async def checked_target(url: str, policy: FetchPolicy) -> tuple[str, str, IPAddress]:
    """(url, host, address) for a URL whose every resolved address passes ``policy``; else ToolError."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ToolError(f"only http and https URLs can be fetched, not {parts.scheme or 'no scheme'!r}", kind="refused")
    host = parts.hostname
    if not host:
        raise ToolError(f"URL {url!r} has no host", kind="refused")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    addresses = await _resolve(host, port)
    if not addresses:
        raise ToolError(f"host {host!r} resolves to no address")
    for ip in addresses:  # all of them: a name must not hide a private address behind a public one
        refusal = address_refusal(ip, policy)
        if refusal is not None:
            raise ToolError(f"refused {url}: {refusal}", kind="refused")
    return url, host, addresses[0]


def _pinned(url: str, ip: IPAddress) -> str:
    """``url`` with its host replaced by the checked address (so no second lookup can differ)."""
    parts = urlsplit(url)
    literal = f"[{ip}]" if isinstance(ip, ipaddress.IPv6Address) else str(ip)
    netloc = literal + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))


async def fetch(url: str, policy: FetchPolicy, client: httpx.AsyncClient | None = None) -> str:
    """Fetch ``url`` under ``policy``; returns status line and text, truncated."""
    own = client is None
    client = client or httpx.AsyncClient(timeout=policy.timeout, follow_redirects=False, trust_env=False)
    try:
        for _ in range(policy.max_redirects + 1):
            url, host, ip = await checked_target(url, policy)
            parts = urlsplit(url)
            headers = {"host": parts.netloc.rsplit("@", 1)[-1], "user-agent": "parlswarm-fetch/1"}
            extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
            request = client.build_request("GET", _pinned(url, ip), headers=headers, extensions=extensions)
            try:
                response = await client.send(request, stream=True)
            except httpx.HTTPError as exc:
                raise ToolError(f"cannot fetch {url}: {type(exc).__name__}: {exc}") from None
            try:
                if response.is_redirect and "location" in response.headers:
                    url = urljoin(url, response.headers["location"])
                    continue
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body.extend(chunk)
                    if len(body) > policy.max_bytes:
                        break
            finally:
                await response.aclose()
            content_type = response.headers.get("content-type", "")
            head = f"HTTP {response.status_code} {content_type}".strip()
            if not (content_type.startswith("text/") or "json" in content_type or "xml" in content_type or not content_type):
                return f"{head}\n\n[{len(body)} bytes of {content_type} not shown]"
            text = bytes(body[: policy.max_bytes]).decode(response.encoding or "utf-8", errors="replace")
            if len(text) > policy.max_chars or len(body) > policy.max_bytes:
                text = text[: policy.max_chars] + "\n[truncated]"
            return f"{head}\n\n{text}"
        raise ToolError(f"more than {policy.max_redirects} redirects from {url}")
    finally:
        if own:
            await client.aclose()


def fetch_tool(policy: FetchPolicy) -> Tool:
    @tool
    async def fetch_url(url: str) -> str:
        """Fetch a web page or file over http(s) and return its text (public addresses only).

        Args:
            url: The http or https URL.
        """
        return await fetch(url, policy)

    return fetch_url


def fetch_toolset() -> Toolset:
    """``--tools fetch``: fetch_url, refusing non-public addresses unless $PARLSWARM_FETCH_ALLOW allows them."""
    return Toolset([fetch_tool(FetchPolicy.from_env())])


# -- code -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PythonLimits:
    """Limits of one ``run_python`` call."""

    seconds: float = 10.0  # wall clock; CPU time is limited to the same
    memory_mb: int = 1024  # address space
    file_mb: int = 50  # largest file it may write
    output_chars: int = 20_000
    env: dict[str, str] = field(default_factory=dict)  # extra variables, on top of the clean environment


# Runs in the child before the user's code: limits first, then the code as __main__.
_BOOTSTRAP = """
import resource, runpy, sys
mem, cpu, fsize = {mem}, {cpu}, {fsize}
resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
sys.argv = ["main.py"]
runpy.run_path("main.py", run_name="__main__")
"""


def _kill_group(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


async def run_python_code(code: str, limits: PythonLimits) -> str:
    """Run ``code`` in a limited subprocess; returns its exit status and output."""
    with tempfile.TemporaryDirectory(prefix="parlswarm-python-") as workdir:
        Path(workdir, "main.py").write_text(code, encoding="utf-8")
        bootstrap = _BOOTSTRAP.format(
            mem=limits.memory_mb * 2**20, cpu=max(1, int(limits.seconds + 0.999)), fsize=limits.file_mb * 2**20
        )
        env = clean_environment({"HOME": workdir, "TMPDIR": workdir, "PYTHONIOENCODING": "utf-8", **limits.env})
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-I", "-c", bootstrap,
            cwd=workdir,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,  # its own process group: killed whole, children included
        )
        assert proc.stdout is not None
        output = bytearray()
        cap = limits.output_chars * 4

        async def collect() -> None:
            while len(output) <= cap:
                chunk = await proc.stdout.read(65536)  # type: ignore[union-attr]
                if not chunk:
                    return
                output.extend(chunk)

        timed_out = flooded = False
        try:
            await asyncio.wait_for(collect(), limits.seconds)
            if len(output) > cap:
                flooded = True
                _kill_group(proc)
            await asyncio.wait_for(proc.wait(), max(0.5, limits.seconds))
        except TimeoutError:
            timed_out = True
            _kill_group(proc)
        except asyncio.CancelledError:
            _kill_group(proc)
            await proc.wait()
            raise
        finally:
            if proc.returncode is None:
                _kill_group(proc)
                await proc.wait()
        text = output.decode("utf-8", errors="replace")
        if len(text) > limits.output_chars:
            text = text[: limits.output_chars] + "\n[output truncated]"
        status = proc.returncode
        # The CPU-time limit (SIGXCPU) and the wall-clock limit are the same limit to the caller;
        # which one fires first depends on how busy the machine is.
        if timed_out or status == -signal.SIGXCPU:
            raise ToolError(f"the code ran past its {limits.seconds:g}s limit and was stopped; output so far:\n{text}")
        if flooded:
            return f"stopped after {limits.output_chars} characters of output\n{text}"
        if status is not None and status < 0:
            name = signal.Signals(-status).name if -status in signal.Signals._value2member_map_ else str(-status)
            return f"killed by {name} (a time or memory limit)\n{text}"
        return f"exit status {status}\n{text}"


def python_tool(limits: PythonLimits) -> Tool:
    @tool
    async def run_python(code: str) -> str:
        """Run a Python program and return its exit status and output (stdout and stderr).

        It runs in a fresh folder, with time and memory limits and no network keys.

        Args:
            code: The complete program.
        """
        return await run_python_code(code, limits)

    return run_python


def python_toolset() -> Toolset:
    """``--tools python``: run_python with the default limits."""
    return Toolset([python_tool(PythonLimits())])


__all__ = [
    "FetchPolicy",
    "PythonLimits",
    "Workspace",
    "address_class",
    "address_refusal",
    "checked_target",
    "fetch",
    "fetch_tool",
    "fetch_toolset",
    "file_tools",
    "files_toolset",
    "python_tool",
    "python_toolset",
    "run_python_code",
]
