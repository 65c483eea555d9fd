"""`StoreError`: every problem a user can cause when pointing us at a database.

A bad URL, an unreachable server, a file that is not a database, a study that does not exist:
all are the user's to fix, so they subclass `UserError` (the CLI prints one line, exits 2).
Messages never contain a password: URLs are rendered with `hide_password`."""
from __future__ import annotations

from search_space.errors import UserError


class StoreError(UserError):
    """One line naming what is wrong with the storage URL, the database or the request."""

    def __init__(self, message: str):
        # One line, always: driver messages often span several (psycopg adds hints).
        super().__init__(" ".join(str(message).split()))
