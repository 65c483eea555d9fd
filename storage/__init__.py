"""storage: one SQL store for studies, architectures, trials and their curves.

    from storage import Store
    store = Store("postgresql+psycopg://user@host/db")   # or None -> sqlite file hybrid-nas.db
    store.create_study("s1", config_yaml, [("quality", "maximize"), ("decode_tokens_per_s", "maximize")])
    store.start_trial("s1", 0, arch, fidelity="low", seed=0)
    store.finish_trial("s1", 0, result, constraints={"peak_memory_mib": -120.0})
    store.pareto_front("s1", [("quality", "maximize"), ("peak_memory_mib", "minimize")])

See `storage/store.py` for the API and docs/storage.md for the schema and design."""
from .errors import StoreError
from .frames import IncrementalTrials
from .store import (DEFAULT_URL, STUDY_STATUSES, TRIAL_STATUSES, Store, Study, StudySummary,
                    normalize_url)

__all__ = ["Store", "StoreError", "IncrementalTrials", "Study", "StudySummary", "DEFAULT_URL", "STUDY_STATUSES",
           "TRIAL_STATUSES", "normalize_url"]
