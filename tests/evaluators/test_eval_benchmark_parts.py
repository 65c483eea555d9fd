"""The proxy-fidelity benchmark's own parts: its panel and its rank correlation."""
import importlib.util
from pathlib import Path

import pytest

from search_space import Architecture

spec = importlib.util.spec_from_file_location(
    "proxy_fidelity", Path(__file__).parents[2] / "benchmarks" / "proxy_fidelity.py")
pf = importlib.util.module_from_spec(spec)
spec.loader.exec_module(pf)


def test_spearman():
    assert pf.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert pf.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert pf.spearman([1, 2, 3, 4, 5], [5, 6, 7, 9, 8]) == pytest.approx(0.9)
    assert pf.spearman([1, 1, 2], [1, 2, 3]) == pytest.approx(0.8660254)   # ties get average ranks
    assert pf.spearman([1, 2], [1, 2]) is None


def test_panel_has_pure_and_hybrid_architectures():
    panel = [Architecture.from_dict(d) for d in pf.panel(quick=False)]
    assert len(panel) >= 8 and len({a.fingerprint() for a in panel}) == len(panel)
    mixers = [{p for p in a.primitives() if p not in ("swiglu", "moe", "none")} for a in panel]
    assert sum(len(m) == 1 for m in mixers) >= 4 and sum(len(m) > 1 for m in mixers) >= 2
    std, full, note = pf.fidelities(quick=False, true_full=False)
    assert std.name == "standard" and full.name == "full-reduced" and "6 epochs" in note
    assert full.d_model == 128 and all(t.batch_size == 128 and t.train_examples for t in full.tasks)
