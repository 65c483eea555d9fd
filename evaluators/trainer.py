"""The trainer: one model per task, trained side by side, with reports and divergence checks.

- AdamW (fused on CUDA), linear warmup then cosine decay to `min_lr_frac`, gradient clipping,
  bf16 autocast on CUDA (fp32 on CPU); loss = cross-entropy over scored positions plus the
  model's auxiliary loss (`model.aux_loss()`, MoE balancing and recursion routers).
- After every optimiser step `model.update_router_biases()` (MoE bias balancing) if present.
- The budget is in tokens: steps = tokens // (batch x input length) per task.
- All task runs advance together (one step of each per round), so an intermediate report sees
  every task at the same fraction of its budget: that is what ASHA-style early stopping
  compares between trials.
- Every `report_every` rounds and at the end: evaluation on a fixed subset of the test set,
  then `report(step, metrics)`. A truthy return value stops the trial (status "pruned").
- Divergence: a non-finite loss, or a loss above `explode_factor * ln(vocab)`, raises
  `TrialFailed("diverged: ...")`. On CPU this is checked every step (a host read is free);
  on CUDA only at report points, so the hot loop never waits for the host.
- Deterministic on CPU given the seed: the data generators are `torch.Generator`s seeded from
  the trial seed, and the model is built right after `torch.manual_seed`.
- CUDA graphs (`cuda_graph=True`, CUDA only): a proxy's step is thousands of small kernels, and
  launching them one by one from Python takes longer than the GPU takes to run them. After
  `GRAPH_WARMUP` eager steps (on a side stream, as capture requires), the whole step (forward,
  backward, clipping, the fused AdamW update, router biases, the loss sum) is captured once and
  then replayed: per step, the batch is copied into the graph's input buffers, the learning rate
  into a device tensor (the schedule is not baked into the graph), and one launch runs the rest.
  The task runs of one trial share one memory pool: their replays never overlap, and nothing a
  graph leaves behind is read after another graph ran (gradients are rewritten by every replay,
  the loss sum lives outside the pool). A step that cannot be captured (a host sync in some
  primitive) is trained eagerly from then on, and `graph_error` says why.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from .tasks.base import IGNORE, accuracy

Report = Callable[[int, dict], "bool | None"]


GRAPH_WARMUP = 3  # eager steps before capture: lazy initialisation (kernel choices, optimizer state) done
_SIDE: dict = {}  # device -> the stream every task run warms up and captures on


def _side_stream(device: torch.device):
    """One side stream per device for every task run's warm-up and capture. The caching
    allocator reuses a freed block only for the stream it was allocated on, so graphs that share a
    pool share its memory only if they were captured on the same stream: with a stream per run,
    a wide-space trial's eight task graphs held eight activation footprints (126 GiB, an OOM on
    an H200) instead of one."""
    s = _SIDE.get(device)
    if s is None:
        s = _SIDE[device] = torch.cuda.Stream(device)
    return s


class TrialFailed(Exception):
    """Ends a trial as failed; the message is the stored reason."""


class TrialStopped(Exception):
    """The report callback asked to stop (early stopping)."""


@dataclass
class Schedule:
    steps: int
    warmup_frac: float = 0.1
    min_lr_frac: float = 0.1

    def __call__(self, step: int) -> float:
        warm = int(self.warmup_frac * self.steps)
        if step < warm:
            return (step + 1) / warm
        t = (step - warm) / max(1, self.steps - warm)
        return self.min_lr_frac + (1 - self.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))


def lm_loss(model, inputs_BT: torch.Tensor, targets_BT: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(task loss, task loss + aux loss)."""
    logits_BTV = model(inputs_BT)
    loss = F.cross_entropy(logits_BTV.float().flatten(0, 1), targets_BT.flatten(), ignore_index=IGNORE)
    aux = model.aux_loss() if hasattr(model, "aux_loss") else None
    total = loss if aux is None else loss + aux
    return loss, total


@dataclass
class TaskRun:
    """One model learning one task (a synthetic task or the text task)."""
    name: str
    task: object                 # has sample(n, generator, split), vocab_size, input_len
    model: torch.nn.Module
    steps: int
    batch_size: int
    lr: float
    weight_decay: float
    device: torch.device
    seed: int
    grad_clip: float = 1.0
    betas: tuple[float, float] = (0.9, 0.98)
    warmup_frac: float = 0.1
    min_lr_frac: float = 0.1
    train_examples: int | None = None
    cuda_graph: bool = False     # capture the step as a CUDA graph after GRAPH_WARMUP steps (CUDA only)
    graph_pool: object = None    # torch.cuda.graph_pool_handle() shared by the trial's task runs
    step_count: int = 0
    tokens: int = 0

    def __post_init__(self):
        self.model.to(self.device).train()
        cuda = self.device.type == "cuda"
        self.cuda_graph = self.cuda_graph and cuda
        decay = [p for p in self.model.parameters() if p.requires_grad and p.dim() >= 2]
        other = [p for p in self.model.parameters() if p.requires_grad and p.dim() < 2]
        self.schedule = Schedule(self.steps, self.warmup_frac, self.min_lr_frac)  # set before every step
        groups = [{"params": decay, "weight_decay": self.weight_decay}, {"params": other, "weight_decay": 0.0}]
        # the training losses since the last report, summed on the device (read once per report)
        self.loss_sum = torch.zeros((), device=self.device)
        self.loss_n = 0
        if self.cuda_graph:
            # the learning rate as a device tensor that every step overwrites, read by the fused
            # update inside the graph (a float would be frozen into the graph at capture)
            self.lr_t = torch.tensor(self.lr * self.schedule(0), device=self.device)
            self.opt = torch.optim.AdamW(groups, lr=self.lr_t, betas=self.betas, fused=True, capturable=True)
            self.graph = None            # the CUDAGraph once captured; False: capture failed, eager
            self.graph_error: str | None = None
        else:
            self.opt = torch.optim.AdamW(groups, lr=self.lr, betas=self.betas, fused=cuda)
        self.gen = torch.Generator(device=self.device).manual_seed(self.seed)
        # no weight-cast cache under a graph: a cache filled at capture would be replayed stale
        self.autocast = torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=not self.cuda_graph) if cuda \
            else torch.autocast("cpu", enabled=False)
        self.data = None
        self.last_loss = float("nan")  # until the first report
        if self.train_examples:  # a fixed training set, visited in shuffled epochs (MAD)
            self.data = self.task.sample(self.train_examples, self.gen, "train")
            self.perm = torch.empty(0, dtype=torch.long, device=self.device)

    def batch(self):
        if self.data is None:
            return self.task.sample(self.batch_size, self.gen, "train")
        if self.perm.numel() < self.batch_size:
            self.perm = torch.randperm(self.train_examples, generator=self.gen, device=self.device)
        idx, self.perm = self.perm[:self.batch_size], self.perm[self.batch_size:]
        return self.data[0][idx], self.data[1][idx]

    def _update(self, x, y) -> torch.Tensor:
        """Forward, backward, clipping, the optimiser and router-bias updates, the loss sum: what
        a graph holds."""
        with self.autocast:
            loss, total = lm_loss(self.model, x, y)
        self.opt.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        self.opt.step()
        if hasattr(self.model, "update_router_biases"):
            self.model.update_router_biases()
        loss = loss.detach()
        self.loss_sum += loss
        return loss

    def step(self) -> torch.Tensor:
        lr = self.lr * self.schedule(self.step_count)
        x, y = self.batch()
        if self.cuda_graph:
            self.lr_t.fill_(lr)  # the lr tensor is the optimiser's (AdamW keeps a tensor lr as given)
            loss = self._graph_step(x, y)
        else:
            for g in self.opt.param_groups:
                g["lr"] = lr
            loss = self._update(x, y)
        self.loss_n += 1
        self.step_count += 1
        self.tokens += x.numel()
        return loss

    def _graph_step(self, x, y) -> torch.Tensor:
        if self.graph is None and self.step_count >= GRAPH_WARMUP:
            self._capture(x, y)
        if self.graph:
            self.static_x.copy_(x)
            self.static_y.copy_(y)
            self.graph.replay()
            return self.static_loss
        # warm-up (on a side stream, as capture wants), or eager after a failed capture; the batch
        # was made on the current stream, which the side stream waits for
        cur, side = torch.cuda.current_stream(self.device), _side_stream(self.device)
        side.wait_stream(cur)
        with torch.cuda.stream(side):
            loss = self._update(x, y)
        cur.wait_stream(side)
        return loss

    def _capture(self, x, y) -> None:
        # input buffers shaped like the batch; capture records the step without running it
        self.static_x, self.static_y = torch.empty_like(x), torch.empty_like(y)
        self.opt.zero_grad(set_to_none=True)  # gradients are allocated by the graph, in its pool
        g = torch.cuda.CUDAGraph()
        cur = torch.cuda.current_stream(self.device)
        try:
            with torch.cuda.graph(g, pool=self.graph_pool, stream=_side_stream(self.device)):
                self.static_loss = self._update(self.static_x, self.static_y)
        except Exception as exc:  # noqa: BLE001 - any capture failure: train eagerly instead
            torch.cuda.set_stream(cur)  # a failed capture can leave the capture stream current
            torch.cuda.synchronize(self.device)
            self.opt.zero_grad(set_to_none=True)
            _SIDE.pop(self.device, None)  # a new side stream: not the one the failed capture was on
            self.graph = False
            self.graph_error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]
            return
        self.graph = g

    def take_loss(self) -> float:
        """Mean training loss since the last call (one host read). A run that has finished its
        steps while longer runs go on has no new losses: it keeps reporting its last mean
        (reporting nan there made every multi-budget preset look diverged)."""
        if not self.loss_n:
            return self.last_loss
        v = self.loss_sum.item() / self.loss_n
        self.loss_sum.zero_()
        self.loss_n = 0
        self.last_loss = v
        return v

    def explode_limit(self, factor: float) -> float:
        return factor * math.log(self.task.vocab_size)

    @torch.no_grad()
    def evaluate(self, test, batch: int) -> dict[str, float]:
        """Accuracy (synthetic) or mean loss in nats (text) on the given test data."""
        self.model.eval()
        correct = torch.zeros((), device=self.device)
        count = torch.zeros((), device=self.device)
        nll = torch.zeros((), device=self.device, dtype=torch.float64)
        for x, y in test:
            with self.autocast:
                logits = self.model(x)
            c, n = accuracy(logits, y)
            correct += c
            count += n
            nll += F.cross_entropy(logits.float().flatten(0, 1), y.flatten(), ignore_index=IGNORE,
                                   reduction="sum").double()
        self.model.train()
        count_v = max(1.0, count.item())
        return {"accuracy": correct.item() / count_v, "loss": nll.item() / count_v}


def _sync(device: torch.device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train(runs: list[TaskRun], tests: dict[str, list], *, report_every: int, explode_factor: float,
          on_report: Callable[[int, dict[str, dict]], None], deadline: float | None = None,
          check_memory: Callable[[], None] | None = None) -> dict:
    """Train all runs side by side. `tests[name]` is the list of (inputs, targets) batches used
    at intermediate reports; `on_report(step, {name: {"train_loss", "accuracy", "loss"}})`
    may raise TrialStopped. Returns timing: {"train_seconds", "tokens", "rounds"}."""
    device = runs[0].device
    cpu = device.type == "cpu"
    rounds = max(r.steps for r in runs)
    train_s, tokens = 0.0, 0
    seg_start, seg_tokens = time.perf_counter(), 0
    for i in range(1, rounds + 1):
        for r in runs:
            if r.step_count < r.steps:
                loss = r.step()
                seg_tokens += r.batch_size * r.task.input_len
                if cpu:
                    v = loss.item()
                    if not math.isfinite(v) or v > r.explode_limit(explode_factor):
                        raise TrialFailed(_diverged(r, v, explode_factor))
        if deadline is not None and time.perf_counter() > deadline:
            raise TrialFailed(f"time limit exceeded: stopped at step {i} of {rounds}")
        if i % report_every == 0 or i == rounds:
            _sync(device)
            train_s += time.perf_counter() - seg_start
            tokens += seg_tokens
            per_task = {}
            for r in runs:
                tl = r.take_loss()
                if not math.isfinite(tl) or tl > r.explode_limit(explode_factor):
                    raise TrialFailed(_diverged(r, tl, explode_factor))
                ev = r.evaluate(tests[r.name], batch=r.batch_size)
                per_task[r.name] = {"train_loss": tl, **ev}
            if check_memory is not None:
                check_memory()
            on_report(i, per_task)
            seg_start, seg_tokens = time.perf_counter(), 0
    return {"train_seconds": train_s, "tokens": tokens, "rounds": rounds}


def _diverged(r: TaskRun, v: float, factor: float) -> str:
    if not math.isfinite(v):
        return f"diverged: loss is {v} at step {r.step_count} ({r.name})"
    return (f"diverged: loss {v:.3g} exceeds {factor:g} x ln(vocab {r.task.vocab_size}) "
            f"at step {r.step_count} ({r.name})")
