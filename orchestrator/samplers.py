"""Samplers: Optuna's TPE, NSGA-II, NSGA-III, GP and random, plus a STAR-style structural evolution.

All six are Optuna samplers, so `OptunaSearch` drives every one of them the same way inside Ray
Tune and the study, its storage (the project's database), constraints (`Trial.set_constraint`) and
resume behave identically whichever sampler a study uses.

Why the evolution is an Optuna sampler and not a Tune searcher: a Tune searcher would need its
own population bookkeeping, its own persistence for resume and its own constraint handling, and
its trials would not be in the Optuna study (so `optuna-dashboard`, the other samplers' warm
starts and our resume reconciliation would not see them). As an Optuna sampler it reads the
population straight from the study (completed trials, their values and constraint values, in the
database), so a resumed study continues the same evolution with no extra state.

How it works, per new trial (`before_trial`): once `population_size` trials have completed
(before that: random architectures from the space), pick two parents by binary tournament on
(constrained non-domination rank, crowding distance) among the completed trials (NSGA-II's
selection, with infeasible trials ranked by their total violation), rebuild their architectures
from the trials' params through the space (`space.replay(params)`), cross them over
with probability `crossover_prob` and mutate the child (`search_space.operators`: swap a
primitive, change a parameter, insert/delete a block, toggle parallel, change sharing), retrying
when the child's fingerprint was already evaluated. The child's params (`space.to_params`) are then
handed back one by one from `sample_independent`, so the define-by-run `space.sample(trial)`
rebuilds exactly the child, and the trial is an ordinary Optuna trial. Parents and operator are
kept as trial system attributes (provenance).
"""
from __future__ import annotations

import inspect
import random
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.trial import FrozenTrial, TrialState

from .config import ConfigError, SamplerConfig


def _rebuild(space, params: dict):
    return space.replay(params)


def _crowding(loss: np.ndarray) -> np.ndarray:
    n, m = loss.shape
    dist = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for j in range(m):
        order = np.argsort(loss[:, j])
        lo, hi = loss[order[0], j], loss[order[-1], j]
        dist[order[0]] = dist[order[-1]] = np.inf
        if hi > lo:
            dist[order[1:-1]] += (loss[order[2:], j] - loss[order[:-2], j]) / (hi - lo)
    return dist


def rank_and_crowding(trials: list[FrozenTrial], directions) -> tuple[np.ndarray, np.ndarray]:
    """Constrained non-domination rank (0 best) and crowding distance (larger is better)."""
    from optuna.study._multi_objective import _fast_non_domination_rank
    sign = np.array([-1.0 if d == optuna.study.StudyDirection.MAXIMIZE else 1.0 for d in directions])
    loss = np.array([t.values for t in trials], dtype=float) * sign
    penalty = np.array([sum(max(0.0, v) for v in t.constraints.values()) for t in trials], dtype=float)
    has_constraints = any(t.constraints for t in trials)
    rank = _fast_non_domination_rank(loss, penalty=penalty if has_constraints else None)
    crowd = np.zeros(len(trials))
    for r in np.unique(rank):
        idx = np.where(rank == r)[0]
        crowd[idx] = _crowding(loss[idx])
    return rank, crowd


class EvolutionSampler(BaseSampler):
    """STAR-style evolution of architectures (see the module docstring)."""

    def __init__(self, space, population_size: int = 8, crossover_prob: float = 0.5,
                 mutations: int = 1, max_retries: int = 8, seed: int | None = None):
        if population_size < 2:
            raise ConfigError("sampler.options.population_size", f"{population_size} must be >= 2")
        if not 0.0 <= crossover_prob <= 1.0:
            raise ConfigError("sampler.options.crossover_prob", f"{crossover_prob} must be in [0, 1]")
        self._space = space
        self._population_size = population_size
        self._crossover_prob = crossover_prob
        self._mutations = max(1, int(mutations))
        self._max_retries = max_retries
        self._rng = random.Random(seed)
        self._random = RandomSampler(seed=seed)
        self._children: dict[int, dict[str, Any]] = {}

    def reseed_rng(self) -> None:
        self._rng = random.Random()
        self._random.reseed_rng()

    def infer_relative_search_space(self, study, trial) -> dict[str, BaseDistribution]:
        return {}

    def sample_relative(self, study, trial, search_space) -> dict[str, Any]:
        return {}

    def _tournament(self, pool, rank, crowd):
        i, j = self._rng.sample(range(len(pool)), 2) if len(pool) > 1 else (0, 0)
        if (rank[i], -crowd[i]) <= (rank[j], -crowd[j]):
            return pool[i]
        return pool[j]

    def before_trial(self, study, trial: FrozenTrial) -> None:
        done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                if t.values is not None and all(np.isfinite(t.values))]
        if len(done) < self._population_size:
            return  # warm-up: random architectures
        from search_space.operators import crossover, mutate
        rank, crowd = rank_and_crowding(done, study.directions)
        seen = set()
        for t in done:
            fp = t.user_attrs.get("fingerprint") or t.system_attrs.get("evolution:fingerprint")
            if fp:
                seen.add(fp)
        child, parents, op = None, [], "mutate"
        for _ in range(self._max_retries):
            pa = self._tournament(done, rank, crowd)
            a = _rebuild(self._space, pa.params)
            parents, op = [pa.number], "mutate"
            if self._rng.random() < self._crossover_prob:
                pb = self._tournament(done, rank, crowd)
                if pb.number != pa.number:
                    a = crossover(a, _rebuild(self._space, pb.params), self._space, self._rng)
                    parents, op = [pa.number, pb.number], "crossover+mutate"
            for _ in range(self._mutations):
                a = mutate(a, self._space, self._rng)
            child = a
            if child.fingerprint() not in seen:
                break
        params = self._space.to_params(child)
        self._children[trial.number] = params
        storage = study._storage
        storage.set_trial_system_attr(trial._trial_id, "evolution:parents", parents)
        storage.set_trial_system_attr(trial._trial_id, "evolution:op", op)
        storage.set_trial_system_attr(trial._trial_id, "evolution:fingerprint", child.fingerprint())

    def sample_independent(self, study, trial, param_name, param_distribution):
        params = self._children.get(trial.number)
        if params is not None and param_name in params:
            value = params[param_name]
            try:
                if param_distribution._contains(param_distribution.to_internal_repr(value)):
                    return value
            except (ValueError, TypeError):
                pass
        return self._random.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study, trial, state, values) -> None:
        self._children.pop(trial.number, None)


def _default_population(trials: int) -> int:
    # Optuna's default of 50 would make a short search pure random search.
    return int(max(4, min(50, trials // 4)))


def _filtered(cls, opts: dict, field: str = "sampler.options") -> dict:
    params = inspect.signature(cls.__init__).parameters
    for k in opts:
        if k not in params or k in ("self", "constraints_func"):
            known = sorted(p for p in params if p not in ("self", "constraints_func", "seed"))
            raise ConfigError(f"{field}.{k}", f"not an option of {cls.__name__} (known: {', '.join(known)})")
    return opts


def make_sampler(cfg: SamplerConfig, *, space, trials: int, concurrency: int, seed: int) -> BaseSampler:
    """The Optuna sampler a study config names, with defaults sized to the trial budget."""
    opts = dict(cfg.options)
    t = cfg.type
    try:
        if t == "tpe":
            kw = dict(multivariate=True, group=True, constant_liar=concurrency > 1,
                      n_startup_trials=min(10, max(4, trials // 5)))
            kw.update(_filtered(optuna.samplers.TPESampler, opts))
            return optuna.samplers.TPESampler(seed=seed, **kw)
        if t == "nsga2":
            kw = dict(population_size=_default_population(trials))
            kw.update(_filtered(optuna.samplers.NSGAIISampler, opts))
            return optuna.samplers.NSGAIISampler(seed=seed, **kw)
        if t == "nsga3":
            kw = dict(population_size=_default_population(trials))
            kw.update(_filtered(optuna.samplers.NSGAIIISampler, opts))
            return optuna.samplers.NSGAIIISampler(seed=seed, **kw)
        if t == "gp":
            kw = dict(n_startup_trials=min(10, max(4, trials // 5)))
            kw.update(_filtered(optuna.samplers.GPSampler, opts))
            return optuna.samplers.GPSampler(seed=seed, **kw)
        if t == "random":
            return optuna.samplers.RandomSampler(seed=seed, **_filtered(optuna.samplers.RandomSampler, opts))
        if t == "evolution":
            kw = dict(population_size=_default_population(trials))
            kw.update(_filtered(EvolutionSampler, opts))
            return EvolutionSampler(space, seed=seed, **kw)
    except (TypeError, ValueError) as e:
        raise ConfigError("sampler.options", str(e).splitlines()[0]) from None
    raise ConfigError("sampler.type", f"unknown sampler {t!r}")
