"""What every synthetic task is: a seeded, batched generator of (inputs_BT, targets_BT) on a device.

- `sample(n, generator, split)` draws `n` fresh examples with a `torch.Generator` that lives on
  the target device, so data never crosses the host boundary and the same seed on the same
  device gives the same batch.
- `targets` hold the token the model must output at each position, or `IGNORE` (-100) where
  nothing is scored. `split="test"` scores only the positions the task is about (the recalled
  value, the copied token, ...). `split="train"` may score more: MAD trains its recall tasks as
  plain language modelling on the whole sequence (`is_training=True` returns the shifted
  inputs), and we keep that.
- Accuracy = fraction of scored (non-ignored) positions where argmax(logits) == target.

Legend: B batch, T time (input length), S slots (key-value pairs), K motif length, V vocabulary.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import torch

IGNORE = -100
Split = Literal["train", "test"]


@dataclass(frozen=True)
class Task:
    name: ClassVar[str] = ""
    vocab_size: int
    seq_len: int

    @property
    def input_len(self) -> int:
        """Length T of the generated inputs (some MAD tasks drop one token for the shift)."""
        return self.seq_len

    def sample(self, n: int, generator: torch.Generator, split: Split = "train") -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def check(self) -> None:
        """Raise ValueError naming the bad parameter; called by `make_task`."""


def rand_subset(n: int, size: int, k: int, generator: torch.Generator) -> torch.Tensor:
    """`n` rows of `k` distinct integers from range(size), uniformly (random keys, top-k)."""
    return torch.rand(n, size, generator=generator, device=generator.device).topk(k, dim=-1).indices


def randint(low: int, high: int, shape, generator: torch.Generator) -> torch.Tensor:
    return torch.randint(low, high, tuple(shape), generator=generator, device=generator.device)


def rand(shape, generator: torch.Generator) -> torch.Tensor:
    return torch.rand(tuple(shape), generator=generator, device=generator.device)


def accuracy(logits_BTV: torch.Tensor, targets_BT: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(number correct, number scored) as device tensors (no host sync)."""
    mask = targets_BT != IGNORE
    correct = (logits_BTV.argmax(-1) == targets_BT) & mask
    return correct.sum(), mask.sum()
