"""The search space: the genome (`Architecture`), primitive specs and their registry, YAML in and
out, fingerprints, analytic costs, and (in `space.py`) sampling and STAR-style operators.

No torch here: the dashboard and storage import this package."""
from .errors import GenomeError, UserError
from .genome import Architecture, Block, ParallelGroup, RecursionGroup, RecursionItem, BlockSite, RecursionSite, MixerSite
from .registry import CHANNEL_MIXERS, TOKEN_MIXERS
from .space import SearchSpace
from .operators import crossover, mutate

__all__ = ["Architecture", "Block", "ParallelGroup", "RecursionGroup", "RecursionItem", "BlockSite",
           "RecursionSite", "MixerSite", "GenomeError", "UserError", "TOKEN_MIXERS", "CHANNEL_MIXERS",
           "SearchSpace", "mutate", "crossover"]
