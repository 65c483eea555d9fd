"""SwiGLU MLP (Shazeer 2020): W2(SiLU(W1 x) * W3 x), hidden = round(expand * d), no biases."""
from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from .base import ChannelMixerSpec


def hidden_size(expand: float, d_model: int) -> int:
    return max(1, int(round(expand * d_model)))


class SwiGLUSpec(ChannelMixerSpec):
    type: Literal["swiglu"]
    expand: float = Field(4.0, gt=0, le=16)
    code: ClassVar[str] = "S"

    def params(self, d_model):
        return 3 * d_model * hidden_size(self.expand, d_model)
