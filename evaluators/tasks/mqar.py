"""Multi-query associative recall (Zoology, Arora et al. 2023; `zoology/data/multiquery_ar.py`).

`num_kv_pairs` distinct keys (from 1..V/2-1) with distinct values (from V/2..V-1) are listed
first; then each key is queried once, at a position 2*gap after the pairs, gaps drawn without
replacement from a power law p(i) ~ a * i^(a-1) (a = `power_a`, 0.01 as Zoology: most
queries come soon after the context, a few far). The model must output the value at the
query key's position. Every other input position holds a random token (Zoology's
`random_non_queries=True`). Targets are only the values, for training too (as Zoology).

Published configs (vocab 8192): (seq 64, 4 pairs), (128, 8), (256, 16), (512, 64) = `MQAR_CONFIGS`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from .base import IGNORE, Split, Task, rand_subset, randint

MQAR_CONFIGS = ((64, 4), (128, 8), (256, 16), (512, 64))


@dataclass(frozen=True)
class MQAR(Task):
    name: ClassVar[str] = "mqar"
    vocab_size: int = 8192
    seq_len: int = 64
    num_kv_pairs: int = 4
    power_a: float = 0.01

    def check(self):
        if self.seq_len % 2:
            raise ValueError(f"seq_len {self.seq_len} must be even")
        if self.vocab_size <= self.seq_len:
            raise ValueError(f"vocab_size {self.vocab_size} must exceed seq_len {self.seq_len}")
        if 4 * self.num_kv_pairs > self.seq_len:
            raise ValueError(f"num_kv_pairs {self.num_kv_pairs} needs seq_len >= {4 * self.num_kv_pairs}")
        if self.vocab_size // 2 - 1 < self.num_kv_pairs:
            raise ValueError(f"vocab_size {self.vocab_size} has too few keys for {self.num_kv_pairs} pairs")

    def sample(self, n, generator, split: Split = "train"):
        g = generator
        V, T, K = self.vocab_size, self.seq_len, self.num_kv_pairs
        dev = g.device
        half = V // 2
        keys = rand_subset(n, half - 1, K, g) + 1
        vals = rand_subset(n, V - half, K, g) + half
        ctx = 2 * K
        space = (T - ctx) // 2
        a = self.power_a
        p = a * torch.arange(1, space + 1, device=dev, dtype=torch.float64) ** (a - 1)
        gaps = torch.multinomial((p / p.sum()).float().expand(n, space).contiguous(), K, replacement=False, generator=g)
        inputs = randint(0, V, (n, T), g)  # random non-queries
        inputs[:, 0:ctx:2] = keys
        inputs[:, 1:ctx:2] = vals
        qpos = ctx + 2 * gaps
        inputs.scatter_(1, qpos, keys)
        targets = torch.full((n, T), IGNORE, dtype=torch.long, device=dev)
        targets.scatter_(1, qpos, vals)
        return inputs, targets
