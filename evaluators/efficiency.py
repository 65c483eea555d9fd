"""Cost numbers of an architecture: analytic (from `search_space`) and measured on this device.

Measured (`measure`):
- prefill tokens/s: `forward` on (prefill_batch, prefill_context) tokens, no grad, best of
  `reps` after a warm-up call (bf16 autocast on CUDA, as training).
- decode tokens/s: `init_state(decode_batch)` then `decode_steps` calls of `step`, timed
  after a short warm-up; tokens/s = batch x steps / seconds.
- decode memory: allocated bytes of the tensors in the decode state after `decode_steps`
  tokens, per sequence (batch 1 equivalent), in the state's own dtype. This is what decoding
  really holds: a full-attention KV cache is allocated in blocks of positions
  (`proxy_models.attention._CACHE_BLOCK`), so it can exceed the analytic bytes at that context
  by up to one block. `decode_state_growth_bytes` is the growth between half and all of the steps.
- peak training memory is measured by `evaluate` around training: the CUDA allocator's peak
  on GPU, the process's peak resident set (VmHWM, reset first) on CPU.
The backend each layer used comes from `model.backends()`.
"""
from __future__ import annotations

import os
import time

import torch

MIB = 2 ** 20


def state_bytes(state) -> int:
    """Bytes of all tensors in a (nested) decode state, each storage counted once."""
    seen, total = set(), 0

    def walk(x):
        nonlocal total
        if isinstance(x, torch.Tensor):
            key = (x.untyped_storage().data_ptr(), x.device)
            if key not in seen:
                seen.add(key)
                total += x.untyped_storage().nbytes()
        elif isinstance(x, dict):
            for v in x.values():
                walk(v)
        elif isinstance(x, (list, tuple)):
            for v in x:
                walk(v)
        elif hasattr(x, "__dict__"):
            for v in vars(x).values():
                walk(v)
    walk(state)
    return total


def rss_mib(peak: bool = False) -> float:
    """Current (or peak since the last reset) resident set size of this process, Linux."""
    key = "VmHWM:" if peak else "VmRSS:"
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1]) / 1024
    except OSError:  # pragma: no cover - non-Linux
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:  # pragma: no cover
        return False


# The caching allocator's cap per GPU, as this process last set it (torch has no getter): GPU
# packing caps a shared GPU for the whole worker, and a trial's `max_memory_mib` narrows that for
# the trial and restores it afterwards.
_CUDA_FRACTION: dict[int, float] = {}


def cuda_memory_fraction(device: torch.device) -> float:
    return _CUDA_FRACTION.get(device.index or 0, 1.0)


def set_cuda_memory_fraction(device: torch.device, fraction: float) -> None:
    """Cap this process's CUDA caching allocator at `fraction` of the device: allocations beyond it
    raise a real `torch.cuda.OutOfMemoryError`."""
    index = device.index or 0
    if _CUDA_FRACTION.get(index, 1.0) != fraction:
        torch.cuda.set_per_process_memory_fraction(fraction, index)
        _CUDA_FRACTION[index] = fraction


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"cpu ({n} cores)"


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _autocast(device):
    return torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu", enabled=False)


@torch.no_grad()
def measure(model: torch.nn.Module, vocab_size: int, device: torch.device, *, prefill_context: int,
            prefill_batch: int, decode_batch: int, decode_steps: int, reps: int = 3,
            seed: int = 0) -> dict[str, float]:
    model.eval()
    g = torch.Generator(device=device).manual_seed(seed)
    out: dict[str, float] = {}
    x = torch.randint(0, vocab_size, (prefill_batch, prefill_context), generator=g, device=device)
    with _autocast(device):
        model(x)  # warm-up
        best = float("inf")
        for _ in range(reps):
            _sync(device)
            t = time.perf_counter()
            model(x)
            _sync(device)
            best = min(best, time.perf_counter() - t)
    out["prefill_tokens_per_s"] = x.numel() / best

    tok = torch.randint(0, vocab_size, (decode_steps, decode_batch), generator=g, device=device)
    with _autocast(device):
        state = model.init_state(decode_batch)
        warm = min(4, decode_steps)
        for t in range(warm):
            _, state = model.step(tok[t], state)
        state = model.init_state(decode_batch)
        half_bytes = 0
        _sync(device)
        t0 = time.perf_counter()
        for t in range(decode_steps):
            _, state = model.step(tok[t], state)
            if t + 1 == decode_steps // 2:
                half_bytes = state_bytes(state)
        _sync(device)
        dt = time.perf_counter() - t0
    full = state_bytes(state)
    out["decode_tokens_per_s"] = decode_batch * decode_steps / dt
    out["decode_memory_mib"] = full / decode_batch / MIB
    out["decode_state_bytes"] = float(full / decode_batch)
    out["decode_state_growth_bytes"] = float((full - half_bytes) / decode_batch)
    out["decode_context"] = float(decode_steps)
    model.train()
    return out
