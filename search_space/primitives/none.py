"""No channel mixer: the block is a token mixer only (as in Mamba stacks)."""
from __future__ import annotations

from typing import ClassVar, Literal

from .base import ChannelMixerSpec


class NoChannelSpec(ChannelMixerSpec):
    type: Literal["none"]
    code: ClassVar[str] = ""
