"""The catalogue of stored metrics: name -> direction, unit, label, where it comes from.

One list shared by evaluators (which produce them), the study config (objectives and constraints
must name one of these), storage (columns of the trials frame) and the dashboard (axis labels).
Kept here because every package may import search_space and none of this needs torch."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Metric:
    name: str
    direction: Literal["maximize", "minimize"]
    unit: str
    label: str
    kind: Literal["quality", "measured", "analytic", "run"]


METRICS: dict[str, Metric] = {m.name: m for m in [
    Metric("quality", "maximize", "", "quality score", "quality"),
    Metric("val_bpb", "minimize", "bits/byte", "validation bits per byte", "quality"),
    Metric("val_loss", "minimize", "nats", "validation loss", "quality"),
    Metric("train_tokens_per_s", "maximize", "tok/s", "training throughput", "measured"),
    Metric("prefill_tokens_per_s", "maximize", "tok/s", "prefill throughput", "measured"),
    Metric("decode_tokens_per_s", "maximize", "tok/s", "decode throughput", "measured"),
    Metric("peak_memory_mib", "minimize", "MiB", "peak training memory", "measured"),
    Metric("decode_memory_mib", "minimize", "MiB", "decode memory", "measured"),
    Metric("params_total", "minimize", "", "parameters", "analytic"),
    Metric("params_active", "minimize", "", "active parameters", "analytic"),
    Metric("flops_per_token", "minimize", "FLOP", "FLOPs per token", "analytic"),
    Metric("cache_mib_2k", "minimize", "MiB", "decode cache at 2K", "analytic"),
    Metric("cache_mib_8k", "minimize", "MiB", "decode cache at 8K", "analytic"),
    Metric("cache_mib_32k", "minimize", "MiB", "decode cache at 32K", "analytic"),
    Metric("wall_time_s", "minimize", "s", "trial wall time", "run"),
]}


def analytic_metrics(arch, vocab_size: int = 0) -> dict[str, float]:
    """The analytic metrics of an architecture (batch 1, bf16 cache)."""
    out = {}
    c2 = arch.costs(vocab_size, context=2048)
    out["params_total"] = float(c2.params_total)
    out["params_active"] = float(c2.params_active)
    out["flops_per_token"] = float(c2.flops_per_token)
    for k, ctx in (("cache_mib_2k", 2048), ("cache_mib_8k", 8192), ("cache_mib_32k", 32768)):
        out[k] = arch.costs(vocab_size, context=ctx).cache_bytes / 2**20
    return out
