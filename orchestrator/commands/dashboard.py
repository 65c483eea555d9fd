"""`hybrid-nas dashboard --storage URL [--port N] [--host 127.0.0.1]`: serve the Streamlit app.

Design choices:
- It replaces itself with `streamlit run dashboard/app.py` (`os.execve`): Streamlit owns its
  server and event loop, and with no parent process left in between, Ctrl-C or a SIGTERM from a
  supervisor reaches the server directly and never leaves an orphan behind.
- The store URL travels in the environment variable `HYBRID_NAS_STORAGE`, not on the child's
  command line, so the password is not visible in the process list; what we print goes through
  `mask_url`.
- Bound to 127.0.0.1 unless `--host` says otherwise: the dashboard has no authentication.
  Headless (no browser is opened), usage statistics off, no file watcher.
- The URL is checked (parsed, scheme and driver known) before the server starts, so a typo is
  one line and exit code 2; an unreachable database is reported on the page, which keeps
  retrying, because a dashboard is often opened before the database comes up.
"""
from __future__ import annotations

import os
import sys
from importlib import resources

import click

from search_space.errors import UserError


def streamlit_command(port: int, host: str, app: str | None = None) -> list[str]:
    """`streamlit run` of the dashboard (or of `app`: the benchmarks serve their pages the same way)."""
    app = app or str(resources.files("dashboard") / "app.py")
    return [sys.executable, "-m", "streamlit", "run", app,
            "--server.address", host, "--server.port", str(port), "--server.headless", "true",
            "--server.fileWatcherType", "none", "--server.runOnSave", "false",
            "--browser.gatherUsageStats", "false", "--client.toolbarMode", "viewer", "--theme.base", "light",
            # Streamlit guesses "development mode" when it is not under a site-packages folder (an
            # install with pip --target, a PYTHONPATH), and then refuses --server.port
            "--global.developmentMode", "false"]


@click.command()
@click.option("--storage", "storage_url", required=True, metavar="URL",
              help="store to read: sqlite:///path.db or postgresql+psycopg://user@host/db")
@click.option("--port", type=click.IntRange(1, 65535), default=8501, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True,
              help="address to bind; 0.0.0.0 exposes the dashboard (it has no login) to the network")
def dashboard(storage_url: str, port: int, host: str):
    """Serve the dashboard of a store's studies (Pareto fronts, trials, exports)."""
    from dashboard.config import ENV_VAR, mask_url
    from storage import normalize_url

    url = normalize_url(storage_url).render_as_string(hide_password=False)
    if url.startswith("sqlite") and "/:memory:" not in url and not url.endswith(":memory:"):
        path = url.split(":///", 1)[-1]
        if path and not os.path.exists(path):
            raise UserError(f"--storage: no database file at {path!r}")
    env = dict(os.environ, **{ENV_VAR: url})
    click.echo(f"hybrid-nas dashboard: http://{host}:{port}  (store {mask_url(url)}; Ctrl-C stops it)", err=True)
    cmd = streamlit_command(port, host)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(cmd[0], cmd, env)
