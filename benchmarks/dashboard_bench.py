"""benchmarks/dashboard.py as an importable module, `bench`: that script's name is the dashboard
package's, so the scripts that reuse its serving and timing (dashboard_figures, dashboard_trace,
dashboard_revisions) load it by path, here, once."""
import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location("dashboard_bench_script", Path(__file__).with_name("dashboard.py"))
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)
