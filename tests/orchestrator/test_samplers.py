"""The samplers on real Optuna studies (in memory) with analytic objectives: fast, no Ray."""
from __future__ import annotations

import math

import optuna
import pytest

from orchestrator.config import ConfigError, SamplerConfig
from orchestrator.samplers import EvolutionSampler, make_sampler

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _objectives(arch):
    c = arch.costs(256, context=8192)
    return [math.log10(c.params_total), c.cache_bytes / 2**20]


@pytest.mark.parametrize("name, cls", [("tpe", optuna.samplers.TPESampler), ("nsga2", optuna.samplers.NSGAIISampler),
                                       ("nsga3", optuna.samplers.NSGAIIISampler), ("random", optuna.samplers.RandomSampler),
                                       ("evolution", EvolutionSampler)])
def test_each_sampler_drives_the_define_by_run_space(small_space, name, cls):
    s = make_sampler(SamplerConfig(type=name), space=small_space, trials=12, concurrency=1, seed=0)
    assert isinstance(s, cls)
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=s)
    for _ in range(12):
        t = study.ask()
        arch = small_space.sample(t)
        assert small_space.contains(arch) == []
        for k, v in small_space.violations(arch).items():
            t.set_constraint(k, v)
        study.tell(t, _objectives(arch))
    assert len(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))) == 12


def test_evolution_children_are_rebuilt_exactly_and_recorded(small_space):
    s = EvolutionSampler(small_space, population_size=4, seed=3)
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=s)
    children = 0
    for _ in range(14):
        t = study.ask()
        arch = small_space.sample(t)
        fp = study._storage.get_trial_system_attrs(t._trial_id).get("evolution:fingerprint")
        if fp is not None:
            children += 1
            assert fp == arch.fingerprint(), "define-by-run sampling must rebuild the evolved child"
        study.tell(t, _objectives(arch))
    assert children == 10
    last = study.trials[-1]
    assert last.system_attrs["evolution:op"] in ("mutate", "crossover+mutate")
    assert all(0 <= p < last.number for p in last.system_attrs["evolution:parents"])


def test_sampler_options_are_checked():
    from search_space.space import SearchSpace  # noqa: F401
    with pytest.raises(ConfigError, match="sampler.options.bogus"):
        make_sampler(SamplerConfig(type="tpe", options={"bogus": 1}), space=None, trials=10, concurrency=1, seed=0)
    with pytest.raises(ConfigError, match="population_size"):
        make_sampler(SamplerConfig(type="evolution", options={"population_size": 1}), space=None, trials=10,
                     concurrency=1, seed=0)
