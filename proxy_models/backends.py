"""The one module where kernel backends are chosen.

Design:
- `OPS` is a small table: op name -> direction ("fwd" / "bwd") -> candidates, fastest first.
  A candidate is a name plus a check that returns None when usable here, else the reason it is
  not. The last candidate of every op is plain PyTorch and is usable everywhere, so choosing
  never fails and never crashes a run.
- `choose(op, device, dtype, direction, shape)` picks the first usable candidate. The choice is
  made once per process per key (cached), and when the preferred candidate had to be skipped we
  log it once through `logging` (WARNING on a GPU, where it costs speed; INFO on a CPU, where it
  is expected).
- Environment facts (CUDA capability, Triton and fla versions) are detected lazily and cached;
  importing `fla` is attempted only on a CUDA machine (it needs a Triton driver even to import).
- `PRIMITIVE_OPS` maps a primitive spec to the op its module runs, so `layer_backends(arch)` can
  say, without building the model, which backend each layer would use on this machine (this is
  what `hybrid-nas show` prints). Modules record what they actually ran in `module.backend`.

Under `torch.compile` the choice is traced like any Python (no graph break) but not logged
(Dynamo cannot trace logging calls): call `layer_backends(arch, device, dtype)` before compiling
to make, and log, the choices eagerly.

Adding an op (e.g. a new recurrent kernel) is one entry in `OPS` and one in `PRIMITIVE_OPS`;
checks for fla kernels are built with `fla_check(...)`.
"""
from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import Callable

import torch

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------
# environment facts (cached: detected once per process)
@functools.lru_cache(maxsize=None)
def cuda_capability(index: int = 0) -> tuple[int, int] | None:
    if not torch.cuda.is_available():
        return None
    return torch.cuda.get_device_capability(index)


def _version_tuple(v: str) -> tuple[int, ...]:
    out = []
    for part in v.split("+")[0].split("."):
        digits = ""
        for ch in part:  # leading digits only: "0rc1" is 0
            if not ch.isdigit():
                break
            digits += ch
        if not digits:
            break
        out.append(int(digits))
    return tuple(out)


@functools.lru_cache(maxsize=None)
def triton_version() -> tuple[int, ...] | None:
    try:
        import triton
    except Exception:  # noqa: BLE001 - any import failure means "no triton"
        return None
    return _version_tuple(getattr(triton, "__version__", "0"))


@functools.lru_cache(maxsize=None)
def fla_version() -> tuple[int, ...] | None:
    if not torch.cuda.is_available() or triton_version() is None:
        return None
    try:
        import fla
    except Exception:  # noqa: BLE001
        return None
    return _version_tuple(getattr(fla, "__version__", "0"))


# ---------------------------------------------------------------------------------------------
# candidates and checks
@dataclass(frozen=True)
class Probe:
    """What a check may look at."""
    device: torch.device
    dtype: torch.dtype | None
    shape: tuple = ()  # op-specific sizes, e.g. (d_model, hidden) for the MoE dispatch


@dataclass(frozen=True)
class Candidate:
    name: str
    check: Callable[[Probe], str | None]


def always(p: Probe) -> str | None:
    return None


def needs_cuda(p: Probe) -> str | None:
    return None if p.device.type == "cuda" and torch.cuda.is_available() else "needs a CUDA device"


def fla_check(min_triton: tuple[int, ...] | None = None, hopper_min_triton: tuple[int, ...] | None = None,
              dtypes: tuple[torch.dtype, ...] | None = None) -> Callable[[Probe], str | None]:
    """A check for an fla Triton kernel: CUDA, fla importable, optionally a minimum Triton, and a
    stricter minimum on Hopper (sm90), where fla 0.6 refuses gated backward kernels with
    Triton < 3.7.1."""
    def check(p: Probe) -> str | None:
        why = needs_cuda(p)
        if why:
            return why
        if not _FLA_ENABLED:
            return "fla kernels are off (opt in: set_fla_enabled(True), or fla_kernels: true in a study config)"
        if fla_version() is None:
            return "flash-linear-attention (fla) or triton is not importable"
        tv = triton_version() or ()
        if min_triton and tv < min_triton:
            return f"triton {'.'.join(map(str, tv))} < {'.'.join(map(str, min_triton))}"
        cap = cuda_capability(p.device.index or 0)
        if hopper_min_triton and cap is not None and cap[0] == 9 and tv < hopper_min_triton:
            return (f"triton {'.'.join(map(str, tv))} < {'.'.join(map(str, hopper_min_triton))} "
                    f"gives wrong results for this kernel on Hopper")
        if dtypes is not None and p.dtype is not None and p.dtype not in dtypes:
            return f"dtype {p.dtype} not supported"
        return None
    return check


def triton_check(p: Probe) -> str | None:
    """A check for the project's own Triton kernels (proxy_models/ops/*/triton.py)."""
    why = needs_cuda(p)
    if why:
        return why
    return None if triton_version() is not None else "triton is not importable"


def _fla_parallel_ssd(p: Probe) -> str | None:
    """fla's quadratic parallel_simple_gla: trains on Hopper (no refused gated chunk kernel), but
    costs O(T^2), so only for T <= PARALLEL_MAX_T (shape = (T,); empty = a typical training length)."""
    why = fla_check()(p)
    if why:
        return why
    from proxy_models.ops.ssd.fla import PARALLEL_MAX_T  # torch-only module: no fla import
    if not p.shape or p.shape[0] <= PARALLEL_MAX_T:
        return None
    return f"T={p.shape[0]} > {PARALLEL_MAX_T} for the quadratic form"


def _flash_sdpa(p: Probe) -> str | None:
    why = needs_cuda(p)
    if why:
        return why
    if p.dtype not in (torch.float16, torch.bfloat16):
        return f"flash attention needs fp16/bf16, got {p.dtype}"
    if p.shape and p.shape[0] > 256:
        return f"head_dim {p.shape[0]} > 256"
    return None


def _grouped_mm(p: Probe) -> str | None:
    if not hasattr(torch.nn.functional, "grouped_mm"):
        return "torch.nn.functional.grouped_mm needs torch >= 2.10"
    # The kernels (and the meta function torch.compile traces with) take bf16 only, and need
    # 16-byte aligned rows.
    if p.dtype != torch.bfloat16:
        return f"grouped_mm takes bf16, got {p.dtype}"
    if any(s % 8 for s in p.shape):
        return f"grouped_mm needs sizes divisible by 8, got {p.shape}"
    if p.device.type == "cuda":
        cap = cuda_capability(p.device.index or 0)
        if cap is None or cap[0] < 8:
            return f"grouped_mm needs sm80+, got {cap}"
    elif p.device.type != "cpu":
        return f"no grouped_mm on {p.device.type}"
    return None


# op -> direction -> candidates (fastest first; the last one is plain PyTorch)
OPS: dict[str, dict[str, tuple[Candidate, ...]]] = {
    # causal attention without a window: is_causal=True lets SDPA pick flash attention
    "sdpa_causal": {"fwd": (Candidate("sdpa-flash", _flash_sdpa),
                            Candidate("sdpa-efficient", needs_cuda),
                            Candidate("sdpa-cpu", always))},
    # sliding window: an explicit boolean mask, which flash attention does not take
    "sdpa_masked": {"fwd": (Candidate("sdpa-efficient", needs_cuda),
                            Candidate("sdpa-cpu", always))},
    "moe_dispatch": {"fwd": (Candidate("grouped-mm", _grouped_mm),
                             Candidate("expert-loop", always))},
    # recurrent primitives (proxy_models/ops): fla Triton kernels on a GPU, else chunked PyTorch.
    # SSD is fla's gated simple_gla: its backward is refused on Hopper with Triton < 3.7.1.
    "ssd": {"fwd": (Candidate("fla-chunk", fla_check()), Candidate("torch-chunked", always)),
            "bwd": (Candidate("fla-chunk", fla_check(hopper_min_triton=(3, 7, 1))),
                    Candidate("fla-parallel", _fla_parallel_ssd),
                    Candidate("torch-chunked", always))},
    # ungated chunk_retention and the DPLR chunk_rwkv7 do not use the refused gated kernel
    "retention": {"fwd": (Candidate("fla-chunk", fla_check()), Candidate("torch-chunked", always))},
    # RWKV-7: "triton-scan" is the PyTorch chunked form with its chunk-to-chunk recurrence (n
    # launches per direction) in one Triton launch each. fla's chunk_rwkv7 is opt-in and ran no
    # faster than the PyTorch form at proxy sizes; our fully fused kernels (ops/rwkv7/triton.py,
    # "triton") are correct but not faster either (one program per head walks the chunks: 9.0 ms
    # vs 8.4 ms fwd+bwd on an H200), so they run only when forced; docs/benchmarks.md
    "rwkv7": {"fwd": (Candidate("triton-scan", triton_check), Candidate("fla-chunk", fla_check()),
                      Candidate("torch-chunked", always))},
    # Mamba-1: fla has no selective-scan kernel (its Mamba layer needs mamba_ssm); ours is Triton
    "selective_scan": {"fwd": (Candidate("triton", triton_check), Candidate("torch-chunked", always))},
}


_CHOSEN: dict[tuple, str] = {}
# fla's kernels are opt-in. Measured (triton 3.6, fla 0.6): with fla's own autotuning the first
# call in a process spent minutes (H100: chunk_retention fwd+bwd 125 s, chunk_rwkv7 > 170 s); with
# one launch config per kernel (ops/fla_launch.py, the default now) 2-10 s (H200). But on the H200
# chunk_rwkv7 trained no faster than our PyTorch form at T=2K (12.1 vs 12.9 ms), the gated SSD
# backward is refused on Hopper, and chunk_retention's backward failed our self-test (relative
# error ~1), so nothing a trial runs gains enough to turn them on by default.
# Benchmarks and `fla_kernels: true` in a study config turn them on.
_FLA_ENABLED = False


def set_fla_enabled(flag: bool) -> None:
    """Allow or forbid (default) fla kernels in this process; cached choices are dropped on a change."""
    global _FLA_ENABLED
    if bool(flag) != _FLA_ENABLED:
        _FLA_ENABLED = bool(flag)
        _CHOSEN.clear()


def choose(op: str, device: torch.device | str | None = None, dtype: torch.dtype | None = None,
           direction: str = "fwd", shape: tuple = ()) -> str:
    """Name of the backend to run `op` with; decided once per process per key."""
    device = torch.device(device) if device is not None else default_device()
    key = (op, device.type, device.index, dtype, direction, tuple(shape))
    hit = _CHOSEN.get(key)
    if hit is not None:
        return hit
    table = OPS[op]
    cands = table.get(direction, table["fwd"])
    probe = Probe(device, dtype, tuple(shape))
    skipped = []
    name = cands[-1].name
    for c in cands:
        why = c.check(probe)
        if why is None:
            name = c.name
            break
        skipped.append(f"{c.name}: {why}")
    if skipped and not torch.compiler.is_compiling():  # dynamo cannot trace logging calls
        level = logging.WARNING if device.type == "cuda" else logging.INFO
        log.log(level, "backend for %s (%s, %s, %s): using %s (skipped %s)", op, direction, device, dtype,
                name, "; ".join(skipped))
    _CHOSEN[key] = name
    return name


def describe(op: str, device: torch.device | str | None = None, dtype: torch.dtype | None = None,
             shape: tuple = ()) -> str:
    """One label for an op: `fla-chunk`, or `fla-chunk (bwd: torch-chunked)` when directions differ."""
    fwd = choose(op, device, dtype, "fwd", shape)
    bwd = choose(op, device, dtype, "bwd", shape)
    return fwd if fwd == bwd else f"{fwd} (bwd: {bwd})"


def default_device() -> torch.device:
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def default_dtype(device: torch.device) -> torch.dtype:
    """What a training run uses on that device: bf16 autocast on a GPU, fp32 on a CPU."""
    return torch.bfloat16 if device.type == "cuda" else torch.float32


def reset() -> None:
    """Forget cached choices (tests)."""
    _CHOSEN.clear()


# ---------------------------------------------------------------------------------------------
# which op each primitive runs: spec, d_model -> (op, shape) or a fixed label
def _attention_op(spec, d_model):
    hd = d_model // spec.heads
    return ("sdpa_causal" if spec.window is None else "sdpa_masked", (hd,))


def _moe_op(spec, d_model):
    from search_space.primitives.swiglu import hidden_size
    return ("moe_dispatch", (d_model, hidden_size(spec.expand, d_model)))


PRIMITIVE_OPS: dict[str, Callable] = {
    "attention": _attention_op,
    "moe": _moe_op,
    "swiglu": lambda spec, d: "torch",
    "mamba1": lambda spec, d: ("selective_scan", ()),
    "mamba2": lambda spec, d: ("ssd", ()),
    "rwkv7": lambda spec, d: ("rwkv7", ()),
    "retention": lambda spec, d: ("retention", ()),
}


def primitive_backend(spec, d_model: int, device: torch.device | str | None = None,
                      dtype: torch.dtype | None = None) -> str:
    device = torch.device(device) if device is not None else default_device()
    dtype = dtype if dtype is not None else default_dtype(device)
    fn = PRIMITIVE_OPS.get(spec.type)
    if fn is None:
        return "torch"
    got = fn(spec, d_model)
    if isinstance(got, str):
        return got
    op, shape = got
    return describe(op, device, dtype, shape)


def layer_backends(arch, device: torch.device | str | None = None,
                   dtype: torch.dtype | None = None) -> dict[str, str]:
    """Layer path -> backend its module would use on this machine, without building the model.

    Paths: `blocks[i].mixer` (or `.mixer.parallel[j]`) and `blocks[i].channel`, repeats as
    `blocks[i]#r`, recursion bodies as `blocks[i].recursion.body[j]`."""
    from search_space.genome import RecursionSite

    d = arch.d_model
    out: dict[str, str] = {}

    def block(site):
        if len(site.mixers) == 1:
            out[f"{site.path}.mixer"] = primitive_backend(site.mixers[0].spec, d, device, dtype)
        else:
            for j, m in enumerate(site.mixers):
                out[f"{site.path}.mixer.parallel[{j}]"] = primitive_backend(m.spec, d, device, dtype)
        if site.block.channel.type != "none":
            out[f"{site.path}.channel"] = primitive_backend(site.block.channel, d, device, dtype)

    for s in arch.layout():
        if isinstance(s, RecursionSite):
            for b in s.body:
                block(b)
        else:
            block(s)
    return out
