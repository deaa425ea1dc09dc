"""Drive a headless Chromium through the DevTools protocol over a pipe (``--remote-debugging-pipe``; standard
library only): open a page, wait for a condition, screenshot, and list every request the page made.

Used by the browser tests and to make the documentation's screenshots. The browser runs with every host name
resolving to nothing except 127.0.0.1, so a page that tried to reach the network fails visibly; the request log
shows what it tried. WebGL runs on SwiftShader (software), which headless Chromium needs to be told to allow.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

logger = logging.getLogger(__name__)

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
OFFLINE_RULES = "MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"
LOCAL_SCHEMES = {"file", "data", "blob", "about", "chrome", "devtools"}


class BrowserError(RuntimeError):
    """The browser did not start, a DevTools command failed, or a wait timed out."""


def find_chromium() -> str | None:
    """Path of a Chromium/Chrome executable (``$GANFIT_CHROMIUM`` first), or None."""
    override = os.environ.get("GANFIT_CHROMIUM")
    if override:
        return override if Path(override).is_file() else shutil.which(override)
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def is_local(url: str) -> bool:
    """True for URLs that stay on this machine: file/data/blob/about schemes and loopback hosts."""
    parsed = urlparse(url)
    if parsed.scheme in LOCAL_SCHEMES:
        return True
    return parsed.scheme in ("http", "https", "ws", "wss") and parsed.hostname in ("127.0.0.1", "localhost", "::1")


@dataclass
class Rect:
    """A page element's box in CSS pixels (viewport coordinates)."""

    x: float
    y: float
    width: float
    height: float


class HeadlessChromium:
    """One headless Chromium with one page (tab), driven over the DevTools pipe.

    Use as a context manager. ``requests`` lists every URL the page asked for (``Network.requestWillBeSent``) and
    ``console`` the page's console messages and uncaught exceptions.
    """

    def __init__(self, executable: str | None = None, width: int = 1280, height: int = 1600) -> None:
        self.executable = executable or find_chromium()
        if not self.executable:
            raise BrowserError("no Chromium found (install Debian's `chromium` package: make browser)")
        self.width, self.height = width, height
        self.requests: list[str] = []
        self.failed_requests: list[str] = []
        self.console: list[str] = []
        self._next_id = 0
        self._responses: dict[int, dict[str, Any]] = {}
        self._cond = threading.Condition()
        self._closed = False
        self._session: str | None = None
        self._process: subprocess.Popen[bytes] | None = None

    # ------------------------------------------------------------------------------------------------ lifecycle
    def __enter__(self) -> HeadlessChromium:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        self._profile = tempfile.mkdtemp(prefix="ganfit-chromium-")
        to_browser_r, to_browser_w = os.pipe()
        from_browser_r, from_browser_w = os.pipe()
        args = [
            self.executable,
            "--headless",
            "--remote-debugging-pipe",
            f"--user-data-dir={self._profile}",
            f"--window-size={self.width},{self.height}",
            f"--host-resolver-rules={OFFLINE_RULES}",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--disable-features=Translate,OptimizationHints,MediaRouter",
            "--hide-scrollbars",
            "--mute-audio",
            "--use-angle=swiftshader",
            "--enable-unsafe-swiftshader",
            "--ignore-gpu-blocklist",
            "--no-sandbox",  # the tests may run as root (containers), where Chromium's sandbox refuses to start
            "about:blank",
        ]

        def plumb() -> None:  # the child's fd 3 reads commands, fd 4 writes replies
            # via fresh copies: either pipe end may already sit on fd 3 or 4, and dup2 onto itself would leave it
            # close-on-exec
            read_end, write_end = os.dup(to_browser_r), os.dup(from_browser_w)
            os.dup2(read_end, 3, inheritable=True)
            os.dup2(write_end, 4, inheritable=True)

        self._process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=plumb,  # noqa: PLW1509 - no threads of ours exist yet in the child
            close_fds=False,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._write = os.fdopen(to_browser_w, "wb", buffering=0)
        self._read = os.fdopen(from_browser_r, "rb", buffering=0)
        self._stderr_lines: list[str] = []
        threading.Thread(target=self._reader, daemon=True).start()
        threading.Thread(target=self._stderr_reader, daemon=True).start()
        target = self.send("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        self._session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True}, session=False)[
            "sessionId"
        ]
        for domain in ("Page", "Runtime", "Network", "Log"):
            self.send(f"{domain}.enable")
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False},
        )

    def close(self) -> None:
        if self._process is None:
            return
        try:
            self.send("Browser.close", session=False, timeout=5)
        except BrowserError:
            pass
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=10)
        self._process = None
        shutil.rmtree(self._profile, ignore_errors=True)

    # ------------------------------------------------------------------------------------------------ protocol
    def _stderr_reader(self) -> None:
        assert self._process is not None and self._process.stderr is not None
        for line in self._process.stderr:
            self._stderr_lines.append(line.decode("utf-8", "replace").rstrip())
            del self._stderr_lines[:-50]

    def _reader(self) -> None:
        buffer = b""
        while True:
            chunk = self._read.read(1 << 16)
            if not chunk:
                break
            buffer += chunk
            while b"\0" in buffer:
                raw, buffer = buffer.split(b"\0", 1)
                self._dispatch(json.loads(raw))
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _dispatch(self, message: dict[str, Any]) -> None:
        if "id" in message:
            with self._cond:
                self._responses[message["id"]] = message
                self._cond.notify_all()
            return
        method, params = message.get("method", ""), message.get("params", {})
        if method == "Network.requestWillBeSent":
            self.requests.append(params["request"]["url"])
        elif method == "Network.loadingFailed" and not params.get("canceled"):
            self.failed_requests.append(f"{params.get('errorText')} (request {params.get('requestId')})")
        elif method == "Runtime.consoleAPICalled":
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
            self.console.append(f"console.{params.get('type')}: {text}")
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            self.console.append(f"exception: {details.get('exception', {}).get('description', details.get('text'))}")
        elif method == "Log.entryAdded":
            entry = params.get("entry", {})
            self.console.append(f"log.{entry.get('level')}: {entry.get('text')} {entry.get('url', '')}".strip())

    def send(
        self, method: str, params: dict[str, Any] | None = None, session: bool = True, timeout: float = 60.0
    ) -> dict[str, Any]:
        """Send one DevTools command (to the page's session unless ``session=False``); returns its result."""
        with self._cond:
            self._next_id += 1
            ident = self._next_id
        message: dict[str, Any] = {"id": ident, "method": method, "params": params or {}}
        if session and self._session:
            message["sessionId"] = self._session
        try:
            self._write.write(json.dumps(message).encode() + b"\0")
        except (BrokenPipeError, OSError) as error:
            raise BrowserError(f"the browser is gone ({error}); stderr: {self._stderr_tail()}") from error
        deadline = time.monotonic() + timeout
        with self._cond:
            while ident not in self._responses:
                if self._closed:
                    raise BrowserError(f"the browser closed during {method}; stderr: {self._stderr_tail()}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BrowserError(f"{method}: no reply within {timeout:.0f} s")
                self._cond.wait(left)
            reply = self._responses.pop(ident)
        if "error" in reply:
            raise BrowserError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def _stderr_tail(self) -> str:
        return " | ".join(self._stderr_lines[-5:])

    # ------------------------------------------------------------------------------------------------ page API
    def navigate(self, url: str, timeout: float = 60.0) -> None:
        """Open ``url`` and wait until the page's load event (``document.readyState == 'complete'``)."""
        result = self.send("Page.navigate", {"url": url}, timeout=timeout)
        if result.get("errorText"):
            raise BrowserError(f"navigation to {url} failed: {result['errorText']}")
        self.wait_for("document.readyState === 'complete'", timeout=timeout)

    def evaluate(self, expression: str, timeout: float = 60.0) -> Any:
        """The JSON value of a JavaScript expression in the page (promises are awaited)."""
        result = self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            timeout=timeout,
        )
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression!r} threw: {result['exceptionDetails'].get('text')}")
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float = 60.0, interval: float = 0.2) -> Any:
        """Poll ``expression`` until it is truthy; returns its value, raises ``BrowserError`` after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise BrowserError(
                    f"timed out after {timeout:.0f} s waiting for {expression!r}; console: {self.console[-5:]}"
                )
            time.sleep(interval)

    def rect(self, selector: str) -> Rect:
        """The box of the first element matching ``selector`` (scrolled into view first)."""
        box = self.evaluate(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)}); if (!e) return null;"
            " e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect();"
            " return {x: r.x, y: r.y, width: r.width, height: r.height}; })()"
        )
        if not box:
            raise BrowserError(f"no element matches {selector!r}")
        return Rect(**box)

    def set_file_input(self, selector: str, path: str | Path) -> None:
        """Choose ``path`` in the ``<input type=file>`` matching ``selector`` (as a user picking a file would)."""
        document = self.send("DOM.getDocument", {"depth": 0})["root"]["nodeId"]
        node = self.send("DOM.querySelector", {"nodeId": document, "selector": selector})["nodeId"]
        if not node:
            raise BrowserError(f"no element matches {selector!r}")
        self.send("DOM.setFileInputFiles", {"nodeId": node, "files": [str(Path(path).resolve())]})

    def screenshot(self, path: str | Path | None = None, clip: Rect | None = None, full_page: bool = False) -> bytes:
        """A PNG of the viewport (or of ``clip``, or of the whole page); also written to ``path`` when given."""
        params: dict[str, Any] = {"format": "png", "captureBeyondViewport": full_page}
        if clip is not None:
            params["clip"] = {"x": clip.x, "y": clip.y, "width": clip.width, "height": clip.height, "scale": 1}
        elif full_page:
            root = "document.documentElement"
            size = self.evaluate(f"({{w: {root}.scrollWidth, h: {root}.scrollHeight}})")
            params["clip"] = {"x": 0, "y": 0, "width": size["w"], "height": size["h"], "scale": 1}
        data = base64.b64decode(self.send("Page.captureScreenshot", params)["data"])
        if path is not None:
            Path(path).write_bytes(data)
        return data

    def remote_requests(self) -> list[str]:
        """The requests of the page that would have left the machine (should be empty)."""
        return [url for url in self.requests if not is_local(url)]


def chromium_version(executable: str | None = None) -> str:
    """``chromium --version`` text (for logs and reports)."""
    exe = executable or find_chromium()
    if not exe:
        return "none"
    return subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()


def screenshots(url: str, targets: Sequence[tuple[str, str | Path]], wait: str, timeout: float = 120.0) -> list[str]:
    """Open ``url``, wait for ``wait`` (a JS expression), and write a screenshot of each ``(selector, path)``
    (selector ``"page"`` = the whole page). Returns the page's non-local requests (empty when all is offline)."""
    with HeadlessChromium() as browser:
        browser.navigate(url)
        browser.wait_for(wait, timeout=timeout)
        for selector, path in targets:
            if selector == "page":
                browser.screenshot(path, full_page=True)
            else:
                browser.screenshot(path, clip=browser.rect(selector))
        return browser.remote_requests()
