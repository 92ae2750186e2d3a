"""`esk-data settings`: every environment variable the project reads, with its type, default
and meaning, as each is declared (once) in the code."""

from __future__ import annotations

import click

from esk_pipeline.cli._output import json_option, print_json, table
from esk_pipeline.settings import documentation


@click.command("settings")
@json_option
def settings_command(as_json: bool) -> None:
    """List every setting: variable, type, default and meaning."""
    docs = documentation()
    if as_json:
        print_json(docs)
        return
    rows = [[d.variable, d.default, d.description] for d in docs]
    click.echo(table(["variable", "default", "meaning"], rows))
