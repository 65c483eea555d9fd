"""MAD's memorization (`generate_memorization_instance`): one fixed key->value map for the
whole task (seeded by `map_seed`, independent of the trial seed, as MAD's kv_map), a bijection
between the first and the second half of the non-special vocabulary. A sequence is pairs
[key, INSERT]; at each INSERT the model must output the key's value. Nothing in the context
says what the value is: the answer must be in the weights.

Layout: inputs [k_1 I k_2 I ...], targets [IGNORE v_1 IGNORE v_2 ...]; INSERT = V-1.
Keys are drawn with replacement; train and test use the same map and the same targets.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import ClassVar

import torch

from .base import IGNORE, Split, Task, randint


@functools.lru_cache(maxsize=32)
def _kv_map(vocab_size: int, map_seed: int, device: str) -> torch.Tensor:
    # drawn on the CPU (the same map on every device), copied once per device: a host-to-device
    # copy in the training loop would make the host wait for the GPU
    ns = vocab_size - 1
    nk = ns // 2
    g = torch.Generator().manual_seed(map_seed)
    return (torch.randperm(ns - nk, generator=g)[:nk] + nk).to(device)


@dataclass(frozen=True)
class Memorization(Task):
    name: ClassVar[str] = "memorization"
    vocab_size: int = 256
    seq_len: int = 32
    map_seed: int = 12345

    def check(self):
        if self.seq_len % 2 or self.seq_len < 2:
            raise ValueError(f"seq_len {self.seq_len} must be even")
        if self.vocab_size < 5:
            raise ValueError(f"vocab_size {self.vocab_size} must be >= 5")

    def kv_map(self, device) -> torch.Tensor:
        return _kv_map(self.vocab_size, self.map_seed, str(torch.device(device)))

    def sample(self, n, generator, split: Split = "train"):
        g = generator
        m = self.kv_map(g.device)
        P = self.seq_len // 2
        keys = randint(0, m.numel(), (n, P), g)
        ins = torch.full_like(keys, self.vocab_size - 1)
        inputs = torch.stack([keys, ins], -1).view(n, -1)
        targets = torch.stack([torch.full_like(keys, IGNORE), m[keys]], -1).view(n, -1)
        return inputs, targets
