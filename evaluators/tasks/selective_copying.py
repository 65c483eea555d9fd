"""MAD's selective copying (`generate_copying_instance(selective=True)`): `num_tokens_to_copy`
data tokens scattered in order among blank tokens, then a copy token, then blanks; at each of
the trailing blanks the model must output the next data token in order.

Layout (T = seq_len, n = num_tokens_to_copy, blanks = T - 2n - 1):
    inputs : [data and blanks mixed (n + blanks)] [COPY] [BLANK x n]
    targets: [IGNORE ...                        ] [IGNORE] [d_1 ... d_n]
Vocabulary: data tokens 0..V-3, blank V-2, copy V-1. Train and test targets are the same.

Simplification: MAD inserts blanks with `np.insert` at random indices (unseeded); we choose the
data positions as a uniformly random ordered subset, which is seeded and vectorised.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from .base import IGNORE, Split, Task, rand_subset, randint


@dataclass(frozen=True)
class SelectiveCopying(Task):
    name: ClassVar[str] = "selective_copying"
    vocab_size: int = 16
    seq_len: int = 256
    num_tokens_to_copy: int = 16

    def check(self):
        if self.seq_len <= 2 * self.num_tokens_to_copy + 1:
            raise ValueError(f"seq_len {self.seq_len} must exceed 2*num_tokens_to_copy+1 "
                             f"({2 * self.num_tokens_to_copy + 1})")
        if self.vocab_size < 3:
            raise ValueError(f"vocab_size {self.vocab_size} must be >= 3")

    def sample(self, n, generator, split: Split = "train"):
        g = generator
        V, T, k = self.vocab_size, self.seq_len, self.num_tokens_to_copy
        blank, copy = V - 2, V - 1
        head = T - k - 1
        data = randint(0, V - 2, (n, k), g)
        pos = rand_subset(n, head, k, g).sort(-1).values
        inputs = torch.full((n, T), blank, dtype=torch.long, device=g.device)
        inputs.scatter_(1, pos, data)
        inputs[:, head] = copy
        targets = torch.full((n, T), IGNORE, dtype=torch.long, device=g.device)
        targets[:, head + 1:] = data
        return inputs, targets
