"""The dashboard benchmark's bare DevTools driver (benchmarks/cdp.py) against a real headless
Chromium: launch, a page, navigation, a JavaScript predicate polled until true, an evaluation,
one browser context for several pages, and a clean close."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from .test_serve import CHROMIUM, CHROMIUM_ARGS, need_chromium

sys.path.append(str(Path(__file__).resolve().parents[2] / "benchmarks"))


@pytest.fixture
def browser():
    need_chromium()
    from cdp import Browser
    b = Browser(CHROMIUM, CHROMIUM_ARGS)
    yield b
    b.close()
    assert b._proc.poll() is not None  # the browser process is gone


@pytest.mark.browser
def test_cdp_driver_loads_waits_and_evaluates(browser, tmp_path):
    page = tmp_path / "p.html"
    # the element appears 300 ms after load: wait_for must poll, not check once
    page.write_text("<html><body><script>setTimeout(() => { const d = document.createElement('div');"
                    " d.id = 'late'; d.textContent = 'ready'; document.body.appendChild(d); }, 300);"
                    " localStorage.setItem('k', 'v');</script></body></html>")
    p = browser.new_page(800, 600)
    p.goto(page.as_uri())
    p.wait_for("!!document.getElementById('late')", timeout=30)
    assert p.evaluate("document.getElementById('late').textContent") == "ready"
    assert p.evaluate("[innerWidth, innerHeight]") == [800, 600]
    assert p.evaluate("(() => { throw new Error('x') })()") is None  # a page error reads as not ready
    p.close()
    # a second page shares the first one's browser context (its storage): a returning user
    q = browser.new_page()
    q.goto(page.as_uri())
    assert q.evaluate("localStorage.getItem('k')") == "v"
    q.close()


@pytest.mark.browser
def test_cdp_wait_for_times_out_with_the_expression(browser):
    from cdp import CdpError
    p = browser.new_page()
    p.goto("about:blank")
    with pytest.raises(CdpError, match="not true within"):
        p.wait_for("false", timeout=0.3)
