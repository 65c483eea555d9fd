"""The stdlib text corpus: fixed split, windows, and bits per byte."""
import math

import torch

from evaluators.text import MODULES, TextTask, bits_per_byte, is_val, load_corpus


def test_split_is_fixed_and_disjoint():
    c = load_corpus()
    assert set(c.train_modules).isdisjoint(c.val_modules)
    assert c.val_modules and len(c.train) > 10 * 2**17 and len(c.val) > 2**16
    assert all(is_val(m) for m in c.val_modules) and not any(is_val(m) for m in c.train_modules)
    assert set(c.train_modules) | set(c.val_modules) <= set(MODULES)
    assert c.id == load_corpus().id


def test_windows_are_next_byte_targets():
    t = TextTask(seq_len=32, eval_windows=8)
    x, y = t.sample(4, torch.Generator().manual_seed(0), "train")
    assert x.shape == y.shape == (4, 32) and torch.equal(x[:, 1:], y[:, :-1])
    val = list(t.val_batches("cpu", batch=3))
    assert sum(b[0].shape[0] for b in val) == 8
    assert torch.equal(val[0][0], list(t.val_batches("cpu", batch=3))[0][0])  # the same for every trial


def test_uniform_model_is_8_bits():
    assert bits_per_byte(math.log(256)) == 8.0
