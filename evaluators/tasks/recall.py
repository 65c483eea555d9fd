"""MAD's recall family (Poli et al. 2024, `mad-lab/mad/data/instances.py`): in-context recall,
noisy in-context recall and fuzzy in-context recall, vectorised over the batch.

In-context recall: a sequence of key-value pairs; every sequence has its own random map from
keys (first half of the non-special vocabulary) to values (second half); keys repeat, and
each time a key comes back the model must predict its value (MAD's `multi_query=True`, the
setting of every MAD baseline config). Test targets: the value after a repeated key; train
targets: every next token (MAD trains these tasks as language modelling).

Noisy: with probability `frac_noise` a pair slot holds two tokens of a separate noise
vocabulary (the last `noise_vocab_size` ids before the special tokens) and is never scored.

Fuzzy: keys and values are motifs of 1..k_motif_size / 1..v_motif_size distinct tokens; test
keys always have the maximum size (as MAD). Sequences are left-padded with a pad token.

Simplifications against MAD (documented, all deliberate):
- MAD's inputs have seq_len - 1 tokens (its shift drops one); ours too for (noisy) recall,
  fuzzy produces exactly seq_len inputs.
- Only `multi_query=True`; the final pair is always a repeat of an earlier key (MAD's probe),
  so every sequence has at least one scored position.
- Fuzzy: MAD inserts a designated probe pair at a random position and repeats it at the end;
  we pick the probe among the pairs already placed (same distribution of distances, one less
  special case). Pad tokens are not training targets (MAD trains on them; they carry nothing).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from .base import IGNORE, Split, Task, rand, rand_subset, randint


def _first_occurrence(ids_BS: torch.Tensor) -> torch.Tensor:
    """Index of the first slot with the same id (itself when new)."""
    S = ids_BS.shape[1]
    eq = ids_BS[:, :, None] == ids_BS[:, None, :]
    eq &= torch.ones(S, S, dtype=torch.bool, device=ids_BS.device).tril()
    return eq.float().argmax(-1)  # the first maximum: the first True along the row


@dataclass(frozen=True)
class InContextRecall(Task):
    name: ClassVar[str] = "in_context_recall"
    vocab_size: int = 16
    seq_len: int = 128
    noise_vocab_size: int = 0
    frac_noise: float = 0.0

    @property
    def input_len(self) -> int:
        return self.seq_len - 1

    def check(self):
        if self.seq_len % 2 or self.seq_len < 4:
            raise ValueError(f"seq_len {self.seq_len} must be even and >= 4")
        if not 0 <= self.frac_noise < 1:
            raise ValueError(f"frac_noise {self.frac_noise} must be in [0, 1)")
        if self.frac_noise > 0 and self.noise_vocab_size < 1:
            raise ValueError("noise_vocab_size must be >= 1 when frac_noise > 0")
        if (self.vocab_size - self.noise_vocab_size) < 4:
            raise ValueError(f"vocab_size {self.vocab_size} leaves fewer than 4 key/value tokens")

    def sample(self, n, generator, split: Split = "train"):
        g = generator
        ns = self.vocab_size - self.noise_vocab_size
        n_keys = ns // 2
        S = self.seq_len // 2
        keys_BS = randint(0, n_keys, (n, S), g)
        kv_BK = randint(n_keys, ns, (n, n_keys), g)  # MAD: values drawn with replacement
        noise_BS = rand((n, S), g) < self.frac_noise
        # MAD keeps one random slot noise-free; we keep slot 0 (the probe needs an earlier pair)
        noise_BS[:, 0] = False
        noise_BS[:, -1] = False
        # the last pair repeats a key shown earlier (the probe)
        j = torch.multinomial((~noise_BS[:, :-1]).float(), 1, generator=g).squeeze(1)
        keys_BS[:, -1] = keys_BS.gather(1, j[:, None]).squeeze(1)
        vals_BS = kv_BK.gather(1, keys_BS)
        onehot = torch.nn.functional.one_hot(keys_BS, n_keys) * (~noise_BS)[..., None]
        seen_BS = (onehot.cumsum(1) - onehot).gather(2, keys_BS[..., None]).squeeze(2) > 0
        if self.frac_noise > 0:
            noise = randint(ns, ns + self.noise_vocab_size, (n, S, 2), g)
            keys_BS = torch.where(noise_BS, noise[..., 0], keys_BS)
            vals_BS = torch.where(noise_BS, noise[..., 1], vals_BS)
        seq = torch.stack([keys_BS, vals_BS], -1).reshape(n, 2 * S)
        scored = torch.stack([torch.zeros_like(seen_BS), seen_BS & ~noise_BS], -1).reshape(n, 2 * S)
        inputs = seq[:, :-1]
        if split == "train":
            return inputs, seq[:, 1:].clone()
        return inputs, torch.where(scored[:, 1:], seq[:, 1:], IGNORE)


@dataclass(frozen=True)
class NoisyInContextRecall(InContextRecall):
    name: ClassVar[str] = "noisy_in_context_recall"
    vocab_size: int = 32
    noise_vocab_size: int = 16
    frac_noise: float = 0.2


@dataclass(frozen=True)
class FuzzyInContextRecall(Task):
    name: ClassVar[str] = "fuzzy_in_context_recall"
    vocab_size: int = 16
    seq_len: int = 128
    k_motif_size: int = 3
    v_motif_size: int = 3
    noise_vocab_size: int = 0
    frac_noise: float = 0.0

    def check(self):
        ns = self.vocab_size - 1 - self.noise_vocab_size
        if ns // 2 < self.k_motif_size or ns - ns // 2 < self.v_motif_size:
            raise ValueError(f"vocab_size {self.vocab_size} is too small for motifs of "
                             f"{self.k_motif_size}/{self.v_motif_size} distinct tokens")
        if self.seq_len < 4 * (self.k_motif_size + self.v_motif_size):
            raise ValueError(f"seq_len {self.seq_len} is too short for motifs of "
                             f"{self.k_motif_size}+{self.v_motif_size} tokens")
        if not 0 <= self.frac_noise < 1:
            raise ValueError(f"frac_noise {self.frac_noise} must be in [0, 1)")
        if self.frac_noise > 0 and self.noise_vocab_size < 1:
            raise ValueError("noise_vocab_size must be >= 1 when frac_noise > 0")

    def sample(self, n, generator, split: Split = "train"):
        g = generator
        km, vm = self.k_motif_size, self.v_motif_size
        pad = self.vocab_size - 1
        ns = self.vocab_size - 1 - self.noise_vocab_size
        nk = ns // 2
        L = self.seq_len + 1          # tokens before the shift
        S = L // 2                    # upper bound on pairs (each has >= 2 tokens)
        dev = g.device
        ks = randint(1, km + 1, (n, S), g) if split == "train" else torch.full((n, S), km, device=dev)
        vs = randint(1, vm + 1, (n, S), g)
        key_tok = rand_subset(n * S, nk, km, g).view(n, S, km)
        val_tok = rand_subset(n * S, ns - nk, vm, g).view(n, S, vm) + nk
        noise_BS = rand((n, S), g) < self.frac_noise
        noise_BS[:, 0] = False
        # a key's identity is its size and tokens; noise slots get unique negative ids
        base = nk + 1
        j = torch.arange(km, device=dev)
        ids = ((key_tok + 1) * (j < ks[..., None]) * base ** j).sum(-1)
        ids = torch.where(noise_BS, -1 - torch.arange(S, device=dev).expand(n, S), ids)
        first = _first_occurrence(ids)
        seen = first < torch.arange(S, device=dev)
        val_tok = val_tok.gather(1, first[..., None].expand(n, S, vm))
        vs = vs.gather(1, first)
        lens = ks + vs
        # keep whole pairs that leave room for the final probe (at most km + vm tokens)
        ends = lens.cumsum(1)
        kept = ends <= L - (km + vm)
        probe = torch.multinomial((kept & ~noise_BS).float(), 1, generator=g).squeeze(1)
        ar = torch.arange(n, device=dev)
        # append the probe as slot S (a repeat: scored)
        ks = torch.cat([ks, ks[ar, probe][:, None]], 1)
        vs = torch.cat([vs, vs[ar, probe][:, None]], 1)
        key_tok = torch.cat([key_tok, key_tok[ar, probe][:, None]], 1)
        val_tok = torch.cat([val_tok, val_tok[ar, probe][:, None]], 1)
        seen = torch.cat([seen, torch.ones(n, 1, dtype=torch.bool, device=dev)], 1)
        noise_BS = torch.cat([noise_BS, torch.zeros(n, 1, dtype=torch.bool, device=dev)], 1)
        kept = torch.cat([kept, torch.ones(n, 1, dtype=torch.bool, device=dev)], 1)
        lens = (ks + vs) * kept
        starts = lens.cumsum(1) - lens
        total = lens.sum(1)
        offset = (L - total)[:, None]            # left padding
        # slot-local token t: key[t] for t < ks, else value[t - ks]
        t = torch.arange(km + vm, device=dev)
        both = torch.cat([key_tok, val_tok], -1)
        idx = torch.where(t < ks[..., None], t, km + t - ks[..., None]).clamp(max=km + vm - 1)
        tok = both.gather(2, idx)
        if self.frac_noise > 0:
            noise_tok = randint(ns, ns + self.noise_vocab_size, tok.shape, g)
            tok = torch.where(noise_BS[..., None], noise_tok, tok)
        valid = (t < lens[..., None])
        is_val = valid & (t >= ks[..., None])
        score = is_val & (seen & ~noise_BS)[..., None]
        pos = torch.where(valid, offset[..., None] + starts[..., None] + t, L)  # L = dump column
        seq = torch.full((n, L + 1), pad, dtype=torch.long, device=dev)
        seq.scatter_(1, pos.view(n, -1), tok.view(n, -1))
        sc = torch.zeros((n, L + 1), dtype=torch.bool, device=dev)
        sc.scatter_(1, pos.view(n, -1), score.view(n, -1))
        seq, sc = seq[:, :L], sc[:, :L]
        inputs = seq[:, :-1]
        if split == "train":
            return inputs, torch.where(seq[:, 1:] == pad, IGNORE, seq[:, 1:])
        return inputs, torch.where(sc[:, 1:], seq[:, 1:], IGNORE)
