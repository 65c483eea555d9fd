"""Shared checks of the reliability suite: the CLI's error contract and "nothing was written".

The contract (search_space/errors.py, orchestrator/cli.py): bad user input ends with exit code 2
and a clear message on stderr, never a traceback. Our own `UserError`s print one line per problem,
each starting with `error: `; click's own usage errors (unknown option, bad choice) print a usage
block whose last line starts with `Error: `. Anything else (exit 1, a Python exception escaping,
a traceback) is a bug.
"""
from __future__ import annotations

import hashlib
import os
import sqlite3
from pathlib import Path

from click.testing import CliRunner

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"


def cli(args: list[str], env: dict | None = None, input: str | None = None):
    """Run `hybrid-nas ARGS` in-process (click's CliRunner); stderr is kept apart from stdout."""
    from orchestrator.cli import main
    return CliRunner().invoke(main, [str(a) for a in args], env=env, input=input, catch_exceptions=True)


def error_lines(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ln.strip()]


def assert_user_error(res, what: str = "") -> list[str]:
    """exit 2, no traceback, and a clear error line (ours: `error: ...`; click's: `Error: ...`)."""
    ctx = f"{what}\nexit {res.exit_code}\nstdout: {res.stdout[-2000:]}\nstderr: {res.stderr[-2000:]}"
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        import traceback
        tb = "".join(traceback.format_exception(res.exception))
        raise AssertionError(f"an exception escaped the CLI: {res.exception!r}\n{tb}\n{ctx}")
    assert res.exit_code == 2, ctx
    out = res.stdout + res.stderr
    assert "Traceback" not in out, ctx
    lines = error_lines(res.stderr)
    assert lines, "nothing on stderr\n" + ctx
    ours = all(ln.startswith("error: ") for ln in lines)
    clicks = lines[-1].startswith("Error: ") and lines[0].startswith("Usage: ")
    assert ours or clicks, "stderr is not a clean error message\n" + ctx
    msgs = lines if ours else [lines[-1]]
    for ln in msgs:
        assert len(ln) < 2000, ctx
        assert len(ln.split(":", 1)[1].strip()) > 3, "an error line says nothing\n" + ctx
    return msgs


def sqlite_state(path: Path) -> str | None:
    """A digest of everything a SQLite store holds (schema and rows), None if the file is absent.

    Logical, not byte-wise: a reader may checkpoint or remove an empty WAL without writing data."""
    path = Path(path)
    if not path.exists():
        return None
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        h = hashlib.sha256()
        for line in conn.iterdump():
            h.update(line.encode())
        return h.hexdigest()
    finally:
        conn.close()


def files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in Path(root).rglob("*")}


def env_without_storage() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("HNAS_STORAGE", "HYBRID_NAS_STORAGE", "RAY_ADDRESS")}
    return env
