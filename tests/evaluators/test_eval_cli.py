"""`hybrid-nas evaluate`: report, JSON, and user errors (exit 2, one line, no traceback)."""
import json

from click.testing import CliRunner

from orchestrator.cli import main

YAML = """name: tiny
d_model: 32
blocks:
  - mixer: {type: attention, heads: 2}
  - mixer: {type: attention, heads: 2}
"""


def test_evaluate_json_and_report(tmp_path):
    p = tmp_path / "a.yaml"
    p.write_text(YAML)
    r = CliRunner().invoke(main, ["evaluate", str(p), "--fidelity", "smoke", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["status"] == "complete" and d["fidelity"] == "smoke" and 0 <= d["metrics"]["quality"] <= 1
    r = CliRunner().invoke(main, ["evaluate", str(p), "--fidelity", "smoke", "--seed", "1"])
    assert r.exit_code == 0, r.output
    assert "quality score" in r.output and "kernel backends" in r.output and "complete" in r.output


def test_user_errors_exit_2(tmp_path):
    p = tmp_path / "a.yaml"
    p.write_text(YAML)
    for args, msg in [(["evaluate", str(tmp_path / "none.yaml")], "no such file"),
                      (["evaluate", str(p), "--fidelity", "fast"], "unknown preset 'fast'"),
                      (["evaluate", str(p), "--device", "tpu"], "--device"),
                      (["evaluate", str(p), "--max-seconds", "0"], "--max-seconds")]:
        r = CliRunner().invoke(main, args)
        assert r.exit_code == 2, (args, r.output)
        assert msg in r.output and "Traceback" not in r.output
    bad = tmp_path / "bad.yaml"
    bad.write_text(YAML.replace("heads: 2}\n  - mixer", "heads: 3}\n  - mixer", 1))
    r = CliRunner().invoke(main, ["evaluate", str(bad)])
    assert r.exit_code == 2 and "blocks[0].mixer.heads" in r.output


def test_failed_trial_exits_1(tmp_path):
    p = tmp_path / "a.yaml"
    p.write_text(YAML)
    r = CliRunner().invoke(main, ["evaluate", str(p), "--fidelity", "smoke", "--max-seconds", "0.01"])
    assert r.exit_code == 1 and "time limit exceeded" in r.output
