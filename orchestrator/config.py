"""The study config: one YAML file says what to search, for what, with what, and where to store it.

    study: cpu-quickstart
    storage: sqlite:///runs/hybrid-nas.db      # default: runs/hybrid-nas.db next to the cwd
    space: ../spaces/small.yaml                # a path (relative to this file) or an inline mapping
    objectives: [quality, {cache_mib_8k: minimize}]
    constraints: ["params_total <= 5e6"]
    sampler: {type: tpe}                       # tpe | nsga2 | nsga3 | gp | random | evolution;
                                               # no_repeat: false lets tpe/nsga*/gp repeat
    trials: 24
    concurrency: 2
    resources: {cpu: 1, gpu: 0}                # or gpu: auto (trials share GPUs by measured memory)
    fidelity: smoke                            # or {preset: smoke, overrides: {...}}
    early_stopping: {type: asha, grace_period: 1, reduction_factor: 3}
    promotion: {fidelity: quick, top_k: 3}
    seed: 0

Design choices:
- pydantic models with `extra="forbid"`, loaded through search_space's safe YAML loader (no aliases,
  size cap), so every mistake is a `GenomeError` naming the field path (`objectives[1].metric`).
- Objectives and constraints may only name metrics of the shared catalogue
  (search_space/metrics.py); an objective's direction defaults to the catalogue's.
- A constraint `metric <= bound` becomes the Optuna constraint value `(metric - bound) / |bound|`
  (feasible when <= 0). Normalising by the bound keeps violations of different units comparable,
  which matters because constrained domination sums them.
- Flags override the file (`with_overrides`); checks that need the outside world (the fidelity
  presets, the cluster's resources, the database) run in `orchestrator.search.preflight` before any
  trial starts.
"""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, StrictBool, field_validator, model_validator

from search_space.errors import GenomeError, UserError
from search_space.metrics import METRICS

SAMPLERS = ("tpe", "nsga2", "nsga3", "gp", "random", "evolution")
DEFAULT_STORAGE = "sqlite:///runs/hybrid-nas.db"
_NAME_RE = r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,127}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _check_metric(name: str) -> str:
    if name not in METRICS:
        raise ValueError(f"unknown metric {name!r} (known: {', '.join(METRICS)})")
    return name


class Objective(_Strict):
    metric: str
    direction: Literal["maximize", "minimize"] | None = None

    @model_validator(mode="before")
    @classmethod
    def _short_forms(cls, v: Any):
        # "quality"  or  {cache_mib_8k: minimize}  or  {metric: ..., direction: ...}
        if isinstance(v, str):
            return {"metric": v}
        if isinstance(v, dict) and len(v) == 1 and "metric" not in v:
            (k, d), = v.items()
            if isinstance(d, str):  # a list or mapping here is left to pydantic to reject
                d = {"min": "minimize", "max": "maximize"}.get(d, d)
            return {"metric": k, "direction": d}
        return v

    @field_validator("metric")
    @classmethod
    def _known(cls, v: str) -> str:
        return _check_metric(v)

    @model_validator(mode="after")
    def _default_direction(self):
        if self.direction is None:
            object.__setattr__(self, "direction", METRICS[self.metric].direction)
        return self

    @property
    def mode(self) -> str:
        return "max" if self.direction == "maximize" else "min"


_CONSTRAINT_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|<|>)\s*([-+0-9.eE_]+)\s*$")


class Constraint(_Strict):
    metric: str
    op: Literal["<=", ">="]
    bound: float

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, v: Any):
        if isinstance(v, str):
            m = _CONSTRAINT_RE.match(v)
            if not m:
                raise ValueError(f"{v!r} is not of the form 'metric <= number' or 'metric >= number'")
            name, op, num = m.groups()
            try:
                bound = float(num.replace("_", ""))
            except ValueError:
                raise ValueError(f"{num!r} is not a number") from None
            # strict and non-strict bounds are the same thing for real-valued metrics
            return {"metric": name, "op": {"<": "<=", ">": ">="}.get(op, op), "bound": bound}
        return v

    @field_validator("metric")
    @classmethod
    def _known(cls, v: str) -> str:
        return _check_metric(v)

    @field_validator("bound")
    @classmethod
    def _finite(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError(f"bound {v} must be finite")
        return v

    @property
    def key(self) -> str:
        return f"{self.metric}{self.op}{self.bound:g}"

    def violation(self, value: float) -> float:
        """Optuna's constraint value: <= 0 when satisfied; non-finite metrics are infeasible."""
        if value is None or not math.isfinite(value):
            return 1e9
        scale = abs(self.bound) or 1.0
        d = (value - self.bound) if self.op == "<=" else (self.bound - value)
        return d / scale

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.bound:g}"


class SamplerConfig(_Strict):
    type: Literal["tpe", "nsga2", "nsga3", "gp", "random", "evolution"] = "tpe"
    #: keyword arguments for the sampler's constructor (checked against its signature)
    options: dict[str, Any] = Field(default_factory=dict)
    #: never propose an architecture the study already has (any state) while the space has new
    #: ones: a repeat is a full proxy training whose result is known. None: the sampler's default,
    #: on for tpe, nsga2, nsga3 and gp (orchestrator/samplers.py's NoRepeatSampler wraps them),
    #: off for random (the baseline, as Optuna defines it); evolution never repeats (false is an error)
    no_repeat: StrictBool | None = None  # strict: "no" or 0 must not quietly mean false

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, v: Any):
        if isinstance(v, str):
            return {"type": v}
        if isinstance(v, dict) and "type" in v and "options" not in v and len(v) > 1:
            # {type: nsga2, population_size: 8} reads better than nesting options
            own = ("type", "no_repeat")
            rest = {k: x for k, x in v.items() if k not in own}
            return {**{k: v[k] for k in own if k in v}, "options": rest}
        return v


class Resources(_Strict):
    cpu: float = Field(1.0, gt=0, le=1024)
    #: a number, or "auto": trials share each GPU, as many as their measured memory allows
    #: (orchestrator/packing.py); on a cluster without GPUs, auto means gpu 0
    gpu: float | Literal["auto"] = Field(0.0)
    #: gpu: auto — at most this many trials per GPU, and the safety factor on measured memory
    max_per_gpu: int = Field(8, ge=1, le=64)
    memory_margin: float = Field(1.25, ge=1.0, le=4.0)

    @field_validator("gpu")
    @classmethod
    def _ray_gpu_rule(cls, v):
        if v == "auto":
            return v
        if v < 0 or v > 64:
            raise ValueError(f"{v} GPUs: give a number from 0 to 64, or auto")
        # Ray accepts fractions only below one GPU; above that, whole GPUs.
        if v > 1 and v != int(v):
            raise ValueError(f"{v} GPUs: above 1, Ray needs a whole number of GPUs per trial")
        return v

    def as_ray(self) -> dict[str, float]:
        if self.gpu == "auto":
            raise ValueError("resources.gpu: auto must be resolved first (orchestrator.packing.resolve_auto)")
        return {"cpu": self.cpu, "gpu": self.gpu}


class Fidelity(_Strict):
    preset: str = "smoke"
    #: fields of the preset to change (e.g. {steps: 50}); checked by the evaluators
    overrides: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, v: Any):
        return {"preset": v} if isinstance(v, str) else v

    @property
    def label(self) -> str:
        """What the store records as the trial's fidelity."""
        if not self.overrides:
            return self.preset
        extra = ",".join(f"{k}={v}" for k, v in sorted(self.overrides.items()))
        text = f"{self.preset}[{extra}]"
        if len(text) > 64:
            # hnas_trials.fidelity is VARCHAR(64), which PostgreSQL enforces: keep a readable
            # prefix and a digest of the whole, so distinct overrides stay distinct labels
            import hashlib
            digest = hashlib.sha1(extra.encode()).hexdigest()[:8]
            text = f"{self.preset}[{extra[:max(0, 64 - len(self.preset) - 11)]}~{digest}]"
        return text


class EarlyStopping(_Strict):
    """ASHA on the quality score reported during training (Ray's ASHA is single-metric)."""
    type: Literal["asha"] = "asha"
    metric: str = "quality"
    grace_period: int = Field(1, ge=1, description="reports before a trial can be stopped")
    reduction_factor: float = Field(3.0, gt=1)

    @field_validator("metric")
    @classmethod
    def _known(cls, v: str) -> str:
        _check_metric(v)
        if METRICS[v].kind != "quality":
            raise ValueError(f"{v!r} is not reported during training; use a quality metric (quality, val_bpb, val_loss)")
        return v


class Promotion(_Strict):
    """After the search, re-evaluate the best architectures at a higher fidelity."""
    fidelity: Fidelity
    top_k: int | None = Field(None, ge=1, le=1000, description="best K by the first objective")
    pareto: bool = Field(True, description="promote the (feasible) Pareto set")
    max_trials: int = Field(16, ge=1, le=10000)

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, v: Any):
        return {"fidelity": v} if isinstance(v, str) else v


class StudyConfig(_Strict):
    study: str = Field("search", pattern=_NAME_RE)
    storage: str = DEFAULT_STORAGE
    space: str | dict
    objectives: list[Objective] = Field(min_length=1, max_length=8)
    constraints: list[Constraint] = Field(default_factory=list, max_length=32)
    sampler: SamplerConfig = Field(default_factory=SamplerConfig)
    trials: int = Field(ge=1, le=1_000_000)
    concurrency: int | None = Field(None, ge=1, le=4096)
    resources: Resources = Field(default_factory=Resources)
    fidelity: Fidelity = Field(default_factory=Fidelity)
    early_stopping: EarlyStopping | None = None
    promotion: Promotion | None = None
    seed: int = Field(0, ge=0, le=2**31 - 1)
    #: architecture YAML files (relative to this file) evaluated first, e.g. known baselines;
    #: each must lie inside the space
    enqueue: list[str] = Field(default_factory=list, max_length=1000)
    #: embedded Ray: how many CPUs the local instance may use (None: all of this machine's)
    num_cpus: int | None = Field(None, ge=1, le=4096)
    #: Ray cluster to join (None: embedded); the CLI's --address and RAY_ADDRESS override it
    address: str | None = None
    #: let trials use fla's Triton kernels; off by default because their first call in a process
    #: autotunes for minutes (orchestrator/packing.py)
    fla_kernels: bool = False
    #: where this config came from: relative space paths resolve against it (not a YAML field)
    _base_dir: str | None = PrivateAttr(None)

    @property
    def base_dir(self) -> str | None:
        return self._base_dir

    @field_validator("objectives")
    @classmethod
    def _distinct(cls, v: list[Objective]) -> list[Objective]:
        names = [o.metric for o in v]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"metric {sorted(dup)[0]!r} appears twice")
        return v

    @field_validator("space")
    @classmethod
    def _space_given(cls, v):
        if isinstance(v, str) and not v.strip():
            raise ValueError("empty; give a path to a space YAML or an inline mapping")
        return v

    # ------------------------------------------------------------------ derived
    @property
    def metric_names(self) -> list[str]:
        return [o.metric for o in self.objectives]

    @property
    def modes(self) -> list[str]:
        return [o.mode for o in self.objectives]

    @property
    def directions(self) -> list[str]:
        return [o.direction for o in self.objectives]

    def space_source(self) -> tuple[Any, str]:
        """(path or inline data, a name for messages)."""
        if isinstance(self.space, dict):
            return self.space, "space"
        p = Path(self.space)
        if not p.is_absolute() and self.base_dir:
            p = Path(self.base_dir) / p
        return p, str(p)

    def load_space(self):
        from search_space.space import SearchSpace
        src, name = self.space_source()
        if isinstance(src, Path):
            if not src.exists():
                raise GenomeError([("space", f"no such file: {src}")])
            return SearchSpace.from_yaml(src)
        from search_space.yaml_io import dump_yaml
        try:
            return SearchSpace.from_yaml(dump_yaml(src))
        except GenomeError as e:
            raise GenomeError([(f"space.{p}" if p else "space", m) for p, m in e.problems]) from None

    def enqueued_architectures(self, space) -> list:
        from search_space.genome import Architecture
        out = []
        for i, path in enumerate(self.enqueue):
            p = Path(path)
            if not p.is_absolute() and self.base_dir:
                p = Path(self.base_dir) / p
            if not p.exists():
                raise GenomeError([(f"enqueue[{i}]", f"no such file: {p}")])
            arch = Architecture.from_yaml(p)
            probs = space.contains(arch)
            if probs:
                raise GenomeError([(f"enqueue[{i}]", f"{p.name} is not inside the space: {probs[0]}")])
            out.append(arch)
        return out

    def with_overrides(self, **flags) -> "StudyConfig":
        """Flags win over the file; None means 'not given'."""
        data = self.model_dump(mode="json")
        for k, v in flags.items():
            if v is not None:
                data[k] = v
        return load_config_data(data, base_dir=self.base_dir)

    def resolved(self) -> dict:
        """The config with the space inlined: what the store keeps so `--resume STUDY` needs no files."""
        data = self.model_dump(mode="json")
        # the store keeps this text and the dashboard shows it: never the database password
        from storage.engine import hide
        data["storage"] = hide(data["storage"])
        src, _ = self.space_source()
        if isinstance(src, Path):
            from search_space.yaml_io import load_yaml
            data["space"], _ = load_yaml(src)
        # enqueued architectures are evaluated once, at creation: a resume needs no files
        data["enqueue"] = []
        return data

    def to_yaml(self) -> str:
        from search_space.yaml_io import dump_yaml
        return dump_yaml(self.resolved())


def load_config_data(data: Any, source: str | None = None, base_dir: str | None = None) -> StudyConfig:
    from search_space.yaml_io import validate_model
    cfg = validate_model(StudyConfig, data, source)
    cfg._base_dir = base_dir
    return cfg


def load_config(path_or_text) -> StudyConfig:
    """Read a study config from a YAML file (or YAML text). Raises GenomeError (a UserError)."""
    from search_space.yaml_io import load_yaml
    data, src = load_yaml(path_or_text)
    base = str(Path(src).resolve().parent) if src else None
    return load_config_data(data, src, base)


class ConfigError(UserError):
    """A config problem found outside pydantic (preflight): one line, naming the field."""

    def __init__(self, field: str, msg: str):
        self.field, self.msg = field, msg
        super().__init__(f"{field}: {msg}" if field else msg)
