"""Token-choice top-k mixture of SwiGLU experts, optional always-on shared experts, balanced by an
auxiliary loss (Switch/GShard) or by DeepSeek-V3's bias update (a buffer, not a parameter).

Weights: router [d, experts] (no bias), (experts + shared_experts) SwiGLU experts of
hidden = round(expand * d)."""
from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from .base import ChannelMixerSpec
from .swiglu import hidden_size


class MoESpec(ChannelMixerSpec):
    type: Literal["moe"]
    experts: int = Field(8, ge=1, le=512)
    top_k: int = Field(2, ge=1, le=64)
    expand: float = Field(2.0, gt=0, le=16)
    shared_experts: int = Field(0, ge=0, le=16)
    balancing: Literal["aux_loss", "bias"] = "aux_loss"
    aux_loss_weight: float = Field(0.01, ge=0)
    code: ClassVar[str] = "E"

    @field_validator("top_k")
    @classmethod
    def _topk_field(cls, v, info):
        # names `...channel.top_k` in errors; the model validator below covers a default top_k
        if "experts" in info.data and v > info.data["experts"]:
            raise ValueError(f"top_k {v} exceeds experts {info.data['experts']}")
        return v

    @model_validator(mode="after")
    def _topk(self):
        if self.top_k > self.experts:
            raise ValueError(f"top_k {self.top_k} exceeds experts {self.experts}")
        return self

    def expert_params(self, d_model: int) -> int:
        return 3 * d_model * hidden_size(self.expand, d_model)

    def params(self, d_model):
        return d_model * self.experts + (self.experts + self.shared_experts) * self.expert_params(d_model)

    def active_params(self, d_model):
        return d_model * self.experts + (self.top_k + self.shared_experts) * self.expert_params(d_model)
