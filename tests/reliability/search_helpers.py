"""Study configs and Ray plumbing for the reliability tests that run real searches.

Trials use a tiny fidelity (one small MQAR task, no efficiency timing) so that a search of a few
trials takes seconds of compute; the faults, not the training, are what these tests exercise."""
from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SPACE = {"name": "tiny", "d_model": [32, 48], "depth": {"min": 1, "max": 2},
         "token_mixers": {"attention": {"heads": [2]}, "retention": {"heads": [2], "chunk": [16]}},
         "channel_mixers": {"swiglu": {"expand": [2]}}}
TINY = {"preset": "smoke", "overrides": {
    "tasks": [{"name": "mqar", "params": {"vocab_size": 32, "seq_len": 16, "num_kv_pairs": 2},
               "tokens": 8 * 16 * 10, "batch_size": 8}],
    "text": None, "efficiency": {"measure": False}, "report_every": 5,
    "eval_examples": 16, "report_eval_examples": 8}}

# Fault-injection searches need trials long enough to be hit mid-run: at TINY (10 steps) a trial
# ends in well under a second on an idle machine and the killers find nothing running.
KILLABLE = {"preset": "smoke", "overrides": {**TINY["overrides"], "tasks": [
    {**TINY["overrides"]["tasks"][0], "tokens": 8 * 16 * 600}], "report_every": 50}}


def study_config(storage: str, study: str, **over) -> dict:
    cfg = {"study": study, "storage": storage, "space": SPACE,
           "objectives": ["quality", {"params_total": "minimize"}], "sampler": "random", "trials": 4,
           "concurrency": 2, "resources": {"cpu": 1}, "fidelity": TINY, "seed": 0}
    cfg.update(over)
    return cfg


def own_processes(root_pid: int) -> dict[int, str]:
    """pid -> command line of every descendant of `root_pid` (from /proc, no psutil)."""
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = Path(f"/proc/{d}/stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(d))
    out, todo = {}, [root_pid]
    while todo:
        pid = todo.pop()
        for c in children.get(pid, []):
            try:
                out[c] = Path(f"/proc/{c}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            except OSError:
                continue
            todo.append(c)
    return out


def raylet_pid() -> int:
    """The raylet of the Ray instance this process is connected to (trial workers are its children)."""
    import ray
    node = ray._private.worker._global_node
    for kind in ("raylet",):
        procs = node.all_processes.get(kind) or []
        if procs:
            return procs[0].process.pid
    raise RuntimeError("this process did not start the Ray node; cannot find its raylet")


def trial_workers() -> list[int]:
    """Pids of the Ray worker processes of our instance that are running a trial right now."""
    return sorted(pid for pid, cmd in own_processes(raylet_pid()).items() if cmd.startswith("ray::ImplicitFunc"))
