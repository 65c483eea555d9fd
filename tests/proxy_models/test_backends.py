"""Backend selection: the choice table, fallbacks logged once and never raising, and
`layer_backends` on this (CPU) machine."""
from __future__ import annotations

import logging

import torch

from pm_cases import arch, mixer
from proxy_models import backends
from proxy_models.registry import CHANNEL_MIXER_MODULES, TOKEN_MIXER_MODULES, channel_mixer_class, token_mixer_class
from search_space.registry import CHANNEL_MIXERS, TOKEN_MIXERS


def test_every_registered_primitive_has_a_module():
    assert set(TOKEN_MIXER_MODULES) == set(TOKEN_MIXERS)
    assert set(CHANNEL_MIXER_MODULES) == set(CHANNEL_MIXERS)
    for name in TOKEN_MIXERS:
        cls = token_mixer_class(name)
        assert all(hasattr(cls, a) for a in ("forward", "init_state", "step", "backend")), name
    for name in CHANNEL_MIXERS:
        cls = channel_mixer_class(name)
        assert cls is None or hasattr(cls, "backend")


def test_every_op_ends_with_a_candidate_usable_everywhere():
    for op, table in backends.OPS.items():
        for direction, cands in table.items():
            assert cands[-1].check(backends.Probe(torch.device("cpu"), torch.float32)) is None, (op, direction)


def test_fallback_is_logged_once_and_does_not_raise(caplog, monkeypatch):
    # a real table entry whose preferred candidate cannot run on a CPU
    monkeypatch.setitem(backends.OPS, "test_op", {"fwd": (
        backends.Candidate("gpu-kernel", backends.needs_cuda),
        backends.Candidate("fla-kernel", backends.fla_check(hopper_min_triton=(3, 7, 1))),
        backends.Candidate("plain", backends.always))})
    backends.reset()
    with caplog.at_level(logging.INFO, logger="proxy_models.backends"):
        assert backends.choose("test_op", "cpu", torch.bfloat16) == "plain"
        assert backends.choose("test_op", "cpu", torch.bfloat16) == "plain"
        assert backends.describe("test_op", "cpu", torch.bfloat16) == "plain"
    lines = [r.getMessage() for r in caplog.records if "test_op" in r.getMessage()]
    assert len(lines) == 2  # fwd once, bwd once (describe asks both directions)
    assert "gpu-kernel: needs a CUDA device" in lines[0] and "fla-kernel" in lines[0]
    backends.reset()


def test_layer_backends_on_cpu():
    a = arch([
        {"mixer": mixer("attention"), "channel": {"type": "moe", "experts": 4, "top_k": 2}},
        {"mixer": {"parallel": [mixer("attention", window=4), mixer("mamba2")]}, "channel": {"type": "none"}, "repeat": 2},
        {"recursion": {"max_depth": 2, "router": "token_choice", "body": [{"mixer": mixer("rwkv7")}]}},
    ])
    got = backends.layer_backends(a, device="cpu")
    assert got["blocks[0].mixer"] == "sdpa-cpu"
    assert got["blocks[0].channel"] == "expert-loop"  # fp32 on a CPU
    assert got["blocks[1]#1.mixer.parallel[1]"] == "torch-chunked"
    assert got["blocks[2].recursion.body[0].mixer"] == "torch-chunked"
    assert got["blocks[2].recursion.body[0].channel"] == "torch"
    assert "blocks[1]#0.channel" not in got
    assert backends.layer_backends(a, device="cpu", dtype=torch.bfloat16)["blocks[0].channel"] == "grouped-mm"


def test_version_parsing():
    assert backends._version_tuple("3.7.1+git123") == (3, 7, 1)
    assert backends._version_tuple("2.13.0rc1") == (2, 13, 0)
    assert backends._version_tuple("0.6") < (3, 7, 1)
