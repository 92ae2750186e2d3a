"""YAML without anchors and aliases, for every YAML file the project reads.

An alias repeats a node by reference, so a few hundred bytes of nested aliases (a "billion
laughs" file) expand into gigabytes of Python objects. People edit the taxonomy, and a sensor
reads it, so `load_plain_yaml` refuses the first anchor or alias while composing, before any
object is built: the error names the line, and it comes in milliseconds whatever the nesting.
The project's files need neither.
"""

from __future__ import annotations

from typing import IO, Any

import yaml
from yaml.composer import ComposerError
from yaml.events import AliasEvent, NodeEvent

__all__ = ["load_plain_yaml"]


class _PlainSafeLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` whose composer refuses anchors (`&name`) and aliases (`*name`)."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, AliasEvent) or (
            isinstance(event, NodeEvent) and event.anchor is not None
        ):
            kind = "alias" if isinstance(event, AliasEvent) else "anchor"
            raise ComposerError(
                None,
                None,
                f"YAML {kind} {event.anchor!r} is not allowed (anchors and aliases are refused)",
                event.start_mark,
            )
        return super().compose_node(parent, index)


def load_plain_yaml(stream: str | bytes | IO[str]) -> Any:
    """Parse one YAML document with safe types only; a `yaml.YAMLError` for anchors and aliases."""
    loader = _PlainSafeLoader(stream)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()
