"""Tests generated from the registry: every token mixer and channel mixer spec gets them."""
from __future__ import annotations

import annotated_types as at
import pytest

from search_space import Architecture, GenomeError
from search_space.registry import CHANNEL_MIXERS, TOKEN_MIXERS

D = 256  # every default is valid at this width (heads 4, head_dim 32/64)


def _arch(mixer: dict, channel: dict | None = None, d: int = D) -> Architecture:
    block = {"mixer": mixer}
    if channel is not None:
        block["channel"] = channel
    return Architecture.from_dict({"d_model": d, "blocks": [block]})


def _fields(cls):
    return [(k, f) for k, f in cls.model_fields.items() if k != "type"]


def _outside(field) -> list:
    """Values just outside each declared bound of a field."""
    out = []
    for m in field.metadata:
        if isinstance(m, at.Ge):
            out.append(m.ge - 1)
        elif isinstance(m, at.Gt):
            out.append(m.gt)
        elif isinstance(m, at.Le):
            out.append(m.le + 1)
        elif isinstance(m, at.Lt):
            out.append(m.lt)
    return out


TOKEN_CASES = [(n, k, v) for n, c in TOKEN_MIXERS.items() for k, f in _fields(c) for v in _outside(f) + [{"x": 1}]]
CHANNEL_CASES = [(n, k, v) for n, c in CHANNEL_MIXERS.items() for k, f in _fields(c) for v in _outside(f) + [{"x": 1}]]


@pytest.mark.parametrize("name", TOKEN_MIXERS)
def test_token_mixer_defaults_are_valid(name):
    a = _arch({"type": name})
    spec = a.blocks[0].mixer
    assert spec.check(D) == []
    assert spec.params(D) > 0 and spec.params(D, True) >= spec.params(D)
    assert spec.flops_per_token(D, 2048) > 0
    assert spec.code


@pytest.mark.parametrize("name", CHANNEL_MIXERS)
def test_channel_mixer_defaults_are_valid(name):
    a = _arch({"type": "mamba2"}, {"type": name})
    ch = a.blocks[0].channel
    assert ch.check(D) == []
    assert 0 <= ch.active_params(D) <= ch.params(D)
    assert (ch.params(D) > 0) == (name != "none")


@pytest.mark.parametrize("name,field,value", TOKEN_CASES, ids=[f"{n}.{k}={v}" for n, k, v in TOKEN_CASES])
def test_token_mixer_field_bounds_name_the_field(name, field, value):
    with pytest.raises(GenomeError) as e:
        _arch({"type": name, field: value})
    assert f"blocks[0].mixer.{field}" in [p for p, _ in e.value.problems], e.value.problems


@pytest.mark.parametrize("name,field,value", CHANNEL_CASES, ids=[f"{n}.{k}={v}" for n, k, v in CHANNEL_CASES])
def test_channel_mixer_field_bounds_name_the_field(name, field, value):
    with pytest.raises(GenomeError) as e:
        _arch({"type": "mamba2"}, {"type": name, field: value})
    assert f"blocks[0].channel.{field}" in [p for p, _ in e.value.problems], e.value.problems


@pytest.mark.parametrize("name", TOKEN_MIXERS)
def test_unknown_field_is_named(name):
    with pytest.raises(GenomeError) as e:
        _arch({"type": name, "bogus": 1})
    assert e.value.problems == [("blocks[0].mixer.bogus", "unknown field")]


@pytest.mark.parametrize("name", TOKEN_MIXERS)
@pytest.mark.parametrize("d", [64, 128, 512])
def test_params_positive_and_flops_grow_with_context(name, d):
    spec = TOKEN_MIXERS[name](type=name, **({"head_dim": 32} if name in ("rwkv7", "mamba2") else {}))
    assert spec.check(d) == []
    assert spec.params(d) > 0
    assert spec.flops_per_token(d, 1) <= spec.flops_per_token(d, 4096) <= spec.flops_per_token(d, 65536)


@pytest.mark.parametrize("name", TOKEN_MIXERS)
def test_cache_attention_grows_recurrent_fixed(name):
    spec = TOKEN_MIXERS[name](type=name)
    small, large = spec.cache_elems(D, 128), spec.cache_elems(D, 32768)
    assert small > 0
    if name == "attention":
        assert large == 256 * small  # K and V per position
        windowed = TOKEN_MIXERS[name](type=name, window=512)
        assert windowed.cache_elems(D, 256) < windowed.cache_elems(D, 512) == windowed.cache_elems(D, 32768)
    else:
        assert large == small  # a recurrent state does not grow with the context


def test_registry_names_and_codes_are_distinct():
    assert not set(TOKEN_MIXERS) & set(CHANNEL_MIXERS)
    codes = [c.code for c in TOKEN_MIXERS.values()]
    assert len(codes) == len(set(codes))
