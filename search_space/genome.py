"""The genome: an `Architecture` is a list of blocks and recursion groups (a hybrid is just a list).

- Block: a token mixer (one primitive, or a parallel group of 2-3 with a combiner), then a channel
  mixer (swiglu, moe or none). `share: KEY` makes blocks with the same key reuse one set of
  weights (STAR's sharing); `repeat: N` stacks N copies (unshared unless the block has a share
  key, in which case every copy shares it).
- RecursionGroup (Mixture-of-Recursions): a body of blocks applied up to `max_depth` times with
  a router choosing each token's depth: `expert_choice` keeps a decreasing `capacity` fraction of
  tokens per depth, `token_choice` assigns a depth to each token up front.

Everything is frozen and validated. Checks that need d_model run in `Architecture`'s validator
and raise `GenomeError` with the field path. `layout()` expands repeats, resolves sharing and
numbers the weight owners; both the analytic costs here and `proxy_models.build_model` walk it,
so the parameter count and the built model agree by construction.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator, model_validator

from .errors import GenomeError
from .registry import CHANNEL_MIXERS, TOKEN_MIXERS

MAX_LAYERS = 512  # expanded blocks (repeats and recursion bodies counted once)

TokenMixer = Annotated[Union[tuple(TOKEN_MIXERS.values())], Field(discriminator="type")]
ChannelMixer = Annotated[Union[tuple(CHANNEL_MIXERS.values())], Field(discriminator="type")]


class _Frozen(BaseModel):
    # strict: YAML `heads: true` or `window: 2.0` is an error, not a silent 1 or 2
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class ParallelGroup(_Frozen):
    """2-3 token mixers on the same input; outputs merged by `combine`
    (`norm_mean`: per-branch RMSNorm then mean, as in Hymba; `concat_proj`: concatenate and
    project back to d; `gated_sum`: sigmoid gates per branch computed from the block input)."""
    parallel: list[TokenMixer] = Field(min_length=2, max_length=3)
    combine: Literal["norm_mean", "concat_proj", "gated_sum"] = "norm_mean"

    @property
    def code(self) -> str:
        return "|".join(m.code for m in self.parallel)

    def combiner_params(self, d_model: int) -> int:
        n = len(self.parallel)
        return {"norm_mean": n * d_model, "concat_proj": n * d_model * d_model,
                "gated_sum": n * d_model}[self.combine]


def _mixer_tag(v: Any) -> str:
    if isinstance(v, dict):
        return "_parallel" if "parallel" in v else "_single"
    return "_parallel" if isinstance(v, ParallelGroup) else "_single"


MixerSlot = Annotated[
    Union[Annotated[TokenMixer, Tag("_single")], Annotated[ParallelGroup, Tag("_parallel")]],
    Discriminator(_mixer_tag),
]


class Block(_Frozen):
    mixer: MixerSlot
    channel: ChannelMixer = Field(default_factory=lambda: CHANNEL_MIXERS["swiglu"](type="swiglu"))
    share: str | None = Field(None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    repeat: int = Field(1, ge=1, le=64)

    @property
    def mixers(self) -> list:
        return list(self.mixer.parallel) if isinstance(self.mixer, ParallelGroup) else [self.mixer]

    @property
    def code(self) -> str:
        return self.mixer.code

    def shape_key(self) -> str:
        """What must agree for two blocks to share weights: everything except share/repeat."""
        return json.dumps(self.model_dump(mode="json", exclude={"share", "repeat"}), sort_keys=True)


class RecursionGroup(_Frozen):
    max_depth: int = Field(ge=2, le=8)
    router: Literal["expert_choice", "token_choice"] = "expert_choice"
    capacity: list[float] | None = Field(None, description="expert_choice: fraction of tokens kept at each depth")
    aux_loss_weight: float = Field(0.01, ge=0)
    body: list[Block] = Field(min_length=1, max_length=16)

    @field_validator("capacity")
    @classmethod
    def _capacity_values(cls, cap, info):
        # a field validator (not only the model one) so errors name `...recursion.capacity`
        if cap is None or "max_depth" not in info.data or "router" not in info.data:
            return cap
        if info.data["router"] != "expert_choice":
            raise ValueError("capacity is only used by the expert_choice router")
        if len(cap) != info.data["max_depth"]:
            raise ValueError(f"capacity has {len(cap)} entries, max_depth is {info.data['max_depth']}")
        for c in cap:
            if not (0.0 < c <= 1.0):
                raise ValueError(f"capacity {c} must be in (0, 1]")
        if any(b >= a for a, b in zip(cap, cap[1:])):
            # each deeper recursion keeps fewer tokens (MoR); an equal step would make the
            # router's choice at that depth meaningless
            raise ValueError(f"capacity {list(cap)} must decrease with depth")
        return cap

    @model_validator(mode="after")
    def _capacity(self):
        if self.router == "expert_choice" and self.capacity is None:
            raise ValueError("expert_choice needs capacity (one fraction per depth)")
        return self

    @property
    def code(self) -> str:
        return "(" + " ".join(b.code for b in self.body) + f")x{self.max_depth}"

    def expected_depth_fractions(self) -> list[float]:
        """Expected fraction of tokens that run depth r (for FLOPs)."""
        if self.router == "expert_choice":
            return list(self.capacity)
        # token_choice assumes a balanced router: depth r runs for tokens assigned >= r+1
        R = self.max_depth
        return [(R - r) / R for r in range(R)]

    def router_params(self, d_model: int) -> int:
        # expert_choice: one linear d->1 scorer per depth; token_choice: one linear d->max_depth
        return self.max_depth * d_model


def _item_tag(v: Any) -> str:
    if isinstance(v, dict):
        return "_recursion" if "recursion" in v else "_block"
    return "_recursion" if isinstance(v, RecursionItem) else "_block"


class RecursionItem(_Frozen):
    recursion: RecursionGroup


Item = Annotated[
    Union[Annotated[Block, Tag("_block")], Annotated[RecursionItem, Tag("_recursion")]],
    Discriminator(_item_tag),
]

# Location parts pydantic inserts for our unions; dropped from user-facing paths.
UNION_TAGS = frozenset({"_single", "_parallel", "_block", "_recursion"} | set(TOKEN_MIXERS) | set(CHANNEL_MIXERS))


# ----------------------------------------------------------------------------------------------
# layout: the expanded, numbered structure both the cost model and build_model walk
@dataclass(frozen=True)
class MixerSite:
    spec: Any
    value_residual: bool  # rwkv7 only: mixes toward the first RWKV-7 layer's values


@dataclass(frozen=True)
class BlockSite:
    path: str          # where the user wrote it, e.g. "blocks[2]" or "blocks[4].recursion.body[0]"
    block: Block
    weight_key: str    # sites with the same key share one module
    owner: bool        # first site of this weight_key (its parameters are counted here)
    mixers: tuple[MixerSite, ...]


@dataclass(frozen=True)
class RecursionSite:
    path: str
    group: RecursionGroup
    body: tuple[BlockSite, ...]


class Architecture(_Frozen):
    name: str = Field("unnamed", max_length=200)
    d_model: int = Field(ge=8, le=16384)
    norm: Literal["rmsnorm", "layernorm"] = "rmsnorm"
    tie_embeddings: bool = True
    blocks: list[Item] = Field(min_length=1, max_length=MAX_LAYERS)

    # ------------------------------------------------------------------ validation
    @model_validator(mode="after")
    def _semantic(self):
        problems: list[tuple[str, str]] = []
        d = self.d_model
        shapes: dict[str, tuple[str, str]] = {}
        n_layers = 0

        def check_block(b: Block, path: str, in_recursion: bool):
            nonlocal n_layers
            n_layers += b.repeat
            if isinstance(b.mixer, ParallelGroup):
                for j, m in enumerate(b.mixer.parallel):
                    problems.extend((f"{path}.mixer.parallel[{j}].{p}", msg) for p, msg in m.check(d))
            else:
                problems.extend((f"{path}.mixer.{p}", msg) for p, msg in b.mixer.check(d))
            problems.extend((f"{path}.channel.{p}", msg) for p, msg in b.channel.check(d))
            if b.share is not None:
                if in_recursion:
                    problems.append((f"{path}.share", "blocks inside a recursion body already share weights; remove share"))
                    return
                key = b.shape_key()
                if b.share in shapes and shapes[b.share][0] != key:
                    problems.append((f"{path}.share", f"key {b.share!r} joins blocks of different shapes "
                                                      f"({shapes[b.share][1]} differs)"))
                shapes.setdefault(b.share, (key, path))

        for i, item in enumerate(self.blocks):
            if isinstance(item, RecursionItem):
                for j, b in enumerate(item.recursion.body):
                    check_block(b, f"blocks[{i}].recursion.body[{j}]", True)
            else:
                check_block(item, f"blocks[{i}]", False)
        if n_layers > MAX_LAYERS:
            problems.append(("blocks", f"{n_layers} layers after repeat exceeds the limit of {MAX_LAYERS}"))
        if problems:
            raise GenomeError(problems)
        return self

    # ------------------------------------------------------------------ structure
    def layout(self) -> tuple[BlockSite | RecursionSite, ...]:
        out: list = []
        owners: set[str] = set()
        seen_rwkv = False

        def site(b: Block, path: str, key: str) -> BlockSite:
            nonlocal seen_rwkv
            owner = key not in owners
            owners.add(key)
            ms = []
            for m in b.mixers:
                vr = False
                if m.type == "rwkv7":
                    vr = seen_rwkv
                    seen_rwkv = True
                ms.append(MixerSite(m, vr))
            return BlockSite(path, b, key, owner, tuple(ms))

        def site_shared(b: Block, path: str, key: str, prev: dict) -> BlockSite:
            # shared weights keep the rwkv7 value-residual flags of their owner
            if key in prev:
                o = prev[key]
                return BlockSite(path, b, key, False, o.mixers)
            s = site(b, path, key)
            prev[key] = s
            return s

        shared: dict[str, BlockSite] = {}
        for i, item in enumerate(self.blocks):
            if isinstance(item, RecursionItem):
                path = f"blocks[{i}]"
                body = tuple(site(b, p, p) for j, b in enumerate(item.recursion.body)
                             for p in ([f"{path}.recursion.body[{j}]"] if b.repeat == 1 else
                                       [f"{path}.recursion.body[{j}]#{r}" for r in range(b.repeat)]))
                out.append(RecursionSite(path, item.recursion, body))
                continue
            for r in range(item.repeat):
                path = f"blocks[{i}]" if item.repeat == 1 else f"blocks[{i}]#{r}"
                key = f"share:{item.share}" if item.share is not None else path
                out.append(site_shared(item, path, key, shared))
        return tuple(out)

    def flat_blocks(self) -> list[Block]:
        """Blocks in execution order with repeats expanded (recursion bodies once)."""
        out = []
        for s in self.layout():
            if isinstance(s, RecursionSite):
                out.extend(b.block for b in s.body)
            else:
                out.append(s.block)
        return out

    def pattern(self) -> str:
        """Short pattern like `M2 M2 A|M1 (R7)x3` for tables and hover text."""
        parts = []
        for s in self.layout():
            parts.append(s.group.code if isinstance(s, RecursionSite) else s.block.code)
        return " ".join(parts)

    def primitives(self) -> set[str]:
        names = set()
        for b in self.flat_blocks():
            names.update(m.type for m in b.mixers)
            names.add(b.channel.type)
        return names

    # ------------------------------------------------------------------ identity and I/O
    def canonical(self) -> dict:
        """Fully spelled-out, repeat-expanded form: the basis of the fingerprint."""
        items = []
        for item in self.blocks:
            if isinstance(item, RecursionItem):
                rec = item.model_dump(mode="json")
                rec["recursion"]["body"] = [dict(self._canonical_block(b), repeat=1) for b in item.recursion.body
                                            for _ in range(b.repeat)]
                items.append(rec)
            else:
                items.extend([self._canonical_block(item)] * item.repeat)
        # Share keys are labels: the same sharing under other key names, or a key only one layer
        # uses, is the same architecture. Rename by first use; drop keys used once.
        uses: dict[str, int] = {}
        for b in items:
            if b.get("share") is not None:
                uses[b["share"]] = uses.get(b["share"], 0) + 1
        names = {k: f"s{i}" for i, k in enumerate(k for k, n in uses.items() if n > 1)}
        items = [dict(b, share=names.get(b["share"])) if "share" in b else b for b in items]
        d = self.model_dump(mode="json", exclude={"name", "blocks"})
        d["blocks"] = items
        return d

    def _canonical_block(self, block: "Block") -> dict:
        """A block without its repeat count, each mixer / channel in its spec's canonical form
        (values with two spellings of the same layer written one way: see Spec.canonical)."""
        d = block.model_dump(mode="json", exclude={"repeat"})
        if isinstance(block.mixer, ParallelGroup):
            d["mixer"]["parallel"] = [m.canonical(self.d_model) for m in block.mixer.parallel]
        else:
            d["mixer"] = block.mixer.canonical(self.d_model)
        d["channel"] = block.channel.canonical(self.d_model)
        return d

    def fingerprint(self) -> str:
        blob = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def to_dict(self) -> dict:
        # Every parameter spelled out (an exported file must not depend on our defaults staying
        # the same); None values and repeat: 1 are left out to keep files short.
        def drop_unit_repeat(x):
            if isinstance(x, dict):
                return {k: drop_unit_repeat(v) for k, v in x.items() if not (k == "repeat" and v == 1)}
            if isinstance(x, list):
                return [drop_unit_repeat(v) for v in x]
            return x
        return drop_unit_repeat(self.model_dump(mode="json", exclude_none=True))

    def to_yaml(self) -> str:
        from .yaml_io import dump_yaml
        return dump_yaml(self.to_dict())

    @classmethod
    def from_dict(cls, data: Any, source: str | None = None) -> "Architecture":
        from .yaml_io import validate_model
        return validate_model(cls, data, source)

    @classmethod
    def from_yaml(cls, path_or_text, source: str | None = None) -> "Architecture":
        from .yaml_io import load_yaml
        try:
            data, src = load_yaml(path_or_text)
        except GenomeError as e:
            raise e.with_source(source) if source and not e.source else e
        return cls.from_dict(data, source or src)

    # ------------------------------------------------------------------ analytic costs
    def costs(self, vocab_size: int = 0, context: int = 2048, batch: int = 1, dtype_bytes: int = 2):
        from .costs import analytic_costs
        return analytic_costs(self, vocab_size=vocab_size, context=context, batch=batch, dtype_bytes=dtype_bytes)

    def param_count(self, vocab_size: int = 0) -> int:
        return self.costs(vocab_size).params_total

    def scaled(self, d_model: int | None = None, depth: int | None = None) -> "Architecture":
        from .scale import scale_architecture
        return scale_architecture(self, d_model=d_model, depth=depth)
