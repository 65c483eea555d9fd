"""The samplers on real Optuna studies (in memory) with analytic objectives: fast, no Ray."""
from __future__ import annotations


import optuna
import pytest

from orchestrator.config import ConfigError, SamplerConfig
from orch_helpers import concurrent_fingerprints, objectives, tell_then_check_rerun
from orchestrator.samplers import EvolutionSampler, make_sampler

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.mark.parametrize("name, cls", [("tpe", optuna.samplers.TPESampler), ("nsga2", optuna.samplers.NSGAIISampler),
                                       ("nsga3", optuna.samplers.NSGAIIISampler), ("random", optuna.samplers.RandomSampler),
                                       ("evolution", EvolutionSampler)])
def test_each_sampler_drives_the_define_by_run_space(small_space, name, cls):
    s = make_sampler(SamplerConfig(type=name), space=small_space, trials=12, concurrency=1, seed=0)
    assert isinstance(getattr(s, "wrapped", s), cls)  # tpe and nsga* come wrapped in NoRepeatSampler
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=s)
    for _ in range(12):
        t = study.ask()
        arch = small_space.sample(t)
        assert small_space.contains(arch) == []
        for k, v in small_space.violations(arch).items():
            t.set_constraint(k, v)
        study.tell(t, objectives(arch))
    assert len(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))) == 12


def test_evolution_children_are_rebuilt_exactly_and_recorded(small_space):
    s = EvolutionSampler(small_space, population_size=4, seed=3)
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=s)
    for _ in range(14):
        t = study.ask()
        arch = small_space.sample(t)
        fp = study._storage.get_trial_system_attrs(t._trial_id)["evolution:fingerprint"]
        assert fp == arch.fingerprint(), "define-by-run sampling must rebuild the proposed architecture"
        study.tell(t, objectives(arch))
    ops = [t.system_attrs["evolution:op"] for t in study.trials]
    assert ops[:4] == ["random"] * 4  # warm-up
    assert all(op in ("mutate", "crossover+mutate") or op.startswith("mutate*") for op in ops[4:])
    last = study.trials[-1]
    assert all(0 <= p < last.number for p in last.system_attrs["evolution:parents"])


def test_sampler_options_are_checked():
    from search_space.space import SearchSpace  # noqa: F401
    with pytest.raises(ConfigError, match="sampler.options.bogus"):
        make_sampler(SamplerConfig(type="tpe", options={"bogus": 1}), space=None, trials=10, concurrency=1, seed=0)
    with pytest.raises(ConfigError, match="population_size"):
        make_sampler(SamplerConfig(type="evolution", options={"population_size": 1}), space=None, trials=10,
                     concurrency=1, seed=0)


# ---------------------------------------------------------------------------------------------
# no repeats: on the tiny space (conftest `tiny_space`, 40 architectures) a repeat shows quickly


def _run(space, sampler, n, state_of=lambda i, arch: optuna.trial.TrialState.COMPLETE):
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)
    fps = []
    for i in range(n):
        t = study.ask()
        arch = space.sample(t)
        fps.append(arch.fingerprint())
        state = state_of(i, arch)
        if state == optuna.trial.TrialState.COMPLETE:
            study.tell(t, objectives(arch))
        else:
            study.tell(t, state=state)
    return study, fps


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_evolution_never_repeats_an_architecture_until_the_space_is_exhausted(tiny_space, seed):
    space, every = tiny_space
    study, fps = _run(space, EvolutionSampler(space, population_size=4, seed=seed), 45)
    assert len(set(fps[:40])) == 40, "a repeat while new architectures were left"
    assert set(fps[:40]) == set(every)
    # then the space is exhausted: repeats, and they say so
    repeats = [t.number for t in study.trials if t.system_attrs.get("evolution:repeat")]
    assert repeats == list(range(40, 45))


def test_evolution_does_not_repropose_failed_or_pruned_architectures(tiny_space):
    space, _ = tiny_space
    Fail, Pruned, Complete = (optuna.trial.TrialState.FAIL, optuna.trial.TrialState.PRUNED,
                              optuna.trial.TrialState.COMPLETE)
    # every architecture with a retention block fails, every other one with d_model 64 is pruned:
    # a sampler that proposed them again would waste those trials
    def state_of(i, arch):
        if any(m.type == "retention" for b in arch.flat_blocks() for m in b.mixers):
            return Fail
        return Pruned if arch.d_model == 64 else Complete
    study, fps = _run(space, EvolutionSampler(space, population_size=3, seed=5), 40, state_of)
    failed = [t for t in study.trials if t.state in (Fail, Pruned)]
    assert failed and len(set(fps)) == 40


def test_evolution_spreads_concurrent_trials(tiny_space):
    """Trials asked before any is told (running concurrently, in warm-up and after it) are
    all different architectures."""
    space, _ = tiny_space
    s = EvolutionSampler(space, population_size=4, seed=0)
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=s)
    fps = concurrent_fingerprints(study, space)
    assert len(set(fps)) == len(fps) == 26


def test_evolution_leaves_enqueued_and_rerun_trials_alone(tiny_space):
    space, every = tiny_space
    study, fps = _run(space, EvolutionSampler(space, population_size=4, seed=0), 39)
    (last,) = set(every) - set(fps)  # the one architecture not tried yet
    study.enqueue_trial(space.to_params(every[last]))
    t = study.ask()  # the enqueued one: its params are decided, nothing evolved is recorded
    assert "evolution:op" not in study._storage.get_trial_system_attrs(t._trial_id)
    # started, none of its params drawn yet: a trial running meanwhile does not take it too,
    # even though it is the only new architecture left
    other = study.ask()
    assert space.sample(other).fingerprint() != last
    assert study._storage.get_trial_system_attrs(other._trial_id)["evolution:repeat"] is True
    assert space.sample(t).fingerprint() == last
    # a trial re-run under its own number (search.py's resume) keeps its params and provenance
    tell_then_check_rerun(study, space, (t, other), "evolution:fingerprint")


@pytest.mark.parametrize("name, no_repeat", [("nsga2", None), ("nsga2", False), ("nsga3", None), ("tpe", None),
                                             ("gp", None), ("random", None), ("evolution", None)])
def test_every_sampler_pickles_and_keeps_sampling(small_space, name, no_repeat):
    """Ray Tune pickles the searcher and its sampler (tuner.pkl, searcher-state-*.pkl). Optuna
    5.1's NSGA-II/III hold a threading.Lock, which broke that; a copy must also keep sampling the
    same study, and the GA samplers' generation attribute keeps Optuna's name."""
    import copy

    from ray import cloudpickle
    s = make_sampler(SamplerConfig(type=name, no_repeat=no_repeat, options={"population_size": 4}
                                   if name.startswith("nsga") else {}),
                     space=small_space, trials=8, concurrency=1, seed=0)
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=s)

    def run(n):
        for _ in range(n):
            t = study.ask()
            study.tell(t, objectives(small_space.sample(t)))
    run(5)  # past the first generation: the GA samplers' generation cache is filled
    for clone in (cloudpickle.loads(cloudpickle.dumps(s)), copy.deepcopy(s)):
        assert type(clone) is type(s)
        study.sampler = clone
        run(2)
    ga = getattr(study.sampler, "wrapped", study.sampler)
    if name.startswith("nsga"):
        base = optuna.samplers.NSGAIISampler if name == "nsga2" else optuna.samplers.NSGAIIISampler
        assert type(ga)._get_generation_key() == base._get_generation_key()
        assert any(k == base._get_generation_key() for k in study.trials[-1].system_attrs)
    assert len(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))) == 9


def test_nsga2_searcher_pickles_the_way_tune_saves_it(tmp_path):
    """The searcher a search gives Tune (NSGA-II, as tests/orchestrator/test_cluster.py runs it)
    survives Ray's cloudpickle and `save` after trials, and the unpickled one still suggests."""
    from ray import cloudpickle

    from orch_helpers import study_config
    from orchestrator.config import load_config_data
    from orchestrator.search import make_searcher, optuna_storage
    url = f"sqlite:///{tmp_path / 'o.db'}"
    cfg = load_config_data(study_config(tmp_path, url, sampler="nsga2", trials=8))
    optuna.create_study(study_name=cfg.study, storage=optuna_storage(url), directions=cfg.directions)
    searcher = make_searcher(cfg, cfg.load_space(), url)
    searcher.set_search_properties(None, None, {})
    for i in range(5):
        assert searcher.suggest(f"t{i}") is not None
        searcher.on_trial_complete(f"t{i}", {"hn_final": True, "hn_status": "complete", "hn_constraints": "{}",
                                             **{m: float(i + j) for j, m in enumerate(cfg.metric_names)}})
    searcher.save(str(tmp_path / "searcher-state.pkl"))
    clone = cloudpickle.loads(cloudpickle.dumps(searcher))
    assert clone.suggest("t5") is not None
    assert len(optuna.load_study(study_name=cfg.study, storage=url).trials) == 6
