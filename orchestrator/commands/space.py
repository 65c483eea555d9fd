"""`hybrid-nas validate`, `show` and `sample`: the genome and search-space commands.

Thin on purpose: they load files with `search_space` and print. Nothing here imports torch or
ray; `show` imports `proxy_models.backends` lazily for its backend column and leaves the column
out (with a note) when that cannot be imported. Every user mistake becomes a `UserError` (one
line per problem, naming the file and the field path) that `orchestrator.cli` prints before
exiting with code 2; `sample` checks everything before it writes a file."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from search_space.errors import GenomeError, UserError


class Problems(UserError):
    """Problems of several files at once, one line each."""

    def __init__(self, lines: list[str]):
        self._lines = lines
        super().__init__("\n".join(lines))

    def lines(self) -> list[str]:
        return list(self._lines)


def load_any(path: str, kind: str = "auto"):
    """Load an architecture or a search space file; the kind is told by content when 'auto':
    architectures have `blocks`, spaces have `token_mixers`."""
    from search_space.genome import Architecture
    from search_space.space import SearchSpace
    from search_space.yaml_io import load_yaml

    p = Path(path)
    if not p.exists():
        raise GenomeError("no such file", path)
    data, src = load_yaml(p)
    if kind == "auto":
        if isinstance(data, dict) and "token_mixers" in data:
            kind = "space"
        elif isinstance(data, dict) and "blocks" not in data:
            raise GenomeError("neither an architecture (it has no 'blocks') nor a search space "
                              "(it has no 'token_mixers')", src)
        else:
            kind = "architecture"
    cls = SearchSpace if kind == "space" else Architecture
    return kind, cls.from_dict(data, src)


@click.command()
@click.argument("files", nargs=-1, required=True)
@click.option("--kind", type=click.Choice(["auto", "architecture", "space"]), default="auto",
              show_default=True, help="what the files are; 'auto' tells by content")
@click.option("--space", "space_file", default=None, metavar="SPACE.yaml",
              help="also check that each architecture lies inside this search space")
def validate(files: tuple[str, ...], kind: str, space_file: str | None):
    """Check architecture and search-space YAML files.

    Exit 0 when every file is valid, 2 with one line per problem (file: field path: problem)."""
    lines: list[str] = []
    space = None
    if space_file is not None:
        try:
            _, space = load_any(space_file, "space")
        except UserError as e:
            raise Problems(e.lines()) from None
    for f in files:
        try:
            k, obj = load_any(f, kind)
        except UserError as e:
            lines.extend(e.lines())
            continue
        if k == "space":
            click.echo(f"{f}: ok (search space {obj.name!r}, {len(obj.token_mixers)} token mixers, "
                       f"depth {obj.depth.min}..{obj.depth.max})")
            continue
        if space is not None:
            probs = space.problems(obj)
            if probs:
                lines.extend(f"{f}: {p}: {m} (outside space {space.name!r})" for p, m in probs)
                continue
        click.echo(f"{f}: ok (architecture {obj.name!r}, {obj.pattern()}, fingerprint {obj.fingerprint()})")
    if lines:
        raise Problems(lines)


def _fmt_int(n: float) -> str:
    for unit, k in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= k:
            return f"{n / k:.2f}{unit}"
    return f"{n:.0f}"


def _spec_text(spec) -> str:
    fields = {k: v for k, v in spec.model_dump(mode="json", exclude_none=True).items() if k != "type"}
    defaults = {k: f.default for k, f in type(spec).model_fields.items()}
    # only what differs from the defaults keeps the table narrow
    shown = " ".join(f"{k}={v}" for k, v in fields.items() if v != defaults.get(k))
    return f"{spec.type} {shown}".strip()


def _backends(arch) -> tuple[dict[str, str] | None, str | None]:
    try:
        from proxy_models.backends import layer_backends
    except Exception as e:  # torch or the module may be missing: the table is still useful
        return None, f"backend column left out: proxy_models.backends unavailable ({type(e).__name__}: {e})"
    try:
        return layer_backends(arch), None
    except Exception as e:
        return None, f"backend column left out: layer_backends failed ({type(e).__name__}: {e})"


def _site_backend(backends: dict[str, str], path: str) -> str:
    seen: list[str] = []
    for k, v in backends.items():
        if (k == path or k.startswith(path + ".")) and v not in seen:
            seen.append(v)
    return ", ".join(seen)


@click.command()
@click.argument("file")
@click.option("--vocab", type=click.IntRange(min=0), default=256, show_default=True,
              help="vocabulary size for embedding parameters and the LM head")
@click.option("--kind", type=click.Choice(["auto", "architecture", "space"]), default="auto", show_default=True)
def show(file: str, vocab: int, kind: str):
    """Show an architecture (blocks, parameters, cache, FLOPs, fingerprint) or a search space."""
    from rich.console import Console
    from rich.table import Table

    k, obj = load_any(file, kind)
    # pipes and CI logs get 80 columns by default: too narrow for a block table
    console = Console(width=None if sys.stdout.isatty() else 160)
    if k == "space":
        _show_space(obj, console)
        return
    from search_space.costs import block_params
    from search_space.genome import RecursionSite

    arch = obj
    backends, note = _backends(arch)
    t = Table(title=f"{arch.name}  ({arch.pattern()})")
    for col in ("path", "code", "token mixer", "channel", "share", "params"):
        t.add_column(col, justify="right" if col == "params" else "left")
    if backends is not None:
        t.add_column("backend")

    def row(site, path_prefix=""):
        b = site.block
        mixer = " | ".join(_spec_text(m.spec) for m in site.mixers)
        if len(site.mixers) > 1:
            mixer += f"  [{b.mixer.combine}]"
        code = b.code + ("" if b.channel.type == "none" else "+" + b.channel.code)
        cells = [path_prefix + site.path, code, mixer, _spec_text(b.channel), b.share or "",
                 _fmt_int(block_params(arch, site)) if site.owner else "shared"]
        if backends is not None:
            cells.append(_site_backend(backends, site.path))
        t.add_row(*cells)

    for s in arch.layout():
        if isinstance(s, RecursionSite):
            g = s.group
            how = f"{g.router}" + (f" {g.capacity}" if g.capacity else "")
            cells = [s.path, g.code, f"recursion x{g.max_depth} {how}", "", "",
                     _fmt_int(g.router_params(arch.d_model))]
            if backends is not None:
                cells.append("")
            t.add_row(*cells)
            for b in s.body:
                row(b, "  ")
        else:
            row(s)
    console.print(t)
    c2, c32 = arch.costs(vocab, context=2048), arch.costs(vocab, context=32768)
    console.print(f"d_model {arch.d_model}, norm {arch.norm}, "
                  f"{'tied' if arch.tie_embeddings else 'untied'} embeddings, vocab {vocab}")
    console.print(f"params: total {_fmt_int(c2.params_total)} ({c2.params_total:,}), "
                  f"active/token {_fmt_int(c2.params_active)} ({c2.params_active:,}), "
                  f"embedding {_fmt_int(c2.params_embedding)}")
    console.print(f"cache (batch 1, bf16): {c2.cache_bytes / 2**20:.3f} MiB at 2K, "
                  f"{c32.cache_bytes / 2**20:.3f} MiB at 32K")
    console.print(f"FLOPs/token (forward): {_fmt_int(c2.flops_per_token)} at 2K, "
                  f"{_fmt_int(c32.flops_per_token)} at 32K")
    console.print(f"fingerprint {arch.fingerprint()}")
    if note:
        console.print(note)


def _show_space(space, console) -> None:
    from rich.table import Table
    t = Table(title=f"search space {space.name}")
    for col in ("slot", "primitive", "parameter", "choices"):
        t.add_column(col)
    for slot, kind, names in (("token mixer", "token", space.token_mixers), ("channel", "channel", space.channel_mixers)):
        for name in names:
            ch = space.mixer_choices(kind, name)
            if not ch:
                t.add_row(slot, name, "", "defaults")
            for p, v in ch.items():
                t.add_row(slot, name, p, ", ".join("null" if x is None else str(x) for x in v))
    console.print(t)
    console.print(f"d_model {space.d_model}, depth {space.depth.min}..{space.depth.max}, norm {space.norm}")
    console.print(f"parallel: {space.parallel.model_dump() if space.parallel else 'no'}")
    console.print(f"recursion: {space.recursion.model_dump() if space.recursion else 'no'}")
    console.print(f"sharing: {'yes' if space.sharing else 'no'}")
    cons = {k: v for k, v in space.constraints.model_dump().items() if v is not None}
    console.print(f"constraints: {cons}")


@click.command()
@click.argument("space_file", metavar="SPACE.yaml")
@click.option("-n", "count", type=click.IntRange(1, 100_000), default=5, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="write one YAML file per architecture here (default: print to stdout)")
@click.option("--feasible", is_flag=True, help="keep only architectures that meet the space's constraints")
def sample(space_file: str, count: int, seed: int, out_dir: str | None, feasible: bool):
    """Draw architectures from a search space with Optuna's RandomSampler (seeded)."""
    import optuna

    _, space = load_any(space_file, "space")
    if out_dir is not None and Path(out_dir).exists() and not Path(out_dir).is_dir():
        raise UserError(f"--out {out_dir}: exists and is not a directory")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    archs: list[Any] = []
    tries = 0
    while len(archs) < count:
        tries += 1
        if feasible and tries > 200 * count:
            raise UserError(f"{space_file}: only {len(archs)} of {count} feasible architectures "
                            f"in {tries - 1} draws; loosen the constraints")
        trial = study.ask()
        arch = space.sample(trial)
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        if feasible and not space.feasible(arch):
            continue
        archs.append(arch)
    if out_dir is None:
        click.echo("\n---\n".join(a.to_yaml() for a in archs), nl=False)
        return
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for i, a in enumerate(archs):
        path = out / f"{i:04d}-{a.fingerprint()}.yaml"
        path.write_text(a.to_yaml())
    click.echo(f"wrote {len(archs)} architectures to {out}")
