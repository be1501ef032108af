"""One headless Chromium per process, with no network: HTML in, screenshot (and DOM facts) out.

Playwright's async objects belong to the event loop that made them, while parlswarm is
called from many loops (``asyncio.run`` in the CLI, a fresh loop per test). So the browser
lives on a private event loop in a daemon thread, and :meth:`Browser.render` hands work to
it from any loop or thread. Launching Chromium costs about a second; a render on a reused
page costs a fraction of that, so the shared instance keeps a small pool of pages.

Pages must be self-contained: every request other than ``data:``, ``blob:`` and
``about:`` URLs is aborted, and the context is offline. Debian's ``/usr/bin/chromium``
is used because Playwright's own browser download needs the internet; set
``PARLSWARM_CHROMIUM`` to point elsewhere.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import threading
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--font-render-hinting=none",  # the same glyph positions run after run
    "--hide-scrollbars",
]
ALLOWED_SCHEMES = ("data:", "blob:", "about:")
MAX_PAGE_HEIGHT = 6000  # pixels kept of a very long page


class BrowserError(RuntimeError):
    """Chromium could not be started or could not render a page."""


def default_executable() -> str:
    return os.environ.get("PARLSWARM_CHROMIUM", "/usr/bin/chromium")


@dataclass
class Rendered:
    """A rendered page: PNG screenshot, its size, and what the page script returned."""

    png: bytes
    width: int
    height: int
    result: Any = None


class Browser:
    """A headless Chromium on a private event loop; :meth:`render` may be awaited from any loop."""

    def __init__(self, executable: str | None = None, pages: int = 2, timeout: float = 20.0) -> None:
        self.executable = executable or default_executable()
        self.max_pages = max(1, pages)
        self.timeout = timeout
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._playwright: Any = None
        self._browser: Any = None
        self._context: Any = None
        self._idle: asyncio.Queue[Any] | None = None
        self._made = 0
        self.renders = 0

    # -- lifecycle -------------------------------------------------------------------------

    def _submit(self, coro: Coroutine[Any, Any, T]) -> asyncio.Future[T]:
        self._ensure_started()
        assert self._loop is not None
        return asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self._loop))

    def _ensure_started(self) -> None:
        with self._lock:
            if self._browser is not None:
                return
            if not os.path.exists(self.executable):
                raise BrowserError(
                    f"Chromium not found at {self.executable}; install Debian's chromium "
                    "(make chromium) or set PARLSWARM_CHROMIUM"
                )
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="parlswarm-chromium", daemon=True)
            thread.start()
            try:
                asyncio.run_coroutine_threadsafe(self._start(), loop).result(60)
            except Exception as exc:
                loop.call_soon_threadsafe(loop.stop)
                thread.join(5)
                raise BrowserError(f"cannot start Chromium at {self.executable}: {exc}") from None
            self._loop, self._thread = loop, thread

    async def _start(self) -> None:
        from playwright.async_api import async_playwright

        self._playwright = await async_playwright().start()
        try:
            self._browser = await self._playwright.chromium.launch(
                executable_path=self.executable, args=CHROMIUM_ARGS, headless=True
            )
            self._context = await self._browser.new_context(
                viewport={"width": 1024, "height": 768},
                device_scale_factor=1,
                offline=True,
                service_workers="block",
                color_scheme="light",
                reduced_motion="reduce",
            )
            await self._context.route("**/*", _block_external)
        except Exception:
            await self._playwright.stop()
            self._browser = None
            raise
        self._idle = asyncio.Queue()
        self._made = 0

    def close(self) -> None:
        """Stop Chromium and its thread. The next render starts a fresh one."""
        with self._lock:
            loop, thread = self._loop, self._thread
            if loop is None:
                return
            try:
                asyncio.run_coroutine_threadsafe(self._stop(), loop).result(30)
            except Exception:  # closing must not raise; the process may be exiting
                log.debug("closing Chromium failed", exc_info=True)
            loop.call_soon_threadsafe(loop.stop)
            if thread is not None:
                thread.join(10)
            loop.close()
            self._loop = self._thread = None
            self._browser = self._context = self._playwright = None

    async def _stop(self) -> None:
        try:
            if self._browser is not None:
                await self._browser.close()
        finally:
            if self._playwright is not None:
                await self._playwright.stop()

    # -- pages -----------------------------------------------------------------------------

    async def _page(self) -> Any:
        assert self._idle is not None
        if self._idle.empty() and self._made < self.max_pages:
            self._made += 1
            try:
                return await self._context.new_page()
            except Exception:
                self._made -= 1
                raise
        return await self._idle.get()

    def _release(self, page: Any, healthy: bool) -> None:
        assert self._idle is not None
        if healthy and not page.is_closed():
            self._idle.put_nowait(page)
        else:
            self._made -= 1  # a fresh page replaces it on demand
            if not page.is_closed():
                asyncio.ensure_future(page.close())

    async def _render(
        self, html: str, width: int, height: int, full_page: bool, script: str | None, arg: Any, screenshot: bool
    ) -> Rendered:
        page = await self._page()
        healthy = False
        try:
            await page.set_viewport_size({"width": width, "height": height})
            ms = self.timeout * 1000
            await page.set_content(html, wait_until="load", timeout=ms)
            await page.evaluate("document.fonts.ready.then(() => true)")
            result = await page.evaluate(script, arg) if script else None
            clip_height = height
            if full_page and screenshot:
                page_height = await page.evaluate(
                    "Math.max(document.documentElement.scrollHeight, document.body ? document.body.scrollHeight : 0)"
                )
                clip_height = max(height, min(int(page_height), MAX_PAGE_HEIGHT))
            png = b""
            if screenshot:
                png = await page.screenshot(
                    clip={"x": 0, "y": 0, "width": width, "height": clip_height},
                    full_page=full_page,
                    animations="disabled",
                    caret="hide",
                    timeout=ms,
                )
            # Leave nothing running (timers, animation frames) for the next use of this page.
            await page.set_content("<!doctype html><html><body></body></html>", timeout=ms)
            healthy = True
            self.renders += 1
            return Rendered(png=png, width=width, height=clip_height, result=result)
        finally:
            self._release(page, healthy)

    async def render(
        self,
        html: str,
        width: int = 1024,
        height: int = 768,
        *,
        full_page: bool = True,
        script: str | None = None,
        arg: Any = None,
        screenshot: bool = True,
    ) -> Rendered:
        """Render ``html`` at ``width`` x ``height`` (the whole page when ``full_page``).

        ``script`` is a JavaScript function evaluated after load (``arg`` is passed to it);
        its JSON-able return value comes back as ``Rendered.result``. With ``screenshot=False``
        only the script runs (``Rendered.png`` is empty).
        """
        if not 16 <= width <= 4096 or not 16 <= height <= 8192:
            raise ValueError(f"viewport {width}x{height} is out of range (16..4096 x 16..8192)")
        self._ensure_started()  # before the coroutine exists, so a failed start leaves none un-awaited
        try:
            return await self._submit(self._render(html, width, height, full_page, script, arg, screenshot))
        except BrowserError:
            raise
        except Exception as exc:
            name = type(exc).__name__
            message = str(exc).splitlines()[0] if str(exc) else name
            raise BrowserError(f"rendering failed: {name}: {message}") from None

    def render_sync(self, html: str, width: int = 1024, height: int = 768, **kwargs: Any) -> Rendered:
        """Blocking :meth:`render` for scripts (not from inside a running event loop)."""
        return asyncio.run(self.render(html, width, height, **kwargs))


async def _block_external(route: Any) -> None:
    if route.request.url.startswith(ALLOWED_SCHEMES):
        await route.continue_()
    else:
        log.debug("blocked request to %s", route.request.url)
        await route.abort("blockedbyclient")


_shared: Browser | None = None
_shared_lock = threading.Lock()


def shared_browser() -> Browser:
    """The process's browser (started on first render, closed at exit)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = Browser()
            atexit.register(_shared.close)
        return _shared
