"""`run_search(config)`: a multi-objective architecture search, Optuna samplers inside Ray Tune.

The flow (driver = the process that calls run_search; workers = Ray processes running trials):

    preflight (driver, before any trial)   config, space, fidelity, storage, Ray, resources
        │  any problem -> one UserError line, nothing written, nothing started
    reconcile (driver)                      --resume: settle trials a killed driver left open
    Tuner.fit (driver)                      OptunaSearch(define-by-run space.sample) asks the
        │                                   sampler; Tune places trials by `with_resources`
        ▼
    trainable (worker)                      Store(url) -> start_trial; evaluate(arch, fidelity,
                                            report=...) -> curves + ASHA reports; finish_trial;
                                            tune.report(objectives, constraint values)
    _Searcher.on_trial_complete (driver)    set_constraint(...) then tell Optuna: COMPLETE with the
                                            values, FAIL (raised / NaN / worker died) or PRUNED (ASHA)
    promotion (optional)                    re-evaluate the Pareto set / top-K at a higher fidelity

Design choices
- The trainable writes its own result, curves and failure to the store, from the worker, before
  reporting to Tune: a driver crash loses nothing that finished. The Optuna study (samplers'
  memory) lives in the same database through `optuna.storages.RDBStorage`.
- Store trial number == Optuna trial number. The define-by-run function hands the number and the
  architecture (as a dict) to the trainable in the trial's config, so the worker needs no space.
- Failures are never fake values: a trial that raised, diverged (NaN) or whose worker died is
  told to Optuna as FAIL and stored as failed with the reason; ASHA-stopped trials as PRUNED.
- Resume uses the database, not Tune's experiment snapshot: Tune writes its snapshot every few
  seconds, so after a SIGKILL it lags what workers already stored (restoring it would re-run
  stored trials or lose their tells). Instead a new Tune experiment continues the same Optuna
  study (`load_if_exists`): trials Optuna still shows RUNNING are settled from the store (stored
  result -> told; never finished -> re-run under the *same* number with the same params, since
  Optuna returns a trial's existing params when asked again), and Tune runs only the trials
  still missing from the count. So nothing finished is repeated and no number is skipped.
- ASHA (Ray's ASHAScheduler) is single-metric: it stops trials on the quality score the
  evaluator reports during training. Optuna's pruners are not used (OptunaSearch always uses
  NopPruner; multi-objective studies cannot prune).
- Promotion re-evaluates the feasible Pareto set (or the top-K by the first objective) at the
  promotion fidelity in a second store study `<study>.<fidelity>` whose trial numbers are the
  source trials' numbers: fidelities never mix in one Pareto front, and a resumed promotion
  skips what is done.
"""
from __future__ import annotations

import json
import math
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from search_space.errors import UserError

from .config import ConfigError, StudyConfig

#: Optuna system attribute marking a trial re-run after its driver died
RERUN_ATTR = "hn:rerun"


# ----------------------------------------------------------------------------------------------
# preflight: everything that can be wrong is found before any trial starts
@dataclass
class Prepared:
    cfg: StudyConfig
    space: Any
    store: Any
    url: str                 # full URL (with password) for the workers
    shown_url: str           # masked, for people
    resume: bool
    address: str | None
    started_ray: bool = False
    fidelity: Any = None
    enqueued: list = field(default_factory=list)
    packing: dict | None = None   # orchestrator.packing.Plan.as_dict() when resources.gpu is auto


def _absolute_storage(url: str) -> tuple[str, str]:
    from storage import normalize_url
    from storage.engine import hide
    u = normalize_url(url)
    if u.get_backend_name() == "sqlite" and u.database and not os.path.isabs(u.database):
        # workers run in other directories: give them an absolute path
        u = u.set(database=os.path.abspath(u.database))
    if u.get_backend_name() == "sqlite":
        Path(u.database).parent.mkdir(parents=True, exist_ok=True)
    return u.render_as_string(hide_password=False), hide(u)


def resolve_fidelity(preset: str, overrides: dict, field_name: str = "fidelity"):
    """The evaluators' Fidelity for a preset name plus overrides, validated (unknown fields and
    bad values are ConfigErrors naming `fidelity.overrides.<field>`)."""
    from pydantic import ValidationError

    from evaluators.fidelity import FIDELITIES, Fidelity
    if preset not in FIDELITIES:
        raise ConfigError(f"{field_name}.preset" if overrides else field_name,
                          f"unknown fidelity {preset!r} (known: {', '.join(FIDELITIES)})")
    base = FIDELITIES[preset]
    if not overrides:
        return base
    try:
        return Fidelity.model_validate({**base.model_dump(), **overrides})
    except ValidationError as e:
        err = e.errors(include_url=False)[0]
        loc = ".".join(str(x) for x in err["loc"])
        msg = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
        raise ConfigError(f"{field_name}.overrides.{loc}", msg) from None


def produced_metrics(fid) -> set[str]:
    """Catalogue metrics an evaluation at this fidelity produces."""
    from search_space.metrics import METRICS
    out = {m for m, d in METRICS.items() if d.kind in ("analytic", "run")} | {"quality"}
    if fid.text is not None:
        out |= {"val_bpb", "val_loss"}
    if fid.efficiency.measure:
        out |= {m for m, d in METRICS.items() if d.kind == "measured"}
    return out


def check_fidelity(fid, objectives: list[str], constraints: list[str], field_name: str = "fidelity"):
    """Resolve a fidelity preset (+ overrides); every objective and constraint metric must be
    one that the fidelity produces."""
    resolved = resolve_fidelity(fid.preset, fid.overrides, field_name)
    produced = produced_metrics(resolved)
    for what, names in (("objectives", objectives), ("constraints", constraints)):
        for i, m in enumerate(names):
            if m not in produced:
                raise ConfigError(f"{what}[{i}]", f"metric {m!r} is not produced at fidelity {fid.label!r} "
                                                  f"(it produces: {', '.join(sorted(produced))})")
    return resolved


def probe_ray_address(address: str | None, timeout_s: float = 5.0) -> None:
    """Fail at once, before anything is written, when a cluster address cannot be reached:
    `ray.init` itself retries an unreachable GCS for many minutes."""
    if not address or address == "local":
        return
    target = address
    if address == "auto":
        from ray._private import services
        try:
            target = services.canonicalize_bootstrap_address("auto")
        except Exception:  # noqa: BLE001 - Ray's own error types vary by version
            target = None
        if not target:
            raise ConfigError("address", "no running Ray cluster found for 'auto' (start one with `ray start "
                                         "--head`, or set RAY_ADDRESS)")
    hostport = target[len("ray://"):] if target.startswith("ray://") else target
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError("address", f"{address!r} is not 'auto', HOST:PORT or ray://HOST:PORT")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as e:
        raise ConfigError("address", f"cannot reach the Ray cluster at {address!r} ({hostport}): "
                                     f"{e.strerror or type(e).__name__}") from None


def init_ray(address: str | None, num_cpus: int | None) -> bool:
    """Start an embedded Ray (address None) or join a cluster. Returns True if we started it."""
    import ray
    if ray.is_initialized():
        return False
    kw = dict(include_dashboard=False, log_to_driver=False, configure_logging=True,
              logging_level="ERROR")
    try:
        if address:
            ray.init(address=address, log_to_driver=False, logging_level="ERROR")
        else:
            ray.init(num_cpus=num_cpus, **kw)
    except ConnectionError as e:
        raise ConfigError("address", f"cannot reach the Ray cluster at {address!r}: {str(e).splitlines()[0]}") from None
    except Exception as e:  # auth failures and bad addresses come as various types
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        where = f"the Ray cluster at {address!r}" if address else "a local Ray instance"
        hint = " (token auth: set RAY_AUTH_MODE=token and RAY_AUTH_TOKEN)" if "auth" in msg.lower() else ""
        raise ConfigError("address" if address else "", f"cannot start or join {where}: {msg}{hint}") from None
    return True


def check_resources(res) -> None:
    """A trial's resources must fit on at least one alive node of the cluster."""
    import ray
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    fits = [n for n in nodes if n["Resources"].get("CPU", 0) >= res.cpu and n["Resources"].get("GPU", 0) >= res.gpu]
    if fits:
        return
    total = ray.cluster_resources()
    biggest_cpu = max((n["Resources"].get("CPU", 0) for n in nodes), default=0)
    biggest_gpu = max((n["Resources"].get("GPU", 0) for n in nodes), default=0)
    if res.gpu > biggest_gpu:
        have = "no GPU" if not total.get("GPU") else f"at most {biggest_gpu:g} GPU on one node"
        raise ConfigError("resources.gpu", f"{res.gpu:g} GPU per trial, but the Ray cluster has {have}")
    raise ConfigError("resources.cpu", f"{res.cpu:g} CPUs per trial, but the largest Ray node has {biggest_cpu:g}")


def preflight(cfg: StudyConfig, *, resume: bool = False, address: str | None = None) -> Prepared:
    from search_space.yaml_io import dump_yaml  # noqa: F401  (the space loader needs it)
    from storage import Store

    from .samplers import make_sampler

    space = cfg.load_space()
    enqueued = [] if resume else cfg.enqueued_architectures(space)
    fid = check_fidelity(cfg.fidelity, cfg.metric_names, [c.metric for c in cfg.constraints])
    if cfg.promotion is not None:
        check_fidelity(cfg.promotion.fidelity, cfg.metric_names, [c.metric for c in cfg.constraints],
                       "promotion.fidelity")
    # a sampler with bad options must fail here, not in the middle of Tune's set-up
    make_sampler(cfg.sampler, space=space, trials=cfg.trials, concurrency=cfg.concurrency or 1, seed=cfg.seed)
    url, shown = _absolute_storage(cfg.storage)
    address = address or cfg.address
    probe_ray_address(address)  # before the store: an unreachable cluster must leave nothing behind
    # resuming needs an existing store: a mistyped SQLite path must not create an empty one
    store = Store(url, create=not resume)
    from storage import StoreError
    try:
        study = store.get_study(cfg.study)
    except StoreError:
        study = None
    if study is not None and not resume:
        raise ConfigError("study", f"{cfg.study!r} already exists in {shown}: add --resume to continue it, "
                                   "or pick another --study")
    if study is None and resume:
        raise ConfigError("study", f"no study {cfg.study!r} in {shown} to resume")
    started = init_ray(address, cfg.num_cpus)
    packing = None
    try:
        if cfg.resources.gpu == "auto":  # measure trial memory on a GPU, pick the share per trial
            from .packing import resolve_auto
            cfg, plan = resolve_auto(cfg, space, fid)
            packing = plan.as_dict()
        check_resources(cfg.resources)
    except UserError:
        if started:
            import ray
            ray.shutdown()
        raise
    return Prepared(cfg=cfg, space=space, store=store, url=url, shown_url=shown, resume=resume,
                    address=address, started_ray=started, fidelity=fid, enqueued=enqueued, packing=packing)


def load_stored_config(study: str, storage_url: str) -> StudyConfig:
    """The config a study was started with (kept in the store), for `--resume STUDY` alone."""
    from storage import Store

    from .config import load_config
    url, _ = _absolute_storage(storage_url)
    st = Store(url, create=False).get_study(study)
    if not st.config_yaml:
        raise ConfigError("study", f"study {study!r} has no stored config; pass the config file")
    cfg = load_config(st.config_yaml)
    return cfg.with_overrides(storage=storage_url)


# ----------------------------------------------------------------------------------------------
# the trial: runs in a Ray worker
def _device(gpu: float) -> str:
    import torch
    return "cuda" if gpu > 0 and torch.cuda.is_available() else "cpu"


def _node_name() -> str:
    """Host name plus the Ray node id: several Ray nodes may share a host."""
    name = socket.gethostname()
    try:
        import ray
        if ray.is_initialized():
            name += "/" + ray.get_runtime_context().get_node_id()[:8]
    except Exception:  # outside Ray (direct calls in tests, benchmarks)
        pass
    return name


def _objective_values(result, metrics: list[str]) -> tuple[list[float] | None, str | None]:
    vals = []
    for m in metrics:
        v = result.metrics.get(m, result.analytic.get(m, result.measured.get(m)))
        if v is None:
            return None, f"objective {m!r} was not produced"
        v = float(v)
        if not math.isfinite(v):
            return None, f"objective {m!r} is {v}"
        vals.append(v)
    return vals, None


def constraint_values(ctx: dict, arch, result) -> dict[str, float]:
    """Optuna constraint values (<= 0 feasible): the space's analytic limits and the config's."""
    from search_space.space import SearchSpace  # noqa: F401
    from .config import Constraint
    out = dict(ctx["space_violations"](arch)) if callable(ctx.get("space_violations")) else {}
    for c in ctx["constraints"]:
        c = Constraint.model_validate(c)
        v = result.metrics.get(c.metric, result.analytic.get(c.metric, result.measured.get(c.metric)))
        out[c.key] = c.violation(None if v is None else float(v))
    return out


def run_trial(ctx: dict, number: int, arch_dict: dict, *, tune_report=None):
    """Evaluate one architecture and store everything about it. Returns what Tune should get.

    `ctx`: url, study, fidelity (preset, overrides, label), seed, gpu, objectives (metric names),
    constraints (config dicts), space_violations (callable or None), asha_metric (or None)."""
    from evaluators import evaluate
    from search_space.genome import Architecture
    from search_space.result import TrialResult
    from storage import Store

    arch = Architecture.from_dict(arch_dict)
    study, label, seed = ctx["study"], ctx["fidelity"]["label"], ctx["seed"]
    from .packing import setup_worker
    shared = setup_worker(ctx)  # kernel policy, CUDA health, memory cap of a shared GPU
    store = Store(ctx["url"])
    node = _node_name()
    device = _device(ctx["gpu"])
    store.start_trial(study, number, arch, fidelity=label, seed=seed, node=node, device=device,
                      params=ctx.get("params"))
    asha = ctx.get("asha_metric")
    pending: list[tuple[int, dict]] = []
    last_flush = [time.monotonic()]

    def flush():
        by_name: dict[str, list] = {}
        for step, mets in pending:
            for k, v in mets.items():
                by_name.setdefault(k, []).append((step, float(v)))
        for k, pts in by_name.items():
            store.add_curve_points(study, number, k, pts)
        pending.clear()
        last_flush[0] = time.monotonic()

    def report(step: int, metrics: dict):
        pending.append((int(step), {k: v for k, v in metrics.items() if isinstance(v, (int, float))}))
        if time.monotonic() - last_flush[0] > 2.0:
            flush()  # curves reach the dashboard while the trial runs, in few transactions
        if asha and tune_report is not None and asha in metrics:
            try:
                tune_report({asha: float(metrics[asha]), "hn_step": int(step)})
            except SystemExit:
                # Tune stopped the trial (ASHA): keep what we have, mark it pruned
                flush()
                store.finish_trial(study, number, TrialResult(status="pruned", fidelity=label, seed=seed,
                                                              device=device, error="stopped early by ASHA"))
                raise

    t0 = time.time()
    try:
        fid = resolve_fidelity(ctx["fidelity"]["preset"], ctx["fidelity"]["overrides"])
        result = evaluate(arch, fid, device=device, seed=seed, report=report)
    except SystemExit:
        raise
    except Exception as e:  # a bug or an OOM in one architecture must not end the search
        result = TrialResult(status="failed", error=f"{type(e).__name__}: {str(e)[:500]}",
                             wall_time_s=time.time() - t0)
    result.fidelity, result.seed = label, seed
    if ctx["fidelity"]["overrides"]:
        result.extra = {**(result.extra or {}), "fidelity_overrides": ctx["fidelity"]["overrides"]}
    result.device = result.device or device
    result.extra.update(shared)
    flush()
    values, why = (None, result.error) if result.status != "complete" else _objective_values(result, ctx["objectives"])
    if result.status == "complete" and values is None:
        result.status, result.error = "failed", why
    cons = constraint_values(ctx, arch, result) if result.status == "complete" else {}
    store.finish_trial(study, number, result, constraints=cons)
    out = {"hn_final": True, "hn_status": result.status, "hn_error": result.error or "",
           "hn_constraints": json.dumps(cons), "hn_wall_s": float(result.wall_time_s)}
    if values is not None:
        out.update(dict(zip(ctx["objectives"], values)))
    return out


def _trainable(config: dict, ctx: dict):
    """The Ray Tune function trainable: one trial."""
    from ray import tune
    out = run_trial(ctx, int(config["hn_number"]), json.loads(config["hn_arch"]), tune_report=tune.report)
    tune.report(out)


# ----------------------------------------------------------------------------------------------
# the driver side of Tune
class DefineByRun:
    """The define-by-run space for OptunaSearch (a class, not a closure: Tune pickles its searcher)."""

    def __init__(self, space):
        self.space = space

    def __call__(self, trial) -> dict:
        arch = self.space.sample(trial)
        return {"hn_number": trial.number, "hn_arch": json.dumps(arch.to_dict())}


def make_searcher(cfg: StudyConfig, space, url: str, orphans: list[int] | None = None):
    import optuna
    from ray.tune.search.optuna import OptunaSearch
    from optuna.trial import TrialState

    from .samplers import make_sampler

    class _Searcher(OptunaSearch):
        """OptunaSearch that (1) sets constraint values before telling a trial, (2) tells
        failures as FAIL and ASHA stops as PRUNED (never fake values), (3) re-runs trials a
        killed driver left RUNNING under their own numbers."""

        def __init__(self, *a, orphans=(), **kw):
            self._orphans = list(orphans)
            super().__init__(*a, **kw)

        def suggest(self, trial_id):
            if self._orphans and trial_id not in self._ot_trials:
                number = self._orphans.pop(0)
                tid = self._ot_study._storage.get_trial_id_from_study_id_trial_number(
                    self._ot_study._study_id, number)
                self._ot_study._storage.set_trial_system_attr(tid, RERUN_ATTR, True)
                # Optuna's cached storage writes params only for trials it has read: a sampler
                # that reads no trials before sampling (random) would leave it not knowing this one
                self._ot_study.get_trials(deepcopy=False)
                self._ot_trials[trial_id] = optuna.Trial(self._ot_study, tid)
            return super().suggest(trial_id)

        def on_trial_complete(self, trial_id, result=None, error=False):
            if trial_id in self._completed_trials or trial_id not in self._ot_trials:
                return
            ot = self._ot_trials[trial_id]
            final = bool(result and result.get("hn_final"))
            if final and result.get("hn_status") == "complete":
                # a JSON string: Tune flattens nested dicts in results
                for k, v in json.loads(result.get("hn_constraints") or "{}").items():
                    ot.set_constraint(k, v)
                return super().on_trial_complete(trial_id, result, error)
            state = TrialState.FAIL if (error or final) else TrialState.PRUNED
            try:
                self._ot_study.tell(ot, state=state)
            except Exception:  # already finished (e.g. told by a reconciliation)
                pass
            self._completed_trials.add(trial_id)

    sampler = make_sampler(cfg.sampler, space=space, trials=cfg.trials, concurrency=cfg.concurrency or 1,
                           seed=cfg.seed)
    storage = optuna_storage(url)
    return _Searcher(space=DefineByRun(space), metric=cfg.metric_names, mode=cfg.modes, sampler=sampler,
                     storage=storage, study_name=cfg.study, orphans=orphans or [])


def optuna_storage(url: str):
    from .optuna_storage import PasswordFreeRDBStorage
    kw = {}
    if url.startswith("sqlite"):
        kw = {"connect_args": {"timeout": 60}}
    else:
        kw = {"pool_pre_ping": True}
    return PasswordFreeRDBStorage(url, engine_kwargs=kw)


def create_optuna_study(prep: Prepared):
    """Create the Optuna study (OptunaSearch then loads it) and enqueue the config's
    architectures so they are the first trials."""
    import optuna
    cfg = prep.cfg
    study = optuna.create_study(storage=optuna_storage(prep.url), study_name=cfg.study,
                                directions=cfg.directions, load_if_exists=True)
    for arch in prep.enqueued:
        study.enqueue_trial(prep.space.to_params(arch), skip_if_exists=True)
    return study


def reconcile(prep: Prepared) -> tuple[list[int], int]:
    """Settle trials a killed driver left open. Returns (numbers to re-run, finished count)."""
    import optuna
    from optuna.trial import TrialState

    from storage import StoreError

    cfg, store = prep.cfg, prep.store
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.load_study(study_name=cfg.study, storage=optuna_storage(prep.url))
    except KeyError:
        return [], 0
    orphans = []
    for t in study.get_trials(deepcopy=False):
        if t.state == TrialState.RUNNING:
            try:
                row = store.trial(cfg.study, t.number)
            except StoreError:
                row = None
            status = row["status"] if row else None
            if status == "complete":
                metrics = row["metrics"] or {}
                vals = [metrics.get(m) for m in cfg.metric_names]
                if all(v is not None and math.isfinite(v) for v in vals):
                    trial = optuna.Trial(study, t._trial_id)
                    for k, v in (row.get("constraints") or {}).items():
                        if math.isfinite(v):
                            trial.set_constraint(k, v)
                    study.tell(t.number, vals)
                else:
                    study.tell(t.number, state=TrialState.FAIL)
            elif status in ("failed", "pruned"):
                study.tell(t.number, state=TrialState.FAIL if status == "failed" else TrialState.PRUNED)
            else:
                orphans.append(t.number)
        elif t.state in (TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED):
            # the worker died after Optuna heard of it but before the store did
            try:
                row = store.trial(cfg.study, t.number)
            except StoreError:
                row = None
            if row is None or row["status"] == "running":
                store.record_trial_failure(cfg.study, t.number, "worker stopped before storing a result")
    finished = sum(1 for t in study.get_trials(deepcopy=False)
                   if t.state in (TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED))
    return orphans, finished


# ----------------------------------------------------------------------------------------------
@dataclass
class SearchOutcome:
    study: str
    storage: str               # masked URL
    complete: int = 0
    failed: int = 0
    pruned: int = 0
    pareto: Any = None         # pandas frame (storage.pareto_front)
    promoted_study: str | None = None
    wall_s: float = 0.0
    notes: list[str] = field(default_factory=list)


def _ctx(prep: Prepared, fid_cfg, study: str) -> dict:
    cfg = prep.cfg
    return {"url": prep.url, "study": study, "seed": cfg.seed, "gpu": cfg.resources.gpu,
            "fidelity": {"preset": fid_cfg.preset, "overrides": dict(fid_cfg.overrides), "label": fid_cfg.label},
            "objectives": cfg.metric_names, "constraints": [c.model_dump() for c in cfg.constraints],
            "space_violations": prep.space.violations,
            "asha_metric": cfg.early_stopping.metric if cfg.early_stopping else None,
            "packing": prep.packing, "fla_kernels": cfg.fla_kernels}


def _worker_errors(store, study: str):
    """A Tune callback (driver) that stores a failure for a trial whose worker died: the worker
    could not write it itself."""
    from ray.tune import Callback

    from .driver_store import DriverStoreHandle

    class _WorkerErrors(DriverStoreHandle, Callback):
        def on_trial_error(self, iteration, trials, trial, **info):
            cfg = trial.config or {}
            number = cfg.get("hn_number", (cfg.get("job") or {}).get("hn_number"))
            if number is None:
                return
            err = getattr(trial, "error_msg", None) or "the Ray worker running this trial died"
            store = self.store
            try:
                if store.trial(study, int(number))["status"] == "running":
                    store.record_trial_failure(study, int(number), f"worker error: {str(err).strip().splitlines()[-1][:300]}")
            except Exception:
                store.record_trial_failure(study, int(number), "worker error before the trial was stored")
    cb = _WorkerErrors()
    cb.store = store
    return cb


def _tune_run(prep: Prepared, trainable, *, param_space, num_samples, search_alg, scheduler, name, view, study):
    from ray import tune
    from ray.tune import RunConfig, TuneConfig  # noqa: F401

    cfg = prep.cfg
    tuner = tune.Tuner(
        tune.with_resources(trainable, cfg.resources.as_ray()),
        param_space=param_space,
        tune_config=tune.TuneConfig(num_samples=num_samples, search_alg=search_alg, scheduler=scheduler,
                                    # one process start-up (imports, CUDA context, kernel
                                    # self-tests) per actor, not per trial; see packing.py
                                    max_concurrent_trials=cfg.concurrency, reuse_actors=True),
        run_config=tune.RunConfig(name=name, verbose=0,
                                  callbacks=([view] if view else []) + [_worker_errors(prep.store, study)],
                                  failure_config=tune.FailureConfig(max_failures=1),
                                  checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
                                  storage_path=str(Path(os.environ.get("HYBRID_NAS_RAY_RESULTS",
                                                                       Path.home() / "ray_results")).absolute())),
    )
    return tuner.fit()


def _quiet_libraries():
    import logging
    import warnings

    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    # Tune's own console output (config box, tables) would fight with our live view
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # failed trials and ASHA's intermediate reports carry no objective values, on purpose
    os.environ["TUNE_DISABLE_STRICT_METRIC_CHECKING"] = "1"
    logging.getLogger("ray.tune").setLevel(logging.WARNING)


def run_search(cfg: StudyConfig, *, resume: bool = False, address: str | None = None,
               console=None, live: bool | None = None, prepared: Prepared | None = None) -> SearchOutcome:
    """Run (or resume) the search a config describes; see the module docstring."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    from .live import LiveView

    t0 = time.time()
    _quiet_libraries()
    prep = prepared or preflight(cfg, resume=resume, address=address)
    cfg, store = prep.cfg, prep.store
    try:
        store.create_study(cfg.study, cfg.to_yaml(), list(zip(cfg.metric_names, cfg.directions)),
                           [str(c) for c in cfg.constraints], resume=resume,
                           attrs={"sampler": cfg.sampler.type, "fidelity": cfg.fidelity.label,
                                  **({"packing": prep.packing} if prep.packing else {})},
                           status="running")
        orphans, finished = reconcile(prep) if resume else ([], 0)
        if not resume:
            create_optuna_study(prep)
        remaining = max(0, cfg.trials - finished)
        view = LiveView(cfg, store, console=console, live=live, already=finished)
        status = "complete"
        try:
            if remaining > 0:
                searcher = make_searcher(cfg, prep.space, prep.url, orphans=orphans)
                scheduler = None
                if cfg.early_stopping:
                    es = cfg.early_stopping
                    from search_space.metrics import METRICS
                    scheduler = ASHAScheduler(metric=es.metric, mode="max" if METRICS[es.metric].direction == "maximize" else "min",
                                              time_attr="training_iteration", grace_period=es.grace_period,
                                              reduction_factor=es.reduction_factor, max_t=10_000)
                ctx = _ctx(prep, cfg.fidelity, cfg.study)
                with view:
                    _tune_run(prep, tune.with_parameters(_trainable, ctx=ctx), param_space={},
                              num_samples=remaining, search_alg=searcher, scheduler=scheduler,
                              name=f"{cfg.study}-{int(time.time())}", view=view, study=cfg.study)
        except KeyboardInterrupt:
            status = "interrupted"
            raise
        except BaseException:
            status = "failed"
            raise
        finally:
            store.set_study_status(cfg.study, status if status != "complete" else "running")
        out = SearchOutcome(study=cfg.study, storage=prep.shown_url)
        promoted = promote(prep, view) if cfg.promotion else None
        store.set_study_status(cfg.study, "complete")
        for s in ("complete", "failed", "pruned"):
            setattr(out, s, store.count_trials(cfg.study, s))
        out.pareto = store.pareto_front(cfg.study, list(zip(cfg.metric_names, cfg.directions))) \
            if len(cfg.metric_names) >= 1 else None
        out.promoted_study = promoted
        out.wall_s = time.time() - t0
        return out
    finally:
        if prep.started_ray:
            import ray
            ray.shutdown()


def promotion_study(cfg: StudyConfig) -> str:
    return f"{cfg.study}.{cfg.promotion.fidelity.preset}"


def promote(prep: Prepared, view=None) -> str | None:
    """Re-evaluate the best trials at the promotion fidelity, in study `<study>.<fidelity>`."""
    from ray import tune
    from storage import StoreError

    cfg, store = prep.cfg, prep.store
    p = cfg.promotion
    objs = list(zip(cfg.metric_names, cfg.directions))
    if p.top_k:
        frame = store.trials_frame(cfg.study, "complete")
        if "feasible" in frame:
            frame = frame[frame["feasible"].fillna(True).astype(bool)]
        m, d = objs[0]
        frame = frame.dropna(subset=[m]).sort_values(m, ascending=(d == "minimize"))
        numbers = [int(n) for n in frame["number"].head(p.top_k)]
    else:
        numbers = [int(n) for n in store.pareto_front(cfg.study, objs)["number"]]
    numbers = numbers[:p.max_trials]
    target = promotion_study(cfg)
    store.create_study(target, cfg.to_yaml(), objs, [str(c) for c in cfg.constraints], resume=True,
                       attrs={"promoted_from": cfg.study, "fidelity": p.fidelity.label}, status="running")
    todo = []
    for n in numbers:
        try:
            if store.trial(target, n)["status"] in ("complete", "failed"):
                continue
        except StoreError:
            pass
        todo.append({"hn_number": n, "hn_arch": json.dumps(__import__("yaml").safe_load(store.trial_yaml(cfg.study, n)))})
    if todo:
        ctx = _ctx(prep, p.fidelity, target)
        ctx["asha_metric"] = None
        if view is not None:
            view.phase(f"promoting {len(todo)} to {p.fidelity.label}", len(todo))
        with (view if view is not None else _Null()):
            _tune_run(prep, tune.with_parameters(_trainable_promoted, ctx=ctx),
                      param_space={"job": tune.grid_search(todo)}, num_samples=1, search_alg=None,
                      scheduler=None, name=f"{target}-{int(time.time())}", view=view, study=target)
    store.set_study_status(target, "complete")
    return target


def _trainable_promoted(config: dict, ctx: dict):
    from ray import tune
    job = config["job"]
    tune.report(run_trial(ctx, int(job["hn_number"]), json.loads(job["hn_arch"])))


class _Null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False
