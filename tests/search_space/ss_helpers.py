"""Paths shared by the search-space tests."""
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SPACES = ROOT / "examples" / "spaces"
ARCHITECTURES = ROOT / "examples" / "architectures"
