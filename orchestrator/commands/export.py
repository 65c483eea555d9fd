"""`hybrid-nas export`: write a study's winners as architecture YAML (see orchestrator/export.py)."""
from __future__ import annotations

import click


@click.command("export")
@click.option("--study", required=True, help="Study name.")
@click.option("--storage", default=None, help="Database URL (default: sqlite:///hybrid-nas.db).")
@click.option("--pareto", is_flag=True, help="Export the feasible Pareto front of the study's objectives.")
@click.option("--top", type=click.IntRange(1, 100000), help="Export the best K complete, feasible trials ...")
@click.option("--by", "by", help="... by this metric (its objective direction, else the catalogue's).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Output directory.")
@click.option("--scale", help="Rescale, e.g. d_model=1024,depth=24.")
def export(study, storage, pareto, top, by, out_dir, scale):
    """Export architectures from a study as YAML with a provenance header."""
    from orchestrator.config import ConfigError
    from orchestrator.export import export_trials, parse_scale, select_trials
    from storage import Store
    from storage.engine import hide

    if pareto == bool(top):
        raise ConfigError("", "give exactly one of --pareto or --top K --by METRIC")
    if top and not by:
        raise ConfigError("--by", "--top needs --by METRIC")
    sc = parse_scale(scale)
    store = Store(storage, create=False)
    numbers = select_trials(store, study, pareto=pareto, top=top, by=by)
    if not numbers:
        click.echo(f"study {study!r} has no complete feasible trial to export", err=True)
        raise SystemExit(1)
    paths = export_trials(store, study, numbers, out_dir, sc, hide(store.url))
    for p in paths:
        click.echo(str(p))
    click.echo(f"{len(paths)} architecture(s) written to {out_dir}")
