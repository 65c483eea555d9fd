"""mutate and crossover: long random chains stay valid, inside the space and canonical; each
operator does something; degenerate spaces and bad parents are handled."""
from __future__ import annotations

import collections
import random

import pytest

from search_space import Architecture, GenomeError
from search_space import operators as ops
from search_space.operators import crossover, mutate
from search_space.space import SearchSpace

from ss_helpers import ARCHITECTURES, SPACES

SMALL = SearchSpace.from_yaml(SPACES / "small.yaml")
WIDE = SearchSpace.from_yaml(SPACES / "wide.yaml")


def check(child: Architecture, space: SearchSpace) -> None:
    assert isinstance(child, Architecture)
    assert space.contains(child) == []
    assert space.replay(space.to_params(child)) == child  # canonical: exact round trip


@pytest.mark.parametrize("space,steps", [(SMALL, 1000), (WIDE, 500)], ids=["small", "wide"])
def test_long_evolution_chains_stay_valid_and_inside(space, steps):
    rng = random.Random(11)
    pop = [space.random(rng) for _ in range(8)]
    new = 0
    for _ in range(steps):
        if rng.random() < 0.6:
            parent = rng.choice(pop)
            child = mutate(parent, space, rng)
            new += child.fingerprint() != parent.fingerprint()
        else:
            a, b = rng.sample(pop, 2)
            child = crossover(a, b, space, rng)
        check(child, space)
        pop[rng.randrange(len(pop))] = child
    assert new > 0.95 * 0.6 * steps * 0.9  # mutation nearly always changes something


def test_every_operator_applies_and_gives_valid_children():
    rng = random.Random(5)
    stats = collections.Counter()
    for _ in range(60):
        a = WIDE.random(rng)
        for op in set(ops.OPERATORS):
            d = ops._draft(a)
            if not op(d, WIDE, rng):
                continue
            child = ops._realize(d, WIDE)
            assert child is not None, op.__name__  # an applied edit never leaves the space
            check(child, WIDE)
            stats[op.__name__] += child.fingerprint() != a.fingerprint()
    assert set(stats) == {op.__name__ for op in ops.OPERATORS}
    assert all(n >= 15 for n in stats.values()), stats


def test_editing_a_shared_block_edits_all_its_copies():
    space = SearchSpace.from_yaml("d_model: [64]\ndepth: 3\nsharing: true\n"
                                  "token_mixers: {mamba1: {d_state: [8, 16]}, attention: {heads: [2, 4]}}\n")
    a = space.replay({"b0.mixer": "mamba1", "b0.mamba1.d_state": 8, "b1.kind": "copy",
                      "b2.kind": "copy", "b2.copy_of": "b0"})
    assert a.fingerprint() == space.replay(space.to_params(a)).fingerprint()
    rng = random.Random(0)
    for _ in range(200):
        child = mutate(a, space, rng)
        check(child, space)
        groups = collections.defaultdict(set)
        for b in child.blocks:
            if b.share:
                groups[b.share].add(b.shape_key())
        assert all(len(shapes) == 1 for shapes in groups.values())


def test_crossover_mixes_parents():
    rng = random.Random(2)
    a = Architecture.from_yaml(ARCHITECTURES / "transformer.yaml")
    b = Architecture.from_yaml(ARCHITECTURES / "mamba2.yaml")
    space = SearchSpace.from_yaml("d_model: [128]\ndepth: {min: 2, max: 8}\n"
                                  "token_mixers: {attention: {heads: [4]}, mamba2: {d_state: [32], head_dim: [32]}}\n"
                                  "channel_mixers: {swiglu: {expand: [4]}, none: null}\n")
    patterns = {crossover(a, b, space, rng).pattern() for _ in range(100)}
    assert any("A" in p and "M2" in p for p in patterns)
    for p in patterns:
        n = len(p.split())
        assert 2 <= n <= 8


def test_no_freedom_still_returns_a_valid_architecture():
    space = SearchSpace.from_yaml("d_model: [64]\ndepth: 2\ntoken_mixers: {mamba2: {head_dim: [16]}}\n")
    a = space.random(random.Random(0))
    rng = random.Random(0)
    assert mutate(a, space, rng, max_tries=5) == a
    assert crossover(a, a, space, rng, max_tries=5) == a


def test_operators_refuse_parents_outside_the_space():
    outside = Architecture.from_yaml(ARCHITECTURES / "jamba.yaml")  # 8 blocks, small allows 2-4
    inside = SMALL.random(random.Random(0))
    with pytest.raises(GenomeError, match="mutate needs an architecture inside the space"):
        mutate(outside, SMALL, random.Random(0))
    with pytest.raises(GenomeError, match="crossover needs"):
        crossover(inside, outside, SMALL, random.Random(0))


def test_same_seed_same_children():
    def run(seed):
        rng = random.Random(seed)
        a = WIDE.random(rng)
        out = []
        for _ in range(20):
            a = mutate(a, WIDE, rng)
            out.append(a.fingerprint())
        return out
    assert run(3) == run(3) != run(4)
