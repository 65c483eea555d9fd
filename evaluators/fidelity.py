"""Fidelity presets: how much training a trial gets and how its quality score is computed.

A `Fidelity` names the synthetic tasks (each trained as its own model from scratch, as MAD
does, with its own token budget), the optional real-text task, the optimiser settings (one
lr/weight decay, or a grid whose best result per task counts, as MAD's protocol), the
efficiency measurements, the limits (`max_seconds`, `max_memory_mib`) and the quality formula:

    quality = sum_i w_i * s_i / sum_i w_i,   s_i = task test accuracy in [0, 1],
              s_text = clip(1 - val_bpb / 8, 0, 1)

(8 bits per byte is a uniform byte model, so s_text is the fraction of the 8 bits removed).

Presets (`FIDELITIES`; override in code with `FIDELITIES["quick"].model_copy(update=...)` or
`Fidelity.resolve("quick", max_seconds=60)`):
- `smoke`: a whole `evaluate()` in a few seconds on one CPU thread for a 2-block d_model 64
  model; used by tests all over the project. Not a quality signal.
- `quick`: about 20-40 s per trial on 2 CPU cores for the small proxies a CPU search uses
  (d_model 64, 2-4 blocks; a 10-trial search in a few minutes): MQAR, in-context recall,
  selective copying and text at small sizes, 120 steps each (~0.08 CPU-s per step at d_model 64, 4 blocks). Wider models take longer
  (training cost grows with d_model^2): set `max_seconds`.
- `standard`: about a minute per architecture on one GPU: the six MAD tasks at their baseline
  settings (250 steps each at batch 64; memorization 500), MQAR at Zoology's (128, 8) with
  vocab 8192 (500 steps) and text (400 steps of 32 x 512 bytes); lr 2e-3, wd 0.1. Far from
  MAD's 20,000 steps: a ranking signal, not converged accuracies.
- `full`: the published MAD protocol: width 128 (the architecture is rescaled to d_model 128),
  12,800 training examples, batch 128, 200 epochs, AdamW with lr in {1e-4, 5e-4, 1e-3} x weight
  decay {0, 0.1}, cosine schedule, test accuracy on 1,280 examples; the best grid point per task
  counts. Hours per architecture on one GPU (6 grid points x 6 tasks x 20,000 steps).
"""
from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Cfg(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TaskEntry(_Cfg):
    """One synthetic task: generator parameters, training budget, weight in the quality."""
    name: str
    params: dict = Field(default_factory=dict)
    tokens: int = Field(gt=0, description="training tokens (batch x input length x steps)")
    batch_size: int = Field(32, ge=1)
    train_examples: int | None = Field(None, ge=1, description="fixed training set (epochs); None = fresh data every step")
    weight: float = Field(1.0, ge=0)


class TextEntry(_Cfg):
    seq_len: int = Field(256, ge=2)
    tokens: int = Field(gt=0)
    batch_size: int = Field(16, ge=1)
    eval_windows: int = Field(64, ge=1)
    weight: float = Field(1.0, ge=0)


class EfficiencyEntry(_Cfg):
    measure: bool = True
    vocab_size: int = Field(256, ge=2, description="vocabulary of the model the analytic metrics and timings use")
    prefill_context: int = Field(512, ge=1)
    prefill_batch: int = Field(1, ge=1)
    decode_batch: int = Field(8, ge=1)
    decode_steps: int = Field(64, ge=1, description="tokens decoded from an empty state; the state size is measured after them")
    reps: int = Field(3, ge=1)


class Fidelity(_Cfg):
    name: str
    tasks: list[TaskEntry] = Field(default_factory=list)
    text: TextEntry | None = None
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    lr_grid: list[float] | None = None
    weight_decay_grid: list[float] | None = None
    warmup_frac: float = Field(0.1, ge=0, lt=1)
    min_lr_frac: float = Field(0.1, ge=0, le=1)
    grad_clip: float = Field(1.0, gt=0)
    betas: tuple[float, float] = (0.9, 0.98)
    report_every: int = Field(50, ge=1, description="steps between intermediate reports")
    eval_examples: int = Field(256, ge=1, description="test examples per task at the end")
    report_eval_examples: int = Field(64, ge=1, description="test examples per task at intermediate reports")
    eval_seed: int = Field(1234, description="seed of the test sets: the same for every trial")
    d_model: int | None = Field(None, description="rescale the architecture to this width first")
    efficiency: EfficiencyEntry = Field(default_factory=EfficiencyEntry)
    explode_factor: float = Field(4.0, gt=1, description="loss above this multiple of ln(vocab) ends the trial as diverged")
    max_seconds: float | None = Field(None, gt=0)
    max_memory_mib: float | None = Field(None, gt=0)
    compile: bool = Field(False, description="torch.compile each task model (CUDA only); its first steps compile "
                                             "for tens of seconds per model, so it pays back only on long budgets "
                                             "(docs/gpu_throughput.md)")
    cuda_graphs: bool = Field(True, description="on CUDA, capture each task model's training step as a CUDA "
                                                 "graph after a few eager steps and replay it (a proxy's step is "
                                                 "launch-bound); a step that cannot be captured trains eagerly "
                                                 "(evaluators/trainer.py). Ignored on CPU and with compile")
    text_bpb_scale: float = Field(8.0, gt=0)
    quality_formula: Literal["weighted_mean"] = "weighted_mean"

    @model_validator(mode="after")
    def _some_task(self):
        if not self.tasks and self.text is None:
            raise ValueError("a fidelity needs at least one task or the text task")
        return self

    def grid(self) -> list[tuple[float, float]]:
        lrs = self.lr_grid or [self.lr]
        wds = self.weight_decay_grid or [self.weight_decay]
        return [(lr, wd) for lr in lrs for wd in wds]

    def text_score(self, bpb: float) -> float:
        if not math.isfinite(bpb):
            return 0.0
        return min(1.0, max(0.0, 1.0 - bpb / self.text_bpb_scale))

    def quality(self, task_scores: dict[str, float]) -> float:
        """Weighted mean of task accuracies and the text score (missing entries count 0)."""
        num = den = 0.0
        for t in self.tasks:
            num += t.weight * task_scores.get(t.name, 0.0)
            den += t.weight
        if self.text is not None:
            num += self.text.weight * self.text_score(task_scores.get("text_bpb", float("inf")))
            den += self.text.weight
        return num / den if den else 0.0

    def total_tokens(self) -> int:
        return (sum(t.tokens for t in self.tasks) + (self.text.tokens if self.text else 0)) * len(self.grid())

    @classmethod
    def resolve(cls, fidelity: "str | Fidelity", **overrides) -> "Fidelity":
        """A preset by name (or a Fidelity), with top-level fields overridden."""
        if isinstance(fidelity, Fidelity):
            f = fidelity
        elif fidelity in FIDELITIES:
            f = FIDELITIES[fidelity]
        else:
            from search_space.errors import UserError

            class UnknownFidelity(UserError):
                pass
            raise UnknownFidelity(f"fidelity: unknown preset {fidelity!r} (known: {', '.join(FIDELITIES)})")
        return f.model_copy(update=overrides) if overrides else f


def _mad(name, tokens, batch=128, seq=None, **params) -> TaskEntry:
    if seq is not None:
        params["seq_len"] = seq
    return TaskEntry(name=name, params=params, tokens=tokens, batch_size=batch)


SMOKE = Fidelity(
    name="smoke",
    tasks=[TaskEntry(name="in_context_recall", params={"vocab_size": 16, "seq_len": 32}, tokens=40 * 16 * 31, batch_size=16),
           TaskEntry(name="mqar", params={"vocab_size": 64, "seq_len": 32, "num_kv_pairs": 4}, tokens=40 * 16 * 32, batch_size=16)],
    text=TextEntry(seq_len=64, tokens=40 * 8 * 64, batch_size=8, eval_windows=16),
    lr=3e-3, report_every=20, eval_examples=64, report_eval_examples=32,
    efficiency=EfficiencyEntry(vocab_size=256, prefill_context=64, prefill_batch=1, decode_batch=2, decode_steps=16, reps=1),
)

QUICK = Fidelity(
    name="quick",
    tasks=[TaskEntry(name="mqar", params={"vocab_size": 128, "seq_len": 64, "num_kv_pairs": 8}, tokens=120 * 16 * 64, batch_size=16),
           TaskEntry(name="in_context_recall", params={"vocab_size": 16, "seq_len": 64}, tokens=120 * 16 * 63, batch_size=16),
           TaskEntry(name="selective_copying", params={"vocab_size": 16, "seq_len": 48, "num_tokens_to_copy": 6},
                     tokens=120 * 16 * 48, batch_size=16)],
    text=TextEntry(seq_len=128, tokens=120 * 8 * 128, batch_size=8, eval_windows=64),
    lr=3e-3, report_every=40, eval_examples=256, report_eval_examples=64,
    efficiency=EfficiencyEntry(vocab_size=256, prefill_context=256, prefill_batch=1, decode_batch=4, decode_steps=32, reps=2),
)

STANDARD = Fidelity(
    name="standard",
    # ~250 steps per task at batch 64 (memorization 500: it learns from the weights alone)
    tasks=[_mad("in_context_recall", 64 * 127 * 250, batch=64, vocab_size=16, seq=128),
           _mad("fuzzy_in_context_recall", 64 * 128 * 250, batch=64, vocab_size=16, seq=128, k_motif_size=3, v_motif_size=3),
           _mad("noisy_in_context_recall", 64 * 127 * 250, batch=64, vocab_size=32, seq=128, noise_vocab_size=16, frac_noise=0.2),
           _mad("selective_copying", 64 * 256 * 250, batch=64, vocab_size=16, seq=256, num_tokens_to_copy=16),
           _mad("compression", 64 * 62 * 250, batch=64, vocab_size=16, seq=32),
           _mad("memorization", 64 * 32 * 500, batch=64, vocab_size=256, seq=32),
           TaskEntry(name="mqar", params={"vocab_size": 8192, "seq_len": 128, "num_kv_pairs": 8},
                     tokens=64 * 128 * 500, batch_size=64)],
    text=TextEntry(seq_len=512, tokens=32 * 512 * 400, batch_size=32, eval_windows=128),
    # a short budget wants a higher lr than MAD's 20,000-step grid (1e-4..1e-3): on a d64
    # Transformer, 250 steps of in-context recall reached a lower test loss at 3e-3 than at 1e-3
    lr=2e-3, weight_decay=0.1, report_every=100, eval_examples=1280, report_eval_examples=256,
    efficiency=EfficiencyEntry(vocab_size=256, prefill_context=2048, prefill_batch=4, decode_batch=16, decode_steps=256, reps=3),
)

_MAD_TOKENS = 12_800 * 200  # examples x epochs; x input length below


def _full(name, seq_in, **params) -> TaskEntry:
    return TaskEntry(name=name, params=params, tokens=_MAD_TOKENS * seq_in, batch_size=128, train_examples=12_800)


FULL = Fidelity(
    name="full",
    tasks=[_full("in_context_recall", 127, vocab_size=16, seq_len=128),
           _full("fuzzy_in_context_recall", 128, vocab_size=16, seq_len=128, k_motif_size=3, v_motif_size=3),
           _full("noisy_in_context_recall", 127, vocab_size=32, seq_len=128, noise_vocab_size=16, frac_noise=0.2),
           _full("selective_copying", 256, vocab_size=16, seq_len=256, num_tokens_to_copy=16),
           _full("compression", 62, vocab_size=16, seq_len=32),
           # MAD's memorization baseline: 256 training examples, 200 epochs
           TaskEntry(name="memorization", params={"vocab_size": 256, "seq_len": 32}, tokens=256 * 200 * 32,
                     batch_size=128, train_examples=256)],
    text=None,
    lr=5e-4, lr_grid=[1e-4, 5e-4, 1e-3], weight_decay_grid=[0.0, 0.1], warmup_frac=0.0, min_lr_frac=0.002,
    report_every=1000, eval_examples=1280, report_eval_examples=256, d_model=128,
    efficiency=EfficiencyEntry(vocab_size=256, prefill_context=2048, prefill_batch=4, decode_batch=16, decode_steps=256, reps=3),
)

FIDELITIES: dict[str, Fidelity] = {f.name: f for f in (SMOKE, QUICK, STANDARD, FULL)}
