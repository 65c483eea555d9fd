"""`hybrid-nas validate / show / sample`: exit codes, one line per problem naming file and
field, nothing written on error, and one real subprocess run."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from orchestrator.cli import main
from search_space import Architecture
from search_space.space import SearchSpace
from search_space.yaml_io import MAX_BYTES

from ss_helpers import ARCHITECTURES, ROOT, SPACES

EXAMPLES = sorted(ARCHITECTURES.glob("*.yaml")) + sorted(SPACES.glob("*.yaml"))


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def error_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


def test_examples_validate():
    names = {p.stem for p in ARCHITECTURES.glob("*.yaml")}
    assert {"transformer", "mamba2", "jamba", "hymba", "mor", "rwkv7", "retnet"} <= names
    r = run("validate", *EXAMPLES)
    assert r.exit_code == 0, r.output
    assert r.stdout.count(": ok (") == len(EXAMPLES)


def test_examples_are_what_they_claim():
    jamba = Architecture.from_yaml(ARCHITECTURES / "jamba.yaml")
    mixers = [b.mixer.type for b in jamba.flat_blocks()]
    assert len(mixers) == 8 and mixers.count("attention") == 1 and set(mixers) == {"attention", "mamba1"}
    assert [b.channel.type for b in jamba.flat_blocks()] == ["swiglu", "moe"] * 4
    hymba = Architecture.from_yaml(ARCHITECTURES / "hymba.yaml")
    assert all(b.mixer.combine == "norm_mean" and {m.type for m in b.mixers} == {"attention", "mamba2"}
               for b in hymba.flat_blocks())
    mor = Architecture.from_yaml(ARCHITECTURES / "mor.yaml")
    assert any(hasattr(it, "recursion") for it in mor.blocks)
    for name, prim in (("transformer", {"attention", "swiglu"}), ("mamba2", {"mamba2", "none"}),
                       ("rwkv7", {"rwkv7", "swiglu"}), ("retnet", {"retention", "swiglu"})):
        assert Architecture.from_yaml(ARCHITECTURES / f"{name}.yaml").primitives() == prim
    for p in ARCHITECTURES.glob("*.yaml"):  # small enough to train a few steps on CPU
        a = Architecture.from_yaml(p)
        assert 128 <= a.d_model <= 256 and len(a.flat_blocks()) <= 8 and a.param_count(256) < 5e6


BAD_FILES = {
    "unknown.yaml": ("d_model: 128\nblocks:\n  - mixer: {type: lstm}\n", "blocks[0].mixer.type: unknown type 'lstm'"),
    "types.yaml": ("d_model: 128\nblocks:\n  - mixer: {type: attention, heads: four}\n", "blocks[0].mixer.heads:"),
    "heads.yaml": ("d_model: 256\nblocks:\n  - mixer:\n      parallel:\n        - {type: attention, heads: 5}\n"
                   "        - {type: mamba1}\n", "blocks[0].mixer.parallel[0].heads: 5 does not divide d_model 256"),
    "topk.yaml": ("d_model: 128\nblocks:\n  - mixer: {type: mamba2}\n    channel: {type: moe, experts: 4, top_k: 8}\n",
                  "blocks[0].channel.top_k: top_k 8 exceeds experts 4"),
    "empty.yaml": ("d_model: 128\nblocks: []\n", "blocks: "),
    "capacity.yaml": ("d_model: 128\nblocks:\n  - recursion:\n      max_depth: 3\n      capacity: [1.0, 0.5, 0.75]\n"
                      "      body: [{mixer: {type: mamba2}}]\n", "blocks[0].recursion.capacity: "),
    "share.yaml": ("d_model: 128\nblocks:\n  - {mixer: {type: attention, heads: 4}, share: x}\n"
                   "  - {mixer: {type: attention, heads: 2}, share: x}\n", "blocks[1].share: key 'x' joins blocks of different shapes"),
    "list.yaml": ("- a\n- b\n", "expected a mapping at the top level, got list"),
    "bomb.yaml": ("a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                  "c: [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n", "YAML anchors are not allowed"),
    "neither.yaml": ("name: x\nd_model: 64\n", "neither an architecture"),
    "badspace.yaml": ("d_model: [64, 96]\ndepth: 2\ntoken_mixers: {attention: {heads: [5]}}\n",
                      "token_mixers.attention.heads: 5 does not divide d_model 64"),
}


@pytest.mark.parametrize("name", BAD_FILES)
def test_each_bad_file_is_one_clear_line(tmp_path, name):
    text, expected = BAD_FILES[name]
    p = tmp_path / name
    p.write_text(text)
    r = run("validate", p)
    assert r.exit_code == 2
    lines = error_lines(r)
    assert lines and all(line.startswith(f"error: {p}: ") for line in lines), lines
    assert any(expected in line for line in lines), lines
    assert "Traceback" not in r.output


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs os.mkfifo")
def test_endless_and_blocking_files_are_refused_without_reading(tmp_path):
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)  # reading it would block forever
    r = run("validate", "/dev/zero", fifo)  # /dev/zero would never end
    assert r.exit_code == 2
    assert error_lines(r) == ["error: /dev/zero: is not a regular file", f"error: {fifo}: is not a regular file"]


def test_huge_binary_missing_directory_and_many_problems_at_once(tmp_path):
    huge = tmp_path / "huge.yaml"
    huge.write_text("d_model: 128\n" + "#" * (MAX_BYTES + 10) + "\n")
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe")
    types = tmp_path / "types.yaml"
    types.write_text("d_model: wide\nblocks:\n  - mixer: {type: attention, heads: four}\n")
    good = ARCHITECTURES / "transformer.yaml"
    r = run("validate", huge, binary, tmp_path / "missing.yaml", tmp_path, types, good)
    assert r.exit_code == 2
    lines = error_lines(r)
    assert lines == [f"error: {huge}: file is {huge.stat().st_size} bytes; the limit is {MAX_BYTES}",
                     f"error: {binary}: not UTF-8 text",
                     f"error: {tmp_path / 'missing.yaml'}: no such file",
                     f"error: {tmp_path}: is a directory, not a YAML file",
                     f"error: {types}: d_model: Input should be a valid integer (got 'wide')",
                     f"error: {types}: blocks[0].mixer.heads: Input should be a valid integer (got 'four')"]
    assert f"{good}: ok" in r.stdout


def test_validate_kind_and_space_membership(tmp_path):
    r = run("validate", "--kind", "space", ARCHITECTURES / "transformer.yaml")
    assert r.exit_code == 2 and "token_mixers: required field is missing" in r.stderr
    r = run("validate", "--space", SPACES / "small.yaml", ARCHITECTURES / "transformer.yaml", ARCHITECTURES / "jamba.yaml")
    assert r.exit_code == 2
    assert "transformer.yaml: ok" in r.stdout
    assert f"error: {ARCHITECTURES / 'jamba.yaml'}: blocks: 8 blocks" in r.stderr
    assert "outside space 'small'" in r.stderr


def test_show_architecture():
    r = run("show", ARCHITECTURES / "jamba.yaml", "--vocab", "256")
    assert r.exit_code == 0, r.output
    a = Architecture.from_yaml(ARCHITECTURES / "jamba.yaml")
    c2, c32 = a.costs(256, context=2048), a.costs(256, context=32768)
    out = r.stdout
    assert a.fingerprint() in out
    assert f"{c2.params_total:,}" in out and f"{c2.params_active:,}" in out
    assert f"{c2.cache_bytes / 2**20:.3f} MiB at 2K" in out and f"{c32.cache_bytes / 2**20:.3f} MiB at 32K" in out
    for i in range(8):
        assert f"blocks[{i}]" in out
    assert "M1+E" in out and "A+S" in out
    # the backend column comes from proxy_models when it imports, else a one-line note
    try:
        import proxy_models.backends  # noqa: F401
        assert "backend" in out
    except Exception:
        assert "backend column left out" in out


def test_show_recursion_and_shared_blocks(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("d_model: 64\nblocks:\n  - {mixer: {type: mamba1}, share: k, repeat: 2}\n"
                 "  - recursion: {max_depth: 2, router: token_choice, body: [{mixer: {type: retention, heads: 2}}]}\n")
    r = run("show", p, "--vocab", "0")
    assert r.exit_code == 0, r.output
    assert "blocks[0]#1" in r.stdout and "shared" in r.stdout and "(RN)x2" in r.stdout


def test_show_space_and_errors(tmp_path):
    r = run("show", SPACES / "wide.yaml")
    assert r.exit_code == 0 and "search space wide" in r.stdout and "kv_heads" in r.stdout
    r = run("show", tmp_path / "nope.yaml")
    assert r.exit_code == 2 and r.stderr.strip() == f"error: {tmp_path / 'nope.yaml'}: no such file"


def test_sample_writes_valid_architectures(tmp_path):
    out = tmp_path / "out"
    r = run("sample", SPACES / "small.yaml", "-n", 6, "--seed", 3, "--out", out)
    assert r.exit_code == 0, r.output
    files = sorted(out.glob("*.yaml"))
    assert len(files) == 6
    space = SearchSpace.from_yaml(SPACES / "small.yaml")
    archs = [Architecture.from_yaml(f) for f in files]
    assert all(space.contains(a) == [] for a in archs)
    assert all(f.name.endswith(f"-{a.fingerprint()}.yaml") for f, a in zip(files, archs))
    again = run("sample", SPACES / "small.yaml", "-n", 6, "--seed", 3)
    assert [a.to_yaml() for a in archs] == [t.strip() + "\n" for t in again.stdout.split("\n---\n")]
    feasible = run("sample", SPACES / "small.yaml", "-n", 3, "--seed", 0, "--feasible", "--out", tmp_path / "f")
    assert feasible.exit_code == 0
    assert all(space.feasible(Architecture.from_yaml(f)) for f in (tmp_path / "f").glob("*.yaml"))


def test_sample_bad_space_writes_nothing(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("d_model: [64, 96]\ndepth: 2\ntoken_mixers: {attention: {heads: [5]}}\n")
    out = tmp_path / "out"
    r = run("sample", bad, "-n", 2, "--out", out)
    assert r.exit_code == 2 and "token_mixers.attention.heads" in r.stderr
    assert not out.exists()
    r = run("sample", ARCHITECTURES / "transformer.yaml", "--out", out)
    assert r.exit_code == 2 and "token_mixers: required field is missing" in r.stderr and not out.exists()


def test_validate_does_not_import_torch_or_ray():
    code = ("import sys\nfrom click.testing import CliRunner\nfrom orchestrator.cli import main\n"
            f"r = CliRunner().invoke(main, ['validate', {str(ARCHITECTURES / 'hymba.yaml')!r}, {str(SPACES / 'wide.yaml')!r}])\n"
            "assert r.exit_code == 0, r.output\n"
            "import search_space.operators\n"
            "bad = [m for m in ('torch', 'ray', 'optuna') if m in sys.modules]\n"
            "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=120)


def test_real_subprocess_validate(tmp_path):
    bad = tmp_path / "heads.yaml"
    bad.write_text(BAD_FILES["heads.yaml"][0])
    exe = os.path.join(os.path.dirname(sys.executable), "hybrid-nas")
    cmd = [exe] if os.path.exists(exe) else [sys.executable, "-m", "orchestrator.cli"]
    p = subprocess.run(cmd + ["validate", str(ARCHITECTURES / "mor.yaml"), str(bad)],
                       capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert p.returncode == 2
    assert p.stderr.strip() == f"error: {bad}: blocks[0].mixer.parallel[0].heads: 5 does not divide d_model 256"
    assert "mor.yaml: ok" in p.stdout
