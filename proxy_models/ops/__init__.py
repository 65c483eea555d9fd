"""Sequence-mixing kernels of the recurrent primitives, one package per op.

Each op package holds (flash-linear-attention's habit):
- `naive.py`: the sequential recurrence written the way the paper writes it; the reference.
- `chunked.py`: the fast plain-PyTorch form (chunked, mostly matrix products); runs everywhere.
- `fla.py` (where fla has a kernel) or `triton.py` (our own kernels): GPU only, imported lazily.

`dispatch.run` calls the implementation `proxy_models.backends` chose, after `selftest` has
checked a fast one against the PyTorch form on this machine (forward, and backward for
training); anything that fails or raises falls back to the PyTorch form, logged once.

Layout convention (fla's): `[B, T, H, K]` for per-head inputs, `[B, H, K, V]` for states,
log-decays in fp32. Which implementation runs is decided in `proxy_models.backends`; the
modules never pick a kernel themselves.

Ops: `selective_scan` (Mamba-1), `ssd` (Mamba-2; scalar decay per head), `rwkv7` (the
generalized delta rule with a diagonal decay), `retention` (RetNet; fixed per-head decay).
"""
