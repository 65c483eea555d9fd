"""The explicit registry: primitive name -> spec class.

Adding a primitive is one spec file in `primitives/` plus one line here (and one module in
`proxy_models/`). The genome's unions, the search space's choices and the generated test suites
are all built from these dicts."""
from __future__ import annotations

from .primitives.attention import AttentionSpec
from .primitives.mamba1 import Mamba1Spec
from .primitives.mamba2 import Mamba2Spec
from .primitives.moe import MoESpec
from .primitives.none import NoChannelSpec
from .primitives.retention import RetentionSpec
from .primitives.rwkv7 import RWKV7Spec
from .primitives.swiglu import SwiGLUSpec

TOKEN_MIXERS = {
    "attention": AttentionSpec,
    "mamba1": Mamba1Spec,
    "mamba2": Mamba2Spec,
    "rwkv7": RWKV7Spec,
    "retention": RetentionSpec,
}

CHANNEL_MIXERS = {
    "swiglu": SwiGLUSpec,
    "moe": MoESpec,
    "none": NoChannelSpec,
}

COMBINERS = ("norm_mean", "concat_proj", "gated_sum")
ROUTERS = ("expert_choice", "token_choice")
NORMS = ("rmsnorm", "layernorm")
