"""An architecture drawn as a Graphviz DOT graph (rendered by `st.graphviz_chart`).

Design choices:
- DOT rather than a hand-placed Plotly drawing: Graphviz lays out parallel branches and nested
  recursion groups itself, and Streamlit renders DOT in the browser with no Python graphviz
  package and no network.
- The drawing walks `arch.blocks` as the user wrote them (a `repeat: 8` block is one node marked
  `x8`, not eight nodes), and takes parameter counts from `search_space.costs` via `layout()`, so
  the numbers on the diagram are the ones the search optimised.
- Parallel branches fan out from the block input and meet at a combiner node; a recursion group
  is a cluster with its router and a dashed back-edge labelled with the maximum depth; blocks
  sharing weights carry the key in their label, a double border, and a dotted edge to the block
  that owns the weights.
- Colours per primitive come from `PRIMITIVE_COLORS`, the same palette the plots use.
"""
from __future__ import annotations

from search_space.costs import block_params
from search_space.genome import Architecture, Block, BlockSite, ParallelGroup, RecursionItem, RecursionSite

PRIMITIVE_COLORS = {
    "attention": "#4C78A8",
    "mamba1": "#F58518",
    "mamba2": "#E45756",
    "rwkv7": "#54A24B",
    "retention": "#B279A2",
    "swiglu": "#BAB0AC",
    "moe": "#9D755D",
    "none": "#FFFFFF",
}


def human(n: float) -> str:
    """12345678 -> '12.3M' (parameter counts on nodes and in hover text)."""
    n = float(n)
    for unit, div in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.3g}{unit}"
    return f"{n:.3g}"


def _esc(s: str) -> str:
    """Quote for a DOT string; real newlines become DOT's centred line break."""
    return s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _mixer_label(m) -> str:
    """One line of the parameters that matter for a primitive (heads, state size, window...)."""
    keys = {"attention": ("heads", "kv_heads", "window"), "mamba1": ("d_state", "expand"),
            "mamba2": ("d_state", "head_dim", "expand"), "rwkv7": ("head_dim",),
            "retention": ("heads",), "moe": ("experts", "top_k", "shared_experts"),
            "swiglu": ("expand",)}.get(m.type, ())
    parts = [f"{k}={getattr(m, k)}" for k in keys if getattr(m, k, None) is not None]
    return m.type + (f"\n{' '.join(parts)}" if parts else "")


class _Dot:
    def __init__(self):
        self.lines: list[str] = []
        # edges go after every cluster: an edge written inside a subgraph would pull both of its
        # nodes into that cluster
        self.edges: list[str] = []
        self.n = 0

    def node(self, label: str, color: str = "#FFFFFF", shape: str = "box", extra: str = "") -> str:
        self.n += 1
        name = f"n{self.n}"
        self.lines.append(f'{name} [label="{_esc(label)}" shape={shape} style="rounded,filled" '
                          f'fillcolor="{color}"{(" " + extra) if extra else ""}];')
        return name

    def edge(self, a: str, b: str, extra: str = "") -> None:
        self.edges.append(f"{a} -> {b}{f' [{extra}]' if extra else ''};")


def _block(dot: _Dot, b: Block, title: str, params: int, prev: str, share_owner: dict, owner_key: str | None) -> str:
    """Draw one block (token mixer, then channel mixer) after node `prev`; return its last node."""
    reuses = b.share is not None and b.share in share_owner
    head = title + (f"  x{b.repeat}" if b.repeat > 1 else "")
    head += f"  (reuses weights '{b.share}')" if reuses else f"  ({human(params)} params)"
    if b.share is not None and not reuses:
        head += f"\nowns shared weights '{b.share}'"
    border = ' peripheries=2 penwidth=2' if b.share is not None else ""
    dot.lines.append(f'subgraph cluster_{dot.n + 1} {{ label="{_esc(head)}" style="rounded{",bold" if b.share else ""}" labeljust=l '
                     f'color="{"#333333" if b.share else "#999999"}" fontsize=10;')
    if isinstance(b.mixer, ParallelGroup):
        split = dot.node("", shape="point", extra="width=0.08")
        dot.edge(prev, split)
        comb = dot.node(f"combine: {b.mixer.combine}", "#EEEEEE", shape="box", extra="fontsize=9")
        for m in b.mixer.parallel:
            mn = dot.node(_mixer_label(m), PRIMITIVE_COLORS.get(m.type, "#DDDDDD"), extra=border.strip())
            dot.edge(split, mn)
            dot.edge(mn, comb)
        last = comb
    else:
        m = b.mixer
        last = dot.node(_mixer_label(m), PRIMITIVE_COLORS.get(m.type, "#DDDDDD"), extra=border.strip())
        dot.edge(prev, last)
    first_mixer = last
    if b.channel.type != "none":
        ch = dot.node(_mixer_label(b.channel), PRIMITIVE_COLORS.get(b.channel.type, "#DDDDDD"), extra=border.strip())
        dot.edge(last, ch)
        last = ch
    dot.lines.append("}")
    if b.share is not None:
        if b.share in share_owner:
            # dotted, constraint=false: shows the tie without pulling the layout out of order
            dot.edge(first_mixer, share_owner[b.share], 'style=dotted dir=none constraint=false color="#333333" '
                                                        f'label="{_esc(b.share)}" fontsize=8')
        else:
            share_owner[b.share] = first_mixer
    return last


def architecture_dot(arch: Architecture, vocab_size: int | None = None) -> str:
    """DOT source drawing `arch` top to bottom: embedding, the items in order, LM head."""
    sites = arch.layout()
    by_item: dict[int, list] = {}
    for s in sites:
        i = int(s.path.split("[", 1)[1].split("]", 1)[0])
        by_item.setdefault(i, []).append(s)

    dot = _Dot()
    dot.lines += ["digraph architecture {", 'rankdir=TB; nodesep=0.25; ranksep=0.3;',
                  'node [fontname="Helvetica" fontsize=10 margin="0.08,0.04"]; edge [arrowsize=0.6];',
                  'graph [fontname="Helvetica"];']
    emb = f"embedding d={arch.d_model}" + (f" vocab={vocab_size}" if vocab_size else "")
    prev = dot.node(emb, "#F2F2F2")
    share_owner: dict[str, str] = {}
    for i, item in enumerate(arch.blocks):
        item_sites = by_item.get(i, [])
        if isinstance(item, RecursionItem):
            g = item.recursion
            rs: RecursionSite = item_sites[0]
            cap = f" capacity {', '.join(f'{c:g}' for c in g.capacity)}" if g.capacity else ""
            head = f"blocks[{i}]: recursion, up to {g.max_depth}x ({g.router}{cap})"
            dot.lines.append(f'subgraph cluster_r{i} {{ label="{_esc(head)}" style="dashed,rounded" color="#555555" fontsize=10 labeljust=l;')
            router = dot.node(f"router: {g.router}", "#FFF2CC", shape="hexagon", extra="fontsize=9")
            dot.edge(prev, router)
            cur = router
            for j, b in enumerate(g.body):
                p = sum(block_params(arch, s) for s in rs.body if s.path.split("#")[0] == f"blocks[{i}].recursion.body[{j}]")
                cur = _block(dot, b, f"body[{j}] {b.code}", p, cur, share_owner, None)
            # the back-edge: the body runs again for tokens the router sends deeper
            dot.edge(cur, router, f'style=dashed constraint=false label="depth <= {g.max_depth}" fontsize=8 color="#555555"')
            dot.lines.append("}")
            prev = cur
        else:
            p = sum(block_params(arch, s) for s in item_sites if isinstance(s, BlockSite) and s.owner)
            prev = _block(dot, item, f"blocks[{i}] {item.code}", p, prev, share_owner, None)
    tied = "tied" if arch.tie_embeddings else "untied"
    head = dot.node(f"{arch.norm} + LM head ({tied})", "#F2F2F2")
    dot.edge(prev, head)
    return "\n".join(dot.lines + dot.edges + ["}"])
