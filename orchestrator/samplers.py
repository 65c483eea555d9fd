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
(before that: random architectures from the space, `space.random`), pick two parents by binary
tournament on (constrained non-domination rank, crowding distance) among the completed trials
(NSGA-II's selection, with infeasible trials ranked by their total violation), rebuild their
architectures from the trials' params through the space (`space.replay(params)`), cross them over
with probability `crossover_prob` and mutate the child (`search_space.operators`: swap a
primitive, change a parameter, insert/delete a block, toggle parallel, change sharing). The
child's params (`space.to_params`) are then handed back one by one from `sample_independent`, so
the define-by-run `space.sample(trial)` rebuilds exactly the child, and the trial is an ordinary
Optuna trial. Parents, operator and fingerprint are kept as trial system attributes
(provenance).

No architecture is proposed twice while the space still has new ones. An evaluation is the
expensive part of a search, and the objectives of an architecture already tried are known (or
known to fail), so a repeat buys nothing. "Already tried" is every trial of the study, whatever
its state or sampler: completed, failed and pruned trials, trials still running (so concurrent
trials spread out, the effect constant-liar has for TPE) and enqueued ones. Their fingerprints
come from their params (`space.replay`, cached per finished trial) or, for a running trial whose
params are not all drawn yet, from the `evolution:fingerprint` attribute set when it was
proposed (or from its enqueued params). A child that was already tried is replaced, in this order
of escalation: (1) another tournament, crossover and mutation (`max_retries` times); (2) a longer
random walk from a tournament winner, taking the first new architecture on it (a close new
neighbour of a good parent: this keeps the selection pressure when the front's immediate
neighbourhood is used up); (3) a uniform random architecture of the space that is new. Only when
all of those find nothing new (the space appears exhausted) is a repeat proposed, marked
`evolution:repeat`. The warm-up draws are new architectures too (uniform over the space's
decisions, like Optuna's RandomSampler, but without repeats). A trial that already has its params
(an enqueued architecture, or a trial re-run after its driver died) is left alone.
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

from search_space.errors import UserError

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

    #: uniform draws tried for a new architecture before the space counts as exhausted: where 1 in
    #: 200 draws is still new, 1024 draws find one with probability 1 - (199/200)**1024 > 0.99. A
    #: draw costs well under a millisecond, an evaluation seconds to hours, so the (at most) half
    #: second this takes, and only once (1) and (2) found nothing, is cheaper than a repeat
    RANDOM_TRIES = 1024
    #: longest walk (mutations in a row) from a tournament winner in escalation step (2): long
    #: enough to leave a used-up neighbourhood, short enough that the result is still related to
    #: a good parent
    WALK_STEPS = 8

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
        self._max_retries = max(1, int(max_retries))
        self._rng = random.Random(seed)
        self._random = RandomSampler(seed=seed)
        self._children: dict[int, dict[str, Any]] = {}
        # (study name, trial number) -> fingerprint of a finished trial (None: not an architecture
        # of this space); a finished trial's params never change, so each is replayed once
        self._fingerprints: dict[tuple[str, int], str | None] = {}

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

    # ------------------------------------------------------------------ what was already tried
    def _fingerprint_of(self, params: dict) -> str | None:
        try:
            return _rebuild(self._space, params).fingerprint()
        except (UserError, KeyError, TypeError, ValueError):
            # params cut short (a trial that failed while its architecture was drawn) or of another
            # space (a study resumed with an edited space): nothing this space could propose again
            return None

    def _tried(self, study, trials: list[FrozenTrial], current: int) -> set[str]:
        """Fingerprints of every trial of the study but `current`, whatever its state."""
        seen: set[str] = set()
        for t in trials:
            if t.number == current:
                continue
            if t.state.is_finished():
                key = (study.study_name, t.number)
                if key not in self._fingerprints:
                    self._fingerprints[key] = (self._fingerprint_of(t.params) if t.params else None) \
                        or t.user_attrs.get("fingerprint") or t.system_attrs.get("evolution:fingerprint")
                fp = self._fingerprints[key]
            elif t.state == TrialState.WAITING:  # enqueued: its params are in fixed_params
                fixed = t.system_attrs.get("fixed_params")
                fp = self._fingerprint_of(fixed) if fixed else None
            else:  # RUNNING: the child we proposed, its params once all are drawn, or its enqueued ones
                fixed = t.system_attrs.get("fixed_params")
                fp = t.system_attrs.get("evolution:fingerprint") or t.user_attrs.get("fingerprint") \
                    or (self._fingerprint_of(t.params) if t.params else None) \
                    or (self._fingerprint_of(fixed) if fixed else None)
            if fp:
                seen.add(fp)
        return seen

    def _new_random(self, seen: set[str]):
        for _ in range(self.RANDOM_TRIES):
            a = self._space.random(self._rng)
            if a.fingerprint() not in seen:
                return a
        return None

    # ------------------------------------------------------------------ proposing
    def _evolve(self, study, done: list[FrozenTrial], seen: set[str]):
        """(child, parent numbers, operator, whether the child is new)."""
        from search_space.operators import crossover, mutate
        rank, crowd = rank_and_crowding(done, study.directions)
        rebuilt: dict[int, Any] = {}

        def arch_of(t):  # a tournament winner tends to win again: rebuild it once
            if t.number not in rebuilt:
                rebuilt[t.number] = _rebuild(self._space, t.params)
            return rebuilt[t.number]

        # (1) the STAR step: tournament, crossover, mutation
        for _ in range(self._max_retries):
            pa = self._tournament(done, rank, crowd)
            a, parents, op = arch_of(pa), [pa.number], "mutate"
            if self._rng.random() < self._crossover_prob:
                pb = self._tournament(done, rank, crowd)
                if pb.number != pa.number:
                    a = crossover(a, arch_of(pb), self._space, self._rng)
                    parents, op = [pa.number, pb.number], "crossover+mutate"
            for _ in range(self._mutations):
                a = mutate(a, self._space, self._rng)
            if a.fingerprint() not in seen:
                return a, parents, op, True
            last = (a, parents, op)
        # (2) the front's neighbourhood is used up: walk further from a tournament winner and take
        # the first new architecture on the walk
        for _ in range(self._max_retries):
            pa = self._tournament(done, rank, crowd)
            a = arch_of(pa)
            for step in range(1, self.WALK_STEPS + 1):
                a = mutate(a, self._space, self._rng)
                if a.fingerprint() not in seen:
                    return a, [pa.number], f"mutate*{step}", True
        # (3) anything new in the space
        a = self._new_random(seen)
        if a is not None:
            return a, [], "random", True
        return (*last, False)  # the space appears exhausted: a repeat is all that is left

    def before_trial(self, study, trial: FrozenTrial) -> None:
        if trial.params or trial.system_attrs.get("fixed_params"):
            # an enqueued architecture, or a trial re-run under its own number after its driver
            # died (search.py): its params are decided, and a child recorded here would
            # misdescribe it
            return
        trials = study.get_trials(deepcopy=False)
        seen = self._tried(study, trials, trial.number)
        done = [t for t in trials if t.state == TrialState.COMPLETE
                and t.values is not None and all(np.isfinite(t.values))]
        if len(done) < self._population_size:  # warm-up: new random architectures
            child, parents, op = self._new_random(seen), [], "random"
            new = child is not None
            if not new:
                child = self._space.random(self._rng)
        else:
            child, parents, op, new = self._evolve(study, done, seen)
        self._children[trial.number] = self._space.to_params(child)
        storage = study._storage
        storage.set_trial_system_attr(trial._trial_id, "evolution:parents", parents)
        storage.set_trial_system_attr(trial._trial_id, "evolution:op", op)
        storage.set_trial_system_attr(trial._trial_id, "evolution:fingerprint", child.fingerprint())
        if not new:
            storage.set_trial_system_attr(trial._trial_id, "evolution:repeat", True)

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
