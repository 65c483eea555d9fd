"""What the dashboard's download buttons hand out: architecture YAML files.

Design choices:
- Plain functions, no Streamlit: the app calls them and the tests check their output directly
  (AppTest cannot read a download back).
- One YAML file per architecture, written by `Architecture.to_yaml()` (every parameter spelled
  out), preceded by a `#` comment header saying where it came from (store, study, trial,
  fidelity, objective values, fingerprint). YAML comments keep the file loadable by
  `hybrid-nas validate` and `Architecture.from_yaml` unchanged.
- Several architectures come zipped, one file each, named `<study>-trial<N>.yaml`.
- Every file is parsed back before it is handed out and must give the same fingerprint: a
  download that `hybrid-nas validate` would refuse is a bug caught here, not by the user.
"""
from __future__ import annotations

import io
import math
import re
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone

from search_space.genome import Architecture
from search_space.metrics import METRICS

from .config import mask_url


@dataclass(frozen=True)
class ExportItem:
    """One trial to export: its architecture and what to say about where it came from."""
    study: str
    number: int
    arch: Architecture
    fidelity: str = ""
    #: objective/metric values worth recording in the header (name -> value)
    values: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Download:
    filename: str
    data: bytes
    mime: str


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "study"


def item_filename(item: ExportItem) -> str:
    return f"{_safe(item.study)}-trial{item.number}.yaml"


def _fmt(name: str, v: float) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return f"{name}=n/a"
    m = METRICS.get(name)
    unit = f" {m.unit}" if m and m.unit else ""
    return f"{name}={v:.6g}{unit}"


def architecture_file(item: ExportItem, store_url: str | None = None, now: datetime | None = None) -> str:
    """The YAML text of one architecture with its provenance header."""
    arch = item.arch
    if arch.name in ("", "unnamed"):
        # a name that says where it came from survives renaming the file
        arch = arch.model_copy(update={"name": f"{item.study}-trial{item.number}"})
    now = now or datetime.now(timezone.utc)
    lines = ["# hybrid-nas architecture, exported from the dashboard",
             f"# study: {item.study}   trial: {item.number}" + (f"   fidelity: {item.fidelity}" if item.fidelity else "")]
    if store_url:
        lines.append(f"# store: {mask_url(store_url)}")
    if item.values:
        lines.append("# values: " + ", ".join(_fmt(k, v) for k, v in item.values.items()))
    lines.append(f"# pattern: {arch.pattern()}   fingerprint: {arch.fingerprint()}")
    lines.append(f"# exported: {now.strftime('%Y-%m-%dT%H:%M:%SZ')}   check with: hybrid-nas validate <this file>")
    text = "\n".join(lines) + "\n" + arch.to_yaml()
    back = Architecture.from_yaml(text)
    if back.fingerprint() != item.arch.fingerprint():  # pragma: no cover - would be a bug in to_yaml
        raise RuntimeError(f"export of trial {item.number} does not round-trip")
    return text


def pareto_filename(study: str, numbers: list[int]) -> str:
    """The name `export_download(..., label="pareto")` gives the Pareto set of `study`, known before
    the file is built (a lazy download button needs it up front)."""
    if len(numbers) == 1:
        return f"{_safe(study)}-trial{numbers[0]}.yaml"
    return f"{_safe(study)}-pareto-{len(numbers)}.zip"


def export_download(items: list[ExportItem], store_url: str | None = None, label: str = "selected",
                    now: datetime | None = None) -> Download:
    """One item: a `.yaml` file. Several: a `.zip` with one `.yaml` per trial."""
    if not items:
        raise ValueError("nothing to export")
    if len(items) == 1:
        it = items[0]
        return Download(item_filename(it), architecture_file(it, store_url, now).encode(), "application/x-yaml")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for it in items:
            z.writestr(item_filename(it), architecture_file(it, store_url, now))
    studies = sorted({it.study for it in items})
    stem = _safe(studies[0] if len(studies) == 1 else "studies")
    return Download(f"{stem}-{_safe(label)}-{len(items)}.zip", buf.getvalue(), "application/zip")


def items_from_store(store, study: str, numbers: list[int], objectives: list[str] = ()) -> tuple[list[ExportItem], list[str]]:
    """ExportItems for trials of `study` read through `store` (a `storage.Store`), plus one line
    per trial that could not be exported (no architecture stored, or YAML from an older schema
    that no longer validates: the message names the field)."""
    from search_space.errors import UserError

    items, problems = [], []
    for n in numbers:
        try:
            t = store.trial(study, int(n))
            if not t.get("architecture_yaml"):
                problems.append(f"trial {n}: no architecture stored")
                continue
            arch = Architecture.from_yaml(t["architecture_yaml"])
        except UserError as e:
            problems.append(f"trial {n}: {' / '.join(e.lines())}")
            continue
        metrics = t.get("metrics") or {}
        values = {k: metrics[k] for k in objectives if k in metrics}
        values.update({k: (t.get("task_scores") or {}).get(k[5:]) for k in objectives
                       if k.startswith("task:") and k[5:] in (t.get("task_scores") or {})})
        items.append(ExportItem(study=study, number=int(n), arch=arch, fidelity=t.get("fidelity") or "", values=values))
    return items, problems
