"""Errors a user can cause: each problem names the field path (`blocks[3].mixer.heads`).

`GenomeError` is deliberately *not* a ValueError: pydantic wraps ValueErrors raised inside
validators into its own ValidationError (losing our paths), while other exceptions pass through
untouched. The CLI turns it into one line per problem and exit code 2.
"""
from __future__ import annotations

import re


class UserError(Exception):
    """Base of every error a user's input can cause (bad file, bad flag, bad URL, unreachable
    server). The CLI prints it as one line per problem and exits with code 2; anything else is a
    bug and keeps its traceback."""

    def lines(self) -> list[str]:
        return [str(self)]


class GenomeError(UserError):
    def __init__(self, problems: list[tuple[str, str]] | str, source: str | None = None):
        if isinstance(problems, str):
            problems = [("", problems)]
        self.problems = list(problems)
        self.source = source
        super().__init__(str(self))

    def lines(self) -> list[str]:
        out = []
        for path, msg in self.problems:
            head = f"{self.source}: " if self.source else ""
            out.append(f"{head}{path}: {msg}" if path else f"{head}{msg}")
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def with_source(self, source: str) -> "GenomeError":
        return GenomeError(self.problems, source)


def format_loc(loc: tuple, drop: frozenset[str] = frozenset()) -> str:
    """('blocks', 1, 'mixer', 'parallel', 0, 'heads') -> 'blocks[1].mixer.parallel[0].heads'.

    Union tags that pydantic inserts into locations (our discriminator tags) are dropped so the
    path is the one the user wrote in YAML."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in drop:
            continue
        else:
            # a key with control characters ("\r", "\n") would break the one-line message
            text = str(part) if str(part).isprintable() else repr(str(part))
            out += ("." if out else "") + text
    return out


_UNION_MEMBER = re.compile(r"^(int|float|str|bool|literal\[.*\]|list\[.*\]|dict\[.*\]|"
                           r"nullable\[.*\]|function-[a-z]+\[.*\]|constrained-.*)$")


def from_validation_error(err, drop: frozenset[str] = frozenset()) -> GenomeError:
    problems = []
    for e in err.errors(include_url=False):
        msg = e.get("msg", "invalid")
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        inp = e.get("input")
        # members of plain unions (`int | Literal['auto']`) show up as 'int', "literal['auto']"
        loc = tuple(p for p in e["loc"] if not (isinstance(p, str) and _UNION_MEMBER.match(p)))
        if e.get("type") == "union_tag_invalid":
            ctx = e.get("ctx", {})
            msg = f"unknown type {ctx.get('tag')!r} (expected one of {ctx.get('expected_tags')})"
            loc = loc + ("type",)
        elif e.get("type") == "union_tag_not_found":
            msg = "needs a 'type' field"
        elif e.get("type") in ("extra_forbidden",):
            msg = "unknown field"
        elif e.get("type") in ("missing",):
            msg = "required field is missing"
        elif e.get("type") not in ("value_error", "assertion_error") and not isinstance(inp, (dict, list)):
            r = repr(inp)
            msg = f"{msg} (got {r[:60]})"
        problems.append((format_loc(loc, drop), msg))
    # pydantic reports every failed union member; keep the first message per path.
    seen, uniq = set(), []
    for p in problems:
        if p[0] not in seen:
            seen.add(p[0])
            uniq.append(p)
    return GenomeError(uniq)
