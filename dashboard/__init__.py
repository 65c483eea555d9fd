"""The Streamlit dashboard: reads a store (`storage.Store`), shows Pareto fronts, search
progress, trials and architectures, and exports winners as YAML. Never imports torch or ray.

Serve it with `hybrid-nas dashboard --storage URL`; see docs/dashboard.md."""
