"""Export winners of a study as architecture YAML files, optionally rescaled.

Each file is a plain architecture (what `hybrid-nas validate` and `build_model` read) preceded by
a comment header with its provenance: study, trial, fidelity, fingerprint, objective values,
constraint feasibility and the scaling applied. The storage URL in the header is masked: files
are shared, passwords must not be. Every file is checked by reading it back before it is
written (atomically), so an export never leaves a half-written or invalid file."""
from __future__ import annotations

import math
import os
import re
from pathlib import Path

from search_space.errors import UserError

from .config import ConfigError


def parse_scale(text: str | None) -> dict[str, int]:
    """'d_model=1024,depth=24' -> {'d_model': 1024, 'depth': 24}."""
    if not text:
        return {}
    out: dict[str, int] = {}
    for part in text.split(","):
        m = re.fullmatch(r"\s*(d_model|depth)\s*=\s*(\d+)\s*", part)
        if not m:
            raise ConfigError("--scale", f"{part.strip()!r} is not d_model=N or depth=N")
        k, v = m.group(1), int(m.group(2))
        if v < 1:
            raise ConfigError("--scale", f"{k} must be >= 1")
        out[k] = v
    return out


def select_trials(store, study: str, *, pareto: bool, top: int | None, by: str | None) -> list[int]:
    from search_space.metrics import METRICS
    st = store.get_study(study)
    objs = [tuple(o) for o in st.objectives]
    if pareto:
        return [int(n) for n in store.pareto_front(study, objs)["number"]]
    if by not in METRICS:
        raise ConfigError("--by", f"unknown metric {by!r} (known: {', '.join(METRICS)})")
    direction = dict(objs).get(by, METRICS[by].direction)
    frame = store.trials_frame(study, "complete")
    if len(frame) and "feasible" in frame:
        frame = frame[frame["feasible"].map(lambda v: v is None or v is True or (isinstance(v, float) and math.isnan(v)) or bool(v))]
    frame = frame.dropna(subset=[by]) if by in frame else frame.iloc[0:0]
    frame = frame.sort_values([by, "number"], ascending=[direction == "minimize", True])
    return [int(n) for n in frame["number"].head(top)]


def export_trials(store, study: str, numbers: list[int], out_dir: str | Path, scale: dict[str, int],
                  shown_url: str) -> list[Path]:
    from search_space.genome import Architecture
    from search_space.errors import GenomeError

    st = store.get_study(study)
    objs = [tuple(o) for o in st.objectives]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for n in numbers:
        t = store.trial(study, n)
        arch = Architecture.from_yaml(store.trial_yaml(study, n))
        searched = f"d_model={arch.d_model}, depth={len(arch.blocks)}"
        if scale:
            try:
                arch = arch.scaled(d_model=scale.get("d_model"), depth=scale.get("depth"))
            except GenomeError as e:
                raise ConfigError("--scale", f"trial {n} cannot be scaled: {e.lines()[0]}") from None
        suffix = f"-d{arch.d_model}x{len(arch.blocks)}" if scale else ""
        arch = Architecture.from_dict({**arch.to_dict(), "name": f"{study}-t{n}{suffix}"})
        metrics = t.get("metrics") or {}
        vals = ", ".join(f"{m}={metrics.get(m, float('nan')):.6g} ({d})" for m, d in objs)
        header = [
            "# exported by hybrid-nas export",
            f"# study: {study}   storage: {shown_url}",
            f"# trial: {n}   fidelity: {t.get('fidelity') or '?'}   seed: {t.get('seed')}   "
            f"fingerprint (as searched): {t.get('fingerprint')}",
            f"# objectives: {vals}",
            f"# feasible: {t.get('feasible')}   constraints: {', '.join(st.constraints) or 'none'}",
            f"# scaled: {'d_model=%d, depth=%d (searched at %s)' % (arch.d_model, len(arch.blocks), searched) if scale else 'no'}",
        ]
        text = "\n".join(header) + "\n" + arch.to_yaml()
        if Architecture.from_yaml(text).fingerprint() != arch.fingerprint():  # pragma: no cover
            raise UserError(f"trial {n}: the exported YAML does not read back as the same architecture")
        path = out / f"{study}-t{n:04d}{suffix}.yaml"
        tmp = path.with_suffix(".yaml.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
        written.append(path)
    return written
