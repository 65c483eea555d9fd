"""A search submitted with `ray job submit` to a real two-node Ray cluster on loopback, with token
authentication on and PostgreSQL as the store.

Both nodes run on this machine (`ray start --head`, then `ray start --address`), each with one
CPU and its own ports, under a private temp dir and a per-test token (RAY_AUTH_MODE=token,
RAY_AUTH_TOKEN). Teardown ends exactly the processes of this cluster, found by its private temp
dir, by PID: `ray stop --force` would also stop other Ray instances on a shared machine."""
from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from storage import Store

from orch_helpers import study_config, write_config

pytestmark = [pytest.mark.slow, pytest.mark.ray, pytest.mark.postgres]

RAY = str(Path(sys.executable).with_name("ray"))


def _free_ports(n: int) -> list[int]:
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def _node_ports(p: list[int]) -> list[str]:
    return ["--node-manager-port", str(p[0]), "--object-manager-port", str(p[1]),
            "--dashboard-agent-listen-port", str(p[2]), "--dashboard-agent-grpc-port", str(p[3]),
            "--metrics-export-port", str(p[4]), "--runtime-env-agent-port", str(p[5])]


def _our_pids(marker: str) -> list[int]:
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            env = (d / "environ").read_bytes()
        except OSError:
            continue
        if marker in cmd or marker.encode() in env:
            pids.append(int(d.name))
    return pids


def _wait_port(port: int, timeout: float) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    raise AssertionError(f"port {port} did not open in {timeout:.0f} s")


@pytest.fixture
def loopback_cluster():
    tmp = Path(tempfile.mkdtemp(prefix="hn-ray-", dir="/tmp"))  # short: Ray's socket paths are limited
    marker = f"HN_TEST_CLUSTER={tmp.name}"
    token = secrets.token_hex(32)
    env = dict(os.environ, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token, HN_TEST_CLUSTER=tmp.name,
               HYBRID_NAS_RAY_RESULTS=str(tmp / "tune"), RAY_USAGE_STATS_ENABLED="0")
    env.pop("RAY_ADDRESS", None)
    gcs, dash, client, *rest = _free_ports(15)
    head = [RAY, "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(gcs), "--num-cpus", "1",
            "--num-gpus", "0", "--include-dashboard", "true", "--dashboard-host", "127.0.0.1",
            "--dashboard-port", str(dash), "--ray-client-server-port", str(client), "--temp-dir", str(tmp),
            "--disable-usage-stats", *_node_ports(rest[:6])]
    worker = [RAY, "start", "--address", f"127.0.0.1:{gcs}", "--node-ip-address", "127.0.0.1",
              "--num-cpus", "1", "--num-gpus", "0", "--disable-usage-stats", *_node_ports(rest[6:12])]
    try:
        for cmd in (head, worker):
            r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
            assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
        _wait_port(dash, 120)
        yield {"dashboard": f"http://127.0.0.1:{dash}", "gcs": f"127.0.0.1:{gcs}", "env": env, "tmp": tmp}
    finally:
        pids = _our_pids(marker.split("=")[1])
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            time.sleep(2)


def test_ray_job_submit_two_nodes_postgres(loopback_cluster, postgres_url, tmp_path):
    c = loopback_cluster
    cfg = write_config(tmp_path, study_config(tmp_path, "sqlite:///unused.db", trials=4, concurrency=2,
                                              study="cluster", sampler="nsga2"))
    # the storage URL goes on the command line (a flag overrides the file)
    cmd = [RAY, "job", "submit", "--address", c["dashboard"], "--",
           "hybrid-nas", "search", str(cfg), "--storage", postgres_url, "--no-live"]
    r = subprocess.run(cmd, env=c["env"], capture_output=True, text=True, timeout=540)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-4000:]
    assert "succeeded" in out
    assert "Pareto front of cluster" in out and "hybrid-nas dashboard --storage" in out

    store = Store(postgres_url, create=False)
    frame = store.trials_frame("cluster")
    assert sorted(frame["number"]) == [0, 1, 2, 3]
    assert set(frame["status"]) == {"complete"}, list(frame["error"])
    assert frame["node"].nunique() == 2, f"trials ran on {set(frame['node'])}, expected both nodes"
    assert store.get_study("cluster").status == "complete"

    # without the token, the cluster refuses the client (auth stays on)
    env = {k: v for k, v in c["env"].items() if k not in ("RAY_AUTH_TOKEN",)}
    env["RAY_AUTH_TOKEN_PATH"] = str(tmp_path / "no-token")
    (tmp_path / "no-token").write_text("0" * 64)
    bad = subprocess.run([RAY, "job", "list", "--address", c["dashboard"]], env=env,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0
