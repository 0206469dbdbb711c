"""The root group's machinery: sub-apps imported only when run, `--config` on every sub-command, and
options left unconverted while they are absent — so `gradesync … --help` imports nothing heavy."""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer
from typer.core import TyperCommand, TyperGroup, TyperOption

from cli.common import CONFIG_HELP, CliState

if TYPE_CHECKING:
    from typer._click.core import Command, Context
    from typer._click.formatting import HelpFormatter


@dataclass(frozen=True)
class LazySubcommand:
    target: str          # "package.module:attribute" — a typer.Typer or a click command
    help: str            # shown in `gradesync --help` without importing the module


class AbsentOption(TyperOption):
    """A Typer option that converts nothing when it was not given. Typer (0.2x) builds a pydantic
    TypeAdapter the first time an option's value is processed, even an absent one's None, and importing
    pydantic costs ~0.2 s: that happened for the options (`--config`, `--help`) of every group above a
    sub-command, on every `gradesync … --help`. A given value is converted exactly as before."""

    def process_value(self, ctx: "Context", value: Any) -> Any:
        if value is not None or self.required:
            return super().process_value(ctx, value)
        return self.callback(ctx, self, None) if self.callback is not None else None


class LightGroup(TyperGroup):
    """A Typer group whose absent single-valued options (its help option included) are AbsentOptions."""

    def get_params(self, ctx: "Context") -> list[Any]:
        params = super().get_params(ctx)
        for param in params:
            if type(param) is TyperOption and param.nargs == 1 and not param.multiple and not param.required:
                param.__class__ = AbsentOption
        return params


def _remember_config(ctx: typer.Context, value: Optional[str]) -> Optional[str]:
    if value:
        root = ctx.find_root()
        if root.obj is None:
            root.obj = CliState()
        root.obj.config = Path(value)
        root.obj._settings = None
    return value


def _config_parameter():
    """The `--config` option as a parameter object of this Typer (built the Typer way, then reused)."""
    probe = typer.Typer()

    @probe.command()
    def _probe(config: Optional[str] = typer.Option(None, "--config", "-c", metavar="PATH", help=CONFIG_HELP,
                                                    expose_value=False, is_eager=True,
                                                    callback=_remember_config)) -> None: ...

    return typer.main.get_command(probe).params[0]


def with_config_option(cmd: "Command") -> "Command":
    """Give `cmd` (and every command under it) a `--config PATH` option that sets the root's config, so
    `gradesync import --config X DIR` means `gradesync --config X import DIR`. Commands that declare their
    own `config` parameter keep theirs (they read the root's as a fallback)."""
    for sub in (getattr(cmd, "commands", None) or {}).values():
        with_config_option(sub)
    if not any(p.name == "config" for p in cmd.params):
        cmd.params.append(_config_parameter())
    if type(cmd) is TyperGroup:
        cmd.__class__ = LightGroup      # same group; its absent options stay unconverted (see AbsentOption)
    return cmd


class LazyGroup(LightGroup):
    """A Typer group that imports its `subcommands` only when one is run (or its own --help is asked)."""

    subcommands: dict[str, LazySubcommand] = {}
    _listing = False

    def list_commands(self, ctx: "Context") -> list[str]:
        return list(super().list_commands(ctx)) + [n for n in self.subcommands if n not in self.commands]

    def get_command(self, ctx: "Context", cmd_name: str) -> "Optional[Command]":
        cmd = super().get_command(ctx, cmd_name)
        if cmd is not None or cmd_name not in self.subcommands:
            return with_config_option(cmd) if cmd is not None and not self._listing else cmd
        lazy = self.subcommands[cmd_name]
        if self._listing:
            # Top-level help only needs the one-line summary: do not import the module for it.
            return TyperCommand(cmd_name, help=lazy.help, short_help=lazy.help)
        module_name, _, attr = lazy.target.partition(":")
        obj = getattr(importlib.import_module(module_name), attr)
        cmd = typer.main.get_command(obj) if isinstance(obj, typer.Typer) else obj
        cmd.name = cmd_name
        self.commands[cmd_name] = with_config_option(cmd)
        return cmd

    def format_help(self, ctx: "Context", formatter: "HelpFormatter") -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


def command_paths(app: typer.Typer) -> list[list[str]]:
    """Every command path of `app` ([] = the root), mounting each lazy sub-app on the way (the `--help`
    test and benchmark walk it)."""
    root = typer.main.get_command(app)

    def walk(cmd, ctx, path: list[str]) -> list[list[str]]:
        out = [path]
        if hasattr(cmd, "list_commands"):
            for name in cmd.list_commands(ctx):
                sub = cmd.get_command(ctx, name)
                out += walk(sub, cmd.context_class(sub, parent=ctx, info_name=name), [*path, name])
        return out

    return walk(root, root.context_class(root, info_name="gradesync"), [])
