"""Real text without a download: byte-level language modelling on Python standard-library sources.

Every machine with Python has them (`sysconfig.get_paths()["stdlib"]`). The corpus is a fixed
list of modules (`MODULES`, resolved as `name.py` or `name/__init__.py`; modules missing from
an interpreter are skipped and the used list is recorded). Each module goes to validation when
the first byte of sha256(module name) is below 26 (about 10%), so the split never depends on
the file's contents or on the Python version; the contents do differ between versions, so
compare bits per byte only between runs on the same interpreter (`corpus_id()` names it).

Training draws random windows from the concatenated training bytes (one `torch.Generator` on
the device); validation uses `eval_windows` windows spread evenly over the validation bytes,
the same for every trial. Vocabulary: the 256 byte values. Loaded once per process and kept on
each device it was asked for.
"""
from __future__ import annotations

import functools
import hashlib
import math
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import torch

VOCAB_SIZE = 256
VAL_THRESHOLD = 26  # of 256: ~10% of modules go to validation

MODULES = (
    "argparse", "ast", "base64", "bisect", "calendar", "cmd", "code", "codecs", "collections",
    "configparser", "contextlib", "copy", "csv", "dataclasses", "datetime", "difflib", "dis",
    "doctest", "email.message", "email.utils", "enum", "fractions", "ftplib", "functools",
    "getopt", "gettext", "glob", "gzip", "heapq", "hmac", "html.parser", "http.client",
    "http.server", "inspect", "ipaddress", "json.decoder", "json.encoder", "logging",
    "mailbox", "mimetypes", "numbers", "operator", "optparse", "os", "pathlib", "pdb", "pickle",
    "pprint", "queue", "random", "re._parser", "shlex", "shutil", "smtplib", "socket",
    "statistics", "string", "subprocess", "tarfile", "tempfile", "textwrap", "threading",
    "tokenize", "trace", "traceback", "typing", "unittest.case", "urllib.parse", "uuid",
    "warnings", "weakref", "zipfile",
)


def is_val(module: str) -> bool:
    return hashlib.sha256(module.encode()).digest()[0] < VAL_THRESHOLD


def _resolve(root: Path, module: str) -> Path | None:
    base = root.joinpath(*module.split("."))
    for p in (base.with_suffix(".py"), base / "__init__.py"):
        if p.is_file():
            return p
    return None


@dataclass(frozen=True)
class Corpus:
    train: bytes
    val: bytes
    train_modules: tuple[str, ...]
    val_modules: tuple[str, ...]

    @property
    def id(self) -> str:
        h = hashlib.sha256(self.train + b"\0" + self.val).hexdigest()[:12]
        return f"stdlib-py{sys.version_info[0]}.{sys.version_info[1]}-{h}"


@functools.lru_cache(maxsize=1)
def load_corpus() -> Corpus:
    root = Path(sysconfig.get_paths()["stdlib"])
    train, val, tm, vm = [], [], [], []
    for m in MODULES:
        p = _resolve(root, m)
        if p is None:
            continue
        (val if is_val(m) else train).append(p.read_bytes())
        (vm if is_val(m) else tm).append(m)
    if not val or not train:  # pragma: no cover - only with a gutted stdlib
        raise RuntimeError(f"standard library at {root} lacks the text corpus modules")
    return Corpus(b"\n".join(train), b"\n".join(val), tuple(tm), tuple(vm))


def corpus_id() -> str:
    return load_corpus().id


@functools.lru_cache(maxsize=8)
def _on_device(device: str) -> tuple[torch.Tensor, torch.Tensor]:
    c = load_corpus()
    to = lambda b: torch.frombuffer(bytearray(b), dtype=torch.uint8).to(device)
    return to(c.train), to(c.val)


@dataclass(frozen=True)
class TextTask:
    """Byte-level LM; `sample` returns (inputs_BT, targets_BT) like the synthetic tasks."""
    seq_len: int = 256
    eval_windows: int = 64
    name: str = "text"
    vocab_size: int = VOCAB_SIZE

    @property
    def input_len(self) -> int:
        return self.seq_len

    def check(self):
        if self.seq_len < 2:
            raise ValueError(f"seq_len {self.seq_len} must be >= 2")

    def sample(self, n: int, generator: torch.Generator, split: str = "train"):
        train, _ = _on_device(str(generator.device))
        T = self.seq_len
        start = torch.randint(0, train.numel() - T - 1, (n, 1), generator=generator, device=generator.device)
        idx = start + torch.arange(T + 1, device=generator.device)
        w = train[idx].long()
        return w[:, :-1], w[:, 1:]

    def val_batches(self, device, batch: int):
        """The fixed validation windows, in batches: evenly spaced over the validation bytes."""
        _, val = _on_device(str(device))
        T = self.seq_len
        n = min(self.eval_windows, max(1, (val.numel() - 1) // T))
        starts = torch.linspace(0, val.numel() - T - 1, n, device=device).long()
        for i in range(0, n, batch):
            idx = starts[i:i + batch, None] + torch.arange(T + 1, device=device)
            w = val[idx].long()
            yield w[:, :-1], w[:, 1:]


def bits_per_byte(mean_nats: float) -> float:
    return mean_nats / math.log(2)
