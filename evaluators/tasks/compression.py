"""MAD's compression task, adapted to a causal language model.

MAD: `seq_len - 1` random tokens and a compression token go through the model as an encoder;
a small MLP decoder sees only the output at the compression token (plus a position embedding)
and must reconstruct every input token: the sequence must fit in one vector.

A causal LM has no separate decoder, so we keep the question (can the model hold the whole
sequence and read it back by position) and move the bottleneck into the model: after the
compression token the inputs are blanks and at the j-th output position the model must emit
the j-th token of the sequence. Attention can look back; a recurrent model must have packed
the sequence into its state. This is MAD's (non-selective) copying with MAD's compression
vocabulary; the noise option masks noisy positions as MAD does.

Layout (L = seq_len: L-1 tokens plus the compression token, as MAD):
    inputs : [x_1 .. x_{L-1}] [C] [BLANK x (L-2)]
    targets: [IGNORE ...     ] [x_1] [x_2 .. x_{L-1}]
Vocabulary: data 0..V-3 (minus the noise vocabulary at its top), blank V-2, compression V-1.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from .base import IGNORE, Split, Task, rand, randint


@dataclass(frozen=True)
class Compression(Task):
    name: ClassVar[str] = "compression"
    vocab_size: int = 16
    seq_len: int = 32
    noise_vocab_size: int = 0
    frac_noise: float = 0.0

    @property
    def input_len(self) -> int:
        return 2 * self.seq_len - 2

    def check(self):
        if self.seq_len < 3:
            raise ValueError(f"seq_len {self.seq_len} must be >= 3")
        if self.vocab_size - 2 - self.noise_vocab_size < 2:
            raise ValueError(f"vocab_size {self.vocab_size} leaves fewer than 2 data tokens")
        if self.frac_noise > 0 and self.noise_vocab_size < 1:
            raise ValueError("noise_vocab_size must be >= 1 when frac_noise > 0")

    def sample(self, n, generator, split: Split = "train"):
        g = generator
        V, m = self.vocab_size, self.seq_len - 1
        blank, comp = V - 2, V - 1
        ns = V - 2 - self.noise_vocab_size
        data = randint(0, ns, (n, m), g)
        keep = torch.ones((n, m), dtype=torch.bool, device=g.device)
        if self.frac_noise > 0:
            keep = rand((n, m), g) >= self.frac_noise
            data = torch.where(keep, data, randint(ns, ns + self.noise_vocab_size, (n, m), g))
        dev = g.device
        inputs = torch.cat([data, torch.full((n, 1), comp, device=dev, dtype=torch.long),
                            torch.full((n, m - 1), blank, device=dev, dtype=torch.long)], 1)
        targets = torch.cat([torch.full((n, m), IGNORE, device=dev, dtype=torch.long),
                             torch.where(keep, data, IGNORE)], 1)
        return inputs, targets
