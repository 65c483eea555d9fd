"""A search space: which genomes a search may produce, sampled define-by-run from an Optuna trial.

Design choices
- Every choice is a finite list (categorical). Parameters a space does not list keep the spec's
  default, and `contains()` insists on that default, so "inside the space" is exact.
- Every combination of a primitive's listed choices must be valid for every `d_model` choice. This
  is checked when the space is loaded (an invalid space is rejected with a field path), so
  `sample()` never has to filter choices by the sampled d_model and one parameter name always
  has one distribution, as TPE and NSGA-II require.
- Parameter names are stable and readable: `d_model`, `depth`, `b3.kind`, `b3.mixer`,
  `b3.attention.heads`, `b3.p1.mamba2.d_state` (branch 1 of a parallel group), `b3.channel`,
  `b3.moe.experts`, `b3.rec.max_depth`, `b3.r0.mixer` (body block 0 of a recursion group),
  `b3.copy_of`. A name's choices depend only on the space (and, for `b3.copy_of`, on its index).
  A categorical with a single choice is not suggested at all (nothing to learn).
- Depth counts top-level items (blocks and recursion groups, repeats expanded).
- Sharing is a block kind: `b3.kind: copy` with `b3.copy_of: b1` makes block 3 reuse block 1's
  weights (both get share key `s1`). Copying a recursion group duplicates it with its own
  weights (the genome has no shared recursion groups).
- `to_params(arch)` walks an architecture and returns the params `sample()` would have drawn for
  it; `sample(replay)` of them gives the same architecture (same fingerprint; identical for
  architectures `sample()`, `mutate()` and `crossover()` produced), which is how the orchestrator
  enqueues evolved or hand-written architectures into an Optuna study.
- Constraints (`violations`) are relative: value / limit - 1, feasible when <= 0, so constraints
  of very different scales weigh alike in NSGA-II's constrained domination.
"""
from __future__ import annotations

import itertools
import math
import random
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from .errors import GenomeError, from_validation_error
from .genome import MAX_LAYERS, Architecture, Block, ParallelGroup, RecursionGroup, RecursionItem
from .registry import CHANNEL_MIXERS, COMBINERS, ROUTERS, TOKEN_MIXERS

MAX_COMBINATIONS = 200_000  # choices x d_model combinations checked at load time, per primitive
_RESERVED = {"kind", "mixer", "channel", "rec", "copy_of", "branches", "combine"}
assert not set(TOKEN_MIXERS) & set(CHANNEL_MIXERS), "parameter names need disjoint primitive names"
assert not (set(TOKEN_MIXERS) | set(CHANNEL_MIXERS)) & _RESERVED

Choice = int | float | str | bool | None


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _range(v: Any) -> Any:
    # `depth: 4`, `depth: [2, 6]` and `depth: {min: 2, max: 6}` all mean a range
    if isinstance(v, bool):
        return v
    if isinstance(v, int):
        return {"min": v, "max": v}
    if isinstance(v, list) and len(v) == 2:
        return {"min": v[0], "max": v[1]}
    return v


def _listify(v: Any) -> Any:
    # `d_model: 128` means one choice
    return v if isinstance(v, list) or v is None else [v]


def _unique(v: list) -> list:
    if any(v[i] == v[j] and type(v[i]) is type(v[j]) for i in range(len(v)) for j in range(i)):
        raise ValueError(f"duplicate choices in {v}")
    return v


class DepthRange(_Strict):
    min: int = Field(ge=1, le=64)
    max: int = Field(ge=1, le=64)

    @model_validator(mode="after")
    def _order(self):
        if self.min > self.max:
            raise ValueError(f"min {self.min} exceeds max {self.max}")
        return self


class BodyRange(DepthRange):
    min: int = Field(1, ge=1, le=16)
    max: int = Field(2, ge=1, le=16)


class ParallelSpace(_Strict):
    max_branches: int = Field(2, ge=2, le=3)
    combiners: list[Literal[COMBINERS]] = Field(default_factory=lambda: ["norm_mean"], min_length=1)
    mixers: list[str] | None = Field(None, min_length=1, description="token mixers allowed in branches; None = all")


class RecursionSpace(_Strict):
    max_depth: list[int] = Field(default_factory=lambda: [2, 3], min_length=1)
    routers: list[Literal[ROUTERS]] = Field(default_factory=lambda: ["expert_choice"], min_length=1)
    capacity: list[list[float]] = Field(default_factory=list, description="expert_choice schedules, one per max_depth at least")
    body: BodyRange = Field(default_factory=BodyRange)

    @field_validator("body", mode="before")
    @classmethod
    def _body(cls, v):
        return _range(v)

    @field_validator("max_depth", "routers", mode="before")
    @classmethod
    def _lists(cls, v):
        return _listify(v)

    @field_validator("max_depth")
    @classmethod
    def _depths(cls, v):
        for x in v:
            if not 2 <= x <= 8:
                raise ValueError(f"{x} must be between 2 and 8")
        return _unique(v)

    @field_validator("routers")
    @classmethod
    def _routers(cls, v):
        return _unique(v)


class Constraints(_Strict):
    max_params: float | None = Field(None, gt=0)
    max_active_params: float | None = Field(None, gt=0)
    max_flops_per_token: float | None = Field(None, gt=0, description="at flops_context")
    max_cache_mib: float | None = Field(None, gt=0, description="decode cache at cache_context, batch 1, bf16")
    cache_context: int = Field(32768, ge=1)
    flops_context: int = Field(2048, ge=1)
    vocab_size: int = Field(0, ge=0, description="embedding size counted in the parameter limits (0: none)")


class SearchSpace(_Strict):
    name: str = Field("space", max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")
    d_model: list[int] = Field(min_length=1)
    depth: DepthRange
    norm: list[Literal["rmsnorm", "layernorm"]] = Field(default_factory=lambda: ["rmsnorm"], min_length=1)
    tie_embeddings: list[bool] = Field(default_factory=lambda: [True], min_length=1)
    token_mixers: dict[str, dict[str, Any] | None] = Field(min_length=1)
    channel_mixers: dict[str, dict[str, Any] | None] = Field(default_factory=lambda: {"swiglu": None}, min_length=1)
    parallel: ParallelSpace | None = None
    recursion: RecursionSpace | None = None
    sharing: bool = False
    constraints: Constraints = Field(default_factory=Constraints)

    # normalized choices: primitive -> parameter -> tuple of (coerced) values
    _tm: dict = PrivateAttr(default_factory=dict)
    _cm: dict = PrivateAttr(default_factory=dict)
    _caps: dict = PrivateAttr(default_factory=dict)  # max_depth -> capacity strings

    @field_validator("depth", mode="before")
    @classmethod
    def _depth(cls, v):
        return _range(v)

    @field_validator("d_model", "norm", "tie_embeddings", mode="before")
    @classmethod
    def _lists(cls, v):
        return _listify(v)

    @field_validator("d_model")
    @classmethod
    def _dm(cls, v):
        for x in v:
            if not 8 <= x <= 16384:
                raise ValueError(f"{x} must be between 8 and 16384")
        return _unique(v)

    # ------------------------------------------------------------------ load-time checks
    @model_validator(mode="after")
    def _semantic(self):
        problems: list[tuple[str, str]] = []
        self._tm = _normalize(TOKEN_MIXERS, self.token_mixers, "token_mixers", self.d_model, problems)
        self._cm = _normalize(CHANNEL_MIXERS, self.channel_mixers, "channel_mixers", self.d_model, problems)
        for field in ("norm", "tie_embeddings"):
            v = getattr(self, field)
            if len(set(v)) != len(v):
                problems.append((field, f"duplicate choices in {v}"))
        if self.parallel is not None and len(set(self.parallel.combiners)) != len(self.parallel.combiners):
            problems.append(("parallel.combiners", f"duplicate choices in {self.parallel.combiners}"))
        if self.parallel is not None:
            for i, m in enumerate(self.parallel.mixers or []):
                if m not in self.token_mixers:
                    problems.append((f"parallel.mixers[{i}]", f"{m!r} is not one of the space's token_mixers {sorted(self.token_mixers)}"))
        if self.recursion is not None:
            rec = self.recursion
            caps: dict[int, list[str]] = {r: [] for r in rec.max_depth}
            for i, cap in enumerate(rec.capacity):
                try:
                    RecursionGroup(max_depth=max(len(cap), 2), router="expert_choice", capacity=cap,
                                   body=[{"mixer": {"type": next(iter(TOKEN_MIXERS))}}])
                except ValidationError as e:
                    problems.append((f"recursion.capacity[{i}]", e.errors(include_url=False)[0]["msg"].removeprefix("Value error, ")))
                    continue
                if len(cap) not in caps:
                    problems.append((f"recursion.capacity[{i}]", f"has {len(cap)} entries but no max_depth choice is {len(cap)}"))
                    continue
                s = _cap_str(cap)
                if s in caps[len(cap)]:
                    problems.append((f"recursion.capacity[{i}]", "duplicate schedule"))
                caps[len(cap)].append(s)
            if "expert_choice" in rec.routers:
                for r, c in caps.items():
                    if not c and not any(p[0].startswith("recursion.capacity") for p in problems):
                        problems.append(("recursion.capacity", f"the expert_choice router needs a schedule of {r} entries for max_depth {r}"))
            elif rec.capacity:
                problems.append(("recursion.capacity", "only used by the expert_choice router"))
            self._caps = caps
        body_max = self.recursion.body.max if self.recursion is not None else 1
        if self.depth.max * body_max > MAX_LAYERS:
            problems.append(("depth", f"depth up to {self.depth.max} with recursion bodies of up to {body_max} "
                                      f"blocks can exceed the genome's limit of {MAX_LAYERS} layers"))
        if problems:
            raise GenomeError(problems)
        return self

    @classmethod
    def from_dict(cls, data: Any, source: str | None = None) -> "SearchSpace":
        # keep primitive names in paths: here they are keys the user wrote (`channel_mixers.none`)
        from .yaml_io import validate_model
        return validate_model(cls, data, source, drop=frozenset())

    @classmethod
    def from_yaml(cls, path_or_text, source: str | None = None) -> "SearchSpace":
        from .yaml_io import load_yaml
        try:
            data, src = load_yaml(path_or_text)
        except GenomeError as e:
            raise e.with_source(source) if source and not e.source else e
        return cls.from_dict(data, source or src)

    def to_yaml(self) -> str:
        from .yaml_io import dump_yaml
        return dump_yaml(self.model_dump(mode="json", exclude_none=True))

    # ------------------------------------------------------------------ choices
    def top_kinds(self, index: int) -> list[str]:
        kinds = ["single"]
        if self.parallel is not None:
            kinds.append("parallel")
        if self.recursion is not None:
            kinds.append("recursion")
        if self.sharing and index > 0:
            kinds.append("copy")
        return kinds

    def body_kinds(self) -> list[str]:
        return ["single", "parallel"] if self.parallel is not None else ["single"]

    def parallel_mixers(self) -> list[str]:
        return list(self.parallel.mixers or self.token_mixers) if self.parallel else []

    def mixer_choices(self, kind: Literal["token", "channel"], name: str) -> dict[str, tuple]:
        return dict((self._tm if kind == "token" else self._cm)[name])

    # ------------------------------------------------------------------ sampling
    def sample(self, trial) -> Architecture:
        """Draw an architecture define-by-run from an Optuna trial (anything with
        `suggest_categorical(name, choices)` and `suggest_int(name, low, high)`)."""
        return self._finish(self._draw(trial))

    def random(self, rng: random.Random) -> Architecture:
        """A uniformly drawn architecture without Optuna (operators, tests, seeding)."""
        return self.sample(RandomTrial(rng))

    def _draw(self, t) -> dict:
        data = {"d_model": _cat(t, "d_model", self.d_model), "norm": _cat(t, "norm", self.norm),
                "tie_embeddings": _cat(t, "tie_embeddings", self.tie_embeddings)}
        depth = _int(t, "depth", self.depth.min, self.depth.max)
        items: list[dict] = []
        for i in range(depth):
            p = f"b{i}"
            kind = _cat(t, f"{p}.kind", self.top_kinds(i))
            if kind == "copy":
                j = int(_cat(t, f"{p}.copy_of", [f"b{j}" for j in range(i)])[1:])
                src = items[j]
                if "recursion" in src:
                    items.append(_clone(src))
                else:
                    key = src.get("share") or f"s{j}"
                    src["share"] = key
                    items.append(dict(_clone(src), share=key))
            elif kind == "recursion":
                items.append({"recursion": self._draw_recursion(t, p)})
            else:
                items.append(self._draw_block(t, p, kind))
        data["blocks"] = items
        return data

    def _draw_block(self, t, p: str, kind: str) -> dict:
        if kind == "parallel":
            n = _int(t, f"{p}.branches", 2, self.parallel.max_branches)
            mixer = {"parallel": [self._draw_mixer(t, f"{p}.p{j}", self.parallel_mixers()) for j in range(n)],
                     "combine": _cat(t, f"{p}.combine", self.parallel.combiners)}
        else:
            mixer = self._draw_mixer(t, p, list(self.token_mixers))
        return {"mixer": mixer, "channel": self._draw_channel(t, p, list(self.channel_mixers))}

    def _draw_channel(self, t, p: str, names: list[str]) -> dict:
        ch = _cat(t, f"{p}.channel", names)
        return {"type": ch, **{k: _cat(t, f"{p}.{ch}.{k}", list(v)) for k, v in self._cm[ch].items()}}

    def _draw_mixer(self, t, p: str, names: list[str]) -> dict:
        m = _cat(t, f"{p}.mixer", names)
        return {"type": m, **{k: _cat(t, f"{p}.{m}.{k}", list(v)) for k, v in self._tm[m].items()}}

    def _draw_recursion(self, t, p: str) -> dict:
        rec = self.recursion
        r = _cat(t, f"{p}.rec.max_depth", rec.max_depth)
        router = _cat(t, f"{p}.rec.router", rec.routers)
        out: dict = {"max_depth": r, "router": router}
        if router == "expert_choice":
            out["capacity"] = [float(x) for x in _cat(t, f"{p}.rec.capacity_d{r}", self._caps[r]).split(",")]
        n = _int(t, f"{p}.rec.body", rec.body.min, rec.body.max)
        out["body"] = [self._draw_block(t, f"{p}.r{j}", _cat(t, f"{p}.r{j}.kind", self.body_kinds()))
                       for j in range(n)]
        return out

    def _finish(self, data: dict) -> Architecture:
        arch = Architecture.from_dict(data)
        return arch.model_copy(update={"name": f"{self.name}-{arch.fingerprint()[:8]}"})

    # ------------------------------------------------------------------ membership
    def problems(self, arch: Architecture) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []

        def choice(path, value, choices):
            if value not in choices:
                out.append((path, f"{_show(value)} is not one of the space's choices {_show_list(choices)}"))

        choice("d_model", arch.d_model, self.d_model)
        choice("norm", arch.norm, self.norm)
        choice("tie_embeddings", arch.tie_embeddings, self.tie_embeddings)
        items = _expanded(arch)
        if not self.depth.min <= len(items) <= self.depth.max:
            out.append(("blocks", f"{len(items)} blocks (repeats expanded) outside the depth range "
                                  f"{self.depth.min}..{self.depth.max}"))
        for path, item in items:
            if isinstance(item, RecursionItem):
                g = item.recursion
                if self.recursion is None:
                    out.append((f"{path}.recursion", "recursion groups are not allowed in this space"))
                    continue
                choice(f"{path}.recursion.max_depth", g.max_depth, self.recursion.max_depth)
                choice(f"{path}.recursion.router", g.router, self.recursion.routers)
                if g.capacity is not None and g.max_depth in self._caps:
                    choice(f"{path}.recursion.capacity", _cap_str(g.capacity), self._caps[g.max_depth])
                if g.aux_loss_weight != RecursionGroup.model_fields["aux_loss_weight"].default:
                    out.append((f"{path}.recursion.aux_loss_weight", "differs from the default the space uses"))
                body = [(f"{path}.recursion.body[{j}]", b) for j, b in enumerate(g.body) for _ in range(b.repeat)]
                lo, hi = self.recursion.body.min, self.recursion.body.max
                if not lo <= len(body) <= hi:
                    out.append((f"{path}.recursion.body", f"{len(body)} blocks outside the body range {lo}..{hi}"))
                for j, b in enumerate(g.body):
                    self._block_problems(b, f"{path}.recursion.body[{j}]", out)
            else:
                if item.share is not None and not self.sharing:
                    out.append((f"{path}.share", "weight sharing is not allowed in this space"))
                self._block_problems(item, path, out)
        seen, uniq = set(), []
        for pr in out:
            if pr not in seen:
                seen.add(pr)
                uniq.append(pr)
        return uniq

    def _block_problems(self, b: Block, path: str, out: list) -> None:
        if isinstance(b.mixer, ParallelGroup):
            if self.parallel is None:
                out.append((f"{path}.mixer.parallel", "parallel groups are not allowed in this space"))
                return
            if len(b.mixer.parallel) > self.parallel.max_branches:
                out.append((f"{path}.mixer.parallel", f"{len(b.mixer.parallel)} branches exceed max_branches "
                                                      f"{self.parallel.max_branches}"))
            if b.mixer.combine not in self.parallel.combiners:
                out.append((f"{path}.mixer.combine", f"{b.mixer.combine!r} is not one of the space's combiners "
                                                     f"{self.parallel.combiners}"))
            for j, m in enumerate(b.mixer.parallel):
                self._spec_problems(m, f"{path}.mixer.parallel[{j}]", self._tm, self.parallel_mixers(), out)
        else:
            self._spec_problems(b.mixer, f"{path}.mixer", self._tm, list(self.token_mixers), out)
        self._spec_problems(b.channel, f"{path}.channel", self._cm, list(self.channel_mixers), out)

    @staticmethod
    def _spec_problems(spec, path: str, table: dict, allowed: list[str], out: list) -> None:
        if spec.type not in allowed:
            out.append((f"{path}.type", f"{spec.type!r} is not allowed here (allowed: {allowed})"))
            return
        choices = table[spec.type]
        for name, field in type(spec).model_fields.items():
            if name == "type":
                continue
            value = getattr(spec, name)
            if name in choices:
                if value not in choices[name]:
                    out.append((f"{path}.{name}", f"{_show(value)} is not one of the space's choices "
                                                  f"{_show_list(choices[name])}"))
            elif value != field.default:
                out.append((f"{path}.{name}", f"{_show(value)} differs from the default {_show(field.default)} "
                                              "(the space does not vary it)"))

    def contains(self, arch: Architecture) -> list[str]:
        """Why `arch` is not inside this space, one 'path: problem' line each; [] when it is."""
        return [f"{p}: {m}" for p, m in self.problems(arch)]

    # ------------------------------------------------------------------ constraints
    def violations(self, arch: Architecture) -> dict[str, float]:
        """Constraint name -> value / limit - 1 (feasible when <= 0), for Trial.set_constraint."""
        c = self.constraints
        out: dict[str, float] = {}
        if c.max_params is not None or c.max_active_params is not None or c.max_flops_per_token is not None:
            k = arch.costs(c.vocab_size, context=c.flops_context)
            if c.max_params is not None:
                out["max_params"] = k.params_total / c.max_params - 1.0
            if c.max_active_params is not None:
                out["max_active_params"] = k.params_active / c.max_active_params - 1.0
            if c.max_flops_per_token is not None:
                out["max_flops_per_token"] = k.flops_per_token / c.max_flops_per_token - 1.0
        if c.max_cache_mib is not None:
            mib = arch.costs(0, context=c.cache_context).cache_bytes / 2**20
            out["max_cache_mib"] = mib / c.max_cache_mib - 1.0
        return out

    def feasible(self, arch: Architecture) -> bool:
        return all(v <= 0 for v in self.violations(arch).values())

    # ------------------------------------------------------------------ architecture -> params
    def to_params(self, arch: Architecture) -> dict[str, Choice]:
        """The params `sample()` draws for `arch` (for `study.enqueue_trial`). Raises GenomeError
        naming the fields when `arch` is not inside the space."""
        probs = self.problems(arch)
        if probs:
            raise GenomeError(probs)
        return self._params(arch)

    def _params(self, arch: Architecture) -> dict[str, Choice]:
        out: dict[str, Choice] = {}
        _put(out, "d_model", arch.d_model, self.d_model)
        _put(out, "norm", arch.norm, self.norm)
        _put(out, "tie_embeddings", arch.tie_embeddings, self.tie_embeddings)
        items = [it for _, it in _expanded(arch)]
        _put_int(out, "depth", len(items), self.depth.min, self.depth.max)
        roots: dict[str, int] = {}
        uses: dict[str, int] = {}
        for it in items:
            if isinstance(it, Block) and it.share is not None:
                uses[it.share] = uses.get(it.share, 0) + 1
        for i, it in enumerate(items):
            p = f"b{i}"
            if isinstance(it, RecursionItem):
                _put(out, f"{p}.kind", "recursion", self.top_kinds(i))
                g, rec = it.recursion, self.recursion
                _put(out, f"{p}.rec.max_depth", g.max_depth, rec.max_depth)
                _put(out, f"{p}.rec.router", g.router, rec.routers)
                if g.router == "expert_choice":
                    _put(out, f"{p}.rec.capacity_d{g.max_depth}", _cap_str(g.capacity), self._caps[g.max_depth])
                body = [b for b in g.body for _ in range(b.repeat)]
                _put_int(out, f"{p}.rec.body", len(body), rec.body.min, rec.body.max)
                for j, b in enumerate(body):
                    kind = "parallel" if isinstance(b.mixer, ParallelGroup) else "single"
                    _put(out, f"{p}.r{j}.kind", kind, self.body_kinds())
                    self._block_params(b, f"{p}.r{j}", out)
                continue
            if it.share is not None and uses[it.share] > 1:
                if it.share in roots:
                    _put(out, f"{p}.kind", "copy", self.top_kinds(i))
                    _put(out, f"{p}.copy_of", f"b{roots[it.share]}", [f"b{j}" for j in range(i)])
                    continue
                roots[it.share] = i
            _put(out, f"{p}.kind", "parallel" if isinstance(it.mixer, ParallelGroup) else "single", self.top_kinds(i))
            self._block_params(it, p, out)
        return out

    def _block_params(self, b: Block, p: str, out: dict) -> None:
        if isinstance(b.mixer, ParallelGroup):
            _put_int(out, f"{p}.branches", len(b.mixer.parallel), 2, self.parallel.max_branches)
            for j, m in enumerate(b.mixer.parallel):
                self._spec_params(m, f"{p}.p{j}", "mixer", self._tm, self.parallel_mixers(), out)
            _put(out, f"{p}.combine", b.mixer.combine, self.parallel.combiners)
        else:
            self._spec_params(b.mixer, p, "mixer", self._tm, list(self.token_mixers), out)
        self._spec_params(b.channel, p, "channel", self._cm, list(self.channel_mixers), out)

    @staticmethod
    def _spec_params(spec, p: str, slot: str, table: dict, names: list[str], out: dict) -> None:
        _put(out, f"{p}.{slot}", spec.type, names)
        for k, choices in table[spec.type].items():
            _put(out, f"{p}.{spec.type}.{k}", getattr(spec, k), choices)

    def distributions(self, params: dict[str, Choice]) -> dict:
        """Optuna distributions of `params` (as `to_params` returns them), for
        `optuna.trial.create_trial(params=..., distributions=...)` when seeding a study."""
        t = ReplayTrial(params)
        self._draw(t)
        return t.optuna_distributions()

    def replay(self, params: dict[str, Choice], strict: bool = True) -> Architecture:
        """The architecture `sample()` gives for these params. Missing names and values outside
        the choices raise GenomeError; so do names `sample()` would not draw, unless
        `strict=False` (a Ray Tune config may carry other keys next to the params)."""
        t = ReplayTrial(params)
        data = self._draw(t)
        extra = set(params) - set(t.seen)
        if extra and strict:
            raise GenomeError([(k, "not a parameter of this architecture in this space") for k in sorted(extra)])
        return self._finish(data)


# ---------------------------------------------------------------------------------------------
# trials that are not Optuna's: random (operators), replay (to_params checks, distributions)
class RandomTrial:
    """Uniform choices from a `random.Random`; the same interface `sample()` uses of a trial."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.params: dict[str, Choice] = {}

    def suggest_categorical(self, name, choices):
        v = self.params[name] = self.rng.choice(list(choices))
        return v

    def suggest_int(self, name, low, high):
        v = self.params[name] = self.rng.randint(low, high)
        return v


class ReplayTrial:
    """Answers from a params dict and records each parameter's distribution (as plain tuples;
    `optuna_distributions()` turns them into Optuna's, so replaying needs no Optuna)."""

    def __init__(self, params: dict[str, Choice]):
        self.params = params
        self.seen: dict[str, tuple] = {}

    def _get(self, name):
        if name not in self.params:
            raise GenomeError([(name, "missing parameter")])
        return self.params[name]

    def suggest_categorical(self, name, choices):
        v = self._get(name)
        if v not in choices:
            raise GenomeError([(name, f"{_show(v)} is not one of {_show_list(choices)}")])
        self.seen[name] = ("categorical", tuple(choices))
        return v

    def suggest_int(self, name, low, high):
        v = self._get(name)
        if isinstance(v, bool) or not isinstance(v, int) or not low <= v <= high:
            raise GenomeError([(name, f"{_show(v)} is not an integer in {low}..{high}")])
        self.seen[name] = ("int", (low, high))
        return v

    def optuna_distributions(self) -> dict:
        from optuna.distributions import CategoricalDistribution, IntDistribution
        return {k: CategoricalDistribution(list(a)) if kind == "categorical" else IntDistribution(*a)
                for k, (kind, a) in self.seen.items()}


# ---------------------------------------------------------------------------------------------
def _cat(t, name: str, choices: list):
    # a single choice is not a decision: keep it out of the sampler's params
    return choices[0] if len(choices) == 1 else t.suggest_categorical(name, list(choices))


def _int(t, name: str, low: int, high: int) -> int:
    return low if low == high else t.suggest_int(name, low, high)


def _put(out: dict, name: str, value, choices) -> None:
    if len(choices) > 1:
        out[name] = value


def _put_int(out: dict, name: str, value: int, low: int, high: int) -> None:
    if low != high:
        out[name] = value


def _cap_str(cap) -> str:
    return ",".join(repr(float(c)) for c in cap)


def _show(v) -> str:
    return "null" if v is None else ("true" if v is True else "false" if v is False else repr(v) if isinstance(v, str) else str(v))


def _show_list(values) -> str:
    return "[" + ", ".join(_show(v) for v in values) + "]"


def _clone(x):
    if isinstance(x, dict):
        return {k: _clone(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_clone(v) for v in x]
    return x


def _expanded(arch: Architecture) -> list[tuple[str, Any]]:
    """Top-level items with repeats expanded, each with the path the user wrote."""
    out = []
    for i, it in enumerate(arch.blocks):
        n = 1 if isinstance(it, RecursionItem) else it.repeat
        out.extend((f"blocks[{i}]", it) for _ in range(n))
    return out


def _normalize(registry: dict, given: dict, where: str, d_models: list[int], problems: list) -> dict:
    """Coerce each listed choice through the spec (so `expand: [2, 4]` becomes 2.0, 4.0 as the
    genome stores it) and check every combination against every d_model."""
    out: dict[str, dict[str, tuple]] = {}
    for name, params in given.items():
        path = f"{where}.{name}"
        cls = registry.get(name)
        if cls is None:
            problems.append((path, f"unknown primitive {name!r} (expected one of {sorted(registry)})"))
            continue
        fields = {k: f for k, f in cls.model_fields.items() if k != "type"}
        norm: dict[str, tuple] = {}
        bad = False
        for k, raw in (params or {}).items():
            if k not in fields:
                problems.append((f"{path}.{k}", f"unknown parameter (the {name} parameters are {sorted(fields)})"))
                bad = True
                continue
            vals = raw if isinstance(raw, list) else [raw]
            if not vals:
                problems.append((f"{path}.{k}", "needs at least one choice"))
                bad = True
                continue
            coerced: list = []
            for i, v in enumerate(vals):
                vp = f"{path}.{k}[{i}]" if isinstance(raw, list) else f"{path}.{k}"
                if not isinstance(v, (int, float, str, bool, type(None))):
                    problems.append((vp, f"a choice must be a single value, got {type(v).__name__}"))
                    bad = True
                    continue
                try:
                    c = getattr(cls(type=name, **{k: v}), k)
                except ValidationError as e:
                    # value_error: a cross-field check (top_k vs experts), left to the combinations
                    errs = [x for x in e.errors(include_url=False)
                            if tuple(x["loc"])[:1] == (k,) and x["type"] != "value_error"]
                    if errs:
                        problems.append((vp, f"{errs[0]['msg']} (got {_show(v)})"))
                        bad = True
                        continue
                    c = v  # only a cross-field check failed: the combination check reports it
                if isinstance(v, bool) and not isinstance(c, bool):
                    problems.append((vp, f"expected a number, got {_show(v)}"))
                    bad = True
                    continue
                if c in coerced and type(c) is type(coerced[coerced.index(c)]):
                    problems.append((vp, f"duplicate choice {_show(v)}"))
                    bad = True
                    continue
                coerced.append(c)
            norm[k] = tuple(coerced)
        if bad:
            continue
        keys = list(norm)
        n = math.prod(len(norm[k]) for k in keys) * len(d_models)
        if n > MAX_COMBINATIONS:
            problems.append((path, f"{n} combinations of choices and d_model; the limit is {MAX_COMBINATIONS}"))
            continue
        for combo in itertools.product(*(norm[k] for k in keys)):
            kw = dict(zip(keys, combo))
            what = ", ".join(f"{k}={_show(v)}" for k, v in kw.items()) or "defaults"
            try:
                spec = cls(type=name, **kw)
            except ValidationError as e:
                msg = e.errors(include_url=False)[0]["msg"].removeprefix("Value error, ")
                problems.append((path, f"{msg} (choices {what}); every combination of choices must be valid"))
                break
            found = False
            for d in d_models:
                for field, msg in spec.check(d):
                    src = "" if field in kw else " (the default; list choices for it)"
                    problems.append((f"{path}.{field}", f"{msg}{src} with choices {what}; every combination "
                                                        "of choices must be valid for every d_model"))
                    found = True
                    break
                if found:
                    break
            if found:
                break
        out[name] = norm
    return out
