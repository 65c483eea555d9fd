"""A headless Chromium driven over the DevTools protocol with nothing but `websockets` (a
Streamlit dependency), for timing page loads where Playwright cannot go.

Why not Playwright here: the dashboard benchmark also runs on the GPU machine, which has no
network and takes at most 64 MiB per call; Playwright's wheel alone is 53 MB and Chromium's
headless shell another 89 MB compressed. The tests keep Playwright (tests/dashboard/test_serve.py);
this is only the benchmark's clock, and `benchmarks/dashboard.py --driver` picks either, so the
two can be compared on one machine.

What it does is what the benchmark asks of Playwright: launch, open pages in ONE browser context
(a returning user's HTTP and code caches), navigate, poll a JavaScript predicate, close."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time

from websockets.sync.client import connect


class CdpError(RuntimeError):
    pass


class Browser:
    def __init__(self, executable: str, args: list[str], headless: bool = True):
        self._dir = tempfile.mkdtemp(prefix="cdp-")
        cmd = [executable, f"--user-data-dir={self._dir}", "--remote-debugging-port=0",
               *(["--headless"] if headless else []), *args, "about:blank"]
        self._proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        # Chromium writes the port it picked to DevToolsActivePort in its profile folder
        port_file = os.path.join(self._dir, "DevToolsActivePort")
        deadline = time.time() + 60
        while not os.path.exists(port_file) or not open(port_file).read().strip():
            if self._proc.poll() is not None:
                raise CdpError(f"chromium exited ({self._proc.returncode}): {self._proc.stderr.read()[-2000:]}")
            if time.time() > deadline:
                self.close()
                raise CdpError("chromium did not open its DevTools port within 60 s")
            time.sleep(0.05)
        port, path = open(port_file).read().split()[:2]
        # entered as a context manager (websockets 17 deprecates a bare connect()), left in close()
        self._stack = contextlib.ExitStack()
        self._ws = self._stack.enter_context(connect(f"ws://127.0.0.1:{port}{path}", max_size=None, open_timeout=30))
        self._id = 0
        self.events: list[dict] | None = None  # a list to keep the events that arrive (tracing), else dropped

    def _keep(self, msg: dict) -> None:
        if self.events is not None:
            self.events.append(msg)

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = 600) -> dict:
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        self._ws.send(json.dumps(msg))
        deadline = time.time() + timeout
        while True:  # events arrive interleaved with replies: kept or skipped
            left = deadline - time.time()
            if left <= 0:
                raise CdpError(f"{method}: no reply within {timeout} s")
            reply = json.loads(self._ws.recv(timeout=left))
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise CdpError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self._keep(reply)

    def wait_event(self, *methods: str, timeout: float = 120) -> tuple[str, dict]:
        """The next event named one of `methods`, as (name, params); the events before it are
        kept or skipped."""
        deadline = time.time() + timeout
        while True:
            left = deadline - time.time()
            if left <= 0:
                raise CdpError(f"none of {methods} within {timeout} s")
            msg = json.loads(self._ws.recv(timeout=left))
            if msg.get("method") in methods:
                return msg["method"], msg.get("params", {})
            self._keep(msg)

    def new_page(self, width: int = 1500, height: int = 1000) -> "Page":
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, target, session)
        page.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        page.send("Page.enable")
        return page

    def close(self) -> None:
        try:
            if getattr(self, "_ws", None) is not None:
                try:
                    self.send("Browser.close", timeout=10)
                except Exception:  # noqa: BLE001 - already gone is fine
                    pass
                self._stack.close()
        finally:
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            shutil.rmtree(self._dir, ignore_errors=True)


class Page:
    def __init__(self, browser: Browser, target: str, session: str):
        self.browser, self.target, self.session = browser, target, session

    def send(self, method: str, params: dict | None = None, timeout: float = 600) -> dict:
        return self.browser.send(method, params, session=self.session, timeout=timeout)

    def goto(self, url: str) -> None:
        r = self.send("Page.navigate", {"url": url})
        if r.get("errorText"):
            raise CdpError(f"navigate {url}: {r['errorText']}")

    def evaluate(self, expression: str):
        r = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in r:
            return None  # e.g. the old document went away mid-navigation: not ready yet
        return r["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 600, polling: float = 0.05) -> None:
        deadline = time.time() + timeout
        while not self.evaluate(expression):
            if time.time() > deadline:
                raise CdpError(f"not true within {timeout} s: {expression[:80]}")
            time.sleep(polling)

    def close(self) -> None:
        self.browser.send("Target.closeTarget", {"targetId": self.target})
