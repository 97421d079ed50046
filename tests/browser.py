"""Open a page in headless Chromium over the DevTools protocol (stdlib only) and report what the page logged.

Chromium is started with `--remote-debugging-pipe`: it reads protocol messages from fd 3 and writes
them to fd 4, each a JSON object ended by a NUL byte. Console errors, uncaught exceptions and failed
loads (Log domain) are collected until the load event; then a screenshot and a PDF print are taken.
Host names resolve nowhere, so a page that needed the network would log the failed loads.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

INSTALL_HINT = "apt-get install -y chromium  (Debian/Ubuntu; or set TRUSTMH_CHROMIUM to a Chrome/Chromium binary)"
PROTOCOL_TIMEOUT_S = 120.0  # a guard against a hung browser, not a measurement


def find_chromium() -> str | None:
    explicit = os.environ.get("TRUSTMH_CHROMIUM")
    if explicit:
        return explicit
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


@dataclass
class PageVisit:
    errors: list[str] = field(default_factory=list)
    screenshot_png: bytes = b""
    print_screenshot_png: bytes = b""
    pdf: bytes = b""
    checks: list[Any] = field(default_factory=list)  # what each expression given to `visit` returned


class _Pipe:
    def __init__(self, write_fd: int, read_fd: int) -> None:
        self.write_fd, self.read_fd = write_fd, read_fd
        self.buffer = b""
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> int:
        self.next_id += 1
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        data = json.dumps(message).encode() + b"\0"
        while data:
            data = data[os.write(self.write_fd, data):]
        return self.next_id

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self.buffer:
            remaining = deadline - time.monotonic()
            ready, _, _ = select.select([self.read_fd], [], [], max(0.0, remaining))
            if not ready:
                raise TimeoutError("Chromium did not answer over the DevTools pipe")
            chunk = os.read(self.read_fd, 1 << 20)
            if not chunk:
                raise ConnectionError("Chromium closed the DevTools pipe")
            self.buffer += chunk
        raw, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> dict[str, Any]:
        wanted = self.send(method, params, session)
        deadline = time.monotonic() + PROTOCOL_TIMEOUT_S
        while True:
            message = self._read_message(deadline)
            if message.get("id") == wanted:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def wait_for(self, method: str, session: str) -> None:
        deadline = time.monotonic() + PROTOCOL_TIMEOUT_S
        if any(e.get("method") == method and e.get("sessionId") == session for e in self.events):
            return
        while True:
            message = self._read_message(deadline)
            self.events.append(message)
            if message.get("method") == method and message.get("sessionId") == session:
                return


def _errors(events: list[dict[str, Any]]) -> list[str]:
    found = []
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            found.append(f"exception: {details.get('exception', {}).get('description') or details.get('text')}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            found.append("console.error: " + " ".join(str(a.get("value", a.get("description", "")))
                                                      for a in params.get("args", [])))
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            found.append(f"log ({entry.get('source')}): {entry.get('text')} {entry.get('url', '')}".strip())
    return found


def visit(page: Path, chromium: str, width: int = 1280, height: int = 900,
          expressions: tuple[str, ...] = ()) -> PageVisit:
    """Load `page` at a laptop-sized viewport; return its errors, a screenshot, a print-media screenshot, a PDF,
    and the JSON value of each of `expressions`, evaluated in the page in order after the load (to click
    through it and measure its layout; an expression that throws is reported as an error)."""
    to_browser_r, to_browser_w = os.pipe()
    from_browser_r, from_browser_w = os.pipe()

    def wire_fds() -> None:  # in the child: its fd 3 reads our messages, its fd 4 writes the answers
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_browser_r, from_browser_w)]  # neither is 3 or 4
        os.dup2(high[0], 3)
        os.dup2(high[1], 4)

    with tempfile.TemporaryDirectory(prefix="trustmh-chromium-") as profile:
        process = subprocess.Popen(
            [chromium, "--headless", "--remote-debugging-pipe", "--no-sandbox", "--disable-gpu",
             "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check", "--disable-extensions",
             "--mute-audio", "--hide-scrollbars", '--host-resolver-rules=MAP * ~NOTFOUND', f"--user-data-dir={profile}",
             "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            pass_fds=(3, 4), preexec_fn=wire_fds,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        pipe = _Pipe(to_browser_w, from_browser_r)
        try:
            target = pipe.call("Target.createTarget", {"url": "about:blank"})["targetId"]
            session = pipe.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            for domain in ("Runtime.enable", "Log.enable", "Page.enable"):
                pipe.call(domain, session=session)
            pipe.call("Emulation.setDeviceMetricsOverride",
                      {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}, session)
            pipe.events.clear()
            navigation = pipe.call("Page.navigate", {"url": page.resolve().as_uri()}, session)
            if navigation.get("errorText"):
                raise RuntimeError(f"navigation failed: {navigation['errorText']}")
            pipe.wait_for("Page.loadEventFired", session)
            # Evaluating after the load event flushes the console messages queued before it.
            pipe.call("Runtime.evaluate", {"expression": "document.readyState"}, session)
            result = PageVisit()
            for expression in expressions:
                answer = pipe.call("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session)
                if "exceptionDetails" in answer:
                    details = answer["exceptionDetails"]
                    pipe.events.append({"method": "Runtime.exceptionThrown", "sessionId": session,
                                        "params": {"exceptionDetails": details}})
                result.checks.append(answer.get("result", {}).get("value"))
            result.screenshot_png = base64.b64decode(pipe.call("Page.captureScreenshot", {"format": "png"},
                                                               session)["data"])
            pipe.call("Emulation.setEmulatedMedia", {"media": "print"}, session)
            result.print_screenshot_png = base64.b64decode(
                pipe.call("Page.captureScreenshot", {"format": "png"}, session)["data"])
            result.pdf = base64.b64decode(pipe.call("Page.printToPDF", {}, session)["data"])
            result.errors = _errors(pipe.events)
            return result
        finally:
            with contextlib.suppress(OSError):  # already gone
                pipe.send("Browser.close")
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            os.close(to_browser_w)
            os.close(from_browser_r)
