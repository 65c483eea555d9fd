"""fla's kernels get one launch config each instead of autotuning (proxy_models/ops/fla_launch.py)."""
import sys
import types
from types import SimpleNamespace as NS

import pytest

from proxy_models.ops import fla_launch


def cfg(warps, stages, **kw):
    return NS(num_warps=warps, num_stages=stages, kwargs=kw)


def test_pick_prefers_four_warps_two_stages_and_blocks_of_64():
    configs = [cfg(w, s, BK=bk, BV=bv) for w in (2, 4, 8, 16, 32) for s in (2, 3, 4)
               for bk in (32, 64, 128) for bv in (32, 64)]
    best = fla_launch.pick(configs)
    assert (best.num_warps, best.num_stages, best.kwargs) == (4, 2, {"BK": 64, "BV": 64})


def test_pick_takes_the_nearest_when_the_preferred_values_are_absent():
    best = fla_launch.pick([cfg(8, 3, BT=16), cfg(2, 4, BT=16), cfg(8, 4, BT=128)])
    # block size first, then the warps nearest 4, then the stages nearest 2
    assert (best.num_warps, best.num_stages, best.kwargs) == (2, 4, {"BT": 16})


def test_limit_autotune_reduces_real_triton_autotuners_in_fla_modules():
    triton = pytest.importorskip("triton", reason="triton is not installed (GPU machines have it)")

    @triton.jit
    def kernel(x, BK: "triton.language.constexpr"):
        pass
    tuned = triton.autotune(configs=[triton.Config({"BK": bk}, num_warps=w, num_stages=s)
                                     for bk in (32, 64) for w in (2, 4, 8) for s in (2, 3)], key=["x"])(kernel)
    wrapped = triton.heuristics({"BK": lambda a: 64})(tuned)
    mod = types.ModuleType("fla.ops.fake_for_test")
    mod.tuned, mod.wrapped = tuned, wrapped
    sys.modules[mod.__name__] = mod
    try:
        old = fla_launch.mode()
        fla_launch.set_mode("one")
        assert fla_launch.limit_autotune() >= 1
        assert len(tuned.configs) == 1
        c = tuned.configs[0]
        assert (c.num_warps, c.num_stages, c.kwargs) == (4, 2, {"BK": 64})
        assert fla_launch.limit_autotune() == 0  # scanned once
    finally:
        fla_launch.set_mode(old)
        del sys.modules[mod.__name__]


def test_mode_is_validated():
    with pytest.raises(ValueError, match="'one' or 'full'"):
        fla_launch.set_mode("fast")
