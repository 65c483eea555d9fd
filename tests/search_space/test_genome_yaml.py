"""YAML round trip and fingerprint stability (property-based), and the bad-input list at the
library level (the CLI tests check the same files end to end)."""
from __future__ import annotations

import random

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from search_space import Architecture, GenomeError
from search_space.primitives.swiglu import SwiGLUSpec
from search_space.space import SearchSpace
from search_space.yaml_io import MAX_BYTES

from ss_helpers import SPACES

WIDE = SearchSpace.from_yaml(SPACES / "wide.yaml")
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

seeds = st.integers(0, 2**32 - 1)


def draw(seed: int) -> Architecture:
    return WIDE.random(random.Random(seed))


def shuffle_keys(x, rng: random.Random):
    if isinstance(x, dict):
        items = list(x.items())
        rng.shuffle(items)
        return {k: shuffle_keys(v, rng) for k, v in items}
    if isinstance(x, list):
        return [shuffle_keys(v, rng) for v in x]
    return x


def strip_defaults(a: Architecture) -> dict:
    """The shortest spelling: every field equal to its default left out."""
    def spec(s):
        d = s.model_dump(mode="json")
        return {k: v for k, v in d.items()
                if k == "type" or v != type(s).model_fields[k].default}

    def block(b):
        out = {"mixer": ({"parallel": [spec(m) for m in b.mixer.parallel], "combine": b.mixer.combine}
                         if hasattr(b.mixer, "parallel") else spec(b.mixer))}
        if b.channel != SwiGLUSpec(type="swiglu"):  # the default channel mixer
            out["channel"] = spec(b.channel)
        if b.share:
            out["share"] = b.share
        if b.repeat != 1:
            out["repeat"] = b.repeat
        return out
    items = []
    for it in a.blocks:
        if hasattr(it, "recursion"):
            g = it.recursion.model_dump(mode="json", exclude={"body"}, exclude_none=True)
            g["body"] = [block(b) for b in it.recursion.body]
            items.append({"recursion": g})
        else:
            items.append(block(it))
    out = {"name": a.name, "d_model": a.d_model, "blocks": items}
    if a.norm != "rmsnorm":
        out["norm"] = a.norm
    if not a.tie_embeddings:
        out["tie_embeddings"] = False
    return out


@SETTINGS
@given(seeds)
def test_to_yaml_round_trip_is_exact(seed):
    a = draw(seed)
    text = a.to_yaml()
    b = Architecture.from_yaml(text)
    assert b == a
    assert b.to_yaml() == text
    assert b.fingerprint() == a.fingerprint()


@SETTINGS
@given(seeds, seeds, st.sampled_from([None, True, False]), st.integers(1, 8))
def test_fingerprint_ignores_key_order_and_formatting(seed, shuffle_seed, flow, indent):
    a = draw(seed)
    data = shuffle_keys(a.to_dict(), random.Random(shuffle_seed))
    text = "# a comment\n" + yaml.safe_dump(data, default_flow_style=flow, indent=max(indent, 2), sort_keys=False)
    b = Architecture.from_yaml(text)
    assert b.fingerprint() == a.fingerprint()
    assert b == a


@SETTINGS
@given(seeds)
def test_fingerprint_ignores_defaults_spelled_out(seed):
    a = draw(seed)
    short = Architecture.from_dict(strip_defaults(a))
    assert short == a
    assert short.fingerprint() == a.fingerprint()


@SETTINGS
@given(seeds, st.data())
def test_fingerprint_ignores_repeat_expansion_and_share_key_names(seed, data):
    a = draw(seed)
    d = a.to_dict()
    # collapse runs of identical top-level blocks into `repeat`
    collapsed: list = []
    for it in d["blocks"]:
        if collapsed and it == {k: v for k, v in collapsed[-1].items() if k != "repeat"} and "recursion" not in it:
            collapsed[-1]["repeat"] = collapsed[-1].get("repeat", 1) + 1
        else:
            collapsed.append(dict(it))
    # rename the share keys
    names = {}
    for it in collapsed:
        if "share" in it:
            it["share"] = names.setdefault(it["share"], data.draw(st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)
                                                                  .filter(lambda s: s not in names.values())))
    b = Architecture.from_dict(dict(d, blocks=collapsed))
    assert b.fingerprint() == a.fingerprint()


def test_fingerprint_changes_with_the_architecture():
    base = {"d_model": 64, "blocks": [{"mixer": {"type": "attention", "heads": 4}}]}
    fps = {Architecture.from_dict(base).fingerprint(),
           Architecture.from_dict(dict(base, d_model=128)).fingerprint(),
           Architecture.from_dict({**base, "blocks": [{"mixer": {"type": "attention", "heads": 2}}]}).fingerprint(),
           Architecture.from_dict({**base, "blocks": [{"mixer": {"type": "attention", "heads": 4}}] * 2}).fingerprint(),
           Architecture.from_dict({**base, "blocks": [{"mixer": {"type": "attention", "heads": 4}, "share": "a"}] * 2}).fingerprint()}
    assert len(fps) == 5
    # the name is a label, not part of the architecture
    assert Architecture.from_dict(dict(base, name="x")).fingerprint() == Architecture.from_dict(base).fingerprint()


def test_issue_example_loads(tmp_path):
    text = """
name: hymba-like
d_model: 256
norm: rmsnorm
blocks:
  - mixer: {type: mamba2, d_state: 64, head_dim: 32, expand: 2}
    channel: {type: swiglu, expand: 4}
  - mixer:
      parallel:
        - {type: attention, heads: 4, kv_heads: 2, window: 128}
        - {type: mamba1, d_state: 16, expand: 2}
      combine: norm_mean
    channel: {type: moe, experts: 8, top_k: 2, expand: 2}
  - mixer: {type: retention, heads: 4}
    channel: {type: swiglu, expand: 4}
    share: r1
  - recursion:
      max_depth: 3
      router: expert_choice
      capacity: [1.0, 0.5, 0.25]
      body:
        - mixer: {type: rwkv7, head_dim: 32}
          channel: {type: swiglu, expand: 4}
"""
    a = Architecture.from_yaml(text)
    assert a.pattern() == "M2 A|M1 RN (R7)x3"
    p = tmp_path / "a.yaml"
    p.write_text(a.to_yaml())
    assert Architecture.from_yaml(p) == a


# --------------------------------------------------------------------------- bad input
BAD = {
    "unknown primitive": ("d_model: 128\nblocks:\n  - mixer: {type: lstm}\n", "blocks[0].mixer.type", "unknown type 'lstm'"),
    "wrong type": ("d_model: wide\nblocks:\n  - mixer: {type: mamba2}\n", "d_model", "valid integer"),
    "wrong nested type": ("d_model: 128\nblocks:\n  - mixer: {type: attention, heads: four}\n",
                          "blocks[0].mixer.heads", "valid integer"),
    "heads not dividing": ("d_model: 256\nblocks:\n  - mixer:\n      parallel:\n        - {type: attention, heads: 5}\n"
                           "        - {type: mamba1}\n", "blocks[0].mixer.parallel[0].heads", "5 does not divide d_model 256"),
    "kv_heads not dividing heads": ("d_model: 256\nblocks:\n  - mixer: {type: attention, heads: 4, kv_heads: 3}\n",
                                    "blocks[0].mixer.kv_heads", "does not divide heads 4"),
    "top_k > experts": ("d_model: 128\nblocks:\n  - mixer: {type: mamba2}\n    channel: {type: moe, experts: 4, top_k: 8}\n",
                        "blocks[0].channel.top_k", "exceeds experts 4"),
    "empty blocks": ("d_model: 128\nblocks: []\n", "blocks", "at least 1 item"),
    "capacity increasing": ("d_model: 128\nblocks:\n  - recursion:\n      max_depth: 3\n      capacity: [1.0, 0.5, 0.75]\n"
                            "      body: [{mixer: {type: mamba2}}]\n", "blocks[0].recursion.capacity", "must decrease"),
    "capacity not decreasing": ("d_model: 128\nblocks:\n  - recursion:\n      max_depth: 2\n      capacity: [0.5, 0.5]\n"
                                "      body: [{mixer: {type: mamba2}}]\n", "blocks[0].recursion.capacity", "must decrease"),
    "bool for an int": ("d_model: 128\nblocks:\n  - mixer: {type: attention, heads: true}\n",
                        "blocks[0].mixer.heads", "valid integer (got True)"),
    "float for an int": ("d_model: 128\nblocks:\n  - mixer: {type: attention, heads: 4, window: 2.0}\n",
                         "blocks[0].mixer.window", "valid integer (got 2.0)"),
    "yes for repeat": ("d_model: 128\nblocks:\n  - {mixer: {type: mamba2}, repeat: yes}\n",
                       "blocks[0].repeat", "valid integer (got True)"),
    "capacity length": ("d_model: 128\nblocks:\n  - recursion:\n      max_depth: 3\n      capacity: [1.0, 0.5]\n"
                        "      body: [{mixer: {type: mamba2}}]\n", "blocks[0].recursion.capacity", "max_depth is 3"),
    "share joins shapes": ("d_model: 128\nblocks:\n  - {mixer: {type: attention, heads: 4}, share: x}\n"
                           "  - {mixer: {type: attention, heads: 2}, share: x}\n", "blocks[1].share", "different shapes"),
    "share inside recursion": ("d_model: 128\nblocks:\n  - recursion:\n      max_depth: 2\n      router: token_choice\n"
                               "      body: [{mixer: {type: mamba2}, share: a}]\n", "blocks[0].recursion.body[0].share", "remove share"),
    "unknown field": ("d_model: 128\nblocks:\n  - mixer: {type: mamba2}\n    chanel: {type: none}\n", "blocks[0].chanel", "unknown field"),
    "missing d_model": ("blocks:\n  - mixer: {type: mamba2}\n", "d_model", "required"),
    "one branch": ("d_model: 128\nblocks:\n  - mixer: {parallel: [{type: mamba2}]}\n", "blocks[0].mixer.parallel", "at least 2"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_architecture_names_the_field(case):
    text, path, words = BAD[case]
    with pytest.raises(GenomeError) as e:
        Architecture.from_yaml(text)
    assert any(p == path and words in m for p, m in e.value.problems), e.value.problems
    for line in e.value.lines():
        assert "\n" not in line and "Traceback" not in line


@pytest.mark.parametrize("text,words", [
    ("- a\n- b\n", "expected a mapping at the top level, got list"),
    ("just a string\n", "expected a mapping"),
    ("", "got empty"),
    ("a: &x [1, 2]\nb: *x\n", "anchors are not allowed"),
    ("d_model: [\n", "not valid YAML at line 2"),
    ("!!python/object/apply:os.system ['true']\n", "not valid YAML"),
])
def test_bad_yaml_text(text, words):
    with pytest.raises(GenomeError) as e:
        Architecture.from_yaml(text)
    assert words in str(e.value)


def test_yaml_bomb_is_refused_before_expanding():
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8))
    with pytest.raises(GenomeError, match="anchors are not allowed"):
        Architecture.from_yaml(bomb)


def test_files_huge_binary_missing_directory(tmp_path):
    huge = tmp_path / "huge.yaml"
    huge.write_text("d_model: 128\n" + "#" * MAX_BYTES + "\n")
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00\x01binary")
    cases = {huge: f"the limit is {MAX_BYTES}", binary: "not UTF-8", tmp_path: "is a directory",
             tmp_path / "missing.yaml": "no such file"}
    for path, words in cases.items():
        with pytest.raises(GenomeError) as e:
            Architecture.from_yaml(str(path))
        assert words in str(e.value) and str(path) in str(e.value)


@pytest.mark.parametrize("plain, spelled", [
    ("{type: attention, heads: 4}", "{type: attention, heads: 4, kv_heads: 4}"),
    ("{type: mamba1}", "{type: mamba1, dt_rank: 8}"),  # auto = ceil(128 / 16)
], ids=["kv_heads-equal-to-heads", "dt_rank-equal-to-auto"])
def test_two_spellings_of_one_layer_have_one_fingerprint(plain, spelled):
    def arch(m):
        return Architecture.from_yaml(f"d_model: 128\nblocks:\n  - mixer: {m}\n  - mixer:\n      parallel: [{m}, {{type: mamba2}}]\n")
    assert arch(plain).fingerprint() == arch(spelled).fingerprint()
    other = spelled.replace("kv_heads: 4", "kv_heads: 2").replace("dt_rank: 8", "dt_rank: 9")
    assert arch(other).fingerprint() != arch(plain).fingerprint()
