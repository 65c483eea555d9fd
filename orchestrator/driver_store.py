"""Driver-side objects that Tune pickles hold their `Store` without the database password.

Tune pickles its callbacks into the experiment directory (tuner.pkl). A `Store` pickles its full
URL on purpose (a worker that receives one must connect), so a callback that kept a `Store` in its
state would write the password to disk. Callbacks run only in the driver: they keep the store in
a process-local table and serialize just a masked key. Restored in the same process they get the
same store back; in another process (Tune's own restore, which `--resume` does not use) `store` is None.
"""
from __future__ import annotations

_STORES: dict[str, object] = {}


def _key(store) -> str:
    return f"{id(store)}:{store!r}"  # Store's repr hides the password


class DriverStoreHandle:
    """Mixin: `self.store` is kept out of pickles (see the module docstring)."""

    @property
    def store(self):
        return _STORES.get(self.__dict__.get("_store_key", ""))

    @store.setter
    def store(self, value):
        if value is None:
            self.__dict__["_store_key"] = ""
            return
        key = _key(value)
        _STORES[key] = value
        self.__dict__["_store_key"] = key  # the instance (and so its pickle) holds only the key
