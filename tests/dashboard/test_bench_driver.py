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


@pytest.mark.browser
def test_trace_summary_finds_a_long_task_and_its_script(tmp_path):
    """benchmarks/dashboard_trace.py on a page whose script spins 300 ms after load: the summary
    has that task, its JavaScript attributed to the page's script file, inside the load."""
    need_chromium()
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        "dashboard_trace", Path(__file__).resolve().parents[2] / "benchmarks" / "dashboard_trace.py")
    dt = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(dt)
    page = tmp_path / "busy.html"
    page.write_text("<html><body><script src='spin.js'></script></body></html>")
    (tmp_path / "spin.js").write_text(
        "function spin() { const t = performance.now(); while (performance.now() - t < 300) {} }\n"
        "setTimeout(() => { spin(); const d = document.createElement('div'); d.id = 'done';"
        " document.body.appendChild(d); }, 100);\n")
    raw = tmp_path / "raw.json"
    out = dt.traced_load(page.as_uri(), "!!document.getElementById('done')", CHROMIUM, CHROMIUM_ARGS,
                         raw=str(raw), warm=1)
    assert out["ready_s"] >= 0.3 and len(out["untraced_warm_loads_s"]) == 1
    assert 0.3 <= out["main_thread_busy_s"] <= out["ready_s"] + 0.05
    spin = [t for t in out["long_tasks"] if t["dur_s"] >= 0.29]
    assert spin and max(spin[0]["js"], key=spin[0]["js"].get) == "spin.js"
    assert out["js_self_s_by_script"]["spin.js"] >= 0.25
    assert raw.stat().st_size > 1000  # the whole trace, for chrome://tracing
