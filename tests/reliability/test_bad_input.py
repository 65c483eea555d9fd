"""Fault 6, bad input: hypothesis feeds malformed architecture, space and study YAML and CLI
arguments to the real `hybrid-nas` commands. Every case must end with exit code 2 and a clear
message (never a traceback), and nothing may be written: a store is neither created nor changed,
no output directory appears.

How the inputs are made: the example files under examples/ are parsed and mutated (a value
replaced by junk of any YAML type, a key deleted, an unknown key added, the top level replaced),
or the text itself is broken (truncated, garbage inserted, YAML tags and aliases). A mutation can
by chance leave a file valid; for commands that only read (validate, show) that case must exit
0 and say ok; for `search` a valid config is recognised by the library first and skipped (it
would start a real search), so `search` is fuzzed only with configs the library rejects, and each
rejection must reach the user as exit 2.

The commands run in-process through click's CliRunner (fast); `test_real_subprocesses` runs a
few of the same cases as real `hybrid-nas` processes, where a traceback would show up as it
would for a user."""
from __future__ import annotations

import copy
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, assume, event, given, note, settings
from hypothesis import strategies as st

from .helpers import EXAMPLES, assert_user_error, cli, files_under, sqlite_state

FUZZ = settings(max_examples=int(os.environ.get("HNAS_FUZZ_EXAMPLES", "40")), deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                       HealthCheck.data_too_large])

ARCH_DOCS = {p.name: yaml.safe_load(p.read_text()) for p in sorted((EXAMPLES / "architectures").glob("*.yaml"))}
SPACE_DOCS = {p.name: yaml.safe_load(p.read_text()) for p in sorted((EXAMPLES / "spaces").glob("*.yaml"))}
SMALL_SPACE = yaml.safe_load((EXAMPLES / "spaces" / "small.yaml").read_text())


def study_doc(storage: str) -> dict:
    d = yaml.safe_load((EXAMPLES / "search" / "cpu-quickstart.yaml").read_text())
    d["space"] = copy.deepcopy(SMALL_SPACE)  # inline: the config stands alone in its directory
    d["storage"] = storage
    return d


# ------------------------------------------------------------------------------ mutations
junk = st.one_of(
    st.none(), st.booleans(), st.integers(-2**63, 2**63), st.integers(-3, 70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.sampled_from(["", "-1", "1e309", "nan", "attention", "mamba2", "moe", "x'; DROP TABLE hnas_trials; --",
                     "../../etc/passwd", "\u202e\u0000", "a" * 300]),
    st.lists(st.one_of(st.integers(-5, 70), st.text(max_size=4), st.none()), max_size=4),
    st.dictionaries(st.text(max_size=8), st.one_of(st.integers(-3, 3), st.text(max_size=4)), max_size=3),
)


def _paths(tree, prefix=()):
    yield prefix
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            yield from _paths(v, prefix + (i,))


def _parent(tree, path):
    for p in path[:-1]:
        tree = tree[p]
    return tree


@st.composite
def mutated(draw, docs: dict):
    """(name, mutated document, description of the mutations)."""
    name = draw(st.sampled_from(sorted(docs)))
    doc = copy.deepcopy(docs[name])
    how = []
    for _ in range(draw(st.integers(1, 3))):
        paths = list(_paths(doc))
        path = draw(st.sampled_from(paths))
        op = draw(st.sampled_from(["replace", "replace", "delete", "add", "wrap"]))
        if not path or not isinstance(doc, (dict, list)):
            doc = draw(junk)
            how.append("top level replaced")
            break
        parent = _parent(doc, path)
        if op == "replace":
            parent[path[-1]] = draw(junk)
        elif op == "delete":
            del parent[path[-1]]
        elif op == "add":
            target = parent[path[-1]]
            if isinstance(target, dict):
                target[draw(st.text(min_size=1, max_size=10))] = draw(junk)
            elif isinstance(target, list):
                target.append(draw(junk))
            else:
                parent[path[-1]] = [target, draw(junk)]
        else:
            parent[path[-1]] = {"value": parent[path[-1]]} if draw(st.booleans()) else [parent[path[-1]]]
        how.append(f"{op} {'.'.join(map(str, path))}")
    return name, doc, how


@st.composite
def broken_text(draw, docs: dict):
    """YAML text broken below the data level."""
    name = draw(st.sampled_from(sorted(docs)))
    text = yaml.safe_dump(docs[name], sort_keys=False)
    kind = draw(st.sampled_from(["truncate", "insert", "tag", "alias", "bytes", "tabs"]))
    if kind == "truncate":
        text = text[:draw(st.integers(0, len(text) - 1))]
    elif kind == "insert":
        i = draw(st.integers(0, len(text)))
        text = text[:i] + draw(st.text(alphabet=st.sampled_from(list(":-[]{}&*!|>'\"#%@`, \n\t")), min_size=1,
                                       max_size=6)) + text[i:]
    elif kind == "tag":
        text = draw(st.sampled_from([
            "!!python/object/apply:os.system ['touch pwned']\n",
            "name: !!python/object/new:builtins.list [[1]]\n" + text,
            "blocks: !!python/name:os.system\n", "!!binary aGVsbG8=\n", "name: !custom x\n" + text]))
    elif kind == "alias":
        text = "base: &b {type: attention, heads: 4}\n" + text + "extra: *b\n"
    elif kind == "bytes":
        return name, draw(st.binary(min_size=1, max_size=200)), kind
    else:
        text = text.replace("  ", "\t", 1)
    return name, text.encode("utf-8", "surrogatepass"), kind


def _write(dirpath: Path, name: str, doc_or_bytes) -> Path:
    p = dirpath / name
    if isinstance(doc_or_bytes, bytes):
        p.write_bytes(doc_or_bytes)
    else:
        p.write_text(yaml.safe_dump(doc_or_bytes, sort_keys=False, allow_unicode=True))
    return p


def _check_read_only_command(res, what):
    """validate/show: exit 0 with output, or a user error; never anything else."""
    if res.exit_code == 0:
        assert res.exception is None and "Traceback" not in res.stdout + res.stderr, what
        event("valid after mutation")
        return
    event("rejected")
    assert_user_error(res, what)


# ------------------------------------------------------------------------------ architecture files
@FUZZ
@given(case=st.one_of(mutated(ARCH_DOCS), broken_text(ARCH_DOCS)))
def test_fuzz_architecture_yaml(case, tmp_path_factory):
    name, doc, how = case
    d = tmp_path_factory.mktemp("arch")
    p = _write(d, name, doc)
    note(f"{how}: {p.read_bytes()[:600]!r}")
    before = files_under(d)
    for args in (["validate", p], ["validate", "--kind", "architecture", p], ["show", p]):
        _check_read_only_command(cli(args), f"{args} {how}")
    assert files_under(d) == before, "a read-only command wrote a file"
    assert not Path("pwned").exists()


# ------------------------------------------------------------------------------ search spaces
@FUZZ
@given(case=st.one_of(mutated(SPACE_DOCS), broken_text(SPACE_DOCS)))
def test_fuzz_space_yaml(case, tmp_path_factory):
    name, doc, how = case
    d = tmp_path_factory.mktemp("space")
    p = _write(d, name, doc)
    out = d / "out"
    note(f"{how}: {p.read_bytes()[:600]!r}")
    _check_read_only_command(cli(["validate", "--kind", "space", p]), f"validate {how}")
    res = cli(["sample", p, "-n", "2", "--out", out])
    if res.exit_code == 0:
        assert len(list(out.glob("*.yaml"))) == 2
    else:
        assert_user_error(res, f"sample {how}")
        assert not out.exists(), "sample wrote files although the space was rejected"


# ------------------------------------------------------------------------------ study configs
def _library_accepts(cfg_path: Path) -> bool:
    """Does the orchestrator's preflight (short of opening the store and Ray) accept this config?
    A UserError means no; any other exception is a bug and fails the test."""
    from orchestrator.config import load_config
    from orchestrator.samplers import make_sampler
    from orchestrator.search import check_fidelity
    from search_space.errors import UserError
    from storage import normalize_url
    try:
        cfg = load_config(str(cfg_path))
        space = cfg.load_space()
        check_fidelity(cfg.fidelity, cfg.metric_names, [c.metric for c in cfg.constraints])
        if cfg.promotion is not None:
            check_fidelity(cfg.promotion.fidelity, cfg.metric_names, [c.metric for c in cfg.constraints])
        make_sampler(cfg.sampler, space=space, trials=cfg.trials, concurrency=cfg.concurrency or 1, seed=cfg.seed)
        normalize_url(cfg.storage)
    except UserError:
        return False
    return True


@FUZZ
@given(data=st.data())
def test_fuzz_study_config(data, tmp_path_factory, monkeypatch):
    d = tmp_path_factory.mktemp("study")
    monkeypatch.chdir(d)  # a relative storage path written by a mutation lands here, where we look
    db = d / "store.db"
    # relative to the working directory (d): the generated data must not depend on the temp path
    docs = {"study.yaml": study_doc("sqlite:///store.db")}
    name, doc, how = data.draw(st.one_of(mutated(docs), broken_text(docs)))
    p = _write(d, name, doc)
    note(f"{how}: {p.read_bytes()[:800]!r}")
    assume(not _library_accepts(p))  # a valid config would start a real search
    before = files_under(d)
    res = cli(["search", p, "--no-live"])
    assert_user_error(res, f"search {how}")
    assert sqlite_state(db) is None, "the store was created although the config was rejected"
    assert files_under(d) == before, f"files appeared: {files_under(d) - before}"


# ------------------------------------------------------------------------------ CLI arguments
NASTY = ["", "-1", "0", "nan", "inf", "1e309", "-", "--", "x'; DROP TABLE hnas_trials; --", "../../etc/passwd",
         "\u202e", "é" * 3, "a" * 500, "sqlite:///:memory:", "postgresql://u:s3cret@127.0.0.1:1/db",
         "mysql://u:s3cret@localhost/db", "auto", "cuda:99", "smoke", "tpe"]

OPTIONS = {
    "validate": {"--kind": None, "--space": None},
    "show": {"--vocab": None, "--kind": None},
    "sample": {"-n": None, "--seed": None, "--feasible": "flag"},
    "studies": {},
    "trials": {"--status": None, "--sort": None, "--limit": None},
    "evaluate": {"--fidelity": None, "--device": None, "--seed": None, "--max-seconds": None, "--json": "flag"},
    "search": {"--study": None, "--trials": None, "--sampler": None, "--fidelity": None, "--concurrency": None,
               "--seed": None, "--no-live": "flag"},
}


def _bad_args(cmd: str, w: dict) -> list[tuple[str | None, list[str]]]:
    """(option it uses, argv tail): each is wrong on its own, whatever else is on the line."""
    missing = str(w["dir"] / "missing.yaml")
    arch, space, cfg, store = str(w["arch"]), str(w["space"]), str(w["cfg"]), w["store_url"]
    return {
        "validate": [(None, [missing]), ("--kind", [arch, "--kind", "bogus"]), ("--space", [arch, "--space", missing]),
                     ("--kind", [space, "--kind", "architecture"]), (None, [str(w["dir"])])],
        "show": [(None, [missing]), ("--vocab", [arch, "--vocab", "-3"]), ("--kind", [arch, "--kind", "space"])],
        "sample": [(None, [missing]), ("-n", [space, "-n", "0"]), ("-n", [space, "-n", "many"]),
                   (None, [arch]), ("--seed", [space, "--seed", "x"])],
        "studies": [("--storage", ["--storage", "mysql://u:s3cret@localhost/db"]),
                    ("--storage", ["--storage", str(w["dir"] / "nope" / "x.db")]),
                    ("--storage", ["--storage", "postgresql+psycopg://postgres:s3cret@127.0.0.1:1/x"]),
                    ("--storage", ["--storage", "sqlite:///:memory:"]), (None, ["--bogus"])],
        "trials": [(None, ["no-such-study", "--storage", store]),
                   ("--limit", ["s", "--storage", store, "--limit", "0"]),
                   ("--status", ["s", "--storage", store, "--status", "done"]),
                   ("--sort", ["s", "--storage", store, "--sort", "nonexistent_metric"]),
                   ("--storage", ["s", "--storage", str(w["dir"] / "missing.db")])],
        "evaluate": [(None, [missing]), ("--fidelity", [arch, "--fidelity", "nope"]),
                     ("--device", [arch, "--device", "tpu"]), ("--max-seconds", [arch, "--max-seconds", "-1"]),
                     (None, [space])],
        "search": [(None, [missing]), ("--trials", [cfg, "--trials", "0"]), ("--sampler", [cfg, "--sampler", "bogus"]),
                   ("--fidelity", [cfg, "--fidelity", "nope"]), ("--concurrency", [cfg, "--concurrency", "0"]),
                   ("--study", [cfg, "--study", "bad name!"]), ("--seed", [cfg, "--seed", "-1"]),
                   ("--storage", [cfg, "--storage", "mysql://u:s3cret@localhost/db"]),
                   (None, [arch]), (None, [])],
    }[cmd]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A valid architecture, space and config, and a store holding one study `s` with a trial."""
    from search_space import Architecture
    from search_space.result import TrialResult
    from storage import Store

    d = tmp_path_factory.mktemp("cli")
    arch = d / "arch.yaml"
    arch.write_text((EXAMPLES / "architectures" / "transformer.yaml").read_text())
    space = d / "space.yaml"
    space.write_text((EXAMPLES / "spaces" / "small.yaml").read_text())
    store_db = d / "existing.db"
    cfg = d / "study.yaml"
    cfg.write_text(yaml.safe_dump(study_doc(f"sqlite:///{d / 'fresh.db'}"), sort_keys=False))
    with Store(f"sqlite:///{store_db}") as s:
        s.create_study("s", "", [("quality", "maximize")])
        a = Architecture.from_yaml(arch)
        s.start_trial("s", 0, a, fidelity="smoke")
        s.finish_trial("s", 0, TrialResult(status="complete", metrics={"quality": 0.5}, fidelity="smoke"))
    return {"dir": d, "arch": arch, "space": space, "cfg": cfg, "store": store_db,
            "store_url": f"sqlite:///{store_db}", "fresh": d / "fresh.db"}


@FUZZ
@given(data=st.data())
def test_fuzz_cli_arguments(data, workspace, monkeypatch, tmp_path_factory):
    cwd = tmp_path_factory.mktemp("cwd")
    monkeypatch.chdir(cwd)
    for var in ("HNAS_STORAGE", "HYBRID_NAS_STORAGE", "RAY_ADDRESS"):
        monkeypatch.delenv(var, raising=False)
    cmd = data.draw(st.sampled_from(sorted(OPTIONS)))
    used, bad = data.draw(st.sampled_from(_bad_args(cmd, workspace)))
    extra = []
    for opt in data.draw(st.lists(st.sampled_from(sorted(OPTIONS[cmd]) or ["--help-not"]), max_size=3, unique=True)):
        if opt == used or opt not in OPTIONS[cmd]:
            continue
        extra += [opt] if OPTIONS[cmd][opt] == "flag" else [opt, data.draw(st.sampled_from(NASTY))]
    argv = [cmd, *extra, *bad] if data.draw(st.booleans()) else [cmd, *bad, *extra]
    note(repr(argv))
    state = sqlite_state(workspace["store"])
    res = cli(argv)
    msgs = assert_user_error(res, repr(argv))
    # a storage URL's password must not be echoed (a password typed into another option is just a bad value)
    if any(a == "--storage" and "s3cret" in b for a, b in zip(argv, argv[1:])):
        assert not any("s3cret" in m for m in msgs), f"a password reached stderr: {msgs}"
    assert sqlite_state(workspace["store"]) == state, "the existing store changed"
    assert sqlite_state(workspace["fresh"]) is None, "search created its store although its input was bad"
    assert files_under(cwd) == set(), f"files appeared in the working directory: {files_under(cwd)}"


# ------------------------------------------------------------------------------ targeted cases
def test_search_bad_inputs_found_before_the_store_is_opened(workspace, tmp_path, monkeypatch):
    """Inputs that are only wrong against the outside world (here: `--resume` of a study that does
    not exist) must still be rejected before the store is created.

    Not tested: an unreachable `--address`. preflight opens (creates) the store before it joins
    Ray, and `ray.init(address="127.0.0.1:1")` keeps retrying for many minutes (Ray's GCS
    reconnect), so that case neither fails fast nor leaves the store untouched."""
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "never.db"
    doc = study_doc(f"sqlite:///{db}")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(doc))
    res = cli(["search", cfg, "--resume", "--no-live"])  # nothing to resume
    assert_user_error(res, "resume of a study that does not exist")
    assert sqlite_state(db) is None, "--resume of a missing study created the store"



@pytest.mark.slow
def test_real_subprocesses(workspace, tmp_path):
    """The same contract through real `hybrid-nas` processes (what a user's shell sees)."""
    bad_arch = tmp_path / "bad.yaml"
    bad_arch.write_text("name: x\nd_model: 64\nblocks:\n  - mixer: {type: attention, heads: 3}\n")
    tag = tmp_path / "tag.yaml"
    tag.write_text("!!python/object/apply:os.system ['touch pwned']\n")
    cfg = tmp_path / "c.yaml"
    doc = study_doc(f"sqlite:///{tmp_path / 'x.db'}")
    doc["objectives"] = ["quality", "no_such_metric"]
    cfg.write_text(yaml.safe_dump(doc))
    exe = [sys.executable, "-m", "orchestrator.cli"]
    cases = [["validate", bad_arch], ["show", tag], ["search", cfg],
             ["studies", "--storage", "postgresql+psycopg://postgres:s3cret@127.0.0.1:1/x"],
             ["trials", "s", "--storage", workspace["store_url"], "--sort", "bogus"]]
    env = {k: v for k, v in os.environ.items() if k not in ("HNAS_STORAGE", "RAY_ADDRESS")}
    for args in cases:
        p = subprocess.run(exe + [str(a) for a in args], capture_output=True, text=True, cwd=tmp_path, env=env,
                           timeout=120)
        lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
        assert p.returncode == 2, (args, p.stdout, p.stderr)
        assert "Traceback" not in p.stderr + p.stdout, (args, p.stderr)
        assert lines and all(ln.startswith("error: ") for ln in lines), (args, p.stderr)
        assert "s3cret" not in p.stderr + p.stdout
    assert not (tmp_path / "pwned").exists()
    assert not (tmp_path / "x.db").exists()
