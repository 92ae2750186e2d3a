"""What every `esk-data` command shares: one-line errors, JSON and table output, safe text."""

from __future__ import annotations

import json
from typing import Any, TextIO

import click
from pydantic import BaseModel

from esk_pipeline.pipeline.log_source import LogSourceError
from esk_pipeline.pipeline.splits import DatasetQualityError
from esk_pipeline.pipeline.taxonomy import TaxonomyError
from esk_pipeline.pipeline.versions import StorageError

# Failures a user can act on: shown as one line, not as a traceback.
USER_ERRORS = (
    StorageError,
    DatasetQualityError,
    TaxonomyError,
    LogSourceError,
    OSError,
    ValueError,
)


class CommandGroup(click.Group):
    """A click group that turns library errors into a one-line message and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except USER_ERRORS as exc:
            raise click.ClickException(str(exc)) from exc


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")


def print_json(value: BaseModel | dict[str, Any] | list[Any]) -> None:
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    elif isinstance(value, list):
        value = [v.model_dump(mode="json") if isinstance(v, BaseModel) else v for v in value]
    click.echo(json.dumps(value, ensure_ascii=False, indent=2))


def table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [[printable(str(c)) for c in row] for row in [headers, *rows]]  # data may be hostile
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def printable(text: str) -> str:
    """`text` with control characters escaped (`\\x1b`): text from an imported archive must not
    drive the terminal (ANSI escapes, carriage returns)."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


class ProgressLines:
    """Progress lines on stdout among a command's other lines.

    On a terminal each stage keeps one line, rewritten in place as its numbers change (its
    last state, the totals, stays); elsewhere (a pipe, a CI log) every line is printed as is.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream or click.get_text_stream("stdout")
        self._in_place = self._stream.isatty()
        self._open_stage: str | None = None

    def progress(self, line: str) -> None:
        """Show a progress line (`stage: numbers`)."""
        if not self._in_place:
            click.echo(line, file=self._stream)
            return
        stage = line.split(":", 1)[0]
        if stage != self._open_stage:
            self.end()
        self._stream.write("\r\x1b[K" + line)
        self._stream.flush()
        self._open_stage = stage

    def echo(self, text: str) -> None:
        """Print an ordinary line (after ending an open progress line)."""
        self.end()
        click.echo(text, file=self._stream)

    def end(self) -> None:
        """End the open progress line, if any."""
        if self._open_stage is not None:
            self._stream.write("\n")
            self._open_stage = None
