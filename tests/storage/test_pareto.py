"""Pareto fronts and hypervolume histories on hand-computed cases (minimize and maximize mixed),
with infeasible, failed, NaN and infinite points, on SQLite and PostgreSQL."""
import math

import numpy as np
import pytest
from optuna._hypervolume import compute_hypervolume

from search_space.result import TrialResult
from storage import StoreError

from store_helpers import result

QM = [("quality", "maximize"), ("peak_memory_mib", "minimize")]


def add(store, number, status="complete", constraints=None, **m):
    store.finish_trial("s", number, result(status, **m), constraints=constraints)


def test_pareto_2d_mixed_directions(store):
    store.create_study("s", "", QM)
    pts = {0: (0.5, 10), 1: (0.7, 20), 2: (0.6, 15), 3: (0.4, 5), 4: (0.6, 25), 5: (0.3, 8), 9: (0.5, 10),
           10: (0.2, 4), 11: (1.0, math.inf)}
    for n, (q, m) in pts.items():
        add(store, n, quality=q, peak_memory_mib=m, constraints={"mem": -1.0})
    add(store, 6, quality=0.9, peak_memory_mib=30, constraints={"mem": 1.0})  # infeasible
    add(store, 7, quality=0.8, peak_memory_mib=math.nan)                     # NaN objective
    add(store, 8, "failed", quality=0.95, peak_memory_mib=1)                  # not complete
    store.start_trial("s", 12)                                                # running
    front = store.pareto_front("s", QM)
    # best quality first; ties (0 and 9 are equal points, both on the front) by the next objective
    assert front["number"].tolist() == [11, 1, 2, 0, 9, 3, 10]
    assert front["quality"].tolist() == [1.0, 0.7, 0.6, 0.5, 0.5, 0.4, 0.2]
    assert front["peak_memory_mib"].tolist()[0] == math.inf
    assert list(front.columns) == ["number", "fingerprint", "pattern", "quality", "peak_memory_mib"]
    # both directions flipped: the opposite staircase (0.2,4) (0.3,8) (0.5,10)x2 (0.6,25) (1.0,inf)
    flipped = store.pareto_front("s", [("quality", "minimize"), ("peak_memory_mib", "maximize")])
    assert flipped["number"].tolist() == [10, 5, 0, 9, 4, 11]
    # 1 objective works too; an unknown metric leaves no finite points
    assert store.pareto_front("s", [("quality", "maximize")])["number"].tolist() == [11]
    assert len(store.pareto_front("s", [("quality", "maximize"), ("nope", "minimize")])) == 0


def test_pareto_3d_and_task_scores(store):
    objs = [("quality", "maximize"), ("peak_memory_mib", "minimize"), ("task:mqar", "maximize")]
    store.create_study("s", "", objs)
    # (quality, memory, mqar)
    pts = {0: (2, 2, 0.2), 1: (1, 0, 0.1), 2: (3, 3, 0.0), 3: (1, 3, 0.1), 4: (2, 2, 0.3)}
    for n, (q, m, t) in pts.items():
        store.finish_trial("s", n, TrialResult(status="complete", metrics={"quality": q, "peak_memory_mib": m},
                                               task_scores={"mqar": t}))
    # 3 is dominated by 0; 0 is dominated by 4 (better mqar, same rest)
    assert sorted(store.pareto_front("s", objs)["number"].tolist()) == [1, 2, 4]
    assert store.pareto_front("s", objs)["task:mqar"].tolist() == [0.0, 0.3, 0.1]  # by quality desc


def test_hypervolume_history_2d(store):
    store.create_study("s", "", QM)
    add(store, 0, quality=0.5, peak_memory_mib=10)
    add(store, 1, quality=0.7, peak_memory_mib=20)
    add(store, 2, quality=0.9, peak_memory_mib=5, constraints={"c": 2.0})  # infeasible
    add(store, 3, quality=0.4, peak_memory_mib=15)                         # dominated by 0
    add(store, 4, quality=0.6, peak_memory_mib=15)
    add(store, 5, quality=math.nan, peak_memory_mib=1)
    add(store, 6, quality=0.65, peak_memory_mib=35)                        # beyond the reference
    add(store, 7, "failed", quality=1.0, peak_memory_mib=0)                 # not complete: not listed
    add(store, 8, quality=0.8, peak_memory_mib=25)
    hv = store.hypervolume_history("s", QM, reference_point=[0.0, 30.0])
    assert hv["number"].tolist() == [0, 1, 2, 3, 4, 5, 6, 8]
    # boxes [0, q] x [m, 30]: 0.5*20; +0.2*10; ...; +0.1*5 (0.6 over 0.5 on [15, 20)); +0.1*5
    assert hv["hypervolume"].tolist() == pytest.approx([10, 12, 12, 12, 12.5, 12.5, 12.5, 13.0])
    # objectives default to the study's
    assert store.hypervolume_history("s", reference_point=[0.0, 30.0])["hypervolume"].iloc[-1] == pytest.approx(13)


def test_hypervolume_history_3d(store):
    objs = [("quality", "maximize"), ("peak_memory_mib", "minimize"), ("val_bpb", "minimize")]
    store.create_study("s", "", objs)
    for n, (q, m, b) in enumerate([(2, 2, 2), (1, 0, 3), (3, 3, 0), (1, 3, 3)]):
        add(store, n, quality=q, peak_memory_mib=m, val_bpb=b)
    hv = store.hypervolume_history("s", objs, reference_point=[0, 4, 4])
    # inclusion-exclusion: 8; 8+4-2; 8+4+12-(2+4+1)+1; the last is dominated
    assert hv["hypervolume"].tolist() == pytest.approx([8, 10, 18, 18])


def test_hypervolume_default_reference_and_infinities(store):
    store.create_study("s", "", QM)
    add(store, 0, quality=1, peak_memory_mib=10)
    add(store, 1, quality=3, peak_memory_mib=20)
    add(store, 2, quality=5, peak_memory_mib=math.inf)  # +inf memory lies beyond any reference
    # nadir of finite points (q 1, m 20) pushed out by 10% of the ranges (2, 10): (0.8, 21)
    hv = store.hypervolume_history("s", QM)
    assert hv["hypervolume"].tolist() == pytest.approx([2.2, 4.2, 4.2])
    add(store, 3, quality=2, peak_memory_mib=-math.inf)  # unbounded improvement
    assert store.hypervolume_history("s", QM, reference_point=[0, 30])["hypervolume"].tolist() == \
        pytest.approx([20, 40, 40, math.inf])  # 1*20; +2*10
    with pytest.raises(StoreError, match="reference_point has 1 values"):
        store.hypervolume_history("s", QM, reference_point=[1.0])


def test_hypervolume_incremental_equals_from_scratch(store):
    """The incremental bookkeeping agrees with Optuna's hypervolume of every prefix."""
    rng = np.random.default_rng(0)
    objs = [("quality", "maximize"), ("peak_memory_mib", "minimize"), ("val_bpb", "minimize")]
    store.create_study("s", "", objs)
    vals = rng.uniform(0, 1, size=(60, 3))
    feas = rng.uniform(size=60) > 0.2
    for n, (v, f) in enumerate(zip(vals, feas)):
        add(store, n, quality=v[0], peak_memory_mib=v[1], val_bpb=v[2], constraints={"c": -1.0 if f else 1.0})
    ref = np.array([0.0, 1.0, 1.0])
    got = store.hypervolume_history("s", objs, reference_point=ref)["hypervolume"].to_numpy()
    loss = vals * np.array([-1, 1, 1])
    signed_ref = ref * np.array([-1, 1, 1])
    want = [compute_hypervolume(loss[:i + 1][feas[:i + 1]], signed_ref) for i in range(60)]
    np.testing.assert_allclose(got, want, rtol=1e-9)
