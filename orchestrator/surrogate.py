"""A cheap surrogate of the objectives, for screening candidate architectures before paying for one.

Used by `EvolutionSampler(screen=N)` (orchestrator/samplers.py): instead of evaluating the first
new child its tournament and mutation produce, the sampler breeds N new children, predicts each
one's objectives with the model here, and proposes the one with the largest optimistic
hypervolume improvement. An evaluation (a proxy training) costs seconds to hours; fitting this
model and screening N candidates costs milliseconds, so trading the one for the other pays as
soon as the model ranks candidates better than chance.

Design choices
- The model is Bayesian linear regression (ridge with a Gaussian prior), one per objective, on
  features of the architecture. It is exact to fit in closed form on the few dozen to few
  thousand completed trials of a search, has no hyperparameters worth tuning per study, and
  gives a predictive standard deviation, which the acquisition needs so that unexplored
  structure is not written off on a mean estimated from nothing.
- Features (`features`): an indicator per (parameter, value) of the define-by-run params (what
  TPE sees: position-specific, e.g. `b0.mixer=rwkv7`), position-free counts (blocks, each token
  and channel mixer, parallel groups, recursion groups, shared blocks, d_model), and the log of
  the analytic costs (parameters, FLOPs per token, decode cache at 8K; search_space/metrics.py).
  The costs are exact and free before training, and they carry most of the signal of cost-like
  objectives (parameters, memory, throughput); the indicators and counts carry what quality
  depends on. Features are centred on the completed trials and scaled by their spread over
  trials and candidates, so a feature no completed trial has keeps its prior weight: unknown, and
  a candidate with it is predicted with more uncertainty (optimism then favours trying it).
- Acquisition: each objective is turned into a loss (minimized), and a candidate's optimistic
  point is its predicted loss minus `beta` predictive standard deviations. Its score is the
  hypervolume that point adds to the front of the completed (feasible) trials, with the
  reference point just beyond the worst loss seen (as in benchmarks/search_efficiency.py). When
  no candidate adds any (all are predicted dominated), the one closest to the front wins (the
  least improvement, in one objective and in units of that objective's spread, that would take it
  out from under every front point dominating it).
"""
from __future__ import annotations

import math

import numpy as np


def features(arch, params: dict) -> dict[str, float]:
    """Named features of an architecture (see the module docstring); `params` are its
    define-by-run params (`space.to_params(arch)`)."""
    from search_space.genome import ParallelGroup, RecursionItem
    from search_space.metrics import analytic_metrics
    f: dict[str, float] = {f"{k}={v}": 1.0 for k, v in params.items()}
    blocks = arch.flat_blocks()
    f["n:d_model"] = float(arch.d_model)
    f["n:items"] = float(len(arch.blocks))
    f["n:blocks"] = float(len(blocks))
    for b in blocks:
        for m in b.mixers:
            f[f"n:mixer:{m.type}"] = f.get(f"n:mixer:{m.type}", 0.0) + 1.0
        f[f"n:channel:{b.channel.type}"] = f.get(f"n:channel:{b.channel.type}", 0.0) + 1.0
    f["n:parallel"] = float(sum(1 for b in blocks if isinstance(b.mixer, ParallelGroup)))
    f["n:recursion"] = float(sum(1 for it in arch.blocks if isinstance(it, RecursionItem)))
    f["n:shared"] = float(sum(1 for b in blocks if b.share is not None))
    cost = analytic_metrics(arch)
    for k in ("params_total", "flops_per_token", "cache_mib_8k"):
        f[f"log:{k}"] = math.log10(1.0 + cost[k])
    return f


class BayesRidge:
    """Bayesian linear regression with a unit Gaussian prior on the weights of standardized
    features, for each column of Y; the noise variance is estimated from the residuals."""

    def __init__(self, alpha: float = 1.0):
        self.alpha = alpha

    def fit(self, X: np.ndarray, Y: np.ndarray, X_pool: np.ndarray | None = None) -> "BayesRidge":
        """`X_pool`: the points to be predicted, if known; features are centred on the training
        points but scaled by their spread over training and pool points together, so a feature
        the training points never vary (a value no completed trial has) keeps its prior: its
        weight is unknown, and a candidate that has it is predicted with more uncertainty."""
        n, d = X.shape
        self.mu_x = X.mean(0)
        sd = (X if X_pool is None or len(X_pool) == 0 else np.vstack([X, X_pool])).std(0)
        self.keep = sd > 1e-12  # constant everywhere: no information
        self.sd_x = np.where(self.keep, sd, 1.0)
        Z = self._z(X)
        self.mu_y = Y.mean(0)
        self.sd_y = np.where(Y.std(0) > 1e-12, Y.std(0), 1.0)
        T = (Y - self.mu_y) / self.sd_y
        A = Z.T @ Z + self.alpha * np.eye(d)
        self.A_inv = np.linalg.inv(A)
        self.W = self.A_inv @ Z.T @ T
        resid = T - Z @ self.W
        # effective degrees of freedom of ridge, so a model that interpolates its few points
        # still reports noise
        dof = max(1.0, n - float(np.trace(Z @ self.A_inv @ Z.T)))
        self.noise = np.maximum((resid ** 2).sum(0) / dof, 1e-6)
        return self

    def _z(self, X: np.ndarray) -> np.ndarray:
        return np.where(self.keep, (X - self.mu_x) / self.sd_x, 0.0)

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(mean, standard deviation), each (n, objectives), in the units of Y."""
        Z = self._z(X)
        mean = Z @ self.W
        var = np.einsum("ij,jk,ik->i", Z, self.A_inv, Z)[:, None] * self.noise + self.noise
        return self.mu_y + mean * self.sd_y, np.sqrt(var) * self.sd_y


def _hv(points: np.ndarray, ref: np.ndarray) -> float:
    from optuna._hypervolume import compute_hypervolume
    from optuna.study._multi_objective import _is_pareto_front
    pts = points[np.all(points < ref, axis=1)]
    if len(pts) == 0:
        return 0.0
    pts = pts[_is_pareto_front(pts, assume_unique_lexsorted=False)]
    return float(compute_hypervolume(pts, ref, assume_pareto=True))


def choose(train_X: np.ndarray, train_loss: np.ndarray, front_loss: np.ndarray, cand_X: np.ndarray,
           beta: float = 1.0) -> tuple[int, np.ndarray]:
    """Index of the candidate to evaluate, and every candidate's score (larger is better).

    `train_loss` and `front_loss` are losses (objectives signed so that lower is better) of the
    trials the model learns from and of the trials whose front counts; `cand_X` the candidates'
    features (same columns as `train_X`)."""
    model = BayesRidge().fit(train_X, train_loss, cand_X)
    mean, std = model.predict(cand_X)
    opt = mean - beta * std
    lo, hi = train_loss.min(0), train_loss.max(0)
    span = np.where(hi > lo, hi - lo, 1.0)
    ref = hi + 0.1 * span
    # the candidates' optimistic points may lie beyond the worst loss seen: clip them to just
    # inside the reference point so they still count (a prediction, not a measurement)
    opt_c = np.minimum(opt, ref - 1e-9 * span)
    front = front_loss if len(front_loss) else train_loss
    base = _hv(front, ref)
    hvi = np.array([_hv(np.vstack([front, p[None]]), ref) - base for p in opt_c])
    if np.any(hvi > 1e-12 * np.prod(span)):
        return int(np.argmax(hvi)), hvi
    # all predicted dominated: the one that needs the least improvement (in one objective, in
    # units of its spread) to escape every front point that dominates it; negated
    gap = np.array([np.max(np.min((p[None] - front) / span, axis=1)) for p in opt])
    return int(np.argmin(gap)), -gap
