"""SearchSpace: load-time checks with field paths, define-by-run sampling through real Optuna
studies, containment, constraints and the to_params round trip."""
from __future__ import annotations

import random

import optuna
import pytest

from search_space import Architecture, GenomeError
from search_space.space import SearchSpace

from ss_helpers import ARCHITECTURES, SPACES

optuna.logging.set_verbosity(optuna.logging.WARNING)
SMALL = SearchSpace.from_yaml(SPACES / "small.yaml")
WIDE = SearchSpace.from_yaml(SPACES / "wide.yaml")

MINIMAL = "d_model: [64]\ndepth: {min: 1, max: 2}\ntoken_mixers: {mamba2: {head_dim: [16]}}\n"


# --------------------------------------------------------------------------- loading
@pytest.mark.parametrize("text,path,words", [
    ("d_model: [64, 96]\ndepth: 2\ntoken_mixers: {attention: {heads: [2, 5]}}\n",
     "token_mixers.attention.heads", "5 does not divide d_model 64"),
    ("d_model: [64]\ndepth: 2\ntoken_mixers: {attention: {heads: [2, 4], kv_heads: [4]}}\n",
     "token_mixers.attention.kv_heads", "4 does not divide heads 2"),
    ("d_model: [96]\ndepth: 2\ntoken_mixers: {rwkv7: null}\n",
     "token_mixers.rwkv7.head_dim", "(the default; list choices for it)"),
    ("d_model: [64]\ndepth: 2\ntoken_mixers: {lstm: {}}\n", "token_mixers.lstm", "unknown primitive 'lstm'"),
    ("d_model: [64]\ndepth: 2\ntoken_mixers: {mamba1: {foo: [1]}}\n", "token_mixers.mamba1.foo", "unknown parameter"),
    ("d_model: [64]\ndepth: 2\ntoken_mixers: {mamba1: {d_state: []}}\n", "token_mixers.mamba1.d_state", "at least one"),
    ("d_model: [64]\ndepth: 2\ntoken_mixers: {mamba1: {d_state: [8, 0]}}\n", "token_mixers.mamba1.d_state[1]", "greater than or equal to 1"),
    ("d_model: [64]\ndepth: 2\ntoken_mixers: {mamba1: {d_state: [8, 8]}}\n", "token_mixers.mamba1.d_state[1]", "duplicate"),
    ("d_model: [64]\ndepth: 2\ntoken_mixers: {mamba1: {expand: [true]}}\n", "token_mixers.mamba1.expand[0]", "valid integer (got true)"),
    ("d_model: [64]\ndepth: 2\ntoken_mixers: {mamba1: null}\nchannel_mixers: {moe: {experts: [2, 4], top_k: [4]}}\n",
     "channel_mixers.moe", "top_k 4 exceeds experts 2"),
    ("d_model: [64]\ndepth: {min: 4, max: 2}\ntoken_mixers: {mamba1: null}\n", "depth", "min 4 exceeds max 2"),
    ("d_model: [4]\ndepth: 2\ntoken_mixers: {mamba1: null}\n", "d_model", "between 8 and 16384"),
    ("d_model: [64, 64]\ndepth: 2\ntoken_mixers: {mamba1: null}\n", "d_model", "duplicate choices"),
    ("d_model: 64\ndepth: 2\ntoken_mixers: {mamba1: null}\nrecursion: {max_depth: [2, 2], routers: token_choice}\n",
     "recursion.max_depth", "duplicate choices"),
    ("d_model: [64]\ndepth: 2\ntoken_mixers: {}\n", "token_mixers", "at least 1"),
    ("d_model: [64]\ndepth: 2\ntoken_mixers: {mamba1: null}\nparallel: {mixers: [attention]}\n",
     "parallel.mixers[0]", "not one of the space's token_mixers"),
    ("d_model: [64]\ndepth: 2\ntoken_mixers: {mamba1: null}\nparallel: {max_branches: 4}\n",
     "parallel.max_branches", "less than or equal to 3"),
    ("d_model: [64]\ndepth: 2\ntoken_mixers: {mamba1: null}\nrecursion: {max_depth: [2], capacity: [[1.0, 0.5], [0.5, 1.0]]}\n",
     "recursion.capacity[1]", "must decrease"),
    ("d_model: [64]\ndepth: 2\ntoken_mixers: {mamba1: null}\nrecursion: {max_depth: [2, 3], capacity: [[1.0, 0.5]]}\n",
     "recursion.capacity", "needs a schedule of 3 entries"),
    ("d_model: [64]\ndepth: 2\ntoken_mixers: {mamba1: null}\nrecursion: {max_depth: [2], capacity: [[1.0, 0.5, 0.2]]}\n",
     "recursion.capacity[0]", "no max_depth choice is 3"),
    ("d_model: [64]\ndepth: 2\ntoken_mixers: {mamba1: null}\nconstraints: {max_params: -1}\n",
     "constraints.max_params", "greater than 0"),
    ("d_model: [64]\ndepth: 2\ntoken_mixers: {mamba1: null}\nbogus: 1\n", "bogus", "unknown field"),
    ("d_model: [64]\ndepth: {min: 1, max: 64}\ntoken_mixers: {mamba1: null}\n"
     "recursion: {max_depth: [2], routers: [token_choice], body: {min: 1, max: 16}}\n", "depth", "limit of 512 layers"),
    ("d_model: [64]\ndepth: 2\ntoken_mixers: {mamba1: null}\nchannel_mixers: {none: 5}\n", "channel_mixers.none",
     "valid dictionary"),
])
def test_invalid_space_names_the_field(text, path, words):
    with pytest.raises(GenomeError) as e:
        SearchSpace.from_yaml(text)
    assert any(p == path and words in m for p, m in e.value.problems), e.value.problems


def test_scalars_mean_one_choice():
    s = SearchSpace.from_yaml("d_model: 64\ndepth: 2\nnorm: layernorm\ntoken_mixers: {mamba1: {d_state: 8}}\n"
                              "recursion: {max_depth: 2, routers: token_choice}\n")
    assert s.d_model == [64] and s.norm == ["layernorm"] and s.recursion.max_depth == [2]
    assert s.mixer_choices("token", "mamba1") == {"d_state": (8,)}


def test_space_file_not_a_mapping():
    with pytest.raises(GenomeError, match="expected a mapping at the top level, got list"):
        SearchSpace.from_yaml("- 1\n- 2\n")


def test_space_round_trips_through_yaml():
    again = SearchSpace.from_yaml(SMALL.to_yaml())
    assert again == SMALL
    assert again.mixer_choices("channel", "swiglu") == {"expand": (2.0, 4.0)}


# --------------------------------------------------------------------------- sampling
@pytest.mark.parametrize("space", [SMALL, WIDE], ids=["small", "wide"])
def test_thousands_of_random_draws_are_valid_inside_and_round_trip(space):
    rng = random.Random(0)
    kinds = set()
    for i in range(1000):
        a = space.random(rng)
        assert space.contains(a) == []
        assert space.depth.min <= len(a.blocks) <= space.depth.max
        params = space.to_params(a)
        assert space.replay(params) == a
        if i % 100 == 0:  # YAML parsing is the slow part; test_genome_yaml covers it in depth
            assert Architecture.from_yaml(a.to_yaml()) == a
        kinds |= {v for k, v in params.items() if k.endswith(".kind")}
        kinds |= {"shared"} if any(getattr(b, "share", None) for b in a.blocks) else set()
    expected = {"single", "parallel", "recursion", "copy", "shared"}
    assert kinds == expected  # every structural kind shows up


def test_optuna_study_names_keep_one_distribution():
    """Real RandomSampler and TPE studies: Optuna itself refuses a name whose distribution
    changes, and we check the recorded distributions too."""
    seen: dict = {}
    for sampler in (optuna.samplers.RandomSampler(seed=1), optuna.samplers.TPESampler(seed=1, n_startup_trials=10)):
        study = optuna.create_study(sampler=sampler)

        def objective(trial):
            a = SMALL.sample(trial)
            assert SMALL.contains(a) == []
            return a.costs(256).params_total
        study.optimize(objective, n_trials=60)
        for t in study.trials:
            assert t.state == optuna.trial.TrialState.COMPLETE
            for name, dist in t.distributions.items():
                assert seen.setdefault(name, dist) == dist, name
    assert {"d_model", "depth", "b0.kind", "b0.mixer"} <= set(seen)
    assert all(not name.startswith("b0.") or name != "b0.copy_of" for name in seen)


def test_parameter_names_are_readable():
    rng = random.Random(3)
    names = set()
    for _ in range(300):
        names |= set(WIDE.to_params(WIDE.random(rng)))
    for expected in ("d_model", "depth", "norm", "b0.kind", "b0.mixer", "b0.attention.heads", "b1.p0.mixer",
                     "b1.combine", "b1.branches", "b0.channel", "b0.moe.experts", "b2.rec.max_depth",
                     "b2.rec.router", "b2.rec.capacity_d3", "b2.r0.kind", "b2.r0.mixer", "b3.copy_of"):
        assert expected in names, expected


def test_nsga2_with_constraints_from_violations():
    study = optuna.create_study(directions=["minimize", "minimize"],
                                sampler=optuna.samplers.NSGAIISampler(seed=0, population_size=8))

    def objective(trial):
        a = SMALL.sample(trial)
        for k, v in SMALL.violations(a).items():
            trial.set_constraint(k, v)
        c = a.costs(256)
        return c.params_total, c.cache_bytes
    study.optimize(objective, n_trials=24)
    assert len(study.best_trials) >= 1
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)


def test_enqueue_and_add_trial_round_trip():
    rng = random.Random(7)
    archs = [WIDE.random(rng) for _ in range(5)]
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    for a in archs:
        study.enqueue_trial(WIDE.to_params(a))
    for a in archs:
        t = study.ask()
        assert WIDE.sample(t) == a
        study.tell(t, 1.0)
    # seeding with known results needs the distributions as well
    a = archs[0]
    params = WIDE.to_params(a)
    study.add_trial(optuna.trial.create_trial(value=0.5, params=params, distributions=WIDE.distributions(params)))
    assert WIDE.sample(optuna.trial.FixedTrial(params)) == a


def test_to_params_of_hand_written_architecture_keeps_the_fingerprint():
    space = SearchSpace.from_yaml(MINIMAL.replace("depth: {min: 1, max: 2}", "depth: {min: 1, max: 4}")
                                  + "sharing: true\nchannel_mixers: {swiglu: {expand: [4]}, none: null}\n")
    a = Architecture.from_yaml("d_model: 64\nblocks:\n"
                               "  - {mixer: {type: mamba2, head_dim: 16}, share: mine, repeat: 2}\n"
                               "  - {mixer: {type: mamba2, head_dim: 16}, channel: {type: none}, share: lonely}\n"
                               "  - {mixer: {type: mamba2, head_dim: 16}, share: mine}\n")
    p = space.to_params(a)
    # b0 can only be "single" and b1 can only copy b0: single choices are not parameters
    assert p == {"depth": 4, "b0.channel": "swiglu", "b1.kind": "copy",
                 "b2.kind": "single", "b2.channel": "none", "b3.kind": "copy", "b3.copy_of": "b0"}
    b = space.replay(p)
    assert b.fingerprint() == a.fingerprint()
    assert [blk.share for blk in b.blocks] == ["s0", "s0", None, "s0"]


def test_single_choices_are_not_suggested():
    space = SearchSpace.from_yaml(MINIMAL.replace("{min: 1, max: 2}", "3"))
    a = space.random(random.Random(0))
    assert space.to_params(a) == {}
    assert space.replay({}) == a
    with pytest.raises(GenomeError, match="not a parameter"):
        space.replay({"depth": 3})
    assert space.replay({"depth": 3, "other": 1}, strict=False) == a


def test_replay_rejects_values_outside_the_choices():
    with pytest.raises(GenomeError) as e:
        SMALL.replay({"d_model": 100})
    assert e.value.problems[0][0] == "d_model"


# --------------------------------------------------------------------------- containment
def test_contains_names_what_is_outside():
    assert SMALL.contains(Architecture.from_yaml(ARCHITECTURES / "transformer.yaml")) == []
    assert SMALL.contains(Architecture.from_yaml(ARCHITECTURES / "rwkv7.yaml"))[0].startswith(
        "norm: 'layernorm' is not one of the space's choices ['rmsnorm']")
    a = Architecture.from_yaml("d_model: 64\nblocks:\n"
                               "  - {mixer: {type: attention, heads: 8}, channel: {type: swiglu, expand: 3}}\n"
                               "  - {mixer: {type: mamba1, d_state: 8, expand: 1, dt_rank: 3}}\n"
                               "  - {mixer: {parallel: [{type: mamba1, d_state: 8, expand: 1}, {type: rwkv7, head_dim: 16, "
                               "decay_lora: 8, a_lora: 8, v_lora: 8, gate_lora: 16}, {type: mamba1, d_state: 8, expand: 1}],"
                               " combine: concat_proj}, channel: {type: none}}\n"
                               "  - {mixer: {type: retention, heads: 2, v_expand: 1, chunk: 32}}\n"
                               "  - {mixer: {type: retention, heads: 2, v_expand: 1, chunk: 32}}\n")
    probs = dict(SMALL.problems(a))
    assert "8 is not one of the space's choices [2, 4]" in probs["blocks[0].mixer.heads"]
    assert "blocks[0].channel.expand" in probs
    assert "differs from the default" in probs["blocks[1].mixer.dt_rank"]
    assert "3 branches exceed max_branches 2" in probs["blocks[2].mixer.parallel"]
    assert "blocks[2].mixer.combine" in probs
    assert "outside the depth range 2..4" in probs["blocks"]
    with pytest.raises(GenomeError):
        SMALL.to_params(a)


def test_contains_recursion_and_sharing_when_disabled():
    space = SearchSpace.from_yaml(MINIMAL)
    a = Architecture.from_yaml("d_model: 64\nblocks:\n"
                               "  - {mixer: {type: mamba2, head_dim: 16}, share: a, repeat: 2}\n")
    assert dict(space.problems(a))["blocks[0].share"] == "weight sharing is not allowed in this space"
    r = Architecture.from_yaml("d_model: 64\nblocks:\n  - recursion: {max_depth: 2, router: token_choice, "
                               "body: [{mixer: {type: mamba2, head_dim: 16}}]}\n")
    assert "not allowed" in dict(space.problems(r))["blocks[0].recursion"]


def test_example_architectures_are_inside_a_space_that_allows_them():
    a = Architecture.from_yaml(ARCHITECTURES / "mor.yaml")
    space = SearchSpace.from_yaml("d_model: [128]\ndepth: 3\ntoken_mixers: {attention: {heads: [4]}}\n"
                                  "recursion: {max_depth: [3], capacity: [[1.0, 0.67, 0.33]], body: 2}\n")
    assert space.contains(a) == []
    assert space.replay(space.to_params(a)).fingerprint() == a.fingerprint()


# --------------------------------------------------------------------------- constraints
def test_violations_are_relative_and_feasible_at_zero():
    a = SMALL.random(random.Random(0))
    c = a.costs(256, context=2048)
    cache_mib = a.costs(0, context=32768).cache_bytes / 2**20
    space = SearchSpace.from_dict({**SMALL.model_dump(mode="json", exclude_none=True),
                                   "constraints": {"max_params": c.params_total, "max_active_params": c.params_active * 2,
                                                   "max_flops_per_token": c.flops_per_token / 2,
                                                   "max_cache_mib": cache_mib, "vocab_size": 256}})
    v = space.violations(a)
    assert v["max_params"] == 0.0
    assert v["max_active_params"] == pytest.approx(-0.5)
    assert v["max_flops_per_token"] == pytest.approx(1.0)
    assert v["max_cache_mib"] == pytest.approx(0.0)
    assert not space.feasible(a)
    assert SearchSpace.from_yaml(MINIMAL).violations(a) == {}
