"""Samplers: Optuna's TPE, NSGA-II, NSGA-III, GP and random, plus a STAR-style structural evolution.

All six are Optuna samplers, so `OptunaSearch` drives every one of them the same way inside Ray
Tune and the study, its storage (the project's database), constraints (`Trial.set_constraint`) and
resume behave identically whichever sampler a study uses.

No repeats: an evaluation is the expensive part of a search, so no sampler should propose an
architecture the study already has while the space has new ones. The evolution never does (below);
Optuna's TPE, NSGA-II/III and GP are wrapped in `NoRepeatSampler` by default (`no_repeat` in the
study config), which replaces a repeated proposal with a new neighbour of it. On the exhaustive
144-architecture benchmark space, without the wrapper, 111.5 of TPE's 150 proposals were repeats
(mean over 50 seeds; docs/search.md has the measurements).

Surrogate screening (`screen`, on by default through the study config): after its random warm-up
the evolution breeds `screen` new children per trial and proposes the one a cheap surrogate
(orchestrator/surrogate.py: Bayesian ridge per objective on structural features and analytic
costs) expects to add the most hypervolume. `screen: 0` is the plain STAR evolution below.

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

With `screen` > 1 step (1) becomes: breed up to `screen` distinct new children by (1) (three in
four; the rest, `random_candidates`, new uniform random architectures, so the search can still
jump away from the front's neighbourhood), drop those breaking the space's analytic constraints
when others do not, and take the one with the best optimistic hypervolume improvement under the
surrogate (`beta` predictive standard deviations of optimism). Its operator is recorded with a
`+screenedN` suffix. When no candidate is new, (2) and (3) follow as above. The surrogate learns
from every completed trial with finite values; the front it extends is the feasible trials'.
"""
from __future__ import annotations

import copy
import inspect
import random
import threading
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, IntDistribution
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


#: system attributes that carry the fingerprint a sampler planned for a trial, read for trials
#: still running whose params are not all drawn yet
FINGERPRINT_ATTRS = ("evolution:fingerprint", "no_repeat:fingerprint")


_NOT_PLANNED = object()


def _planned(params: dict | None, name: str, dist):
    """The value a sampler planned for param `name` of a trial (its architecture chosen whole in
    `before_trial`), or _NOT_PLANNED when there is no plan for it or the planned value is outside
    the distribution the space asks with (the space changed shape on the way: draw it instead)."""
    if params is None or name not in params:
        return _NOT_PLANNED
    value = params[name]
    try:
        return value if dist._contains(dist.to_internal_repr(value)) else _NOT_PLANNED
    except (ValueError, TypeError):
        return _NOT_PLANNED


class Novelty:
    """What a study has already tried, and ways to find an architecture it has not.

    Shared by `EvolutionSampler` and `NoRepeatSampler`, so both count the same trials as tried
    and escalate the same way (see the module docstring).
    """

    #: uniform draws tried for a new architecture before the space counts as exhausted: where 1 in
    #: 200 draws is still new, 1024 draws find one with probability 1 - (199/200)**1024 > 0.99. A
    #: draw costs well under a millisecond, an evaluation seconds to hours, so the (at most) half
    #: second this takes, and only once the walks found nothing, is cheaper than a repeat
    RANDOM_TRIES = 1024
    #: longest walk (mutations in a row) from a starting architecture: long enough to leave a
    #: used-up neighbourhood, short enough that the result is still related to where it started
    WALK_STEPS = 8

    def __init__(self, space, rng: random.Random):
        self.space = space
        self.rng = rng
        # (study name, trial number) -> fingerprint of a finished trial (None: not an architecture
        # of this space); a finished trial's params never change, so each is replayed once
        self._fingerprints: dict[tuple[str, int], str | None] = {}
        self._exhausted_at: dict[str, int] = {}  # study name -> tried count when draws found nothing

    def fingerprint_of(self, params: dict) -> str | None:
        try:
            return _rebuild(self.space, params).fingerprint()
        except (UserError, KeyError, TypeError, ValueError):
            # params cut short (a trial that failed while its architecture was drawn) or of another
            # space (a study resumed with an edited space): nothing this space could propose again
            return None

    @staticmethod
    def _planned(t: FrozenTrial) -> str | None:
        for k in FINGERPRINT_ATTRS:
            if t.system_attrs.get(k):
                return t.system_attrs[k]
        return None

    def tried(self, study, trials: list[FrozenTrial], current: int) -> set[str]:
        """Fingerprints of every trial of the study but `current`, whatever its state."""
        seen: set[str] = set()
        for t in trials:
            if t.number == current:
                continue
            if t.state.is_finished():
                key = (study.study_name, t.number)
                if key not in self._fingerprints:
                    self._fingerprints[key] = (self.fingerprint_of(t.params) if t.params else None) \
                        or t.user_attrs.get("fingerprint") or self._planned(t)
                fp = self._fingerprints[key]
            elif t.state == TrialState.WAITING:  # enqueued: its params are in fixed_params
                fixed = t.system_attrs.get("fixed_params")
                fp = self.fingerprint_of(fixed) if fixed else None
            else:  # RUNNING: the architecture planned for it, its params once all are drawn, or its enqueued ones
                fixed = t.system_attrs.get("fixed_params")
                fp = self._planned(t) or t.user_attrs.get("fingerprint") \
                    or (self.fingerprint_of(t.params) if t.params else None) \
                    or (self.fingerprint_of(fixed) if fixed else None)
            if fp:
                seen.add(fp)
        return seen

    def new_random(self, seen: set[str], study_name: str | None = None):
        """A uniformly drawn architecture not in `seen`, or None if `RANDOM_TRIES` draws found none.

        With `study_name`, a failure is remembered with the number of architectures the study had:
        until it has more (the tried set only grows), the space counts as exhausted without
        drawing again. Otherwise every trial past the end of a small space would spend its half
        second of draws again, for the same answer."""
        if study_name is not None and len(seen) <= self._exhausted_at.get(study_name, -1):
            return None
        for _ in range(self.RANDOM_TRIES):
            a = self.space.random(self.rng)
            if a.fingerprint() not in seen:
                return a
        if study_name is not None:
            self._exhausted_at[study_name] = len(seen)
        return None

    def walk(self, start, seen: set[str]):
        """(the first architecture not in `seen` on a random walk of up to `WALK_STEPS` mutations
        from `start`, its step number), or None."""
        from search_space.operators import mutate
        a = start
        for step in range(1, self.WALK_STEPS + 1):
            a = mutate(a, self.space, self.rng)
            if a.fingerprint() not in seen:
                return a, step
        return None


class EvolutionSampler(BaseSampler):
    """STAR-style evolution of architectures (see the module docstring)."""

    #: candidates screened by the surrogate per trial when the config does not say (`screen`):
    #: on the tabular benchmark 64 did no better than 32 at twice the sampling time
    SCREEN = 32

    def __init__(self, space, population_size: int = 8, crossover_prob: float = 0.5,
                 mutations: int = 1, max_retries: int = 8, screen: int = 0, random_candidates: float = 0.25,
                 beta: float = 1.0, seed: int | None = None):
        if population_size < 2:
            raise ConfigError("sampler.options.population_size", f"{population_size} must be >= 2")
        if not 0.0 <= crossover_prob <= 1.0:
            raise ConfigError("sampler.options.crossover_prob", f"{crossover_prob} must be in [0, 1]")
        if isinstance(screen, bool) or not isinstance(screen, int) or not 0 <= screen <= 4096:
            raise ConfigError("sampler.options.screen", f"{screen!r} must be an integer from 0 to 4096")
        if not 0.0 <= random_candidates <= 1.0:
            raise ConfigError("sampler.options.random_candidates", f"{random_candidates} must be in [0, 1]")
        if not 0.0 <= beta <= 10.0:
            raise ConfigError("sampler.options.beta", f"{beta} must be in [0, 10]")
        self._screen, self._random_candidates, self._beta = screen, random_candidates, beta
        # (study name, trial number) -> surrogate features of a completed trial (None: not of this space)
        self._features: dict[tuple[str, int], dict[str, float] | None] = {}
        self._space = space
        self._population_size = population_size
        self._crossover_prob = crossover_prob
        self._mutations = max(1, int(mutations))
        self._max_retries = max(1, int(max_retries))
        self._rng = random.Random(seed)
        self._random = RandomSampler(seed=seed)
        self._novelty = Novelty(space, self._rng)
        self._children: dict[int, dict[str, Any]] = {}

    def reseed_rng(self) -> None:
        self._rng = random.Random()
        self._novelty.rng = self._rng
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

    # ------------------------------------------------------------------ proposing
    def _breeder(self, study, done: list[FrozenTrial]):
        """(child, winner, arch_of): `child()` is one STAR step (tournament, crossover with a
        probability, mutations) -> (architecture, parent numbers, operator); `winner()` one
        tournament; `arch_of(trial)` its architecture, rebuilt once per trial (a tournament
        winner tends to win again)."""
        from search_space.operators import crossover, mutate
        rank, crowd = rank_and_crowding(done, study.directions)
        rebuilt: dict[int, Any] = {}

        def arch_of(t):
            if t.number not in rebuilt:
                rebuilt[t.number] = _rebuild(self._space, t.params)
            return rebuilt[t.number]

        def winner():
            return self._tournament(done, rank, crowd)

        def child():
            pa = winner()
            a, parents, op = arch_of(pa), [pa.number], "mutate"
            if self._rng.random() < self._crossover_prob:
                pb = winner()
                if pb.number != pa.number:
                    a = crossover(a, arch_of(pb), self._space, self._rng)
                    parents, op = [pa.number, pb.number], "crossover+mutate"
            for _ in range(self._mutations):
                a = mutate(a, self._space, self._rng)
            return a, parents, op

        return child, winner, arch_of

    def _evolve(self, study, done: list[FrozenTrial], seen: set[str]):
        """(child, parent numbers, operator, whether the child is new)."""
        child, winner, arch_of = self._breeder(study, done)
        # (1) the STAR step: tournament, crossover, mutation
        for _ in range(self._max_retries):
            a, parents, op = child()
            if a.fingerprint() not in seen:
                return a, parents, op, True
            last = (a, parents, op)
        # (2) the front's neighbourhood is used up: walk further from a tournament winner and take
        # the first new architecture on the walk
        for _ in range(self._max_retries):
            pa = winner()
            found = self._novelty.walk(arch_of(pa), seen)
            if found is not None:
                return found[0], [pa.number], f"mutate*{found[1]}", True
        # (3) anything new in the space
        a = self._novelty.new_random(seen, study.study_name)
        if a is not None:
            return a, [], "random", True
        return (*last, False)  # the space appears exhausted: a repeat is all that is left

    # ------------------------------------------------------------------ surrogate screening
    def _candidates(self, study, done: list[FrozenTrial], seen: set[str]):
        """Up to `screen` distinct new children of the STAR step, and a share of new uniform
        random architectures: [(architecture, parent numbers, operator)]."""
        child, _, _ = self._breeder(study, done)
        n_random = int(round(self._screen * self._random_candidates))
        n_bred = self._screen - n_random
        out: dict[str, tuple] = {}
        for _ in range(4 * n_bred):  # a small neighbourhood runs out: do not loop for ever
            if len(out) >= n_bred:
                break
            a, parents, op = child()
            fp = a.fingerprint()
            if fp not in seen and fp not in out:
                out[fp] = (a, parents, op)
        taken = seen | set(out)
        for _ in range(n_random):
            a = self._novelty.new_random(taken)
            if a is None:
                break
            out[a.fingerprint()] = (a, [], "random")
            taken.add(a.fingerprint())
        return list(out.values())

    def _feature_row(self, arch) -> dict[str, float]:
        from .surrogate import features
        return features(arch, self._space.to_params(arch))

    def _screened(self, study, done: list[FrozenTrial], seen: set[str]):
        """The candidate (`_candidates`) with the best optimistic hypervolume improvement under
        the surrogate (orchestrator/surrogate.py), or None when there are no candidates (then
        `_evolve`'s escalation takes over)."""
        from .surrogate import choose
        cands = self._candidates(study, done, seen)
        if not cands:
            return None
        if len(cands) == 1:
            a, parents, op = cands[0]
            return a, parents, op, True
        feasible_space = [c for c in cands if self._space.feasible(c[0])]
        if feasible_space and len(feasible_space) < len(cands):
            cands = feasible_space  # the space's constraints are analytic: known before training
        train = []
        for t in done:
            key = (study.study_name, t.number)
            if key not in self._features:  # a finished trial's params never change: once each
                try:
                    self._features[key] = self._feature_row(_rebuild(self._space, t.params))
                except (UserError, KeyError, TypeError, ValueError):
                    self._features[key] = None  # not an architecture of this space (an edited space)
            train.append(self._features[key])
        keep = [i for i, r in enumerate(train) if r is not None]
        if len(keep) < 2:
            return None
        rows = [train[i] for i in keep] + [self._feature_row(c[0]) for c in cands]
        names = sorted({k for r in rows for k in r})
        X = np.array([[r.get(k, 0.0) for k in names] for r in rows], dtype=float)
        sign = np.array([-1.0 if d == optuna.study.StudyDirection.MAXIMIZE else 1.0 for d in study.directions])
        loss = np.array([done[i].values for i in keep], dtype=float) * sign
        feasible = [j for j, i in enumerate(keep) if all(v <= 0 for v in done[i].constraints.values())]
        front = loss[feasible] if feasible else loss
        best, _ = choose(X[:len(keep)], loss, front, X[len(keep):], beta=self._beta)
        a, parents, op = cands[best]
        return a, parents, f"{op}+screened{len(cands)}", True

    def before_trial(self, study, trial: FrozenTrial) -> None:
        if trial.params or trial.system_attrs.get("fixed_params"):
            # an enqueued architecture, or a trial re-run under its own number after its driver
            # died (search.py): its params are decided, and a child recorded here would
            # misdescribe it
            return
        trials = study.get_trials(deepcopy=False)
        seen = self._novelty.tried(study, trials, trial.number)
        done = [t for t in trials if t.state == TrialState.COMPLETE
                and t.values is not None and all(np.isfinite(t.values))]
        if len(done) < self._population_size:  # warm-up: new random architectures
            child, parents, op = self._novelty.new_random(seen, study.study_name), [], "random"
            new = child is not None
            if not new:
                child = self._space.random(self._rng)
        else:
            screened = self._screened(study, done, seen) if self._screen > 1 else None
            if screened is not None:
                child, parents, op, new = screened
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
        value = _planned(self._children.get(trial.number), param_name, param_distribution)
        if value is not _NOT_PLANNED:
            return value
        return self._random.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study, trial, state, values) -> None:
        self._children.pop(trial.number, None)


class _DrawTrial:
    """What `space.sample()` asks of a trial, answered the way Optuna's `Trial` would answer it
    for the wrapped sampler: a relative param when the wrapped sampler's `sample_relative` gave a
    valid one, else its `sample_independent` (which sees the params drawn so far, as in a real
    trial). Used to know the whole architecture the wrapped sampler proposes before any param
    of the real trial is written."""

    def __init__(self, sampler: BaseSampler, study, trial: FrozenTrial, relative: dict, relative_space: dict):
        self._sampler, self._study = sampler, study
        self._trial = copy.copy(trial)
        self._trial.params, self._trial.distributions = dict(trial.params), dict(trial.distributions)
        self._relative, self._relative_space = relative, relative_space
        self.params: dict[str, Any] = {}

    def _draw(self, name: str, dist: BaseDistribution):
        if name in self._relative and name in self._relative_space:
            v = self._relative[name]
            try:
                if self._relative_space[name] == dist and dist._contains(dist.to_internal_repr(v)):
                    return self._keep(name, dist, v)
            except (ValueError, TypeError):
                pass
        return self._keep(name, dist, self._sampler.sample_independent(self._study, self._trial, name, dist))

    def _keep(self, name, dist, v):
        self.params[name] = v
        self._trial.params = {**self._trial.params, name: v}
        self._trial.distributions = {**self._trial.distributions, name: dist}
        return v

    def suggest_categorical(self, name, choices):
        return self._draw(name, CategoricalDistribution(list(choices)))

    def suggest_int(self, name, low, high):
        return self._draw(name, IntDistribution(low, high))


class NoRepeatSampler(BaseSampler):
    """Any Optuna sampler, without proposals of architectures the study already has.

    Why: on a finite categorical space Optuna's samplers propose the same architecture again and
    again once their model has settled (measured on the 144-architecture tabular space, mean per
    run: 111.5 of TPE's 150 proposals were repeats and 90 of NSGA-II's over 50 seeds, 61 of
    GPSampler's 80 over 10). In a real search every repeat is a full proxy training whose result is
    already known (or known to fail): pure waste, and it also stalls the search, since the
    sampler's model learns nothing new from it.

    How, per new trial (`before_trial`): the wrapped sampler's proposal is drawn in full first
    (`infer_relative_search_space` and `sample_relative`, then `sample_independent` for each
    define-by-run param not given relatively: what Optuna's `Trial` would do) and rebuilt as an
    architecture. If no trial of the study has it (any state: `Novelty.tried`, the same rule the
    evolution sampler keeps), it is the trial's architecture, unchanged. If it is a repeat, it is
    replaced by the first new architecture on a random walk of mutations from the proposal
    (`max_retries` walks of up to `Novelty.WALK_STEPS` steps; a close new neighbour of what the
    sampler wanted, like the evolution's step (2)), else by a new uniform random architecture;
    only if none is found (the space looks exhausted) is the repeat kept, marked
    `no_repeat:repeat`. The chosen params are then handed out from `sample_independent`, so they
    are the trial's ordinary params and the wrapped sampler's model learns from the architecture
    that was really evaluated. A replaced proposal is recorded as `no_repeat:replaced`
    ({"proposed": fingerprint, "op": "mutate*k" or "random"}); every planned trial carries
    `no_repeat:fingerprint`, so trials asked while it runs see it before its params are written.

    A trial that already has params (enqueued, or re-run after its driver died) is left to the
    wrapped sampler untouched. Every other sampler hook is forwarded to the wrapped sampler.
    """

    def __init__(self, sampler: BaseSampler, space, max_retries: int = 8, seed: int | None = None):
        self._sampler = sampler
        self._space = space
        self._max_retries = max(1, int(max_retries))
        self._novelty = Novelty(space, random.Random(seed))
        self._plans: dict[int, dict[str, Any]] = {}

    @property
    def wrapped(self) -> BaseSampler:
        return self._sampler

    def __repr__(self) -> str:
        return f"NoRepeatSampler({self._sampler.__class__.__name__})"

    def reseed_rng(self) -> None:
        self._sampler.reseed_rng()
        self._novelty.rng = random.Random()

    def infer_relative_search_space(self, study, trial) -> dict[str, BaseDistribution]:
        return {}

    def sample_relative(self, study, trial, search_space) -> dict[str, Any]:
        return {}

    def _propose(self, study, trial: FrozenTrial):
        """The wrapped sampler's whole proposal: (architecture, its params)."""
        inner = self._sampler
        space = inner.infer_relative_search_space(study, trial)
        relative = inner.sample_relative(study, trial, space) if space else {}
        t = _DrawTrial(inner, study, trial, relative, space)
        return self._space.sample(t), t.params

    def before_trial(self, study, trial: FrozenTrial) -> None:
        self._sampler.before_trial(study, trial)
        if trial.params or trial.system_attrs.get("fixed_params"):
            return  # enqueued, or re-run under its own number: its params are decided
        proposal, params = self._propose(study, trial)
        seen = self._novelty.tried(study, study.get_trials(deepcopy=False), trial.number)
        storage = study._storage
        chosen, op = proposal, None
        if proposal.fingerprint() in seen:
            for _ in range(self._max_retries):
                found = self._novelty.walk(proposal, seen)
                if found is not None:
                    chosen, op = found[0], f"mutate*{found[1]}"
                    break
            else:
                new = self._novelty.new_random(seen, study.study_name)
                if new is not None:
                    chosen, op = new, "random"
            if op is None:
                storage.set_trial_system_attr(trial._trial_id, "no_repeat:repeat", True)
            else:
                params = self._space.to_params(chosen)
                storage.set_trial_system_attr(trial._trial_id, "no_repeat:replaced",
                                              {"proposed": proposal.fingerprint(), "op": op})
        self._plans[trial.number] = params
        storage.set_trial_system_attr(trial._trial_id, "no_repeat:fingerprint", chosen.fingerprint())

    def sample_independent(self, study, trial, param_name, param_distribution):
        value = _planned(self._plans.get(trial.number), param_name, param_distribution)
        if value is not _NOT_PLANNED:
            return value
        return self._sampler.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study, trial, state, values) -> None:
        self._plans.pop(trial.number, None)
        self._sampler.after_trial(study, trial, state, values)


_LOCK_TYPES = {type(threading.Lock()): False, type(threading.RLock()): True}  # type -> reentrant


class _PicklableLocks:
    """A sampler that pickles without its thread locks and gets fresh ones when unpickled.

    Ray Tune pickles the searcher, and with it the sampler, when a search starts (tuner.pkl, in
    `TunerInternal.__init__`) and every few seconds after (`OptunaSearch.save`). Optuna 5.1's
    genetic samplers keep a `threading.Lock` (`BaseGASampler._thread_lock`, guarding the generation
    cache added in 5.1) and no pickling hooks, so NSGA-II/III could not be serialised (a TypeError
    about a '_thread.lock' object). A lock's state means nothing in another process or copy: a fresh,
    unlocked one is what it should get. Without locks (Optuna before 5.1) this changes nothing."""

    def __getstate__(self):
        state = super().__getstate__()
        if not isinstance(state, dict):
            return state
        locks = {k: _LOCK_TYPES[type(v)] for k, v in state.items() if type(v) in _LOCK_TYPES}
        if not locks:
            return state
        return {**{k: v for k, v in state.items() if k not in locks}, "_hn_fresh_locks": locks}

    def __setstate__(self, state):
        state = dict(state)
        locks = state.pop("_hn_fresh_locks", {})
        parent = getattr(super(), "__setstate__", None)
        if parent is not None:
            parent(state)
        else:
            self.__dict__.update(state)
        for k, reentrant in locks.items():
            setattr(self, k, threading.RLock() if reentrant else threading.Lock())


# The same class names as Optuna's on purpose: BaseGASampler derives the trial attributes that
# record generations ("NSGAIISampler:generation", ...) from the class name, so studies keep them.
class NSGAIISampler(_PicklableLocks, optuna.samplers.NSGAIISampler):
    """Optuna's NSGA-II sampler, picklable under every Optuna version (see `_PicklableLocks`)."""


class NSGAIIISampler(_PicklableLocks, optuna.samplers.NSGAIIISampler):
    """Optuna's NSGA-III sampler, picklable under every Optuna version (see `_PicklableLocks`)."""


def _default_population(trials: int) -> int:
    # Optuna's default of 50 would make a short search pure random search.
    return int(max(4, min(50, trials // 4)))


def _default_startup(trials: int) -> int:
    # random trials before a model proposes (TPE, GP, the screened evolution): a model needs a
    # handful of points, and every random trial past that is one the model did not choose
    return min(10, max(4, trials // 5))


def _filtered(cls, opts: dict, field: str = "sampler.options") -> dict:
    params = inspect.signature(cls.__init__).parameters
    for k in opts:
        if k not in params or k in ("self", "constraints_func"):
            known = sorted(p for p in params if p not in ("self", "constraints_func", "seed"))
            raise ConfigError(f"{field}.{k}", f"not an option of {cls.__name__} (known: {', '.join(known)})")
    return opts


#: samplers wrapped in `NoRepeatSampler` unless the config says `no_repeat: false`: the model-based
#: and genetic ones, which repeat heavily on a finite space (see NoRepeatSampler). Random search is
#: left as Optuna defines it (uniform draws, with repeats) unless `no_repeat: true`: it is the
#: baseline samplers are measured against. The evolution sampler never repeats by construction.
NO_REPEAT_DEFAULT = {"tpe": True, "nsga2": True, "nsga3": True, "gp": True, "random": False}


def make_sampler(cfg: SamplerConfig, *, space, trials: int, concurrency: int, seed: int) -> BaseSampler:
    """The Optuna sampler a study config names, with defaults sized to the trial budget, wrapped
    in `NoRepeatSampler` where `cfg.no_repeat` (default: `NO_REPEAT_DEFAULT`) says so."""
    t = cfg.type
    if t == "evolution":
        if cfg.no_repeat is False:
            raise ConfigError("sampler.no_repeat", "the evolution sampler never proposes an architecture twice; "
                                                   "leave no_repeat out or set it to true")
        return _make(cfg, space=space, trials=trials, concurrency=concurrency, seed=seed)
    sampler = _make(cfg, space=space, trials=trials, concurrency=concurrency, seed=seed)
    no_repeat = NO_REPEAT_DEFAULT.get(t, False) if cfg.no_repeat is None else cfg.no_repeat
    if no_repeat and space is not None:  # (space is None only where just the options are checked)
        # its own stream, derived from the seed, so the wrapped sampler draws what it would alone
        return NoRepeatSampler(sampler, space, seed=None if seed is None else seed + 7919)
    return sampler


def _make(cfg: SamplerConfig, *, space, trials: int, concurrency: int, seed: int) -> BaseSampler:
    opts = dict(cfg.options)
    t = cfg.type
    try:
        if t == "tpe":
            kw = dict(multivariate=True, group=True, constant_liar=concurrency > 1,
                      n_startup_trials=_default_startup(trials))
            kw.update(_filtered(optuna.samplers.TPESampler, opts))
            return optuna.samplers.TPESampler(seed=seed, **kw)
        if t == "nsga2":
            kw = dict(population_size=_default_population(trials))
            kw.update(_filtered(optuna.samplers.NSGAIISampler, opts))
            return NSGAIISampler(seed=seed, **kw)
        if t == "nsga3":
            kw = dict(population_size=_default_population(trials))
            kw.update(_filtered(optuna.samplers.NSGAIIISampler, opts))
            return NSGAIIISampler(seed=seed, **kw)
        if t == "gp":
            kw = dict(n_startup_trials=_default_startup(trials))
            kw.update(_filtered(optuna.samplers.GPSampler, opts))
            return optuna.samplers.GPSampler(seed=seed, **kw)
        if t == "random":
            return optuna.samplers.RandomSampler(seed=seed, **_filtered(optuna.samplers.RandomSampler, opts))
        if t == "evolution":
            kw = dict(screen=EvolutionSampler.SCREEN)
            kw.update(_filtered(EvolutionSampler, opts))
            # screened, the population is only the random warm-up before the surrogate has data
            # to learn from, so it is as short as TPE's; unscreened, it is the STAR population
            kw.setdefault("population_size", _default_startup(trials) if kw["screen"] > 1
                          else _default_population(trials))
            return EvolutionSampler(space, seed=seed, **kw)
    except (TypeError, ValueError) as e:
        raise ConfigError("sampler.options", str(e).splitlines()[0]) from None
    raise ConfigError("sampler.type", f"unknown sampler {t!r}")
