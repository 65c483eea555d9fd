"""YAML in and out, safely.

Only `yaml.SafeLoader` (no Python objects), a size cap, and no anchors/aliases: an alias bomb
("billion laughs") is tiny on disk but explodes when validated, and architectures have `repeat`
for what aliases would be used for. Errors come back as `GenomeError` naming the file."""
from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from .errors import GenomeError, from_validation_error

MAX_BYTES = 1_000_000


class _NoAliasLoader(yaml.SafeLoader):
    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            ev = self.peek_event()
            raise GenomeError(f"YAML aliases are not allowed (line {ev.start_mark.line + 1})")
        ev = self.peek_event()
        if getattr(ev, "anchor", None):
            raise GenomeError(f"YAML anchors are not allowed (line {ev.start_mark.line + 1})")
        return super().compose_node(parent, index)


def parse_yaml_text(text: str, source: str | None = None) -> Any:
    if len(text) > MAX_BYTES:
        raise GenomeError(f"file is {len(text)} bytes; the limit is {MAX_BYTES}", source)
    try:
        return yaml.load(text, Loader=_NoAliasLoader)
    except GenomeError as e:
        raise e.with_source(source) if source else e
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise GenomeError(f"not valid YAML{where}: {problem}", source) from None
    except RecursionError:
        raise GenomeError("YAML nesting is too deep", source) from None


def load_yaml(path_or_text) -> tuple[Any, str | None]:
    """Accept a path (str/Path to an existing file) or YAML text; return (data, source name)."""
    if isinstance(path_or_text, Path) or (isinstance(path_or_text, str) and "\n" not in path_or_text
                                          and len(path_or_text) < 4096 and os.path.exists(path_or_text)):
        p = Path(path_or_text)
        src = str(p)
        try:
            if p.is_dir():
                raise GenomeError("is a directory, not a YAML file", src)
            st = p.stat()
            if not stat.S_ISREG(st.st_mode):
                # a FIFO would block the read, a device like /dev/zero never ends
                raise GenomeError("is not a regular file", src)
            if st.st_size > MAX_BYTES:
                raise GenomeError(f"file is {st.st_size} bytes; the limit is {MAX_BYTES}", src)
            with open(p, "rb") as f:
                raw = f.read(MAX_BYTES + 1)  # bounded even if the file grows after stat()
            if len(raw) > MAX_BYTES:
                raise GenomeError(f"file is over {MAX_BYTES} bytes, the limit", src)
        except OSError as e:
            raise GenomeError(f"cannot read: {e.strerror}", src) from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise GenomeError("not UTF-8 text", src) from None
        return parse_yaml_text(text, src), src
    if isinstance(path_or_text, (str, Path)) and not isinstance(path_or_text, Path):
        text = path_or_text
        if "\n" not in text and text.strip().endswith((".yaml", ".yml")) and not os.path.exists(text):
            raise GenomeError("no such file", text)
        return parse_yaml_text(text), None
    raise GenomeError(f"expected a path or YAML text, got {type(path_or_text).__name__}")


def validate_model(cls, data: Any, source: str | None = None, drop: frozenset[str] | None = None):
    """Validate a mapping into `cls`; errors become one GenomeError naming field paths. `drop` are
    location parts to leave out of paths (default: the genome's union tags; a space file passes
    an empty set because primitive names are keys its user wrote, e.g. `channel_mixers.none`)."""
    from .genome import UNION_TAGS
    drop = UNION_TAGS if drop is None else drop
    if not isinstance(data, dict):
        kind = "empty" if data is None else type(data).__name__
        raise GenomeError(f"expected a mapping at the top level, got {kind}", source)
    try:
        return cls.model_validate(data)
    except ValidationError as e:
        err = from_validation_error(e, drop)
        raise err.with_source(source) if source else err
    except GenomeError as e:
        raise e.with_source(source) if source else e
    except RecursionError:
        raise GenomeError("structure is nested too deeply", source) from None


class _Dumper(yaml.SafeDumper):
    pass


def _flow_leaf_mappings(dumper, data):
    # Leaf mappings (a primitive's parameters) read best on one line: {type: mamba2, d_state: 64}
    flow = all(not isinstance(v, (dict, list)) for v in data.values()) and len(data) <= 8
    return dumper.represent_mapping("tag:yaml.org,2002:map", data.items(), flow_style=flow)


def _flow_leaf_lists(dumper, data):
    flow = all(not isinstance(v, (dict, list)) for v in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_Dumper.add_representer(dict, _flow_leaf_mappings)
_Dumper.add_representer(list, _flow_leaf_lists)


def dump_yaml(data: Any) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=100)
