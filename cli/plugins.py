"""``arrears plugins``: the loaded plugins, their versions and the hooks each implements."""

from __future__ import annotations

import json

import click

from cli.core import friendly_errors, main
from plugins.errors import PluginError
from plugins.manager import build_plugin_manager, call_hook


def contributed_commands() -> dict[str, click.Command]:
    """Commands from ``arrears_cli_commands``, by name (first plugin to claim a name wins)."""
    pm = build_plugin_manager()
    commands: dict[str, click.Command] = {}
    for batch in call_hook(pm, "arrears_cli_commands"):
        for command in batch or ():
            if not isinstance(command, click.Command) or not command.name:
                raise PluginError(
                    "<unknown>", "arrears_cli_commands", f"not a command: {command!r}"
                )
            commands.setdefault(command.name, command)
    return commands


@main.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@friendly_errors
def plugins_command(as_json: bool) -> None:
    """List the loaded plugins, their versions and the hooks each implements.

    Plugins named in ARREARS_DISABLE_PLUGINS (comma-separated) are not loaded.
    """
    pm = build_plugin_manager()
    infos = pm.plugin_infos()
    for name in pm.unknown_disabled:
        click.echo(
            f"warning [unknown_plugin]: ARREARS_DISABLE_PLUGINS names {name!r}, "
            "which no built-in or installed plugin is called",
            err=True,
        )
    if as_json:
        click.echo(json.dumps([i.as_dict() for i in infos], indent=2))
        return
    width = max([len(i.name) for i in infos] + [6])
    click.echo(f"{'plugin':<{width}}  {'version':<10} {'source':<24} hooks")
    for i in infos:
        click.echo(f"{i.name:<{width}}  {i.version:<10} {i.source:<24} {', '.join(i.hooks)}")
