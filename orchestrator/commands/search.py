"""`hybrid-nas search`: parse flags, load the config, call `orchestrator.search.run_search`.

Flags override the file. `--resume` continues the config's study; `--resume STUDY` (no config
file) continues a study from the config stored with it. Every user mistake is found before any
trial starts and ends as one line and exit code 2 (the CLI group does that for UserError)."""
from __future__ import annotations

import os

import click


@click.command("search")
@click.argument("config", required=False, type=click.Path(dir_okay=False))
@click.option("--storage", help="Database URL (sqlite:///file.db or postgresql+psycopg://user@host/db).")
@click.option("--study", help="Study name (default: the config's).")
@click.option("--trials", type=int, help="Total number of trials of the study.")
@click.option("--address", help="Ray cluster to join: auto, ray://host:10001, host:6379 (default: embedded Ray; "
                                "RAY_ADDRESS is used when set, as under `ray job submit`).")
@click.option("--resume", "resume", is_flag=False, flag_value="", default=None, metavar="[STUDY]",
              help="Continue a stopped study up to its trial count (no finished trial is repeated).")
@click.option("--sampler", type=click.Choice(["tpe", "nsga2", "nsga3", "gp", "random", "evolution"]),
              help="Override the config's sampler (its options are kept only if the type is the same).")
@click.option("--fidelity", help="Override the fidelity preset (smoke, quick, standard, full).")
@click.option("--concurrency", type=int, help="Trials running at once (default: as many as fit).")
@click.option("--seed", type=int)
@click.option("--num-cpus", type=int, help="CPUs the embedded Ray instance may use.")
@click.option("--no-live", is_flag=True, help="Print one line per trial instead of the live view.")
def search(config, storage, study, trials, address, resume, sampler, fidelity, concurrency, seed, num_cpus, no_live):
    """Search architectures: Optuna samplers inside Ray Tune, results in the store."""
    from rich.console import Console

    from orchestrator.config import ConfigError, load_config
    from orchestrator.search import load_stored_config, run_search

    if resume and config is None and os.path.isfile(resume):
        config, resume = resume, ""  # `--resume config.yaml`: click took the file as the value
    if config is None:
        if not resume:
            raise ConfigError("", "give a study config file (hybrid-nas search CONFIG.yaml) or --resume STUDY")
        from storage.store import DEFAULT_URL
        cfg = load_stored_config(resume, storage or DEFAULT_URL)
    else:
        cfg = load_config(config)
        if resume and resume != cfg.study and study is None:
            study = resume
    flags = dict(storage=storage, study=study, trials=trials, concurrency=concurrency, seed=seed, num_cpus=num_cpus)
    if sampler is not None:
        flags["sampler"] = {"type": sampler, "options": cfg.sampler.options if cfg.sampler.type == sampler else {}}
    if fidelity is not None:
        flags["fidelity"] = {"preset": fidelity}
    cfg = cfg.with_overrides(**flags)
    address = address or os.environ.get("RAY_ADDRESS") or cfg.address

    console = Console()
    out = run_search(cfg, resume=resume is not None, address=address, console=console,
                     live=False if no_live else None)
    print_summary(console, cfg, out)


def print_summary(console, cfg, out) -> None:
    from orchestrator.live import pareto_table

    objs = list(zip(cfg.metric_names, cfg.directions))
    console.print()
    console.print(pareto_table(out.pareto, objs, title=f"Pareto front of {out.study} ({cfg.fidelity.label})",
                               limit=30))
    console.print(f"trials: {out.complete} complete, {out.failed} failed, {out.pruned} stopped early "
                  f"({out.wall_s:.0f} s)")
    if out.promoted_study:
        console.print(f"promoted to {cfg.promotion.fidelity.label}: study {out.promoted_study}")
    console.print(f"results: study {out.study} in {out.storage}")
    console.print(f"dashboard: hybrid-nas dashboard --storage {out.storage}", soft_wrap=True, highlight=False)
    console.print(f"export:    hybrid-nas export --study {out.study} --storage {out.storage} --pareto --out exported/",
                  soft_wrap=True, highlight=False)
    if ":***@" in out.storage:
        console.print("(the database password is not printed: put yours in place of ***)", highlight=False)
