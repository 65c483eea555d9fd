"""Trials share GPUs: how many proxy trainings fit on one device, from measured memory.

`resources: {gpu: auto}` in a study config turns this on. Before the search (in `preflight`):

    sample `probe_samples` architectures from the space (no Optuna: `space.random`)
        │  rank them by the evaluators' analytic training-memory estimate
        ▼
    one Ray task on one whole GPU (max_calls=1: its CUDA context leaves with it)
        │  for the `probe_top` heaviest: `evaluate()` at the study's fidelity with two training
        │  steps per task (every task model resident, AdamW moments allocated: the real peak),
        │  reading the allocator's peak *reserved* memory, plus what the process holds outside
        │  the allocator (CUDA context, cuBLAS workspaces, kernels)
        ▼
    plan_packing(): need = max peak x memory_margin;  per trial = need + context
        k = min(floor(usable / per trial), max_per_gpu, CPUs per GPU / CPUs per trial), >= 1
        gpu per trial = 1/k (rounded down at Ray's 1e-4 resolution, so k of them fit)

Design choices
- Measured, not estimated: the estimate only *ranks* architectures (it is generous and
  its errors are mostly shared between them); the number that sets k is a real training
  step's peak. Architectures the sample did not see can still be heavier, hence the margin
  and the per-process cap below.
- Ray's fractional GPUs are bookkeeping only, so each worker caps its own caching allocator
  with `torch.cuda.set_per_process_memory_fraction` at its share (usable / k - context). An
  architecture that still overflows gets a CUDA OOM inside its own process, which `evaluate`
  records as a failed trial; its neighbours never see it.
- Every GPU trial records in the store (`TrialResult.extra`) how many trials shared its device
  (`shared_device_trials` = k), its `gpu_fraction` and `memory_cap_mib`; the study's attributes
  keep the whole plan. Measured speed metrics of a packed trial (tokens/s) are taken on a
  shared device: compare them only between trials of the same packing.
- No GPU in the cluster: `auto` falls back to the CPU settings (gpu 0) with a one-line note.
- Per-process start-up is paid once per Ray actor: the orchestrator reuses actors between
  trials (`reuse_actors=True`); `setup_worker` checks at the start of each trial that the CUDA
  context is healthy, so a context poisoned by an earlier trial (an illegal address is sticky)
  fails that actor before the trial is stored, and Tune retries it on a fresh one.
- fla's Triton kernels autotune on their first call in a process (measured on an H100: 125 s
  for chunk_retention forward+backward, over 170 s for chunk_rwkv7), far more than a proxy
  trial lasts, so trials run with fla off (`proxy_models.backends.set_fla_enabled(False)`:
  the project's own Triton and PyTorch paths) unless the config sets `fla_kernels: true`;
  then `TRITON_CACHE_AUTOTUNING=1` keeps autotuning results in Triton's on-disk cache, so
  only the first process on a machine pays for each kernel and shape.
"""
from __future__ import annotations

import logging
import math
import random
from dataclasses import asdict, dataclass, field
from typing import Any

log = logging.getLogger(__name__)

MIB = 2 ** 20
#: what a process holds outside the caching allocator when it could not be measured
DEFAULT_CONTEXT_MIB = 500.0
#: left free on each GPU (other users, fragmentation outside the allocator)
DEFAULT_RESERVE_FRAC = 0.03
#: Ray accounts resources in units of 1e-4
RAY_RESOLUTION = 1e-4


@dataclass
class Plan:
    """How trials share a device; `as_dict()` is what the study and every trial record."""
    mode: str                              # "gpu" or "cpu"
    gpu_fraction: float = 0.0              # Ray GPU per trial
    trials_per_gpu: int = 1                # k
    need_mib: float = 0.0                  # measured peak x margin, per trial
    context_mib: float = DEFAULT_CONTEXT_MIB
    device_mib: float = 0.0                # memory of one GPU
    usable_mib: float = 0.0
    memory_cap_mib: float = 0.0            # each worker's allocator cap
    limited_by: str = ""                   # memory | max_per_gpu | cpus
    device: str = ""
    probed: list = field(default_factory=list)   # [{fingerprint, estimate_mib, peak_reserved_mib, ...}]
    probe_seconds: float = 0.0
    note: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def plan_packing(need_mib: float, device_mib: float, *, max_per_gpu: int = 8, cpus_per_gpu: float = math.inf,
                 cpu_per_trial: float = 1.0, context_mib: float = DEFAULT_CONTEXT_MIB,
                 reserve_frac: float = DEFAULT_RESERVE_FRAC) -> Plan:
    """The arithmetic: k trials per GPU and each one's share. `need_mib` already includes the
    safety margin; `context_mib` is added per process."""
    if need_mib <= 0 or device_mib <= 0:
        raise ValueError(f"need_mib ({need_mib}) and device_mib ({device_mib}) must be positive")
    usable = device_mib * (1.0 - reserve_frac)
    per_trial = need_mib + context_mib
    limits = {"memory": math.floor(usable / per_trial), "max_per_gpu": int(max_per_gpu),
              "cpus": math.floor(cpus_per_gpu / cpu_per_trial + 1e-9) if math.isfinite(cpus_per_gpu) else 1 << 30}
    limited_by = min(limits, key=lambda n: limits[n])
    k = max(1, limits[limited_by])
    note = ""
    if limits["memory"] < 1:
        note = (f"one trial needs about {per_trial:.0f} MiB but a GPU has {usable:.0f} MiB usable: "
                "trials run one per GPU and the largest may run out of memory")
    fraction = 1.0 if k == 1 else math.floor(1.0 / k / RAY_RESOLUTION) * RAY_RESOLUTION
    cap = max(need_mib, usable / k - context_mib) if k > 1 else usable - context_mib
    return Plan(mode="gpu", gpu_fraction=fraction, trials_per_gpu=k, need_mib=need_mib, context_mib=context_mib,
                device_mib=device_mib, usable_mib=usable, memory_cap_mib=min(cap, device_mib), limited_by=limited_by,
                note=note)


def cpu_plan() -> Plan:
    return Plan(mode="cpu", note="resources.gpu: auto found no GPU in the Ray cluster; trials run on CPUs (gpu: 0)")


# ----------------------------------------------------------------------------------------------
# choosing and measuring the heaviest architectures
def heaviest(space, fid, *, samples: int = 48, top: int = 3, seed: int = 0) -> list[tuple[float, Any]]:
    """(estimated MiB, architecture) of the `top` heaviest of `samples` random draws, heaviest first."""
    from evaluators.evaluate import estimate_train_memory_mib
    from search_space.errors import UserError

    rng = random.Random(seed)
    seen, ranked = set(), []
    for _ in range(samples):
        arch = space.random(rng)
        fp = arch.fingerprint()
        if fp in seen:
            continue
        seen.add(fp)
        if fid.d_model and fid.d_model != arch.d_model:
            try:
                est = estimate_train_memory_mib(arch.scaled(d_model=fid.d_model), fid)
            except UserError:  # cannot be rescaled: such a trial fails at once, using no memory
                continue
        else:
            est = estimate_train_memory_mib(arch, fid)
        ranked.append((est, arch))
    ranked.sort(key=lambda p: -p[0])
    return ranked[:top]


def probe_fidelity(fid):
    """The study's fidelity cut to a few training steps per task: every model resident, AdamW
    state allocated, the same batch and sequence shapes, and (with `cuda_graphs`) each task's step
    captured and replayed, so the graphs' memory pool is in the peak; no efficiency timings
    (their models are smaller than training's), no time limit."""
    from evaluators.tasks import make_task
    from evaluators.text import TextTask
    from evaluators.trainer import GRAPH_WARMUP

    n = GRAPH_WARMUP + 2 if fid.cuda_graphs else 2
    tasks = [t.model_copy(update={"tokens": n * t.batch_size * make_task(t.name, **t.params).input_len})
             for t in fid.tasks]
    text = None
    if fid.text is not None:
        text = fid.text.model_copy(update={"tokens": n * fid.text.batch_size * TextTask(seq_len=fid.text.seq_len).input_len})
    eff = fid.efficiency.model_copy(update={"measure": False})
    return fid.model_copy(update={"tasks": tasks, "text": text, "efficiency": eff, "max_seconds": None,
                                  "lr_grid": None, "weight_decay_grid": None, "report_every": n})


def measure_peaks(arch_dicts: list[dict], fid_dict: dict, device: str = "cuda") -> dict:
    """Peak memory of a short training of each architecture, in this process (a Ray GPU task).
    Returns {"device", "device_mib", "context_mib", "archs": [{peak_reserved_mib, peak_allocated_mib,
    status, error}]}."""
    import torch

    from evaluators import evaluate
    from evaluators.fidelity import Fidelity
    from proxy_models import backends
    from search_space.genome import Architecture

    backends.set_fla_enabled(False)
    fid = Fidelity.model_validate(fid_dict)
    dev = torch.device(device)
    out: dict[str, Any] = {"archs": []}
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("this Ray worker was given a GPU but CUDA is not available in it")
    if dev.type == "cuda":
        dev = torch.device("cuda", torch.cuda.current_device())
        props = torch.cuda.get_device_properties(dev)
        out["device"], out["device_mib"] = props.name, props.total_memory / MIB
    outside = []
    for d in arch_dicts:
        arch = Architecture.from_dict(d)
        if dev.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(dev)
        res = evaluate(arch, fid, device=dev, seed=0)
        row = {"fingerprint": arch.fingerprint(), "status": res.status, "error": res.error}
        if dev.type == "cuda":
            row["peak_reserved_mib"] = torch.cuda.max_memory_reserved(dev) / MIB
            row["peak_allocated_mib"] = torch.cuda.max_memory_allocated(dev) / MIB
            free, total = torch.cuda.mem_get_info(dev)
            # what this process holds outside the caching allocator (context, workspaces, kernels)
            outside.append((total - free) / MIB - torch.cuda.memory_reserved(dev) / MIB)
        else:
            row["peak_reserved_mib"] = row["peak_allocated_mib"] = float(res.measured.get("peak_memory_mib", 0.0))
        out["archs"].append(row)
    if outside:
        # other processes on the device would inflate this; keep it in a sane range
        out["context_mib"] = min(3000.0, max(300.0, max(outside)))
    return out


def _ray_gpu_layout() -> tuple[float, float]:
    """(GPUs on the largest GPU node, CPUs per GPU on that node) of the Ray cluster."""
    import ray
    best = (0.0, math.inf)
    for n in ray.nodes():
        if not n.get("Alive"):
            continue
        g = n["Resources"].get("GPU", 0.0)
        if g > best[0]:
            best = (g, n["Resources"].get("CPU", 0.0) / g)
    return best


def resolve_auto(cfg, space, fid, *, samples: int = 48, top: int = 3, timeout_s: float = 900.0):
    """`resources.gpu: auto` -> (config with a numeric GPU share, Plan). Needs Ray running."""
    import time

    import ray

    from .config import ConfigError

    res = cfg.resources
    gpus, cpus_per_gpu = _ray_gpu_layout()
    if gpus <= 0:
        plan = cpu_plan()
        log.warning(plan.note)
        return cfg.with_overrides(resources={**res.model_dump(), "gpu": 0.0}), plan
    picked = heaviest(space, fid, samples=samples, top=top, seed=cfg.seed)
    t0 = time.time()
    # nothing else runs yet: give the probe the GPU's CPUs too (building eight task models is CPU work)
    task = ray.remote(num_gpus=1, num_cpus=max(1.0, min(8.0, math.floor(cpus_per_gpu))), max_calls=1)(measure_peaks)
    ref = task.remote([a.to_dict() for _, a in picked], probe_fidelity(fid).model_dump(mode="json"))
    try:
        got = ray.get(ref, timeout=timeout_s)
    except ray.exceptions.GetTimeoutError:
        ray.cancel(ref, force=True)
        raise ConfigError("resources.gpu", f"auto: measuring trial memory took over {timeout_s:.0f} s "
                                           "(is a GPU free?); give a number instead") from None
    except ray.exceptions.RayTaskError as e:
        why = str(e.cause if getattr(e, "cause", None) else e).strip().splitlines()
        raise ConfigError("resources.gpu", f"auto: measuring trial memory failed: {why[-1] if why else e}; "
                                           "give a number instead") from None
    peaks = [r["peak_reserved_mib"] for r in got["archs"] if r.get("peak_reserved_mib")]
    if not peaks:
        errs = "; ".join(str(r.get("error")) for r in got["archs"])[:300]
        raise ConfigError("resources.gpu", f"auto: no architecture could be measured ({errs}); give a number instead")
    plan = plan_packing(max(peaks) * res.memory_margin, got["device_mib"], max_per_gpu=res.max_per_gpu,
                        cpus_per_gpu=cpus_per_gpu, cpu_per_trial=res.cpu,
                        context_mib=got.get("context_mib", DEFAULT_CONTEXT_MIB))
    plan.device = got.get("device", "")
    plan.probe_seconds = time.time() - t0
    plan.probed = [{**r, "estimate_mib": est} for (est, _), r in zip(picked, got["archs"])]
    if plan.note:
        log.warning(plan.note)
    new = cfg.with_overrides(resources={**res.model_dump(), "gpu": plan.gpu_fraction})
    return new, plan


def summary(plan: dict | None) -> str:
    """One line for people and the study's attributes."""
    if not plan:
        return ""
    if plan["mode"] == "cpu":
        return plan["note"]
    return (f"{plan['trials_per_gpu']} trials per GPU (gpu {plan['gpu_fraction']:g} each, limited by "
            f"{plan['limited_by']}); measured need {plan['need_mib']:.0f} MiB + {plan['context_mib']:.0f} MiB "
            f"context per trial on {plan['device'] or 'the GPU'}")


# ----------------------------------------------------------------------------------------------
# in the worker, at the start of every trial


def setup_worker(ctx: dict) -> dict:
    """Make this process ready for a trial: kernel policy, CUDA health, memory cap. Returns what
    the trial records in `TrialResult.extra` about sharing its device."""
    import os

    import torch

    from evaluators import efficiency
    from proxy_models import backends

    fla = bool(ctx.get("fla_kernels", False))
    if fla:
        os.environ.setdefault("TRITON_CACHE_AUTOTUNING", "1")
    backends.set_fla_enabled(fla)
    gpu = float(ctx.get("gpu") or 0.0)
    if gpu <= 0 or not torch.cuda.is_available():
        return {}
    dev = torch.device("cuda", torch.cuda.current_device())
    # a sticky CUDA error from an earlier trial in this (reused) actor raises here, before the
    # trial is stored: Tune then retries the trial on a fresh actor
    torch.cuda.synchronize(dev)
    plan = ctx.get("packing") or {}
    k = int(plan.get("trials_per_gpu") or (max(1, math.floor(1.0 / gpu + 1e-6)) if gpu < 1 else 1))
    out = {"shared_device_trials": k, "gpu_fraction": gpu}
    cap = plan.get("memory_cap_mib")
    if cap and plan.get("mode") == "gpu":
        total = torch.cuda.get_device_properties(dev).total_memory / MIB
        frac = min(1.0, cap / total)
        efficiency.set_cuda_memory_fraction(dev, frac)
        out["memory_cap_mib"] = cap
    return out
