"""Render a local HTML page in headless Chromium over the DevTools protocol (`--remote-debugging-pipe`): its
errors (uncaught exceptions, console errors, failed resource loads) and a full-page PNG screenshot."""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

CHROMIUM = next((shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome")
                 if shutil.which(name)), None)


class _Pipe:
    """Newline-free JSON messages separated by NUL bytes, the `--remote-debugging-pipe` framing."""

    def __init__(self, write_fd: int, read_fd: int):
        self.write_fd, self.read_fd, self.buffer, self.next_id = write_fd, read_fd, b"", 0
        self.events: list[dict] = []

    def _read(self, deadline: float) -> dict:
        while b"\0" not in self.buffer:
            if not select.select([self.read_fd], [], [], max(deadline - time.monotonic(), 0))[0]:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self.read_fd, 1 << 16)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe")
            self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, session: str | None = None, timeout: float = 30, **params) -> dict:
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self.write_fd, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        for event in self.events:
            if event.get("method") == method:
                return event
        while True:
            event = self._read(deadline)
            self.events.append(event)
            if event.get("method") == method:
                return event


def render_page(html_file: str | Path, screenshot: str | Path, width: int = 1200) -> list[str]:
    """Load `html_file` in headless Chromium, save a full-page PNG of `width` CSS pixels to `screenshot`, and
    return the page's errors: uncaught exceptions, `console.error` messages and failed resource loads."""
    to_browser_r, to_browser_w = os.pipe()
    from_browser_r, from_browser_w = os.pipe()

    def child_fds():  # the browser reads commands from fd 3 and writes replies to fd 4
        read, write = os.dup(to_browser_r), os.dup(from_browser_w)  # above 4, so that dup2 clobbers neither
        os.dup2(read, 3)
        os.dup2(write, 4)

    with tempfile.TemporaryDirectory() as profile:
        browser = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe", "--hide-scrollbars",
             f"--user-data-dir={profile}", "--no-first-run", "about:blank"],
            pass_fds=(3, 4), preexec_fn=child_fds,  # open here too: os.pipe took the lowest free fds
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        pipe = _Pipe(to_browser_w, from_browser_r)
        try:
            target = pipe.call("Target.createTarget", url="about:blank")["targetId"]
            session = pipe.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
            for domain in ("Page", "Runtime", "Log", "Network"):
                pipe.call(f"{domain}.enable", session)
            pipe.call("Emulation.setDeviceMetricsOverride", session, width=width, height=800, deviceScaleFactor=1,
                      mobile=False)
            pipe.call("Page.navigate", session, url=Path(html_file).resolve().as_uri())
            pipe.wait_for("Page.loadEventFired")
            height = pipe.call("Page.getLayoutMetrics", session)["cssContentSize"]["height"]
            pipe.call("Emulation.setDeviceMetricsOverride", session, width=width, height=int(height) + 1,
                      deviceScaleFactor=1, mobile=False)
            png = pipe.call("Page.captureScreenshot", session, format="png")["data"]
            Path(screenshot).write_bytes(base64.b64decode(png))
            pipe.call("Browser.close")
            browser.wait(timeout=30)
        finally:
            if browser.poll() is None:
                browser.kill()
                browser.wait()
            os.close(to_browser_w)
            os.close(from_browser_r)
    errors = []
    for event in pipe.events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            errors.append(f"exception: {details.get('exception', {}).get('description', details.get('text'))}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
            errors.append(f"console.error: {[a.get('value', a.get('description')) for a in params['args']]}")
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            errors.append(f"log: {params['entry']['text']} {params['entry'].get('url', '')}")
        elif method == "Network.loadingFailed":
            errors.append(f"failed load: {params.get('errorText')}")
    return errors
