"""`hybrid-nas dashboard` served for real (`streamlit run` on localhost), and driven by headless
Chromium through Playwright: a deep link, the Plotly points, a click, a YAML download, a screenshot.

The browser test needs Debian's `chromium` (no Playwright browser download): under CI=true it
must run; elsewhere it skips with one line when there is no Chromium."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

from dashboard.synthetic import OBJECTIVES, seed_study
from search_space.genome import Architecture
from storage import Store

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
SCREENSHOT = Path(os.environ.get("HNAS_SCREENSHOT", ROOT / "docs" / "img" / "pareto.png"))


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served:
    def __init__(self, url: str, port: int):
        self.port = port
        self.proc = subprocess.Popen([sys.executable, "-m", "orchestrator.cli", "dashboard", "--storage", url,
                                      "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, cwd=ROOT)
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"dashboard exited: {self.proc.stdout.read()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                    if r.read() == b"ok":
                        return
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise AssertionError("dashboard did not answer on /_stcore/health within 120 s")

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.stdout.read() if self.proc.stdout else ""


def test_cli_serves_on_localhost_and_hides_the_password(postgres_url):
    from sqlalchemy.engine import make_url
    url = make_url(postgres_url).set(password="s3cret-pw").render_as_string(hide_password=False)
    Store(url).close()  # trust auth accepts any password; this creates the schema
    port = _free_port()
    srv = Served(url, port)
    try:
        # the command became the Streamlit server (exec), and the URL travels in its environment,
        # not on its command line (which every user can read in the process list)
        cmdline = Path(f"/proc/{srv.proc.pid}/cmdline").read_bytes()
        assert b"streamlit" in cmdline and b"s3cret-pw" not in cmdline
        with socket.socket() as s:  # bound to 127.0.0.1 only: another local address is refused
            other = socket.gethostbyname(socket.gethostname())
            if not other.startswith("127."):
                assert s.connect_ex((other, port)) != 0
    finally:
        out = srv.stop()
    assert "s3cret-pw" not in out and f"http://127.0.0.1:{port}" in out and "***" in out


def test_cli_refuses_a_bad_url():
    out = subprocess.run([sys.executable, "-m", "orchestrator.cli", "dashboard", "--storage", "mysql://u:pw@h/d"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "pw@" not in out.stderr
    assert "Traceback" not in out.stderr


def need_chromium() -> None:
    """Skip with one line without Chromium, except under CI=true, where that fails the test."""
    if not os.path.exists(CHROMIUM):
        msg = f"no Chromium at {CHROMIUM} (apt-get install chromium)"
        if _in_ci():
            pytest.fail(msg + " and CI is set", pytrace=False)
        pytest.skip(msg)


@pytest.fixture(scope="module")
def browser():
    need_chromium()
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


PARETO_FILL = "rgb(214, 39, 40)"  # plots.CATEGORY_STYLE["Pareto"] colour, as the browser reports it

POINTS_JS = """(fill) => {
  const plot = document.querySelector('.js-plotly-plot');
  const pts = plot.querySelectorAll('.scatterlayer path.point');  // every category's trace
  const out = [];
  for (const p of pts) {
    const r = p.getBoundingClientRect();
    const f = getComputedStyle(p).fill;
    if (f === fill) out.push([r.x + r.width / 2, r.y + r.height / 2]);
  }
  return [pts.length, out];
}"""


STUDY = "hybrid-lm-search"

# Which calculations each chart's points went through: every `plotly_afterplot` adds the chart's
# calcdata (Plotly's computed points, a new object per full recalculation) to a set. Streamlit
# gives each figure to Plotly.react a second time right after the first draw; with the figures
# of dashboard/plots.py (plain x/y lists, a datarevision, no template) that second pass must not
# recalculate: for 10,000 points it is a second full draw of every chart.
CALCS_HOOK = """
new MutationObserver(() => {
  for (const gd of document.querySelectorAll('.js-plotly-plot')) {
    if (gd.__calcs || !gd.on) continue;
    gd.__calcs = new Set();
    gd.on('plotly_afterplot', () => gd.__calcs.add(gd.calcdata));
  }
}).observe(document, {subtree: true, childList: true, attributes: true, attributeFilter: ['class']});
"""
CALCS_JS = "() => [...document.querySelectorAll('.js-plotly-plot')].map(gd => gd.__calcs ? gd.__calcs.size : -1)"
# For each selectable scatter: how far Plotly pushed each margin (l, r, t, b) beyond the figure's.
# Any push means the chart was drawn a second time (plots.SCATTER_MARGIN says why).
MARGIN_PUSH_JS = """() => [...document.querySelectorAll('.js-plotly-plot')]
  .filter(gd => (gd._fullLayout.clickmode || '').includes('select'))
  .map(gd => ['l', 'r', 't', 'b'].map(s => gd._fullLayout._size[s] - gd._fullLayout.margin[s]))"""


@pytest.fixture(scope="module")
def screenshot_store(tmp_path_factory) -> str:
    """A study big enough to look like a search (its own store: the picture goes in the README)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('browser') / 'hybrid-nas.db'}"
    with Store(url) as s:
        seed_study(s, STUDY, 120, seed=1, running=2)
    return url


@pytest.mark.browser
@pytest.mark.slow
def test_browser_deep_link_click_download_screenshot(browser, screenshot_store):
    url = screenshot_store
    front = set(Store(url).pareto_front(STUDY, OBJECTIVES)["number"].astype(int))
    srv = Served(url, _free_port())
    try:
        page = browser.new_page(viewport={"width": 1500, "height": 1000}, accept_downloads=True)
        page.add_init_script(CALCS_HOOK)
        # live=0: no refresh poll running while the screenshot is taken
        page.goto(f"http://127.0.0.1:{srv.port}/?study={STUDY}&live=0", timeout=120_000)
        page.wait_for_selector(".js-plotly-plot .scatterlayer path.point", timeout=120_000)
        page.wait_for_timeout(1500)  # let the remaining charts finish drawing
        calcs = page.evaluate(CALCS_JS)
        assert len(calcs) >= 3 and set(calcs) == {1}, f"calculations per chart: {calcs}"
        pushes = page.evaluate(MARGIN_PUSH_JS)
        assert len(pushes) == 3 and all(abs(d) <= 1 for p in pushes for d in p), f"margins pushed: {pushes}"
        n_points, pareto = page.evaluate(POINTS_JS, PARETO_FILL)
        assert n_points > 10 and pareto, "no Pareto points drawn"
        x, y = pareto[len(pareto) // 2]
        page.mouse.move(x, y)
        page.wait_for_timeout(300)
        page.mouse.click(x, y)
        button = page.get_by_role("button", name="download selected (1) YAML")
        button.wait_for(timeout=60_000)
        with page.expect_download(timeout=60_000) as dl:
            button.click()
        text = Path(dl.value.path()).read_text()
        arch = Architecture.from_yaml(text)
        header = next(ln for ln in text.splitlines() if ln.startswith(f"# study: {STUDY}"))
        number = int(header.split("trial:")[1].split()[0])
        assert number in front  # the point clicked was a Pareto point
        assert dl.value.suggested_filename == f"{STUDY}-trial{number}.yaml"
        assert arch.fingerprint() == Architecture.from_yaml(Store(url).trial_yaml(STUDY, number)).fingerprint()
        assert f"study={STUDY}" in page.url
        # the whole Pareto set: a zip built when the button is clicked
        with page.expect_download(timeout=60_000) as dl:
            page.get_by_role("button", name=f"download Pareto set ({len(front)}) YAML").click()
        with zipfile.ZipFile(dl.value.path()) as z:
            assert sorted(z.namelist()) == sorted(f"{STUDY}-trial{n}.yaml" for n in front)
            for name in z.namelist():
                Architecture.from_yaml(z.read(name).decode())
        page.mouse.move(5, 990)  # no hover label in the picture
        # and no "running" indicator: wait for the app to be idle (not fatal if it never is)
        try:
            page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached", timeout=20_000)
        except Exception:  # noqa: BLE001
            pass
        page.wait_for_timeout(500)
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOT))
        assert 10_000 < SCREENSHOT.stat().st_size < 300_000
    finally:
        srv.stop()


ALL_POINTS_JS = "() => document.querySelector('.js-plotly-plot').querySelectorAll('.scatterlayer path.point').length"


@pytest.mark.browser
@pytest.mark.slow
def test_browser_shows_new_trials_without_a_reload(browser, tmp_path):
    """The live poll for real: the page stays open (no reload, no click) while trials land in the
    store; the timer-driven fragment notices the new revision and the chart redraws with them."""
    import random

    from dashboard.synthetic import random_architecture, result_for
    url = f"sqlite:///{tmp_path / 'live.db'}"
    with Store(url) as s:
        seed_study(s, "live", 30, seed=2, running=0, fail_every=0, prune_every=0)
    srv = Served(url, _free_port())
    try:
        page = browser.new_page(viewport={"width": 1500, "height": 1000})
        page.goto(f"http://127.0.0.1:{srv.port}/?study=live", timeout=120_000)  # live updates on (default 5 s)
        page.wait_for_selector(".js-plotly-plot .scatterlayer path.point", timeout=120_000)
        page.wait_for_timeout(1000)
        before = page.evaluate(ALL_POINTS_JS)
        assert before >= 20, before
        rng = random.Random(5)
        with Store(url) as s:
            s.finish_trials("live", [(30 + i, result_for(a, rng, "complete"), {}, a)
                                     for i, a in enumerate(random_architecture(rng, name="unnamed") for _ in range(6))])
        page.wait_for_function(f"() => ({ALL_POINTS_JS})() >= {before + 6}", timeout=60_000, polling=500)
        assert page.evaluate(ALL_POINTS_JS) >= before + 6
    finally:
        srv.stop()
