"""The download content: the export functions the dashboard's buttons call, checked directly
(AppTest cannot read a download back), and `hybrid-nas validate` on what they produce."""
from __future__ import annotations

import io
import subprocess
import sys
import zipfile
from datetime import datetime, timezone

import pytest

from dashboard.export import ExportItem, architecture_file, export_download, items_from_store
from dashboard.synthetic import OBJECTIVES
from search_space.genome import Architecture
from storage import Store

OBJ_NAMES = [n for n, _ in OBJECTIVES]


def _pareto_numbers(url, study="demo"):
    return Store(url).pareto_front(study, OBJECTIVES)["number"].astype(int).tolist()


def test_one_trial_is_one_yaml_with_provenance(seeded):
    s = Store(seeded)
    n = _pareto_numbers(seeded)[0]
    items, problems = items_from_store(s, "demo", [n], OBJ_NAMES)
    assert problems == []
    d = export_download(items, store_url=seeded, now=datetime(2026, 1, 2, tzinfo=timezone.utc))
    assert d.filename == f"demo-trial{n}.yaml" and d.mime == "application/x-yaml"
    text = d.data.decode()
    head = [ln for ln in text.splitlines() if ln.startswith("#")]
    assert f"# study: demo   trial: {n}   fidelity: smoke" in head
    assert any(ln.startswith("# values: quality=") and "peak_memory_mib=" in ln for ln in head)
    assert any(ln.startswith("# exported: 2026-01-02T00:00:00Z") for ln in head)
    back = Architecture.from_yaml(text)
    stored = Architecture.from_yaml(s.trial_yaml("demo", n))
    assert back.fingerprint() == stored.fingerprint()
    assert back.name == f"demo-trial{n}"  # unnamed architectures get a name saying where they came from
    t = s.trial("demo", n)
    assert f"quality={t['metrics']['quality']:.6g}" in text


def test_pareto_set_is_a_zip_of_valid_yamls_that_validate_accepts(seeded, tmp_path):
    s = Store(seeded)
    front = _pareto_numbers(seeded)
    assert len(front) >= 2
    items, problems = items_from_store(s, "demo", front, OBJ_NAMES)
    assert problems == []
    d = export_download(items, label="pareto", store_url=seeded)
    assert d.filename == f"demo-pareto-{len(front)}.zip" and d.mime == "application/zip"
    z = zipfile.ZipFile(io.BytesIO(d.data))
    names = sorted(z.namelist())
    assert names == sorted(f"demo-trial{n}.yaml" for n in front)
    z.extractall(tmp_path)
    for n in front:
        a = Architecture.from_yaml(tmp_path / f"demo-trial{n}.yaml")
        assert a.fingerprint() == Architecture.from_yaml(s.trial_yaml("demo", n)).fingerprint()
    out = subprocess.run([sys.executable, "-m", "orchestrator.cli", "validate", *[str(tmp_path / f) for f in names]],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


def test_older_schema_architectures_are_reported_not_exported(seeded):
    items, problems = items_from_store(Store(seeded), "oldschema", [0, 1, 2], OBJ_NAMES)
    assert [it.number for it in items] == [2]
    assert len(problems) == 2 and all("n_heads" in p for p in problems)
    assert problems[0].startswith("trial 0: ")


def test_password_never_in_the_header(seeded):
    s = Store(seeded)
    items, _ = items_from_store(s, "demo", _pareto_numbers(seeded)[:1], OBJ_NAMES)
    text = architecture_file(items[0], store_url="postgresql+psycopg://alice:s3cret@db.example:5432/nas")
    assert "s3cret" not in text and "alice:***@db.example" in text


def test_nothing_to_export_is_an_error():
    with pytest.raises(ValueError):
        export_download([])


def test_named_architecture_keeps_its_name():
    arch = Architecture.from_dict({"name": "mine", "d_model": 64, "blocks": [{"mixer": {"type": "attention"}}]})
    text = architecture_file(ExportItem("s", 3, arch, values={"quality": float("nan")}))
    assert Architecture.from_yaml(text).name == "mine" and "quality=n/a" in text


def test_pareto_filename_matches_the_download(seeded):
    front = _pareto_numbers(seeded)
    items, _ = items_from_store(Store(seeded), "demo", front, OBJ_NAMES)
    from dashboard.export import pareto_filename
    assert export_download(items, label="pareto").filename == pareto_filename("demo", front)
    assert export_download(items[:1], label="pareto").filename == pareto_filename("demo", front[:1])
