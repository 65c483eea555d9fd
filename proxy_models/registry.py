"""Primitive name -> module class, mirroring `search_space.registry`.

Classes are named by import strings ("proxy_models.mamba2:Mamba2") and imported on first use, so
a primitive whose module is missing or broken fails only the models (and tests) that use it, not
every import of `proxy_models`. A test checks that every name in `search_space.registry` has an
entry here."""
from __future__ import annotations

import importlib

from search_space.registry import COMBINERS as COMBINER_NAMES  # noqa: F401  (re-exported for tests)

TOKEN_MIXER_MODULES: dict[str, str] = {
    "attention": "proxy_models.attention:Attention",
    "mamba1": "proxy_models.mamba1:Mamba1",
    "mamba2": "proxy_models.mamba2:Mamba2",
    "rwkv7": "proxy_models.rwkv7:RWKV7",
    "retention": "proxy_models.retention:Retention",
}

# `none` has no module: the block has no channel-mixer sub-layer (and no second norm)
CHANNEL_MIXER_MODULES: dict[str, str | None] = {
    "swiglu": "proxy_models.swiglu:SwiGLU",
    "moe": "proxy_models.moe:MoE",
    "none": None,
}


def _load(target: str):
    mod, _, attr = target.partition(":")
    return getattr(importlib.import_module(mod), attr)


def token_mixer_class(name: str):
    try:
        target = TOKEN_MIXER_MODULES[name]
    except KeyError:
        raise KeyError(f"no proxy module registered for token mixer {name!r}") from None
    return _load(target)


def channel_mixer_class(name: str):
    try:
        target = CHANNEL_MIXER_MODULES[name]
    except KeyError:
        raise KeyError(f"no proxy module registered for channel mixer {name!r}") from None
    return None if target is None else _load(target)
