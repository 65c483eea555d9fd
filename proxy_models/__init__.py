"""proxy_models: every primitive as a causal PyTorch layer, assembled by `build_model`.

    from proxy_models import build_model
    model = build_model(arch, vocab_size)      # HybridLM
"""
from .model import HybridLM, build_model

__all__ = ["HybridLM", "build_model"]
