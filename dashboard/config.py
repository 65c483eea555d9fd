"""How the app learns which store to read, and how a store URL is shown.

Design choices:
- The URL reaches the app as `streamlit run dashboard/app.py -- --storage URL` or through the
  environment variable `HYBRID_NAS_STORAGE` (the CLI uses the variable, so the password never
  appears in the process list); the app reads it once, in `app.py`, never deeper.
- Anything shown on the page or printed goes through `mask_url`, which hides the password
  (SQLAlchemy's own rendering), so a screenshot of the dashboard leaks no credentials.
"""
from __future__ import annotations

import argparse
import os

ENV_VAR = "HYBRID_NAS_STORAGE"


def mask_url(url: str) -> str:
    try:
        from sqlalchemy.engine import make_url
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy can parse: still never echo what may be a secret
        if "@" in url and "://" in url:
            scheme, rest = url.split("://", 1)
            creds, host = rest.rsplit("@", 1)
            user = creds.split(":", 1)[0]
            return f"{scheme}://{user}:***@{host}"
        return url


def storage_url(argv: list[str] | None = None, environ: dict | None = None) -> str | None:
    """`--storage URL` after the `--` of `streamlit run`, else $HYBRID_NAS_STORAGE, else None."""
    p = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    p.add_argument("--storage", default=None)
    args, _ = p.parse_known_args(argv or [])
    env = os.environ if environ is None else environ
    return args.storage or env.get(ENV_VAR) or None
