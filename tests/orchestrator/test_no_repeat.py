"""NoRepeatSampler (any Optuna sampler without repeats) and the surrogate-screened evolution, on
real Optuna studies (in memory): fast, no Ray."""
from __future__ import annotations


import numpy as np
import optuna
import pytest

from orchestrator.config import ConfigError, SamplerConfig
from orch_helpers import concurrent_fingerprints, objectives, tell_then_check_rerun
from orchestrator.samplers import EvolutionSampler, NoRepeatSampler, make_sampler

optuna.logging.set_verbosity(optuna.logging.WARNING)
pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")

def _sampler(name, space, seed=0, trials=45, **kw):
    return make_sampler(SamplerConfig(type=name, **kw), space=space, trials=trials, concurrency=1, seed=seed)


def _run(space, sampler, n):
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)
    fps = []
    for _ in range(n):
        t = study.ask()
        arch = space.sample(t)
        fps.append(arch.fingerprint())
        study.tell(t, objectives(arch))
    return study, fps


@pytest.mark.parametrize("name", ["tpe", "nsga2", "nsga3", "gp"])
def test_structural_samplers_are_wrapped_by_default_and_random_is_not(tiny_space, name):
    space, _ = tiny_space
    s = _sampler(name, space)
    assert isinstance(s, NoRepeatSampler)
    assert not isinstance(_sampler(name, space, no_repeat=False), NoRepeatSampler)
    assert not isinstance(_sampler("random", space), NoRepeatSampler)
    assert isinstance(_sampler("random", space, no_repeat=True), NoRepeatSampler)


@pytest.mark.parametrize("name", ["tpe", "nsga2"])
def test_no_repeats_while_the_space_has_new_architectures(tiny_space, name):
    space, every = tiny_space
    study, fps = _run(space, _sampler(name, space, seed=1), 45)
    assert len(set(fps[:40])) == 40, "a repeat while new architectures were left"
    assert set(fps[:40]) == set(every)
    # exhausted: the wrapped sampler's own proposal, marked as a repeat
    repeats = [t.number for t in study.trials if t.system_attrs.get("no_repeat:repeat")]
    assert repeats == list(range(40, 45))
    # the wrapped sampler really proposed repeats (which were replaced): the guard did something
    assert sum("no_repeat:replaced" in t.system_attrs for t in study.trials) >= 5


def test_without_the_guard_tpe_repeats(tiny_space):
    """Why the guard exists: on a finite space TPE proposes architectures the study has."""
    space, _ = tiny_space
    _, fps = _run(space, _sampler("tpe", space, seed=1, no_repeat=False), 40)
    assert len(set(fps)) < 35


def test_params_are_the_evaluated_architecture(tiny_space):
    """A replaced proposal leaves no trace in the params: the trial's params (what the wrapped
    sampler's model learns from) are those of the architecture that was evaluated."""
    space, _ = tiny_space
    study, fps = _run(space, _sampler("tpe", space, seed=2), 30)
    replaced = [t for t in study.trials if "no_repeat:replaced" in t.system_attrs]
    assert replaced
    for t in study.trials:
        arch = space.replay(t.params)
        assert arch.fingerprint() == fps[t.number] == t.system_attrs["no_repeat:fingerprint"]
        assert t.params == space.to_params(arch)
        assert t.distributions == space.distributions(t.params)
    for t in replaced:
        info = t.system_attrs["no_repeat:replaced"]
        assert info["proposed"] in fps[:t.number], "only a proposal the study already had is replaced"
        assert info["proposed"] != fps[t.number]
        assert info["op"] == "random" or info["op"].startswith("mutate*")


def test_unreplaced_proposals_are_the_wrapped_samplers_own(tiny_space):
    """Until the wrapped sampler repeats itself, the wrapper proposes exactly what it would alone;
    its first repeat is replaced by a new architecture."""
    space, _ = tiny_space
    _, alone = _run(space, optuna.samplers.NSGAIISampler(seed=4, population_size=16), 16)
    first = next(i for i, fp in enumerate(alone) if fp in alone[:i])  # birthday: 16 of 40 repeat
    study, fps = _run(space, NoRepeatSampler(optuna.samplers.NSGAIISampler(seed=4, population_size=16), space,
                                             seed=0), 16)
    assert fps[:first] == alone[:first]
    assert not any("no_repeat:replaced" in t.system_attrs for t in study.trials[:first])
    assert fps[first] not in fps[:first]
    assert study.trials[first].system_attrs["no_repeat:replaced"]["proposed"] == alone[first]


def test_concurrent_trials_spread_out(tiny_space):
    """Trials asked before any is told (running concurrently) are all different."""
    space, _ = tiny_space
    s = make_sampler(SamplerConfig(type="tpe"), space=space, trials=40, concurrency=4, seed=0)
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=s)
    fps = concurrent_fingerprints(study, space)
    assert len(set(fps)) == len(fps) == 26


def test_failed_and_pruned_architectures_are_not_proposed_again(tiny_space):
    space, _ = tiny_space
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=_sampler("tpe", space, seed=3))
    fps = []
    for i in range(40):
        t = study.ask()
        arch = space.sample(t)
        fps.append(arch.fingerprint())
        if any(m.type == "retention" for b in arch.flat_blocks() for m in b.mixers):
            study.tell(t, state=optuna.trial.TrialState.FAIL)
        elif i % 3 == 0:
            study.tell(t, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(t, objectives(arch))
    assert len(set(fps)) == 40


def test_enqueued_and_rerun_trials_are_left_alone(tiny_space):
    space, every = tiny_space
    study, fps = _run(space, _sampler("tpe", space, seed=0), 12)
    # an enqueued architecture the study already has is evaluated as asked: the user wants it
    study.enqueue_trial(space.to_params(every[fps[0]]))
    t = study.ask()
    assert space.sample(t).fingerprint() == fps[0]
    attrs = study._storage.get_trial_system_attrs(t._trial_id)
    assert not any(k.startswith("no_repeat:") for k in attrs)
    study.tell(t, objectives(every[fps[0]]))
    # a new enqueued architecture, started but none of its params drawn yet: a trial asked
    # meanwhile does not take it too
    new = next(fp for fp in every if fp not in fps)
    study.enqueue_trial(space.to_params(every[new]))
    t = study.ask()
    other = study.ask()
    assert space.sample(other).fingerprint() != new
    assert space.sample(t).fingerprint() == new
    # a trial re-run under its own number (search.py's resume) keeps its params and attributes
    tell_then_check_rerun(study, space, (t, other), "no_repeat:fingerprint")


def test_gp_wrapped_runs_multi_objective(tiny_space):
    space, _ = tiny_space
    _, fps = _run(space, _sampler("gp", space, seed=0, trials=20), 14)
    assert len(set(fps)) == 14


def test_no_repeat_config():
    from orchestrator.config import load_config_data
    from search_space.errors import GenomeError
    base = {"space": "x.yaml", "objectives": ["quality"], "trials": 3}
    cfg = load_config_data({**base, "sampler": {"type": "nsga2", "no_repeat": False, "population_size": 4}})
    assert (cfg.sampler.no_repeat, cfg.sampler.options) == (False, {"population_size": 4})
    assert load_config_data({**base, "sampler": "tpe"}).sampler.no_repeat is None
    for bad in ("no", 0, "false"):
        with pytest.raises(GenomeError, match="sampler.no_repeat"):
            load_config_data({**base, "sampler": {"type": "tpe", "no_repeat": bad}})
    with pytest.raises(ConfigError, match="sampler.no_repeat"):
        make_sampler(SamplerConfig(type="evolution", no_repeat=False), space=None, trials=10, concurrency=1, seed=0)


# ---------------------------------------------------------------------------------------------
# the surrogate-screened evolution
def test_bayes_ridge_fits_a_linear_function_and_is_unsure_off_the_data():
    from orchestrator.surrogate import BayesRidge
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    Y = np.stack([2 * X[:, 0] - X[:, 1] + 0.5, X[:, 2]], axis=1) + 0.01 * rng.normal(size=(60, 2))
    m = BayesRidge(alpha=1e-3).fit(X, Y)
    mean, std = m.predict(np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 20.0]]))
    assert np.allclose(mean[0], [2.5, 0.0], atol=0.05)
    assert std[1, 1] > 2 * std[0, 1]  # far from the data: less sure


def test_choose_picks_the_candidate_predicted_to_extend_the_front():
    from orchestrator.surrogate import choose
    # loss = feature (two objectives, minimized); the front is (1,3), (2,2), (3,1)
    X = np.array([[1, 3], [2, 2], [3, 1], [3, 3], [4, 4], [2, 4], [4, 2]], dtype=float)
    cand = np.array([[3.5, 3.5], [0.5, 0.5], [2.5, 2.5]])
    best, scores = choose(X, X.copy(), X[:3], cand, beta=0.0)
    assert best == 1 and scores[1] > 0


def test_screened_evolution_records_and_never_repeats(tiny_space):
    space, every = tiny_space
    s = EvolutionSampler(space, population_size=5, screen=16, seed=0)
    study, fps = _run(space, s, 40)
    assert set(fps) == set(every)
    ops = [t.system_attrs["evolution:op"] for t in study.trials]
    assert ops[:5] == ["random"] * 5
    assert any("+screened" in op for op in ops[5:])
    for t in study.trials:
        assert space.replay(t.params).fingerprint() == t.system_attrs["evolution:fingerprint"]


def test_screen_options_are_checked():
    for opts, field in (({"screen": -1}, "screen"), ({"screen": 1.5}, "screen"),
                        ({"random_candidates": 2}, "random_candidates"), ({"beta": -1}, "beta")):
        with pytest.raises(ConfigError, match=f"sampler.options.{field}"):
            make_sampler(SamplerConfig(type="evolution", options=opts), space=None, trials=10, concurrency=1, seed=0)


def test_bayes_ridge_keeps_the_prior_for_a_feature_no_trial_has():
    """A candidate with a value no completed trial has is predicted with more uncertainty (its
    weight is unknown), not as if the feature did not matter."""
    from orchestrator.surrogate import BayesRidge
    rng = np.random.default_rng(1)
    X = np.hstack([rng.normal(size=(40, 2)), np.zeros((40, 1))])  # third feature: never seen
    Y = (X[:, :1] + 0.01 * rng.normal(size=(40, 1)))
    pool = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    _, std = BayesRidge().fit(X, Y, pool).predict(pool)
    assert std[1, 0] > 2 * std[0, 0]
