"""The `hybrid-nas` command: a thin click group.

Each area keeps its commands in `orchestrator/commands/<area>.py` and they are imported only when
invoked, so `hybrid-nas validate` never pays for importing torch or ray. User mistakes
(`UserError`) become one line per problem on stderr and exit code 2, never a traceback."""
from __future__ import annotations

import importlib
import sys

import click

from search_space.errors import UserError

# command name -> (module, attribute)
COMMANDS = {
    "validate": ("orchestrator.commands.space", "validate"),
    "show": ("orchestrator.commands.space", "show"),
    "sample": ("orchestrator.commands.space", "sample"),
    "evaluate": ("orchestrator.commands.evaluate", "evaluate"),
    "studies": ("orchestrator.commands.store", "studies"),
    "trials": ("orchestrator.commands.store", "trials"),
    "search": ("orchestrator.commands.search", "search"),
    "export": ("orchestrator.commands.export", "export"),
    "dashboard": ("orchestrator.commands.dashboard", "dashboard"),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        mod, attr = COMMANDS[name]
        try:
            return getattr(importlib.import_module(mod), attr)
        except (ImportError, AttributeError) as e:  # an area not built yet must not break the others
            @click.command(name=name, help=f"(unavailable: {e})")
            def _missing():
                raise click.ClickException(f"'{name}' is unavailable: {e}")
            return _missing

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except UserError as e:
            for line in e.lines():
                click.echo(f"error: {line}", err=True)
            ctx.exit(2)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="hybrid-nas")
def main():
    """Search hybrid language-model architectures."""


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
