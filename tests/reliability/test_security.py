"""Fault 7, security, as tests that fail when a promise breaks:

- YAML only through the safe loader: a static scan (every `yaml.load*` call names a SafeLoader
  subclass; no FullLoader/UnsafeLoader/unsafe_load anywhere), and a `!!python/object` payload fed
  to every YAML entry point (library loaders, each CLI command, a study config stored in the
  database and read back by `--resume`, an architecture row read back by the dashboard's export).
- Nothing from the store is unpickled: no pickle/cloudpickle/dill/PickleType/read_pickle in
  storage/, dashboard/ or orchestrator/, and no column of the schema is a PickleType.
- SQL only with bound parameters: no f-string, `%` or `.format` SQL reaches `text()`/`execute()`
  (an interpolation of `int(...)` is allowed: it cannot carry SQL), and a study named
  `x'; DROP TABLE hnas_trials; --` goes through the Store API and the CLI (SQLite and PostgreSQL)
  as an ordinary name.
- The dashboard binds to 127.0.0.1 by default (checked on the real server's socket) and has no
  write path: no Store write method is referenced in dashboard/, and every page renders against a
  PostgreSQL role that may only SELECT, and against a SQLite file whose contents stay identical.
- Ray token authentication stays on: nothing in the repository sets RAY_AUTH_MODE=disabled, the
  embedded Ray the orchestrator starts runs in token mode, and a client without the token is refused.
- Database passwords never appear in CLI errors, the stored study config, the dashboard's pages
  or its exported files (a search run with a password URL is checked in test_search_faults.py).
"""
from __future__ import annotations

import ast
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml

from .helpers import EXAMPLES, REPO, assert_user_error, cli, sqlite_state

PACKAGES = ("search_space", "proxy_models", "evaluators", "orchestrator", "dashboard", "storage")
PASSWORD = "s3cret"
INJECTION = "x'; DROP TABLE hnas_trials; --"


def project_files(packages=PACKAGES) -> list[Path]:
    out = []
    for pkg in packages:
        out += sorted((REPO / pkg).rglob("*.py"))
    bench = REPO / "benchmarks"
    if packages == PACKAGES and bench.exists():
        out += sorted(bench.rglob("*.py"))
    return out


def _dotted(node) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


# ------------------------------------------------------------------------------ YAML
UNSAFE_YAML = {"yaml.unsafe_load", "yaml.unsafe_load_all", "yaml.full_load", "yaml.full_load_all",
               "yaml.Loader", "yaml.FullLoader", "yaml.UnsafeLoader", "yaml.CLoader", "yaml.CFullLoader",
               "yaml.CUnsafeLoader"}


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(REPO).with_suffix("").parts)


def test_yaml_only_through_safe_loaders():
    problems = []
    for f in project_files():
        tree = ast.parse(f.read_text(), str(f))
        rel = f.relative_to(REPO)
        for node in ast.walk(tree):
            name = _dotted(node) if isinstance(node, (ast.Attribute, ast.Name)) else ""
            if name in UNSAFE_YAML:
                problems.append(f"{rel}:{node.lineno}: uses {name}")
            if isinstance(node, ast.ImportFrom) and node.module == "yaml":
                for a in node.names:
                    if f"yaml.{a.name}" in UNSAFE_YAML or a.name in ("load", "load_all"):
                        problems.append(f"{rel}:{node.lineno}: imports {a.name} from yaml")
            if not (isinstance(node, ast.Call) and _dotted(node.func) in ("yaml.load", "yaml.load_all")):
                continue
            loader = next((k.value for k in node.keywords if k.arg == "Loader"),
                          node.args[1] if len(node.args) > 1 else None)
            if loader is None:
                problems.append(f"{rel}:{node.lineno}: yaml.load without a Loader")
                continue
            lname = _dotted(loader)
            if lname in ("yaml.SafeLoader", "yaml.CSafeLoader"):
                continue
            # a loader class defined in the module: it must be a SafeLoader subclass
            import importlib
            mod = importlib.import_module(_module_name(f))
            obj = getattr(mod, lname, None) if "." not in lname else None
            if not (isinstance(obj, type) and issubclass(obj, yaml.SafeLoader)):
                problems.append(f"{rel}:{node.lineno}: yaml.load with Loader={lname or ast.dump(loader)}")
    assert not problems, "\n".join(problems)


PAYLOADS = [
    "!!python/object/apply:os.system ['touch {marker}']\n",
    "name: !!python/object/apply:os.system ['touch {marker}']\nd_model: 64\nblocks: []\n",
    "!!python/object/new:os.system [touch {marker}]\n",
    "study: x\nspace: !!python/object/apply:subprocess.check_call [[touch, {marker}]]\n",
]


@pytest.fixture
def marker(tmp_path):
    m = tmp_path / "pwned"
    yield m
    assert not m.exists(), "a YAML payload ran code"


def test_yaml_payload_library_entry_points(marker):
    from orchestrator.config import load_config
    from search_space import Architecture
    from search_space.errors import UserError
    from search_space.space import SearchSpace
    from search_space.yaml_io import load_yaml, parse_yaml_text
    for text in PAYLOADS:
        text = text.format(marker=marker)
        for fn in (parse_yaml_text, load_yaml, Architecture.from_yaml, SearchSpace.from_yaml, load_config):
            with pytest.raises(UserError) as e:
                fn(text)
            assert "python/object" in str(e.value) or "tag" in str(e.value).lower() or "could not determine" in \
                str(e.value).lower(), (fn, str(e.value))


def test_yaml_payload_cli_entry_points(marker, tmp_path):
    arch = tmp_path / "arch.yaml"
    arch.write_text((EXAMPLES / "architectures" / "transformer.yaml").read_text())
    for i, text in enumerate(PAYLOADS):
        p = tmp_path / f"p{i}.yaml"
        p.write_text(text.format(marker=marker))
        for args in (["validate", p], ["validate", "--kind", "space", p], ["show", p], ["sample", p],
                     ["validate", arch, "--space", p], ["evaluate", p], ["search", p, "--no-live"]):
            assert_user_error(cli(args), repr(args))


def test_yaml_payload_from_the_store(marker, tmp_path):
    """A tampered database: a study config and an architecture row holding a payload. `--resume
    STUDY` (which reads the stored config) and the dashboard's export (which parses stored
    architectures) must refuse them without running anything."""
    from sqlalchemy import select, update

    from dashboard.export import items_from_store
    from search_space import Architecture
    from search_space.result import TrialResult
    from storage import Store
    from storage.models import architectures, trials

    url = f"sqlite:///{tmp_path / 'store.db'}"
    payload = PAYLOADS[0].format(marker=marker)
    with Store(url) as s:
        s.create_study("evil", payload, [("quality", "maximize")])
        s.start_trial("evil", 0, Architecture.from_yaml(EXAMPLES / "architectures" / "transformer.yaml"))
        s.finish_trial("evil", 0, TrialResult(status="complete", metrics={"quality": 0.1}))
        with s._engine().begin() as conn:
            aid = conn.execute(select(trials.c.architecture_id)).scalar_one()
            conn.execute(update(architectures).where(architectures.c.id == aid).values(yaml=payload))
        items, problems = items_from_store(s, "evil", [0], ["quality"])
        assert items == [] and len(problems) == 1, (items, problems)
    assert_user_error(cli(["search", "--resume", "evil", "--storage", url, "--no-live"]), "resume tampered config")


# ------------------------------------------------------------------------------ pickle
PICKLE_RE = re.compile(r"\b(pickle|cPickle|cloudpickle|dill|PickleType|read_pickle|joblib\.load|torch\.load|"
                       r"marshal\.loads|shelve)\b")


def test_nothing_from_the_store_is_unpickled():
    problems = []
    for f in project_files(("storage", "dashboard", "orchestrator")):
        for i, line in enumerate(f.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if PICKLE_RE.search(code):
                problems.append(f"{f.relative_to(REPO)}:{i}: {line.strip()}")
    assert not problems, "\n".join(problems)
    from sqlalchemy import PickleType

    from storage.models import Base
    for table in Base.metadata.tables.values():
        for col in table.columns:
            assert not isinstance(col.type, PickleType), f"{table.name}.{col.name} is a PickleType"


# ------------------------------------------------------------------------------ SQL
SQL_SINKS = {"text", "sqlalchemy.text", "sa.text", "execute", "exec_driver_sql", "executescript", "executemany"}


def _unsafe_sql_arg(node) -> str | None:
    if isinstance(node, ast.JoinedStr):
        for v in node.values:
            if isinstance(v, ast.FormattedValue):
                inner = v.value
                if not (isinstance(inner, ast.Call) and _dotted(inner.func) in ("int", "float")):
                    return "f-string interpolating " + ast.unparse(inner)
        return None
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mod, ast.Add)):
        if any(isinstance(x, (ast.Constant, ast.JoinedStr)) and (not isinstance(x, ast.Constant) or isinstance(x.value, str))
               for x in (node.left, node.right)):
            return "string built with " + type(node.op).__name__
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format":
        return "str.format"
    return None


def test_sql_only_with_bound_parameters():
    problems = []
    for f in project_files():
        tree = ast.parse(f.read_text(), str(f))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            fname = node.func.attr if isinstance(node.func, ast.Attribute) else _dotted(node.func)
            if fname not in SQL_SINKS:
                continue
            why = _unsafe_sql_arg(node.args[0])
            if why:
                problems.append(f"{f.relative_to(REPO)}:{node.lineno}: {fname}({why})")
    assert not problems, "\n".join(problems)


def _tables(url: str) -> set[str]:
    from sqlalchemy import create_engine, inspect
    e = create_engine(url)
    try:
        return set(inspect(e).get_table_names())
    finally:
        e.dispose()


def test_sql_injection_study_name_store_and_cli(db_url):
    from search_space import Architecture
    from search_space.result import TrialResult
    from storage import Store

    arch = Architecture.from_yaml(EXAMPLES / "architectures" / "mamba2.yaml")
    with Store(db_url) as s:
        s.create_study(INJECTION, "", [("quality", "maximize"), ("params_total", "minimize")])
        s.create_study("other", "", [("quality", "maximize")])
        for n in range(3):
            s.start_trial(INJECTION, n, arch, fidelity="smoke")
            s.finish_trial(INJECTION, n, TrialResult(status="complete", metrics={"quality": 0.1 * n}))
        tables = _tables(s.url.render_as_string(hide_password=False))
        assert {"hnas_trials", "hnas_studies"} <= tables
        assert s.count_trials(INJECTION) == 3
        assert s.count_trials("other") == 0
        assert [x.name for x in s.list_studies()].count(INJECTION) == 1
        assert len(s.trials_frame(INJECTION)) == 3
        assert len(s.pareto_front(INJECTION, [("quality", "maximize"), ("params_total", "minimize")])) >= 1
        assert s.trial(INJECTION, 2)["metrics"]["quality"] == pytest.approx(0.2)
        for bad in ("x' OR '1'='1", "x\"; DROP TABLE hnas_studies; --", "%", "_", "' UNION SELECT 1 --"):
            with pytest.raises(Exception) as e:
                s.count_trials(bad)
            assert "no study named" in str(e.value)
    res = cli(["trials", INJECTION, "--storage", db_url])
    assert res.exit_code == 0, res.stderr
    assert "M2" in res.stdout or "mamba" in res.stdout.lower() or "complete" in res.stdout
    res = cli(["studies", "--storage", db_url], env={"COLUMNS": "400"})
    assert res.exit_code == 0 and INJECTION in res.stdout, res.stdout
    assert_user_error(cli(["trials", "y'; DROP TABLE hnas_studies; --", "--storage", db_url]), "unknown study")
    assert_user_error(cli(["trials", INJECTION, "--storage", db_url, "--sort", "number; DROP TABLE hnas_trials"]),
                      "sort injection")
    # the config's name pattern refuses it outright
    cfg = yaml.safe_load((EXAMPLES / "search" / "cpu-quickstart.yaml").read_text())
    cfg["storage"], cfg["study"] = db_url, INJECTION
    cfg["space"] = str(EXAMPLES / "spaces" / "small.yaml")
    p = Path(os.environ.get("TMPDIR", "/tmp")) / f"inj-{uuid.uuid4().hex[:8]}.yaml"
    p.write_text(yaml.safe_dump(cfg))
    try:
        assert_user_error(cli(["search", p, "--no-live"]), "injection as --study")
    finally:
        p.unlink()
    assert {"hnas_trials", "hnas_studies"} <= _tables(db_url if "://" in db_url else f"sqlite:///{db_url}")
    with Store(db_url) as s:
        assert s.count_trials(INJECTION) == 3


# ------------------------------------------------------------------------------ dashboard
STORE_WRITES = ("create_study", "start_trial", "finish_trial", "record_trial_failure", "add_curve_points",
                "set_study_status", "delete_study", "upsert_architecture", "_write", "_upsert_trial",
                "_upsert_arch", "_upsert_points", "_bump")
TABLES = ("studies", "trials", "architectures", "curves")


def test_dashboard_has_no_write_path_static():
    problems = []
    for f in project_files(("dashboard",)):
        if f.name == "synthetic.py":  # test/benchmark seeding, not imported by the app (checked below)
            continue
        tree = ast.parse(f.read_text(), str(f))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in STORE_WRITES:
                problems.append(f"{f.relative_to(REPO)}:{node.lineno}: .{node.attr}")
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy"):
                for a in node.names:
                    if a.name in ("insert", "update", "delete", "text"):
                        problems.append(f"{f.relative_to(REPO)}:{node.lineno}: imports sqlalchemy {a.name}")
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("insert", "update", "delete")
                    and _dotted(node.func.value).split(".")[-1] in TABLES):
                problems.append(f"{f.relative_to(REPO)}:{node.lineno}: {ast.unparse(node.func)}(...)")
        for i, line in enumerate(f.read_text().splitlines(), 1):
            if "hnas_write" in line:
                problems.append(f"{f.relative_to(REPO)}:{i}: {line.strip()}")
    assert not problems, "\n".join(problems)
    for f in project_files(("dashboard",)):
        if f.name != "synthetic.py":
            assert "synthetic" not in f.read_text().replace("dashboard.synthetic", "synthetic"), f


def _walk_text(at) -> str:
    """Every string the app rendered (markdown, code, captions, charts, tables, messages)."""
    parts = []

    def walk(node):
        proto = getattr(node, "proto", None)
        if proto is not None:
            parts.append(str(proto))
        for child in getattr(node, "children", {}).values():
            walk(child)
    walk(at._tree)
    return "\n".join(parts)


def _visit_every_page(url: str, study: str) -> list[str]:
    """Render each page of the app (real AppTest) and return what it showed."""
    from streamlit.testing.v1 import AppTest
    app = str(REPO / "dashboard" / "app.py")
    old = os.environ.get("HYBRID_NAS_STORAGE")
    os.environ["HYBRID_NAS_STORAGE"] = url
    shown = []
    try:
        at = AppTest.from_file(app, default_timeout=180)
        at.run()
        assert not at.exception, at.exception
        for view in ("pareto", "progress", "trials", "trial", "compare"):
            at.session_state["view"] = view
            at.run()
            assert not at.exception, (view, at.exception)
            errors = [e.value for e in at.error]
            assert not errors, (view, errors)
            shown.append(_walk_text(at))
    finally:
        if old is None:
            os.environ.pop("HYBRID_NAS_STORAGE", None)
        else:
            os.environ["HYBRID_NAS_STORAGE"] = old
    return shown


@pytest.mark.slow
@pytest.mark.postgres
def test_dashboard_read_only_role_and_no_password_shown(postgres_url, _postgres_admin, tmp_path):
    """Every page renders for a PostgreSQL role that can only SELECT (so no write can hide in a
    page), the store URL carries a password, and no page or export shows it."""
    from sqlalchemy.engine import make_url

    from dashboard.export import export_download, items_from_store
    from dashboard.synthetic import seed_study
    from storage import Store

    with Store(postgres_url) as s:
        seed_study(s, "ro", 12, seed=3, running=1)
    _, admin = _postgres_admin
    role = f"hnas_ro_{uuid.uuid4().hex[:8]}"
    db = make_url(postgres_url).database
    import psycopg
    admin.execute(f'CREATE ROLE "{role}" LOGIN PASSWORD \'{PASSWORD}\'')
    try:
        u = make_url(postgres_url)
        with psycopg.connect(u.set(drivername="postgresql").render_as_string(hide_password=False),
                             autocommit=True) as c:
            c.execute(f'GRANT CONNECT ON DATABASE "{db}" TO "{role}"')
            c.execute(f'GRANT USAGE ON SCHEMA public TO "{role}"')
            c.execute(f'GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{role}"')
        ro_url = u.set(username=role, password=PASSWORD).render_as_string(hide_password=False)
        # the role really cannot write
        with pytest.raises(Exception, match="permission denied"):
            Store(ro_url).set_study_status("ro", "paused")
        pages = _visit_every_page(ro_url, "ro")
        for page in pages:
            assert PASSWORD not in page
        assert any(role in p for p in pages), "the masked store URL (with the user name) should be shown"
        s = Store(ro_url, create=False)
        items, problems = items_from_store(s, "ro", [0, 1, 2, 3], ["quality"])
        assert items
        dl = export_download(items, ro_url, "pareto")
        assert PASSWORD.encode() not in dl.data
        import io
        import zipfile
        if dl.filename.endswith(".zip"):
            with zipfile.ZipFile(io.BytesIO(dl.data)) as z:
                for n in z.namelist():
                    assert PASSWORD.encode() not in z.read(n)
        s.close()
    finally:
        with psycopg.connect(make_url(postgres_url).set(drivername="postgresql").render_as_string(
                hide_password=False), autocommit=True) as c:
            c.execute(f'REVOKE ALL ON ALL TABLES IN SCHEMA public FROM "{role}"')
            c.execute(f'REVOKE ALL ON SCHEMA public FROM "{role}"')
            c.execute(f'REVOKE ALL ON DATABASE "{db}" FROM "{role}"')
        admin.execute(f'DROP ROLE IF EXISTS "{role}"')


@pytest.mark.slow
def test_dashboard_pages_leave_sqlite_store_unchanged(tmp_path):
    from dashboard.synthetic import seed_study
    from storage import Store
    db = tmp_path / "store.db"
    with Store(f"sqlite:///{db}") as s:
        seed_study(s, "demo", 10, seed=1, running=1)
    before = sqlite_state(db)
    _visit_every_page(f"sqlite:///{db}", "demo")
    assert sqlite_state(db) == before


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port: int) -> list[str]:
    """Local addresses with a listening TCP socket on `port` (from /proc/net/tcp and tcp6)."""
    out = []
    for fname in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(fname).read_text().splitlines()[1:]
        except OSError:
            continue
        for ln in lines:
            f = ln.split()
            addr, state = f[1], f[3]
            host, p = addr.rsplit(":", 1)
            if state == "0A" and int(p, 16) == port:
                if len(host) == 8:
                    out.append(socket.inet_ntoa(bytes.fromhex(host)[::-1]))
                else:
                    out.append(host)
    return out


@pytest.mark.slow
def test_dashboard_binds_to_localhost_by_default(tmp_path):
    from dashboard.synthetic import seed_study
    from storage import Store
    db = tmp_path / "store.db"
    with Store(f"sqlite:///{db}") as s:
        seed_study(s, "demo", 4, seed=1, running=0)
    port = _free_port()
    env = dict(os.environ, HOME=str(tmp_path))  # Streamlit writes ~/.streamlit; keep it out of the real home
    p = subprocess.Popen([sys.executable, "-m", "orchestrator.cli", "dashboard", "--storage",
                          f"sqlite:///{db}", "--port", str(port)], cwd=tmp_path, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not _listening(port):
            assert p.poll() is None, p.stdout.read()
            time.sleep(0.5)
        addrs = _listening(port)
        assert addrs == ["127.0.0.1"], addrs
        import urllib.request
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=30).read()
        assert body.strip() == b"ok"
    finally:
        os.killpg(p.pid, 15)
        try:
            out, _ = p.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, 9)
            out, _ = p.communicate()
    assert "Traceback" not in out


# ------------------------------------------------------------------------------ Ray auth
def test_nothing_disables_ray_token_auth():
    pat = re.compile(r"RAY_AUTH_MODE[\"'\s]*[=:,]\s*[\"']?disabled", re.I)
    problems = []
    for f in REPO.rglob("*"):
        if not f.is_file() or ".git" in f.parts or f.suffix not in (".py", ".yaml", ".yml", ".toml", ".sh", ".md",
                                                                     ".cfg", ".ini", ".json", ".txt", ""):
            continue
        if f.resolve() == Path(__file__).resolve() or "reliability" in f.name and f.suffix == ".md":
            continue
        try:
            text = f.read_text()
        except (UnicodeDecodeError, OSError):
            continue
        for i, line in enumerate(text.splitlines(), 1):
            if pat.search(line):
                problems.append(f"{f.relative_to(REPO)}:{i}: {line.strip()}")
    assert not problems, "\n".join(problems)


RAY_AUTH_PROBE = r"""
import os, subprocess, sys, time
os.environ.pop("RAY_AUTH_MODE", None)
from orchestrator.search import init_ray
import ray
assert init_ray(None, 1)
from ray._private.authentication.authentication_utils import is_token_auth_enabled
print("TOKEN_AUTH", is_token_auth_enabled(), flush=True)
addr = ray.get_runtime_context().gcs_address
env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
env["RAY_AUTH_MODE"] = "disabled"
p = subprocess.run([sys.executable, "-c", f"import ray; ray.init(address={addr!r}); print('CONNECTED')"],
                   env=env, capture_output=True, text=True, timeout=150)
print("CLIENT_RC", p.returncode, "CONNECTED" in p.stdout, flush=True)
ray.shutdown()
"""


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_embedded_ray_uses_token_auth_and_refuses_clients_without_it(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH") and k != "RAY_ADDRESS"}
    p = subprocess.run([sys.executable, "-c", RAY_AUTH_PROBE], capture_output=True, text=True, env=env,
                       cwd=tmp_path, timeout=280)
    assert "TOKEN_AUTH True" in p.stdout, p.stdout + p.stderr[-3000:]
    m = re.search(r"CLIENT_RC (-?\d+) (True|False)", p.stdout)
    assert m, p.stdout + p.stderr[-3000:]
    assert m.group(1) != "0" and m.group(2) == "False", "a client without the token joined the cluster"


# ------------------------------------------------------------------------------ passwords
PW_URL_BAD_PORT = f"postgresql+psycopg://postgres:{PASSWORD}@127.0.0.1:1/test"


def test_password_not_in_cli_errors(tmp_path):
    for args in (["studies", "--storage", PW_URL_BAD_PORT],
                 ["trials", "s", "--storage", PW_URL_BAD_PORT],
                 ["studies", "--storage", f"mysql://root:{PASSWORD}@localhost/db"],
                 ["studies", "--storage", f"postgresql+asyncpg://u:{PASSWORD}@h/db"],
                 ["studies", "--storage", f"postgresql://u:{PASSWORD}@h"],
                 ["studies", "--storage", f"postgresql+psycopg://u:{PASSWORD}@[::1/x"],
                 ["dashboard", "--storage", f"mysql://u:{PASSWORD}@h/db"]):
        res = cli(args)
        msgs = assert_user_error(res, repr(args))
        assert PASSWORD not in res.stdout + res.stderr, (args, msgs)


def test_password_not_in_store_messages_or_repr():
    from storage import Store, StoreError
    s = Store(PW_URL_BAD_PORT, connect=False)
    assert PASSWORD not in repr(s)
    with pytest.raises(StoreError) as e:
        Store(PW_URL_BAD_PORT)
    assert PASSWORD not in str(e.value)


@pytest.mark.postgres
def test_password_not_in_stored_study_config(postgres_url, tmp_path):
    """The config a study keeps in the database (shown by the dashboard's progress page, read by
    `--resume STUDY`) must not carry the storage password."""
    from sqlalchemy.engine import make_url

    from orchestrator.config import load_config_data
    d = yaml.safe_load((EXAMPLES / "search" / "cpu-quickstart.yaml").read_text())
    d["space"] = str(EXAMPLES / "spaces" / "small.yaml")
    d["storage"] = make_url(postgres_url).set(password=PASSWORD).render_as_string(hide_password=False)
    cfg = load_config_data(d)
    assert PASSWORD not in cfg.to_yaml()
