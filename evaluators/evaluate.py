"""`evaluate(arch, fidelity, device, seed) -> TrialResult`: one trial, start to finish.

Flow: resolve the fidelity -> (rescale the architecture if the fidelity says so) -> analytic
metrics -> memory pre-check -> for each lr/wd grid point: build one model per task
(`proxy_models.build_model`) and train them side by side (`trainer.train`), reporting every
`report_every` steps -> final test accuracy per task (best grid point per task) and validation
bits per byte -> quality by the fidelity's formula -> measured efficiency -> TrialResult.

Failures never raise: divergence, time limit, memory limit (CUDA OOM on GPU; on CPU an
estimate before training and the resident set at each report), and any exception become
`TrialResult(status="failed", error=reason)` with whatever curves were recorded. A report
callback that returns a truthy value ends the trial as `status="pruned"`.

Report callback contract: `report(step, metrics) -> bool | None`, called every
`fidelity.report_every` training rounds and at the end of each grid point's training, with
`step` increasing across grid points and `metrics` holding:
  quality      the quality formula on the intermediate test subset (comparable across trials
               at the same step and fidelity),
  train_loss   mean training loss over the tasks since the previous report (nats),
  progress     fraction of all training rounds done, in (0, 1],
  elapsed_s    wall seconds since the trial started,
  <task>       intermediate test accuracy of each synthetic task,
  text_bpb     intermediate validation bits per byte (when the fidelity has text).
"""
from __future__ import annotations

import math
import time
import traceback
import zlib
from typing import Callable

import torch

from search_space.genome import Architecture
from search_space.metrics import analytic_metrics
from search_space.result import TrialResult

from . import efficiency
from .fidelity import Fidelity
from .tasks import make_task
from .text import TextTask, bits_per_byte, corpus_id
from .trainer import TaskRun, TrialFailed, TrialStopped, train

MIB = 2 ** 20


def _stable_seed(*parts) -> int:
    return zlib.crc32(":".join(map(str, parts)).encode()) & 0x7FFFFFFF


def estimate_train_memory_mib(arch: Architecture, fid: Fidelity) -> float:
    """A deliberately generous estimate of peak training memory (fp32): weights, gradients and
    AdamW moments of every task model (they are resident together), plus the activations of
    the largest task step (~40 floats per d_model per layer per token, attention scores, the
    logits three times)."""
    layers = len(arch.flat_blocks())
    heads_T2 = 0
    total = 0.0
    worst = 0.0
    entries = [(make_task(t.name, **t.params), t.batch_size) for t in fid.tasks]
    if fid.text is not None:
        entries.append((TextTask(seq_len=fid.text.seq_len), fid.text.batch_size))
    for task, B in entries:
        T, V = task.input_len, task.vocab_size
        total += arch.costs(V).params_total * 16
        att = 0
        for b in arch.flat_blocks():
            for m in b.mixers:
                if m.type == "attention":
                    att += m.heads * min(T, m.window or T) * T * 4 * 3
        worst = max(worst, B * (T * (arch.d_model * layers * 40 * 4 + V * 12) + att))
    del heads_T2
    return (total + worst) / MIB


def _test_batches(task, n: int, batch: int, seed: int, device: torch.device) -> list:
    g = torch.Generator(device=device).manual_seed(seed)
    x, y = task.sample(n, g, "test")
    return [(x[i:i + batch], y[i:i + batch]) for i in range(0, n, batch)]


def _result_failed(reason: str, **kw) -> TrialResult:
    return TrialResult(status="failed", error=reason, **kw)


def evaluate(arch: Architecture, fidelity: str | Fidelity = "smoke", device: str | torch.device = "cpu",
             seed: int = 0, report: Callable[[int, dict], bool | None] | None = None,
             vocab_size: int | None = None) -> TrialResult:
    t_start = time.perf_counter()
    fid = Fidelity.resolve(fidelity)
    res = TrialResult(status="complete", fidelity=fid.name, seed=seed)
    curves: dict[str, list] = {"train_loss": [], "quality": []}
    res.curves = curves
    deadline = t_start + fid.max_seconds if fid.max_seconds else None
    dev = torch.device("cpu")
    cap_restore = None
    try:
        dev = torch.device(device)
        if dev.type == "cuda" and dev.index is None:
            dev = torch.device("cuda", torch.cuda.current_device())
        res.device = efficiency.device_name(dev)
        if fid.d_model and fid.d_model != arch.d_model:
            arch = arch.scaled(d_model=fid.d_model)
            res.extra["evaluated_d_model"] = fid.d_model
        vocab = vocab_size or fid.efficiency.vocab_size
        res.analytic = analytic_metrics(arch, vocab_size=vocab)
        res.extra["analytic_vocab_size"] = vocab
        if fid.max_memory_mib and dev.type == "cuda":
            # the limit is enforced by the caching allocator: past it, a real CUDA OOM (below).
            # Cached blocks of an earlier trial in this process must not count against it.
            torch.cuda.empty_cache()
            cap_restore = efficiency.cuda_memory_fraction(dev)
            total_mib = torch.cuda.get_device_properties(dev).total_memory / efficiency.MIB
            efficiency.set_cuda_memory_fraction(dev, min(cap_restore, fid.max_memory_mib / total_mib))
        if fid.max_memory_mib and dev.type == "cpu":
            est = estimate_train_memory_mib(arch, fid)
            res.extra["estimated_train_memory_mib"] = est
            if est > fid.max_memory_mib:
                raise TrialFailed(f"memory limit exceeded: estimated {est:.0f} MiB of training memory "
                                  f"> limit {fid.max_memory_mib:.0f} MiB")
        _train_all(arch, fid, dev, seed, report, res, curves, deadline, t_start)
        if fid.efficiency.measure:
            if deadline is not None and time.perf_counter() > deadline:
                raise TrialFailed("time limit exceeded: before the efficiency measurements")
            _measure(arch, fid, dev, seed, vocab, res)
    except TrialStopped:
        res.status = "pruned"
    except TrialFailed as e:
        res.status, res.error = "failed", str(e)
    except torch.cuda.OutOfMemoryError as e:
        res.status, res.error = "failed", "CUDA out of memory: " + str(e).splitlines()[0][:300]
    except MemoryError as e:
        res.status, res.error = "failed", f"memory limit exceeded: MemoryError {e}"[:300]
    except Exception as e:  # a broken architecture/primitive must not kill the study
        res.status = "failed"
        res.error = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:500]
        res.extra["traceback"] = traceback.format_exc()[-4000:]
    finally:
        if dev.type == "cuda" and torch.cuda.is_available():
            torch.cuda.empty_cache()
            if cap_restore is not None:
                efficiency.set_cuda_memory_fraction(dev, cap_restore)
    for k, v in res.analytic.items():
        res.metrics.setdefault(k, v)
    res.wall_time_s = time.perf_counter() - t_start
    res.metrics["wall_time_s"] = res.wall_time_s
    return res


def _build_runs(arch, fid: Fidelity, dev, seed: int, lr: float, wd: float) -> tuple[list, dict, dict]:
    from proxy_models import build_model

    runs, tests, finals = [], {}, {}
    graphs = fid.cuda_graphs and not fid.compile and dev.type == "cuda"
    pool = torch.cuda.graph_pool_handle() if graphs else None  # one pool for the trial's task graphs
    entries = [(t.name, make_task(t.name, **t.params), t.tokens, t.batch_size, t.train_examples) for t in fid.tasks]
    if fid.text is not None:
        tt = TextTask(seq_len=fid.text.seq_len, eval_windows=fid.text.eval_windows)
        entries.append(("text", tt, fid.text.tokens, fid.text.batch_size, None))
    for k, (name, task, tokens, batch, n_train) in enumerate(entries):
        run_seed = _stable_seed(seed, k, name)
        torch.manual_seed(run_seed)
        model = build_model(arch, vocab_size=task.vocab_size)
        if fid.compile and dev.type == "cuda":
            model = torch.compile(model)  # off by default: compile time exceeds what short budgets save
        steps = max(1, tokens // (batch * task.input_len))
        runs.append(TaskRun(name=name, task=task, model=model, steps=steps, batch_size=batch, lr=lr,
                            weight_decay=wd, device=dev, seed=run_seed, grad_clip=fid.grad_clip,
                            betas=tuple(fid.betas), warmup_frac=fid.warmup_frac, min_lr_frac=fid.min_lr_frac,
                            train_examples=n_train, cuda_graph=graphs, graph_pool=pool))
        eb = max(batch, 64)
        if name == "text":
            finals[name] = list(task.val_batches(dev, eb))
            tests[name] = finals[name][:max(1, math.ceil(fid.report_eval_examples / eb))]
        else:
            finals[name] = _test_batches(task, fid.eval_examples, eb, _stable_seed(fid.eval_seed, name), dev)
            tests[name] = _test_batches(task, min(fid.report_eval_examples, fid.eval_examples), eb,
                                        _stable_seed(fid.eval_seed, name), dev)
    return runs, tests, finals


def _scores(per_task: dict[str, dict]) -> dict[str, float]:
    out = {}
    for name, ev in per_task.items():
        if name == "text":
            out["text_bpb"] = bits_per_byte(ev["loss"])
        else:
            out[name] = ev["accuracy"]
    return out


def _train_all(arch, fid: Fidelity, dev, seed, report, res: TrialResult, curves, deadline, t_start):
    grid = fid.grid()
    best: dict[str, float] = {}
    best_text_loss = math.inf
    train_s = tokens = 0.0
    cpu = dev.type == "cpu"
    limit = fid.max_memory_mib
    if cpu:
        rss0 = efficiency.rss_mib()
        efficiency.reset_peak_rss()
    else:
        torch.cuda.reset_peak_memory_stats(dev)

    def check_memory():
        if cpu and limit:
            rss = efficiency.rss_mib()
            if rss > limit:
                raise TrialFailed(f"memory limit exceeded: resident set {rss:.0f} MiB > limit {limit:.0f} MiB")

    offset = 0
    total_rounds = None
    backends: dict[str, str] = {}
    for gi, (lr, wd) in enumerate(grid):
        runs, tests, finals = _build_runs(arch, fid, dev, seed, lr, wd)
        rounds = max(r.steps for r in runs)
        total_rounds = total_rounds or rounds * len(grid)

        def on_report(step, per_task, _off=offset):
            gstep = _off + step
            scores = _scores(per_task)
            q = fid.quality(scores)
            tl = sum(ev["train_loss"] for ev in per_task.values()) / len(per_task)
            curves["train_loss"].append((gstep, tl))
            curves["quality"].append((gstep, q))
            for name, ev in per_task.items():
                curves.setdefault(f"train_loss/{name}", []).append((gstep, ev["train_loss"]))
            for name, v in scores.items():
                curves.setdefault(f"score/{name}", []).append((gstep, v))
            res.metrics["quality"] = q  # the latest estimate, kept if the trial is pruned
            if report is not None:
                m = {"quality": q, "train_loss": tl, "progress": gstep / total_rounds,
                     "elapsed_s": time.perf_counter() - t_start, **scores}
                if report(gstep, m):
                    raise TrialStopped()

        timing = train(runs, tests, report_every=fid.report_every, explode_factor=fid.explode_factor,
                       on_report=on_report, deadline=deadline, check_memory=check_memory)
        train_s += timing["train_seconds"]
        tokens += timing["tokens"]
        offset += rounds
        for r in runs:
            ev = r.evaluate(finals[r.name], batch=64)
            if r.name == "text":
                best_text_loss = min(best_text_loss, ev["loss"])
            else:
                best[r.name] = max(best.get(r.name, 0.0), ev["accuracy"])
            backends.update(r.model.backends())
            if r.cuda_graph:  # which task steps ran as CUDA graphs, and why any did not
                cg = res.extra.setdefault("cuda_graphs", {"captured": [], "eager": {}})
                if r.graph:
                    cg["captured"].append(r.name)
                elif r.graph_error:
                    cg["eager"][r.name] = r.graph_error
        res.extra.setdefault("grid", []).append({"lr": lr, "weight_decay": wd,
                                                 **{r.name: r.evaluate(tests[r.name], 64)["accuracy"] for r in runs
                                                    if r.name != "text"}})
        del runs, tests, finals
    if cpu:
        res.measured["peak_memory_mib"] = efficiency.rss_mib(peak=True)
        res.extra["baseline_rss_mib"] = rss0
    else:
        res.measured["peak_memory_mib"] = torch.cuda.max_memory_allocated(dev) / MIB
    res.measured["train_tokens_per_s"] = tokens / train_s if train_s > 0 else 0.0
    res.backend = backends
    scores = dict(best)
    if fid.text is not None:
        scores["text_bpb"] = bits_per_byte(best_text_loss)
        res.metrics["val_bpb"] = scores["text_bpb"]
        res.metrics["val_loss"] = best_text_loss
        res.extra["text_corpus"] = corpus_id()
    res.task_scores = scores
    res.metrics["quality"] = fid.quality(scores)
    res.metrics["peak_memory_mib"] = res.measured["peak_memory_mib"]
    res.metrics["train_tokens_per_s"] = res.measured["train_tokens_per_s"]


def _measure(arch, fid: Fidelity, dev, seed, vocab, res: TrialResult):
    from proxy_models import build_model

    e = fid.efficiency
    torch.manual_seed(_stable_seed(seed, "efficiency"))
    model = build_model(arch, vocab_size=vocab).to(dev)
    m = efficiency.measure(model, vocab, dev, prefill_context=e.prefill_context, prefill_batch=e.prefill_batch,
                           decode_batch=e.decode_batch, decode_steps=e.decode_steps, reps=e.reps, seed=seed)
    res.backend = {**res.backend, **model.backends()}
    res.measured.update(m)
    for k in ("prefill_tokens_per_s", "decode_tokens_per_s", "decode_memory_mib"):
        res.metrics[k] = m[k]
    res.extra["analytic_cache_bytes_at_decode_context"] = float(
        arch.costs(vocab, context=e.decode_steps, dtype_bytes=next(model.parameters()).element_size()).cache_bytes)
    if fid.efficiency.measure and dev.type == "cpu":
        # the measurements run after training and can raise the process's peak RSS: the objective
        # must be the same number as the measured record, so both are updated together
        res.measured["peak_memory_mib"] = max(res.measured.get("peak_memory_mib", 0.0), efficiency.rss_mib(peak=True))
        res.metrics["peak_memory_mib"] = res.measured["peak_memory_mib"]
