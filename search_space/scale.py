"""Scale an architecture to a target width/depth for export (`--scale d_model=1024,depth=24`).

Width: d_model changes; head counts are kept where they still divide d_model, otherwise the
per-head size is kept (heads = d_model / old head_dim). Depth: the block pattern (the list of
top-level items, repeats expanded) is tiled or truncated to `depth` items, keeping its order."""
from __future__ import annotations

from .errors import GenomeError
from .genome import Architecture, RecursionItem


def _rescale_mixer(m: dict, old_d: int, new_d: int) -> dict:
    m = dict(m)
    if "heads" in m and m.get("type") in ("attention", "retention"):
        heads = m["heads"]
        if new_d % heads or (new_d // heads) % 2:
            hd = old_d // heads
            m["heads"] = max(1, new_d // hd)
            if m.get("kv_heads"):
                ratio = heads // m["kv_heads"]
                m["kv_heads"] = max(1, m["heads"] // ratio)
    return m


def scale_architecture(arch: Architecture, d_model: int | None = None, depth: int | None = None) -> Architecture:
    data = arch.model_dump(mode="json")
    old_d = arch.d_model
    if d_model:
        data["d_model"] = d_model

        def fix_block(b):
            mx = b["mixer"]
            if "parallel" in mx:
                mx["parallel"] = [_rescale_mixer(m, old_d, d_model) for m in mx["parallel"]]
            else:
                b["mixer"] = _rescale_mixer(mx, old_d, d_model)
        for item in data["blocks"]:
            if "recursion" in item:
                for b in item["recursion"]["body"]:
                    fix_block(b)
            else:
                fix_block(item)
    if depth:
        items = []
        for item, orig in zip(data["blocks"], arch.blocks):
            if isinstance(orig, RecursionItem):
                items.append(item)
            else:
                items.extend([dict(item, repeat=1)] * orig.repeat)
        if depth < 1:
            raise GenomeError([("scale.depth", f"{depth} must be >= 1")])
        data["blocks"] = [items[i % len(items)] for i in range(depth)]
    data["name"] = f"{arch.name}@d{data['d_model']}x{len(data['blocks'])}"
    return Architecture.from_dict(data)
