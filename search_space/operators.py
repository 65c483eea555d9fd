"""STAR-style structural operators for evolutionary search: `mutate` and `crossover`.

Design choices
- Operators edit a draft: the architecture as plain YAML-shaped dicts with repeats expanded, so
  an edit is a list or dict operation and never has to reason about `repeat`.
- One mutation is one of: change a parameter, swap a token mixer or a channel mixer, insert or
  delete a block, toggle a parallel group (add/remove a branch, change the combiner), change
  sharing (make a block a copy of an earlier one, or give it its own weights), change recursion
  (depth/router/capacity, grow/shrink the body, wrap a block into a recursion group or unwrap
  one), or change d_model/norm/tied embeddings. New primitives and blocks come from the space's
  own sampler (with a `random.Random`), so they respect its choices by construction.
- Editing a block that shares weights edits every block with the same share key (they are one
  set of weights), so sharing never joins blocks of different shapes.
- Every candidate is validated as an `Architecture` and checked with `space.problems()`; an edit
  that fails is retried with another. The result is canonical: it is `space.replay(
  space.to_params(child))`, so share keys are renamed as `sample()` names them and
  `to_params`/`sample` round-trip it exactly. If nothing valid and new turns up after
  `max_tries` edits (a space with almost no freedom), `mutate` returns a fresh random sample and
  `crossover` a parent, both inside the space.
"""
from __future__ import annotations

import random
from typing import Callable

from .errors import GenomeError
from .genome import Architecture
from .space import RandomTrial, SearchSpace, _clone

Draft = dict  # {"d_model", "norm", "tie_embeddings", "blocks": [item dicts]}


# ---------------------------------------------------------------------------------------------
def mutate(arch: Architecture, space: SearchSpace, rng: random.Random, max_tries: int = 64) -> Architecture:
    """A valid architecture inside `space` one structural edit away from `arch` (which must be
    inside the space)."""
    _require_inside(arch, space, "mutate")
    parent = _draft(arch)
    fp = arch.fingerprint()
    for _ in range(max_tries):
        d = _clone(parent)
        op = rng.choice(OPERATORS)
        if not op(d, space, rng):
            continue
        child = _realize(d, space)
        if child is not None and child.fingerprint() != fp:
            return child
    return space.random(rng)


def crossover(a: Architecture, b: Architecture, space: SearchSpace, rng: random.Random,
              max_tries: int = 64) -> Architecture:
    """One-point crossover of two block lists: a prefix of `a`'s blocks and a suffix of `b`'s,
    with d_model, norm and tied embeddings taken from either parent."""
    _require_inside(a, space, "crossover")
    _require_inside(b, space, "crossover")
    da, db = _draft(a, "a."), _draft(b, "b.")
    parents = {a.fingerprint(), b.fingerprint()}
    fallback = None
    for _ in range(max_tries):
        i, j = rng.randint(0, len(da["blocks"])), rng.randint(0, len(db["blocks"]))
        blocks = _clone(da["blocks"][:i] + db["blocks"][j:])
        if not space.depth.min <= len(blocks) <= space.depth.max:
            continue
        child = {k: rng.choice([da[k], db[k]]) for k in ("d_model", "norm", "tie_embeddings")}
        child["blocks"] = blocks
        arch = _realize(child, space)
        if arch is None:
            continue
        if arch.fingerprint() not in parents:
            return arch
        fallback = fallback or arch
    return fallback or _realize(rng.choice([da, db]), space)


# ---------------------------------------------------------------------------------------------
def _require_inside(arch: Architecture, space: SearchSpace, what: str) -> None:
    probs = space.problems(arch)
    if probs:
        raise GenomeError([(p, f"{m} ({what} needs an architecture inside the space)") for p, m in probs])


def _draft(arch: Architecture, key_prefix: str = "") -> Draft:
    data = arch.model_dump(mode="json", exclude_none=True)
    items = []
    for it in data["blocks"]:
        n = it.pop("repeat", 1)
        if "recursion" in it:
            it["recursion"]["body"] = [{k: v for k, v in b.items() if k != "repeat"}
                                       for b in it["recursion"]["body"] for _ in range(b.get("repeat", 1))]
        elif "share" in it:
            it["share"] = key_prefix + it["share"]
        items.extend(_clone(it) for _ in range(n))
    data["blocks"] = items
    data.pop("name", None)
    return data


def _realize(d: Draft, space: SearchSpace) -> Architecture | None:
    try:
        arch = Architecture.from_dict(d)
    except GenomeError:
        return None
    if space.problems(arch):
        return None
    return space.replay(space._params(arch))


def _t(rng: random.Random) -> RandomTrial:
    return RandomTrial(rng)


def _blocks(d: Draft) -> list[tuple[int, dict]]:
    """(top-level index, block dict) of every block, recursion bodies included."""
    out = []
    for i, it in enumerate(d["blocks"]):
        if "recursion" in it:
            out.extend((i, b) for b in it["recursion"]["body"])
        else:
            out.append((i, it))
    return out


def _sync(d: Draft, block: dict) -> None:
    # blocks with one share key are one set of weights: an edit to one is an edit to all
    key = block.get("share")
    if key is None:
        return
    for it in d["blocks"]:
        if it is not block and it.get("share") == key:
            it["mixer"], it["channel"] = _clone(block["mixer"]), _clone(block["channel"])


def _mixer_slots(block: dict, space: SearchSpace) -> list[tuple[dict, int | None, list[str]]]:
    """(container, branch index or None, allowed token mixers) for each mixer of a block."""
    m = block["mixer"]
    if "parallel" in m:
        return [(m, j, space.parallel_mixers()) for j in range(len(m["parallel"]))]
    return [(block, None, list(space.token_mixers))]


def _get_mixer(container: dict, j: int | None) -> dict:
    return container["mixer"] if j is None else container["parallel"][j]


def _set_mixer(container: dict, j: int | None, m: dict) -> None:
    if j is None:
        container["mixer"] = m
    else:
        container["parallel"][j] = m


# ---------------------------------------------------------------------------------------------
# the operators: each edits the draft in place and says whether it found something to do
def op_param(d: Draft, space: SearchSpace, rng: random.Random) -> bool:
    """Change one listed parameter of one primitive to another of its choices."""
    _, block = rng.choice(_blocks(d))
    targets = []
    for container, j, _names in _mixer_slots(block, space):
        m = _get_mixer(container, j)
        targets += [(m, k, v) for k, v in space.mixer_choices("token", m["type"]).items() if len(v) > 1]
    ch = block["channel"]
    targets += [(ch, k, v) for k, v in space.mixer_choices("channel", ch["type"]).items() if len(v) > 1]
    if not targets:
        return False
    spec, k, choices = rng.choice(targets)
    spec[k] = rng.choice([c for c in choices if not (c == spec.get(k) and type(c) is type(spec.get(k)))])
    _sync(d, block)
    return True


def op_swap_mixer(d: Draft, space: SearchSpace, rng: random.Random) -> bool:
    """Replace one token mixer by a freshly drawn one of another type."""
    _, block = rng.choice(_blocks(d))
    container, j, names = rng.choice(_mixer_slots(block, space))
    others = [n for n in names if n != _get_mixer(container, j)["type"]]
    if not others:
        return False
    _set_mixer(container, j, space._draw_mixer(_t(rng), "x", others))
    _sync(d, block)
    return True


def op_swap_channel(d: Draft, space: SearchSpace, rng: random.Random) -> bool:
    """Replace the channel mixer of one block by a freshly drawn one of another type."""
    _, block = rng.choice(_blocks(d))
    others = [n for n in space.channel_mixers if n != block["channel"]["type"]]
    if not others:
        return False
    block["channel"] = space._draw_channel(_t(rng), "x", others)
    _sync(d, block)
    return True


def op_insert(d: Draft, space: SearchSpace, rng: random.Random) -> bool:
    """Insert a freshly drawn block (or recursion group) at a random position."""
    if len(d["blocks"]) >= space.depth.max:
        return False
    kind = rng.choice([k for k in space.top_kinds(0) if k != "copy"])
    item = ({"recursion": space._draw_recursion(_t(rng), "x")} if kind == "recursion"
            else space._draw_block(_t(rng), "x", kind))
    d["blocks"].insert(rng.randint(0, len(d["blocks"])), item)
    return True


def op_delete(d: Draft, space: SearchSpace, rng: random.Random) -> bool:
    """Delete one top-level block or recursion group."""
    if len(d["blocks"]) <= space.depth.min:
        return False
    d["blocks"].pop(rng.randrange(len(d["blocks"])))
    return True


def op_parallel(d: Draft, space: SearchSpace, rng: random.Random) -> bool:
    """Turn a single mixer into a parallel group, or add/remove a branch, or change the combiner."""
    if space.parallel is None:
        return False
    _, block = rng.choice(_blocks(d))
    m = block["mixer"]
    pm, t = space.parallel_mixers(), _t(rng)
    if "parallel" not in m:
        if m["type"] not in pm:
            return False
        block["mixer"] = {"parallel": [m, space._draw_mixer(t, "x", pm)],
                          "combine": rng.choice(space.parallel.combiners)}
    else:
        moves = ["collapse"]
        if len(m["parallel"]) < space.parallel.max_branches:
            moves.append("add")
        if len(m["parallel"]) > 2:
            moves.append("remove")
        if len(space.parallel.combiners) > 1:
            moves.append("combine")
        move = rng.choice(moves)
        if move == "collapse":
            keep = [b for b in m["parallel"] if b["type"] in space.token_mixers]
            if not keep:
                return False
            block["mixer"] = rng.choice(keep)
        elif move == "add":
            m["parallel"].insert(rng.randint(0, len(m["parallel"])), space._draw_mixer(t, "x", pm))
        elif move == "remove":
            m["parallel"].pop(rng.randrange(len(m["parallel"])))
        else:
            m["combine"] = rng.choice([c for c in space.parallel.combiners if c != m["combine"]])
    _sync(d, block)
    return True


def op_share(d: Draft, space: SearchSpace, rng: random.Random) -> bool:
    """Make a block reuse an earlier block's weights, or give a shared block its own weights."""
    if not space.sharing:
        return False
    items = d["blocks"]
    shared = [it for it in items if it.get("share") is not None]
    plain = [i for i, it in enumerate(items) if "recursion" not in it]
    if shared and rng.random() < 0.5:
        del rng.choice(shared)["share"]
        return True
    if len(plain) < 2:
        return False
    i, j = sorted(rng.sample(plain, 2))
    key = items[i].get("share") or f"new{i}"
    items[i]["share"] = key
    items[j] = dict(_clone(items[i]), share=key)
    return True


def op_recursion(d: Draft, space: SearchSpace, rng: random.Random) -> bool:
    """Change a recursion group (depth, router, capacity, body length), wrap a block into one, or
    unwrap one into its body."""
    rec = space.recursion
    if rec is None:
        return False
    items = d["blocks"]
    groups = [i for i, it in enumerate(items) if "recursion" in it]
    plain = [i for i, it in enumerate(items) if "recursion" not in it]
    moves = ["header", "grow", "shrink", "unwrap"] if groups else []
    if plain and rec.body.min <= 1:
        moves.append("wrap")
    if not moves:
        return False
    move = rng.choice(moves)
    t = _t(rng)
    if move == "wrap":
        i = rng.choice(plain)
        block = {k: v for k, v in items[i].items() if k != "share"}
        group = space._draw_recursion(t, "x")
        group["body"] = [block]
        items[i] = {"recursion": group}
        return True
    i = rng.choice(groups)
    g = items[i]["recursion"]
    if move == "header":
        fresh = space._draw_recursion(t, "x")
        fresh["body"] = g["body"]
        items[i]["recursion"] = fresh
    elif move == "grow":
        if len(g["body"]) >= rec.body.max:
            return False
        kind = rng.choice(space.body_kinds())
        g["body"].insert(rng.randint(0, len(g["body"])), space._draw_block(t, "x", kind))
    elif move == "shrink":
        if len(g["body"]) <= rec.body.min:
            return False
        g["body"].pop(rng.randrange(len(g["body"])))
    else:  # unwrap: the body runs once, as plain blocks
        if len(items) - 1 + len(g["body"]) > space.depth.max:
            return False
        items[i:i + 1] = g["body"]
    return True


def op_global(d: Draft, space: SearchSpace, rng: random.Random) -> bool:
    """Change d_model, the norm or tied embeddings (every listed choice works with every d_model)."""
    options = [(k, c) for k, c in (("d_model", space.d_model), ("norm", space.norm),
                                   ("tie_embeddings", space.tie_embeddings)) if len(c) > 1]
    if not options:
        return False
    k, choices = rng.choice(options)
    d[k] = rng.choice([c for c in choices if c != d[k]])
    return True


OPERATORS: list[Callable[[Draft, SearchSpace, random.Random], bool]] = [
    op_param, op_param, op_swap_mixer, op_swap_channel, op_insert, op_delete, op_parallel,
    op_share, op_recursion, op_global,
]
