"""evaluators: synthetic tasks (MAD, MQAR), a real-text task, the trainer, fidelity presets,
measured efficiency, and `evaluate(arch, fidelity, device, seed) -> TrialResult`."""
from .evaluate import evaluate
from .fidelity import FIDELITIES, Fidelity

__all__ = ["evaluate", "FIDELITIES", "Fidelity"]
