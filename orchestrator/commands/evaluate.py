"""`hybrid-nas evaluate ARCH.yaml --fidelity quick`: train and measure one architecture.

Thin: load and validate the YAML (bad files are `GenomeError`s, exit 2), call
`evaluators.evaluate`, print the report (rich tables) or the TrialResult as JSON. A failed
trial prints its reason and exits 1."""
from __future__ import annotations

import json
import math

import click

from search_space.errors import UserError


class DeviceError(UserError):
    pass


def _fmt(v) -> str:
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            return str(v)
        if v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-3):
            return f"{v:.3e}"
        return f"{v:.4g}"
    return str(v)


def _check_device(device: str) -> None:
    import torch
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceError(f"--device: {device!r} requested but CUDA is not available here")
    elif device != "cpu":
        raise DeviceError(f"--device: {device!r} is not 'cpu', 'cuda' or 'cuda:N'")


def render(res, arch, console) -> None:
    from rich.table import Table

    from search_space.metrics import METRICS

    head = f"[bold]{arch.name}[/]  {arch.pattern()}  d_model {arch.d_model}"
    console.print(head)
    console.print(f"fidelity {res.fidelity}, seed {res.seed}, device {res.device}, "
                  f"wall time {res.wall_time_s:.1f} s, status [bold]{res.status}[/]")
    if res.error:
        console.print(f"[red]error:[/] {res.error}")
    if res.task_scores:
        t = Table(title="task scores")
        t.add_column("task")
        t.add_column("score", justify="right")
        for k, v in res.task_scores.items():
            t.add_row(k + (" (bits/byte)" if k == "text_bpb" else " (accuracy)"), _fmt(v))
        console.print(t)
    if res.metrics:
        t = Table(title="metrics")
        for c in ("metric", "value", "unit", "kind", "better"):
            t.add_column(c, justify="right" if c == "value" else "left")
        for k, v in res.metrics.items():
            m = METRICS.get(k)
            t.add_row(m.label if m else k, _fmt(v), m.unit if m else "", m.kind if m else "",
                      ("higher" if m.direction == "maximize" else "lower") if m else "")
        console.print(t)
    if res.backend:
        t = Table(title="kernel backends")
        t.add_column("layer")
        t.add_column("backend")
        for k, v in res.backend.items():
            t.add_row(k, v)
        console.print(t)


@click.command()
@click.argument("arch_file", type=click.Path(dir_okay=False))
@click.option("--fidelity", default="quick", show_default=True, help="smoke, quick, standard or full")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--max-seconds", type=float, default=None, help="fail the trial after this long")
@click.option("--json", "as_json", is_flag=True, help="print the TrialResult as JSON")
def evaluate(arch_file, fidelity, device, seed, max_seconds, as_json):
    """Train ARCH_FILE's proxy on the fidelity's tasks and measure its speed and memory."""
    from pathlib import Path

    from search_space import Architecture, GenomeError

    p = Path(arch_file)
    if not p.is_file():
        raise GenomeError(f"{arch_file}: no such file")
    arch = Architecture.from_yaml(p)
    from evaluators.fidelity import Fidelity
    fid = Fidelity.resolve(fidelity)
    if max_seconds is not None:
        if max_seconds <= 0:
            raise DeviceError(f"--max-seconds: {max_seconds} must be > 0")
        fid = fid.model_copy(update={"max_seconds": max_seconds})
    _check_device(device)

    from rich.console import Console

    from evaluators import evaluate as run_evaluate

    console = Console(stderr=as_json)
    if not as_json:
        console.print(f"evaluating {p.name} at fidelity {fid.name} on {device} ...")
    res = run_evaluate(arch, fid, device=device, seed=seed)
    if as_json:
        d = res.as_dict()
        d["extra"].pop("traceback", None) if res.status == "complete" else None
        click.echo(json.dumps(d, default=float, allow_nan=True))
    else:
        render(res, arch, console)
    if res.status == "failed":
        raise SystemExit(1)
