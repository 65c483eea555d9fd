"""The interface every primitive spec implements.

A spec is pure data plus arithmetic: which parameters a layer has and how many, how many FLOPs a
token costs, how many cache elements decoding keeps. `proxy_models/` builds modules whose
parameter tensors match `params()` exactly (a test checks it for every registered primitive).

Legend: d = d_model, T/L = context length, B = batch.
"""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Spec(BaseModel):
    # strict: YAML `heads: true` or `window: 2.0` is an error, not a silent 1 or 2
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    #: short code used in block patterns (`M2 M2 A|M1 R`)
    code: ClassVar[str] = ""

    def check(self, d_model: int) -> list[tuple[str, str]]:
        """Problems that depend on d_model, as (relative field path, message)."""
        return []

    def canonical(self, d_model: int) -> dict:
        """This spec as the fingerprint sees it: every field spelled out, and values that mean
        the same layer written one way (a spec overrides this where a value has two spellings)."""
        return self.model_dump(mode="json")


class TokenMixerSpec(Spec):
    type: str

    def params(self, d_model: int, value_residual: bool = False) -> int:
        raise NotImplementedError  # every registered mixer overrides this

    def flops_per_token(self, d_model: int, context: int) -> float:
        """Forward FLOPs for one token, averaged over the positions of a causal sequence of
        length `context` (multiply-add = 2 FLOPs). Matmuls plus the sequence-mixing term."""
        return 2.0 * self.params(d_model)

    def cache_elems(self, d_model: int, context: int) -> int:
        """Elements kept per sequence to decode the next token after `context` tokens."""
        return 0


class ChannelMixerSpec(Spec):
    type: str

    def params(self, d_model: int) -> int:
        return 0

    def active_params(self, d_model: int) -> int:
        return self.params(d_model)

    def flops_per_token(self, d_model: int) -> float:
        return 2.0 * self.active_params(d_model)


def avg_causal_context(context: int, window: int | None) -> float:
    """Mean number of keys a query sees in a causal sequence of length `context`."""
    if context <= 0:
        return 0.0
    w = window if window else context
    if w >= context:
        return (context + 1) / 2.0
    # positions 0..w-1 see t+1 keys, later ones see w
    head = w * (w + 1) / 2.0
    return (head + (context - w) * w) / context
